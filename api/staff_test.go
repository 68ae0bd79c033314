package api_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/devstack/devidp"
	"github.com/mfaflow/mfaflow/store"
)

// staffServer is the API with staff sign-in through the dev stack's real
// OpenID Provider, on a clock the test can move.
type staffServer struct {
	url    string
	st     store.Store
	offset atomic.Int64 // added to the server's clock
}

func startStaffServer(t *testing.T, insecure bool) *staffServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &staffServer{url: "http://" + ln.Addr().String(), st: openSQLite(t)}
	idpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	users := append(devidp.DevUsers(), devidp.User{Username: "visitor", Password: "visitor-dev", Name: "Visitor", Roles: []string{"auditor"}})
	cl := devidp.Client{ID: "mfaflow-api-test", Secret: "api-test-client-secret", RedirectURIs: []string{s.url + "/auth/callback"}}
	idp, err := devidp.Start(idpLn, devidp.Config{Client: cl, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	rp, err := auth.NewOIDC(auth.OIDCConfig{Issuer: idp.Issuer, ClientID: cl.ID, ClientSecret: cl.Secret, RedirectURL: s.url + "/auth/callback"})
	if err != nil {
		t.Fatal(err)
	}
	deps := testDeps(s.st)
	deps.OIDC, deps.InsecureSessionCookie = rp, insecure
	deps.Now = func() time.Time { return time.Now().Add(time.Duration(s.offset.Load())) }
	hs := httptest.NewUnstartedServer(api.NewServer(deps))
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	return s
}

// staffBrowser is an HTTP client with cookies that follows redirects
// through the IdP and stops at the API's answer to the callback.
type staffBrowser struct {
	t   *testing.T
	c   *http.Client
	api *url.URL
}

func newStaffBrowser(t *testing.T, s *staffServer) *staffBrowser {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(s.url)
	b := &staffBrowser{t: t, api: u}
	b.c = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if prev := via[len(via)-1].URL; prev.Host == u.Host && prev.Path == "/auth/callback" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// signIn runs the authorization-code flow from /auth/login?return=ret as
// user and returns the callback's answer.
func (b *staffBrowser) signIn(ret, user, password string) *http.Response {
	b.t.Helper()
	res, err := b.c.Get(b.api.String() + "/auth/login?return=" + url.QueryEscape(ret))
	if err != nil {
		b.t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/login" {
		b.t.Fatalf("GET /auth/login ended at %s with %d, want the IdP's login page", res.Request.URL, res.StatusCode)
	}
	form := url.Values{"id": {res.Request.URL.Query().Get("authRequestID")}, "username": {user}, "password": {password}}
	res, err = b.c.PostForm(res.Request.URL.ResolveReference(&url.URL{Path: "/login"}).String(), form)
	if err != nil {
		b.t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.Request.URL.Path != "/auth/callback" || res.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("the sign-in ended at %s with %d, want the callback's 303", res.Request.URL, res.StatusCode)
	}
	return res
}

// call sends a request with the browser's cookies and an optional CSRF
// token; it returns the status and the error code ("" for none).
func (b *staffBrowser) call(method, path, csrf, body string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.api.String()+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf != "" {
		req.Header.Set(api.CSRFHeader, csrf)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &e)
	return res.StatusCode, e.Error.Code
}

func (b *staffBrowser) session() (int, map[string]any) {
	b.t.Helper()
	res, err := b.c.Get(b.api.String() + "/auth/session")
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func setCookie(res *http.Response, prefix string) *http.Cookie {
	for _, c := range res.Cookies() {
		if strings.Contains(c.Name, prefix) {
			return c
		}
	}
	return nil
}

func TestStaffSession(t *testing.T) {
	s := startStaffServer(t, true)

	t.Run("reviewer", func(t *testing.T) {
		b := newStaffBrowser(t, s)
		res := b.signIn("/review/case?id=apl_Xk3b9QmZ0aLp", "reviewer1", "reviewer1-dev")
		if loc := res.Header.Get("Location"); loc != "/review/case?id=apl_Xk3b9QmZ0aLp" {
			t.Errorf("back to %q, want the return page", loc)
		}
		c := setCookie(res, "mfaflow_staff")
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge != 0 || len(c.Value) < 43 {
			t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, path /, a browser-session cookie", c)
		}
		st, sess := b.session()
		if st != http.StatusOK || sess["subject"] != "reviewer1" || sess["name"] != "Reviewer One" || sess["csrf_token"] == "" {
			t.Fatalf("GET /auth/session = %d %v", st, sess)
		}
		// The store keeps the session's hash, not its id.
		if _, err := s.st.GetSession(t.Context(), c.Value, time.Now()); err == nil {
			t.Error("the store finds the session by its raw id")
		}
		if _, err := s.st.GetSession(t.Context(), auth.SessionHash(c.Value), time.Now()); err != nil {
			t.Errorf("the session is not stored by its hash: %v", err)
		}
		// A reviewer is not an admin.
		if st, code := b.call("GET", "/v1/admin/audit", "", ""); st != http.StatusForbidden || code != "forbidden" {
			t.Errorf("reviewer session on an admin route: %d %s, want 403 forbidden", st, code)
		}
	})

	t.Run("admin, CSRF and sign-out", func(t *testing.T) {
		b := newStaffBrowser(t, s)
		b.signIn("/review", "admin", "admin-dev")
		_, sess := b.session()
		csrf, _ := sess["csrf_token"].(string)
		if st, _ := b.call("GET", "/v1/admin/audit", "", ""); st != http.StatusOK {
			t.Errorf("admin session GET /v1/admin/audit: %d, want 200", st)
		}
		acct := `{"type":"personal","bound_phone":"13804000009","logins":[{"kind":"qq","id":"104000009"}]}`
		for _, tok := range []string{"", "wrong", auth.CSRFToken(auth.NewSessionID())} {
			if st, code := b.call("PUT", "/v1/admin/accounts/staff-csrf", tok, acct); st != http.StatusForbidden || code != "csrf_failed" {
				t.Errorf("PUT with CSRF token %q: %d %s, want 403 csrf_failed", tok, st, code)
			}
		}
		if st, code := b.call("PUT", "/v1/admin/accounts/staff-csrf", csrf, acct); st != http.StatusCreated {
			t.Errorf("PUT with the session's CSRF token: %d %s, want 201", st, code)
		}
		// The codec routes change nothing: the Temporal UI's calls need no CSRF token.
		if st, code := b.call("POST", "/v1/admin/codec/decode", "", `{"payloads":[]}`); st == http.StatusForbidden || st == http.StatusUnauthorized {
			t.Errorf("codec with the session: %d %s, want it admitted", st, code)
		}
		// Bearer JWTs work as before, with no cookie.
		if r := do(t, s.url, request{method: "GET", path: "/v1/admin/audit", token: adminToken(t)}); r.status != http.StatusOK {
			t.Errorf("bearer JWT: %d, want 200", r.status)
		}
		// Sign-out needs the token, then ends the session at the server.
		if st, code := b.call("POST", "/auth/logout", "", ""); st != http.StatusForbidden || code != "csrf_failed" {
			t.Errorf("sign-out without CSRF: %d %s", st, code)
		}
		old := b.c.Jar.Cookies(b.api)
		if st, _ := b.call("POST", "/auth/logout", csrf, ""); st != http.StatusOK {
			t.Errorf("sign-out: %d, want 200", st)
		}
		if st, code := b.call("GET", "/v1/admin/audit", "", ""); st != http.StatusUnauthorized || code != "unauthorized" {
			t.Errorf("after sign-out (cookie cleared): %d %s, want 401 unauthorized", st, code)
		}
		b.c.Jar.SetCookies(b.api, old) // the old cookie, replayed
		if st, code := b.call("GET", "/v1/admin/audit", "", ""); st != http.StatusUnauthorized || code != "session_expired" {
			t.Errorf("the signed-out session's cookie replayed: %d %s, want 401 session_expired", st, code)
		}
	})

	t.Run("expired", func(t *testing.T) {
		b := newStaffBrowser(t, s)
		b.signIn("/review", "reviewer2", "reviewer2-dev")
		if st, _ := b.call("GET", "/v1/review/appeals/apl_missing0000", "", ""); st == http.StatusUnauthorized {
			t.Fatalf("a fresh session is refused")
		}
		s.offset.Store(int64(9 * time.Hour))
		defer s.offset.Store(0)
		if st, code := b.call("GET", "/v1/review/appeals/apl_missing0000", "", ""); st != http.StatusUnauthorized || code != "session_expired" {
			t.Errorf("9 hours on: %d %s, want 401 session_expired", st, code)
		}
		if st, sess := b.session(); st != http.StatusUnauthorized || sess["error"].(map[string]any)["code"] != "session_expired" {
			t.Errorf("GET /auth/session 9 hours on: %d %v", st, sess)
		}
	})

	t.Run("no role", func(t *testing.T) {
		b := newStaffBrowser(t, s)
		res := b.signIn("/review?lang=en", "visitor", "visitor-dev")
		if loc := res.Header.Get("Location"); loc != "/review?lang=en&sign_in=no_role" {
			t.Errorf("refused sign-in sent back to %q, want /review?lang=en&sign_in=no_role", loc)
		}
		if c := setCookie(res, "mfaflow_staff"); c != nil && c.Value != "" {
			t.Error("a person without a role got a session")
		}
		if st, _ := b.session(); st != http.StatusUnauthorized {
			t.Errorf("GET /auth/session: %d, want 401", st)
		}
	})

	t.Run("callback without the flow", func(t *testing.T) {
		b := newStaffBrowser(t, s)
		res, err := b.c.Get(s.url + "/auth/callback?code=x&state=y")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/review?sign_in=failed" {
			t.Errorf("%d to %q, want 303 to /review?sign_in=failed", res.StatusCode, res.Header.Get("Location"))
		}
	})
}

// TestStaffCookiesSecure: outside the dev stack's plain-http loopback, the
// cookies carry Secure and the __Host- prefix.
func TestStaffCookiesSecure(t *testing.T) {
	s := startStaffServer(t, false)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(s.url + "/auth/login?return=/review")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || loc.Query().Get("code_challenge_method") != "S256" || loc.Query().Get("state") == "" || loc.Query().Get("nonce") == "" {
		t.Fatalf("GET /auth/login: %d to %s", res.StatusCode, loc)
	}
	f := setCookie(res, "mfaflow_signin")
	if f == nil || f.Name != "__Host-mfaflow_signin" || !f.Secure || !f.HttpOnly || f.SameSite != http.SameSiteLaxMode || f.MaxAge != 600 {
		t.Errorf("flow cookie %+v: want __Host-, Secure, HttpOnly, SameSite=Lax, 10 minutes", f)
	}
	if strings.Contains(f.Value, loc.Query().Get("code_challenge")) {
		t.Error("the flow cookie holds the challenge instead of the verifier")
	}
}
