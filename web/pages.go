package web

import (
	"bytes"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// pageNames are the page templates that share layout.html.
var pageNames = []string{"appeal.html", "appeal_status.html", "owner_cancel.html", "review_queue.html", "review_case.html"}

// pageTemplates holds one template set per page: layout.html plus the
// page's file, which defines "content".
var pageTemplates = func() map[string]*template.Template {
	m := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		m[name] = template.Must(template.New(name).ParseFS(templateFS, "templates/layout.html", "templates/"+name))
	}
	return m
}()

// defaultMaxDocument is the API's default upload limit (api.AppealConfig).
const defaultMaxDocument = 10 << 20

var (
	// appealIDPattern is the syntax of the API's appeal ids (apl_ and base64url).
	appealIDPattern = regexp.MustCompile(`^apl_[A-Za-z0-9_-]{1,64}$`)
	// cancelTokenPattern is the syntax of the owner's cancel token (base64url).
	cancelTokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)
)

// PagesConfig configures the applicant and reviewer pages.
type PagesConfig struct {
	// DevReviewerToken is a reviewer JWT embedded in the review pages (a
	// data attribute) so that the dev stack's reviewer need not paste one.
	// Anyone who can load the page can read it: dev stack only. Empty: the
	// pages ask for a token and keep it in the tab's sessionStorage.
	DevReviewerToken string
	// MaxDocument is the upload limit the appeal form checks before it
	// sends a file (the API enforces its own); 0: 10 MiB, the API's default.
	MaxDocument int64
	// Logger receives the pages' errors; nil discards them.
	Logger *slog.Logger
}

// Pages serves the public web pages of SPEC §5 and their assets:
//
//	GET /appeal                          the lost-phone appeal form and its uploads
//	GET /appeal/status?id=               the applicant's status page
//	GET /appeals/{id}/owner-cancel?token= the account owner's cancel page
//	GET /review                          the reviewers' queue
//	GET /review/case?id=                 a reviewer's case page
//	GET /static/…                        CSS and JavaScript (shared with the console page)
//
// The pages are server-rendered shells; their scripts call the applicant and
// reviewer JSON APIs from the browser. Access tokens live in the tab's
// sessionStorage, never in a URL.
type Pages struct {
	cfg PagesConfig
	log *slog.Logger
	mux *http.ServeMux
}

