package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/web"
)

// demoPersonal is the dev stack's demo account of the same name.
var demoPersonal = store.Account{
	ID: "demo-personal", Type: store.Personal, BoundPhone: "13800138000", Email: "personal@example.com",
	Logins:      []store.Login{{Kind: store.LoginQQ, ID: "10001"}},
	RealName:    store.RealName{Verified: true, Name: "张三", IDNumber: "11010519491231002X"},
	LoginMethod: store.LoginMFA,
}

// putAccounts writes the accounts into st through the store.
func putAccounts(t *testing.T, st store.Store, accounts ...store.Account) {
	t.Helper()
	for _, a := range accounts {
		if _, err := st.PutAccount(context.Background(), a); err != nil {
			t.Fatalf("PutAccount %s: %v", a.ID, err)
		}
	}
}

// get requests target as an English reader (Accept-Language: en).
func get(t *testing.T, h http.Handler, method, target string) (*http.Response, string) {
	t.Helper()
	return getLang(t, h, method, target, "en")
}

// getLang requests target with the Accept-Language header acceptLanguage.
func getLang(t *testing.T, h http.Handler, method, target, acceptLanguage string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, target, nil)
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// scriptTag matches a script element's start tag. The page's texts come in
// a JSON data block (type="application/json"), which never runs.
var scriptTag = regexp.MustCompile(`(?i)<script[^>]*>`)

func TestConsolePage(t *testing.T) {
	st := storetest.SQLite(t)
	putAccounts(t, st, demoPersonal)
	// The key has HTML characters only to show the attribute is escaped; real keys have none.
	const key = `dev-key<"&'>`
	h := web.NewConsole(web.ConsoleConfig{
		Directory: st, Accounts: []string{"demo-personal", "not-in-directory"},
		DevConsoleKey: key, DevLinks: true, DemoSerials: []string{"MFAD-0001"},
	})

	res, body := get(t, h, http.MethodGet, "/console")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /console = %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy = %q, want default-src 'self' without unsafe-inline", csp)
	}
	for _, want := range []string{
		`data-api-key="dev-key&lt;&#34;&amp;&#39;&gt;"`, // escaped attribute
		`<option value="demo-personal"`,
		`138****8000`,
		`data-phone="13800138000"`,
		`<option value="MFAD-0001">`,
		`id="status"`, `id="secret"`, `id="code1"`, `id="code2"`, `id="scope-login"`, `id="scope-operation"`,
		`id="login-code"`, `id="login-verify"`, `id="op-code"`, `id="op-verify"`, `id="op-reuse"`,
		`<label for="sms-code">`, `<label for="code1">`, `<label for="login-code">`, `<label for="op-code">`,
		// Recovery codes and the step-up proof (SPEC §6a, §6b).
		`id="recovery-left"`, `id="recovery-warning"`, `id="recovery-new"`, `id="codes-panel" class="codes-panel" hidden`,
		`<ol id="codes-list" class="codes-list"`, `id="codes-copy"`, `id="codes-download"`, `id="codes-done"`,
		`They are shown only once, here and now. Each code works once.`,
		`<p id="codes-note" class="muted" role="status" aria-live="polite">`,
		`<form id="bind-proof-step" class="step"`, `<form id="regen-step" class="step"`,
		`<label for="bind-proof-code">`, `<label for="bind-proof-recovery">`, `id="bind-proof-kind-none"`, `id="bind-proof-none-help"`,
		`<label for="regen-proof-code">`, `<label for="regen-proof-recovery">`, `<a href="/appeal">unbind appeal</a>`,
		`<label for="login-recovery">`, `id="login-kind-recovery"`,
		`pattern="\s*[A-Za-z0-9]{5}(-|\s)?[A-Za-z0-9]{5}\s*"`,
		// Security keys and passkeys (SPEC §6c).
		`<script src="/static/webauthn.js" defer></script>`, `id="bind-webauthn"`, `<form id="webauthn-step" class="step"`,
		`<label for="wa-name">`, `id="wa-scope-login"`, `id="wa-scope-operation"`, `id="wa-register"`,
		`id="login-kind-webauthn"`, `id="op-kind-webauthn"`, `id="bind-proof-kind-webauthn"`, `id="regen-proof-kind-webauthn"`,
		`id="webauthn-origin"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "not-in-directory") {
		t.Error("page offers an account that is not in the directory")
	}
	if strings.Contains(body, key) {
		t.Error("page has the key unescaped")
	}
	// No inline script or style: the CSP would block them.
	for _, tag := range scriptTag.FindAllString(body, -1) {
		if !strings.Contains(tag, `src="/static/`) && !strings.Contains(tag, `type="application/json"`) {
			t.Errorf("inline script %s", tag)
		}
	}
	if strings.Contains(body, "<style") || strings.Contains(body, " style=") || strings.Contains(body, " onclick=") {
		t.Error("page has inline style or event handler attributes")
	}
}

