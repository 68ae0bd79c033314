package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/web"
)

// checkPage checks what every page must have: 200, HTML, the strict CSP,
// no inline script, style or handler, and no caching.
func checkPage(t *testing.T, res *http.Response, body string) {
	t.Helper()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if csp := res.Header.Get("Content-Security-Policy"); csp != web.ContentSecurityPolicy {
		t.Errorf("Content-Security-Policy = %q, want %q", csp, web.ContentSecurityPolicy)
	}
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	for _, tag := range scriptTag.FindAllString(body, -1) {
		if !strings.Contains(tag, `src="/static/`) && !strings.Contains(tag, `type="application/json"`) {
			t.Errorf("inline script %s", tag)
		}
	}
	if strings.Contains(body, "<style") || strings.Contains(body, " style=") || strings.Contains(body, " onclick=") || strings.Contains(body, "javascript:") {
		t.Error("page has inline style, event handler attributes or javascript: URLs")
	}
}

func TestPages(t *testing.T) {
	h := web.NewPages(web.PagesConfig{MaxDocument: 5 << 20})
	tests := []struct {
		path string
		want []string
	}{
		{"/appeal", []string{
			`<script src="/static/appeal.js" defer>`,
			`Only accounts that have completed real-name verification can be unbound.`,
			`<strong>Still have a recovery code?</strong> Use it to sign in and bind your new phone`,
			`its MFA device cannot be unbound by appeal`,
			`data-max-document="5242880"`, `data-appeal-id=""`,
			`<label for="account_id">`, `<label for="login_kind">`, `<label for="login_id"`, `<label for="bound_phone">`,
			`<label for="company_name">`, `<label for="company_reg_number">`, `<label for="name">`, `<label for="id_number">`,
			`<label for="contact_phone">`, `<label for="file-id_holding_photo">`, `<label for="file-business_licence">`,
			`<option value="qq">QQ</option>`, `<option value="email">`, `<option value="wechat">WeChat</option>`, `<option value="wechat_official">WeChat official account</option>`,
			`id="err-id_number"`, `aria-describedby="err-id_number"`, `id="form-error" class="result error" role="alert"`,
			`accept="image/jpeg,image/png,application/pdf"`, `id="submit-appeal"`,
		}},
		{"/appeal?id=apl_AbC-12_x", []string{`data-appeal-id="apl_AbC-12_x"`}},
		{"/appeal/status?id=apl_AbC-12_x", []string{
			`<script src="/static/appeal_status.js" defer>`, `data-appeal-id="apl_AbC-12_x"`,
			`<label for="access-token">`, `<label for="appeal-id">`, `id="cancel"`, `id="timeline"`, `id="documents"`,
		}},
		{"/appeals/apl_AbC-12_x/owner-cancel?token=" + strings.Repeat("A", 43), []string{
			`<script src="/static/owner_cancel.js" defer>`, `data-appeal-id="apl_AbC-12_x"`, `data-token="` + strings.Repeat("A", 43) + `"`,
			`<button id="owner-cancel-button" type="button" class="danger">`, `If you did not file it`,
		}},
		{"/review", []string{
			`<script src="/static/review_queue.js" defer>`, `data-dev-token=""`, `<label for="jwt">`, `<label for="f-status">`,
			`<option value="todo" selected>`, `<option value="second_approval">Needs a second approval</option>`, `<option value="" selected>Any type</option>`, `<option value="" selected>Any</option>`,
		}},
		{"/review?status=&type=enterprise&sla_breached=true", []string{
			`<option value="" selected>Any status</option>`, `<option value="enterprise" selected>`, `<option value="true" selected>SLA breached</option>`,
		}},
		{"/review/case?id=apl_AbC-12_x", []string{
			`<script src="/static/review_case.js" defer>`, `data-appeal-id="apl_AbC-12_x"`, `id="claim"`, `<label for="reason">`,
			`value="approve"`, `value="reject"`, `value="request_info"`, `id="audit"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res, body := get(t, h, http.MethodGet, tt.path)
			checkPage(t, res, body)
			if !strings.Contains(body, `<script src="/static/common.js" defer>`) || !strings.Contains(body, `href="/static/pages.css"`) {
				t.Error("page lacks common.js or pages.css")
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %s", w)
				}
			}
		})
	}
}

func TestPagesEscaping(t *testing.T) {
	const dev = `eyJ.dev<"&'>`
	h := web.NewPages(web.PagesConfig{DevReviewerToken: dev})
	tests := []struct {
		name, path string
		want       []string
		notWant    []string
	}{
		{"status id markup", "/appeal/status?id=%3Cscript%3Ealert(1)%3C/script%3E",
			[]string{`There is no appeal &lt;script&gt;alert(1)&lt;/script&gt;:`, `data-appeal-id=""`}, []string{"<script>alert(1)"}},
		{"appeal id quotes", "/appeal?id=apl_x%22%20onmouseover%3D%22alert(1)",
			[]string{`There is no appeal apl_x&#34; onmouseover=&#34;alert(1):`, `data-appeal-id=""`}, []string{`x" onmouseover`}},
		{"owner cancel id markup", "/appeals/%3Cb%3Ehi%3C%2Fb%3E/owner-cancel?token=" + strings.Repeat("A", 43),
			[]string{`there is no appeal &lt;b&gt;hi&lt;/b&gt;.`, `data-token=""`, `class="danger" disabled>`}, []string{"<b>hi"}},
		{"owner cancel token markup", "/appeals/apl_x/owner-cancel?token=%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
			[]string{`its token is missing or cut short`, `data-token=""`, `class="danger" disabled>`}, []string{"<script>alert(1)", `alert(1)`}},
		{"owner cancel without token", "/appeals/apl_x/owner-cancel",
			[]string{`its token is missing or cut short`, `class="danger" disabled>`}, nil},
		{"dev token escaped", "/review",
			[]string{`data-dev-token="eyJ.dev&lt;&#34;&amp;&#39;&gt;"`}, []string{dev}},
		{"queue filter markup", "/review?status=%22%3E%3Cscript%3E&type=x%22y",
			[]string{`<option value="" selected>Any status</option>`, `<option value="" selected>Any type</option>`}, []string{`"><script>`, `x"y`}},
		{"case without id", "/review/case",
			[]string{`No appeal chosen: open a case from the review queue.`, `data-appeal-id=""`}, nil},
		{"case id markup", "/review/case?id=%3Cimg%20src%3Dx%3E",
			[]string{`There is no appeal &lt;img src=x&gt;:`}, []string{`<img src=x>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(t, h, http.MethodGet, tt.path)
			checkPage(t, res, body)
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

func TestPagesStaticAndMethods(t *testing.T) {
	h := web.NewPages(web.PagesConfig{})
	tests := []struct {
		method, path string
		status       int
		contentType  string
	}{
		{http.MethodGet, "/static/common.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{http.MethodGet, "/static/appeal.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{http.MethodGet, "/static/appeal_status.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{http.MethodGet, "/static/owner_cancel.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{http.MethodGet, "/static/review_queue.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{http.MethodGet, "/static/review_case.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{http.MethodGet, "/static/pages.css", http.StatusOK, "text/css; charset=utf-8"},
		{http.MethodGet, "/static/console.css", http.StatusOK, "text/css; charset=utf-8"},
		{http.MethodHead, "/appeal", http.StatusOK, "text/html; charset=utf-8"},
		{http.MethodGet, "/static/", http.StatusNotFound, ""},
		{http.MethodGet, "/static/nope.js", http.StatusNotFound, ""},
		{http.MethodGet, "/console", http.StatusNotFound, ""},
		{http.MethodGet, "/appeal/", http.StatusNotFound, ""},
		{http.MethodGet, "/appeals/apl_x/other", http.StatusNotFound, ""},
		{http.MethodPost, "/appeal", http.StatusMethodNotAllowed, ""},
		{http.MethodPost, "/appeals/apl_x/owner-cancel?token=" + strings.Repeat("A", 43), http.StatusMethodNotAllowed, ""},
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
			if res.Header.Get("Content-Security-Policy") != web.ContentSecurityPolicy {
				t.Error("no CSP")
			}
		})
	}
}

// TestPagesMounted checks, over real HTTP through the API server, that the
// pages are served in every mode while the console demo stays dev-only, and
// that both share /static/.
func TestPagesMounted(t *testing.T) {
	st := storetest.SQLite(t)
	putAccounts(t, st, demoPersonal)
	console := web.NewConsole(web.ConsoleConfig{Directory: st, Accounts: []string{"demo-personal"}, DevConsoleKey: "k", DevLinks: true})
	pages := web.NewPages(web.PagesConfig{})
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, dev := range []bool{true, false} {
		srv := httptest.NewServer(api.NewServer(api.Deps{
			Store: st, Console: auth.NewConsoleKeys([]string{"k"}), JWT: &auth.Verifier{Keys: auth.HS256("s")},
			Dev: dev, Web: console, Pages: pages,
		}))
		t.Cleanup(srv.Close)
		for _, tt := range []struct {
			path    string
			devOnly bool
		}{
			{"/appeal", false}, {"/appeal/status?id=apl_x", false}, {"/appeals/apl_x/owner-cancel?token=" + strings.Repeat("A", 43), false},
			{"/review", false}, {"/review/case?id=apl_x", false}, {"/static/appeal.js", false}, {"/static/console.js", false},
			{"/console", true},
		} {
			res, err := c.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			want := http.StatusOK
			if tt.devOnly && !dev {
				want = http.StatusNotFound
			}
			if res.StatusCode != want {
				t.Errorf("dev=%v GET %s = %d, want %d", dev, tt.path, res.StatusCode, want)
			}
			if want == http.StatusOK && res.Header.Get("Content-Security-Policy") != web.ContentSecurityPolicy {
				t.Errorf("dev=%v GET %s: no CSP", dev, tt.path)
			}
		}
	}
}