// NewPages returns the pages handler.
func NewPages(cfg PagesConfig) *Pages {
	p := &Pages{cfg: cfg, log: cfg.Logger}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.cfg.MaxDocument <= 0 {
		p.cfg.MaxDocument = defaultMaxDocument
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /appeal", p.serveAppeal)
	mux.HandleFunc("GET /appeal/status", p.serveAppealStatus)
	mux.HandleFunc("GET /appeals/{id}/owner-cancel", p.serveOwnerCancel)
	mux.HandleFunc("GET /review", p.serveReviewQueue)
	mux.HandleFunc("GET /review/case", p.serveReviewCase)
	mux.Handle("GET /static/", staticHandler())
	p.mux = mux
	return p
}

// ServeHTTP serves the pages; anything else is 404.
func (p *Pages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	p.mux.ServeHTTP(w, r)
}

// staticHandler serves the embedded assets under /static/, never a
// directory listing.
func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree always has it
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/static/") || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// option is one <option> of a filter.
type option struct {
	Value, Label string
	Selected     bool
}

// pageData is what every page template gets; each page uses its part.
type pageData struct {
	texts
	Title    string
	Script   string // the page's script under /static/
	Reviewer bool   // the reviewer layout (header, sign-in card)
	// Notice is a problem with the request, shown at the top.
	Notice string

	AppealID    string
	MaxDocument int64
	CancelToken string

	DevReviewerToken string
	// View is the queue's view: "todo" (waiting for review, and the
	// appeals that need a second approval from someone else) unless the
	// reviewer chose a status.
	View          string
	StatusOptions []option
	TypeOptions   []option
	SLAOptions    []option
}

// MaxDocumentText is the upload limit in words.
func (d pageData) MaxDocumentText() string {
	return strconv.FormatInt(d.MaxDocument>>20, 10) + " MB"
}

// page starts the data of a page in the reader's language.
func (p *Pages) page(w http.ResponseWriter, r *http.Request, script, titleID string) pageData {
	l := pageLang(w, r)
	x := newTexts(r, l, "common.js", script)
	return pageData{texts: x, Title: x.T(titleID), Script: script, MaxDocument: p.cfg.MaxDocument}
}

func (p *Pages) render(w http.ResponseWriter, r *http.Request, name string, d pageData) {
	var buf bytes.Buffer
	if err := pageTemplates[name].ExecuteTemplate(&buf, "layout", d); err != nil {
		p.log.ErrorContext(r.Context(), "page: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// appealIDParam returns the valid ?id= of r, or "" with a notice.
func appealIDParam(r *http.Request, x texts) (id, notice string) {
	id = r.URL.Query().Get("id")
	if id == "" || appealIDPattern.MatchString(id) {
		return id, ""
	}
	return "", x.T("page.notice.bad_id", "ID", id)
}

func (p *Pages) serveAppeal(w http.ResponseWriter, r *http.Request) {
	d := p.page(w, r, "appeal.js", "page.appeal.title")
	d.AppealID, d.Notice = appealIDParam(r, d.texts)
	p.render(w, r, "appeal.html", d)
}

func (p *Pages) serveAppealStatus(w http.ResponseWriter, r *http.Request) {
	d := p.page(w, r, "appeal_status.js", "page.astatus.title")
	d.AppealID, d.Notice = appealIDParam(r, d.texts)
	p.render(w, r, "appeal_status.html", d)
}

func (p *Pages) serveOwnerCancel(w http.ResponseWriter, r *http.Request) {
	d := p.page(w, r, "owner_cancel.js", "page.owner.title")
	id, token := r.PathValue("id"), r.URL.Query().Get("token")
	switch {
	case !appealIDPattern.MatchString(id):
		d.Notice = d.T("page.owner.bad_id", "ID", id)
	case !cancelTokenPattern.MatchString(token):
		d.Notice = d.T("page.owner.bad_token")
	default:
		d.AppealID, d.CancelToken = id, token
	}
	p.render(w, r, "owner_cancel.html", d)
}

// queueStatuses are the statuses a reviewer filters by, in the queue's
// order; their labels are the badges' words (page.st.<status>).
var queueStatuses = []string{"pending_review", "in_review", "collecting_documents", "cooling_down", "unbound", "rejected", "cancelled", "expired"}

// secondApproval is the queue's filter value for the appeals one reviewer
// approved that wait for a second, different one.
const secondApproval = "second_approval"

// options returns all (first) and choices with the one equal to v selected.
func options(all string, choices []option, v string) []option {
	out := append([]option{{Value: "", Label: all}}, choices...)
	if !slices.ContainsFunc(out, func(o option) bool { return o.Value == v }) {
		v = ""
	}
	for i := range out {
		out[i].Selected = out[i].Value == v
	}
	return out
}

func (p *Pages) serveReviewQueue(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := p.page(w, r, "review_queue.js", "page.queue.title")
	d.Reviewer, d.DevReviewerToken = true, p.cfg.DevReviewerToken
	// The default view is the work to do: appeals waiting for review and
	// those that need a second approval (from someone else than the first
	// approver), unless the reviewer chose a status.
	status, view := "todo", "todo"
	if q.Has("status") {
		status, view = q.Get("status"), "list"
	}
	choices := []option{{Value: "todo", Label: d.T("page.queue.todo")}, {Value: secondApproval, Label: d.T("page.st.second_approval")}}
	for _, s := range queueStatuses {
		choices = append(choices, option{Value: s, Label: d.T("page.st." + s)})
	}
	d.View = view
	d.StatusOptions = options(d.T("page.queue.any_status"), choices, status)
	d.TypeOptions = options(d.T("page.queue.any_type"), []option{{Value: "personal", Label: d.T("page.type.personal")}, {Value: "enterprise", Label: d.T("page.type.enterprise")}}, q.Get("type"))
	d.SLAOptions = options(d.T("page.queue.any"), []option{{Value: "true", Label: d.T("page.sla.breached")}, {Value: "false", Label: d.T("page.sla.ok")}}, q.Get("sla_breached"))
	p.render(w, r, "review_queue.html", d)
}

func (p *Pages) serveReviewCase(w http.ResponseWriter, r *http.Request) {
	d := p.page(w, r, "review_case.js", "page.case.title")
	d.Reviewer, d.DevReviewerToken = true, p.cfg.DevReviewerToken
	d.AppealID, d.Notice = appealIDParam(r, d.texts)
	if d.AppealID == "" && d.Notice == "" {
		d.Notice = d.T("page.case.none_chosen")
	}
	p.render(w, r, "review_case.html", d)
}
