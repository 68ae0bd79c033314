// Package web serves mfaflow's server-rendered pages: html/template pages
// with their static assets (CSS and a little vanilla JavaScript) embedded in
// the binary, no framework and no build step.
//
// Console is the console demo page of the dev stack (GET /console): pick an
// account, bind a virtual or hardware MFA device, then try login protection
// (with a device code or a recovery code) and a protected operation. The
// first binding shows the account's recovery codes once; a further device
// and a new set of codes ask for a step-up proof first (SPEC §6a, §6b). Its
// script calls the console JSON API (SPEC §5) from the browser with the dev
// console key.
//
// Pages are the public pages served in every mode: the lost-phone appeal
// form with its uploads, the applicant's status page, the account owner's
// cancel page, and the reviewers' queue and case page. Their scripts call
// the applicant and reviewer JSON APIs.
//
// Every page is sent with ContentSecurityPolicy: scripts and styles come
// from /static/ only.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/mfaflow/mfaflow/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var templates = template.Must(template.New("console").
	Funcs(template.FuncMap{"recoveryPattern": func() string { return recoveryCodePattern }}).
	ParseFS(templateFS, "templates/console.html", "templates/layout.html"))

// recoveryCodePattern is the pattern attribute of the console page's
// recovery code inputs: 10 letters and digits, the hyphen after the fifth
// optional. The API decides what is a code; this only catches typos early.
const recoveryCodePattern = `\s*[A-Za-z0-9]{5}(-|\s)?[A-Za-z0-9]{5}\s*`

// ContentSecurityPolicy is sent with every page: no inline script or style,
// nothing from other origins. Images may also be blob: URLs, which is how
// the page shows the QR code it fetched with the bearer header.
const ContentSecurityPolicy = "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// accountIDPattern is the API's account id syntax; the page offers no other.
var accountIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Directory is the part of the account directory the console page reads.
type Directory interface {
	// GetAccount returns the entry or an error matching store.ErrNotFound.
	GetAccount(ctx context.Context, id string) (store.Account, error)
}

// ConsoleConfig configures the console demo page.
type ConsoleConfig struct {
	// Directory looks up the accounts offered in the picker.
	Directory Directory
	// Accounts are the ids offered in the picker, in order; ids missing
	// from the directory are left out. A request may add one more with
	// ?account=<id>.
	Accounts []string
	// DevConsoleKey is a console API key embedded in the page (a data
	// attribute) so its script can call the console API. Anyone who can
	// load the page can read the key: it is for the dev stack only, which
	// listens on loopback. Never set it in production.
	DevConsoleKey string
	// DevLinks shows links to the dev-only helpers: the outbox (to read the
	// SMS code) and the demo token cards' current codes.
	DevLinks bool
	// DemoSerials are offered as suggestions for the hardware card's serial.
	DemoSerials []string
	// Logger receives the page's errors; nil discards them.
	Logger *slog.Logger
}

// Console serves the console demo page at /console and its assets under
// /static/.
type Console struct {
	cfg    ConsoleConfig
	log    *slog.Logger
	static http.Handler
}

// NewConsole returns the console page handler.
func NewConsole(cfg ConsoleConfig) *Console {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree always has it
	}
	return &Console{cfg: cfg, log: log, static: http.StripPrefix("/static/", http.FileServerFS(sub))}
}

// ServeHTTP serves GET /console and GET /static/…; anything else is 404.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case r.URL.Path == "/console":
		c.serveConsole(w, r)
	case strings.HasPrefix(r.URL.Path, "/static/") && len(r.URL.Path) > len("/static/"):
		c.static.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// accountView is an account as the picker shows it.
type accountView struct {
	ID          string
	Type        string
	MaskedPhone string
	// Phone is the bound phone, only for the dev outbox link.
	Phone       string
	LoginMethod string
	Selected    bool
}

// TypeKey and LoginKey name the account's type and login method in the
// catalog.
func (a accountView) TypeKey() string  { return "page.type." + a.Type }
func (a accountView) LoginKey() string { return "page.login_method." + a.LoginMethod }

type consolePage struct {
	texts
	Accounts []accountView
	// Notice is shown above the picker, e.g. an unknown ?account=.
	Notice      string
	APIKey      string
	DevLinks    bool
	DemoSerials []string
}

// proofData is what the "proof" template gets: the page's texts and the
// id prefix of its fields.
type proofData struct {
	texts
	ID string
}

// Proof returns the data of a step-up proof fieldset with id prefix id.
func (p consolePage) Proof(id string) proofData { return proofData{texts: p.texts, ID: id} }

func (c *Console) serveConsole(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	l := pageLang(w, r)
	page := consolePage{texts: newTexts(r, l, "webauthn.js", "console.js"), APIKey: c.cfg.DevConsoleKey, DevLinks: c.cfg.DevLinks, DemoSerials: c.cfg.DemoSerials}
	ids := append([]string(nil), c.cfg.Accounts...)
	want := r.URL.Query().Get("account")
	if want != "" {
		if !accountIDPattern.MatchString(want) {
			page.Notice = page.T("page.con.bad_account", "ID", want)
			want = ""
		} else if !slices.Contains(ids, want) {
			ids = append(ids, want)
		}
	}
	for _, id := range ids {
		if !accountIDPattern.MatchString(id) {
			continue
		}
		a, err := c.cfg.Directory.GetAccount(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			if id == want {
				page.Notice = page.T("page.con.no_account", "ID", want)
			}
			continue
		}
		if err != nil {
			c.log.ErrorContext(ctx, "console page: account directory", "err", err)
			http.Error(w, page.T("page.con.directory_down"), http.StatusServiceUnavailable)
			return
		}
		v := accountView{ID: a.ID, Type: string(a.Type), MaskedPhone: maskPhone(a.BoundPhone), LoginMethod: string(a.LoginMethod), Selected: a.ID == want}
		if c.cfg.DevLinks {
			v.Phone = a.BoundPhone
		}
		page.Accounts = append(page.Accounts, v)
	}
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "console.html", page); err != nil {
		c.log.ErrorContext(ctx, "console page: render", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// maskPhone keeps the first three and last four digits: 138****8000.
func maskPhone(p string) string {
	if len(p) < 8 {
		return "****"
	}
	b := []byte(p)
	for i := 3; i < len(b)-4; i++ {
		b[i] = '*'
	}
	return string(b)
}