func TestConsolePageNoDevLinks(t *testing.T) {
	st := storetest.SQLite(t)
	putAccounts(t, st, demoPersonal)
	h := web.NewConsole(web.ConsoleConfig{Directory: st, Accounts: []string{"demo-personal"}})
	_, body := get(t, h, http.MethodGet, "/console")
	if strings.Contains(body, "13800138000") {
		t.Error("the full phone number is on the page without dev links")
	}
	if !strings.Contains(body, `data-api-key=""`) || !strings.Contains(body, `data-dev-links="false"`) {
		t.Error("page without a dev key or dev links should say so in its data attributes")
	}
}

func TestConsolePageAccountParam(t *testing.T) {
	st := storetest.SQLite(t)
	other := demoPersonal
	other.ID, other.BoundPhone, other.Logins = "acct-2", "13600136000", []store.Login{{Kind: store.LoginQQ, ID: "10002"}}
	putAccounts(t, st, demoPersonal, other)
	h := web.NewConsole(web.ConsoleConfig{Directory: st, Accounts: []string{"demo-personal"}})

	tests := []struct {
		name, query string
		want        []string
		notWant     []string
	}{
		{"selects a directory account", "?account=acct-2",
			[]string{`<option value="acct-2" data-phone="" data-masked-phone="136****6000" selected>`}, nil},
		{"unknown account", "?account=nobody",
			[]string{"No account nobody in the directory."}, []string{`value="nobody"`}},
		{"markup is escaped", "?account=%3Cscript%3Ealert(1)%3C/script%3E",
			[]string{"No account &lt;script&gt;alert(1)&lt;/script&gt;: account ids are"}, []string{"<script>alert(1)"}},
		{"quotes are escaped", "?account=x%22%20onmouseover%3D%22alert(1)",
			[]string{"No account x&#34; onmouseover=&#34;alert(1): account ids are"}, []string{`x" onmouseover`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(t, h, http.MethodGet, "/console"+tt.query)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %s", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Errorf("page has %s", w)
				}
			}
		})
	}
}

func TestConsoleStaticAndMethods(t *testing.T) {
	h := web.NewConsole(web.ConsoleConfig{Directory: storetest.SQLite(t)})
	tests := []struct {
		method, path string
		status       int
		contentType  string
	}{
		{http.MethodGet, "/static/console.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{http.MethodGet, "/static/console.css", http.StatusOK, "text/css; charset=utf-8"},
		{http.MethodGet, "/static/webauthn.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{http.MethodGet, "/static/nope.js", http.StatusNotFound, ""},
		{http.MethodGet, "/static/", http.StatusNotFound, ""},
		{http.MethodGet, "/static/../console.go", http.StatusNotFound, ""},
		{http.MethodGet, "/elsewhere", http.StatusNotFound, ""},
		{http.MethodPost, "/console", http.StatusMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			res, _ := get(t, h, tt.method, tt.path)
			if res.StatusCode != tt.status {
				t.Errorf("status %d, want %d", res.StatusCode, tt.status)
			}
			if tt.contentType != "" && res.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), tt.contentType)
			}
			if !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
				t.Error("no CSP")
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no nosniff")
			}
		})
	}
}

// TestConsoleMountedInDevOnly checks the API serves the page in dev mode
// only, over real HTTP.
func TestConsoleMountedInDevOnly(t *testing.T) {
	st := storetest.SQLite(t)
	putAccounts(t, st, demoPersonal)
	page := web.NewConsole(web.ConsoleConfig{Directory: st, Accounts: []string{"demo-personal"}, DevConsoleKey: "k", DevLinks: true})
	for _, dev := range []bool{true, false} {
		srv := httptest.NewServer(api.NewServer(api.Deps{
			Store: st, Console: auth.NewConsoleKeys([]string{"k"}), JWT: &auth.Verifier{Keys: auth.HS256("s")},
			Dev: dev, Web: page,
		}))
		t.Cleanup(srv.Close)
		c := &http.Client{Timeout: 10 * time.Second}
		for _, path := range []string{"/console", "/static/console.js"} {
			res, err := c.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			want := http.StatusOK
			if !dev {
				want = http.StatusNotFound
			}
			if res.StatusCode != want {
				t.Errorf("dev=%v GET %s = %d, want %d", dev, path, res.StatusCode, want)
			}
			if dev && !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
				t.Errorf("dev GET %s: no CSP", path)
			}
		}
	}
}
