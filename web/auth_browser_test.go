package web_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/devstack/devidp"
	"github.com/mfaflow/mfaflow/i18n"
	"github.com/mfaflow/mfaflow/store"
)

// startStaffStack is the appeal stack (startAppealStack) with staff
// sign-in: the API signs reviewers in through the dev stack's real OpenID
// Provider (devidp, on its own loopback port), every appeal needs two
// approvals (MFAFLOW_FOUR_EYES=all) and the cool-down is 0. The pages carry
// no dev reviewer token, and no JWT verifier is configured: only the
// session admits the reviewers.
func startStaffStack(t *testing.T) *appealStack {
	t.Helper()
	deps, ln, url := appealBackends(t)
	idpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	client := devidp.Client{ID: "mfaflow-browser-test", Secret: "browser-test-client-secret", RedirectURIs: []string{url + "/auth/callback"}}
	idp, err := devidp.Start(idpLn, devidp.Config{Client: client, Users: devidp.DevUsers()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	rp, err := auth.NewOIDC(auth.OIDCConfig{Issuer: idp.Issuer, ClientID: client.ID, ClientSecret: client.Secret, RedirectURL: url + "/auth/callback"})
	if err != nil {
		t.Fatal(err)
	}
	deps.Appeals.FourEyes = "all"
	deps.OIDC = rp
	// Plain http on loopback, as `mfaflow dev` serves it: the cookies go
	// without the Secure flag (Chromium would drop a Secure cookie set
	// over http://127.0.0.1).
	deps.InsecureSessionCookie = true
	return serveAppealStack(t, deps, ln, url)
}

// signInAtIdP clicks the page's "sign in" button, signs in at the dev
// OpenID Provider's login page and waits until the page says who is
// signed in.
func (b *browser) signInAtIdP(user, password, name string) {
	b.t.Helper()
	b.waitJS("the sign-in button", `!document.getElementById("staff").hidden && !document.getElementById("staff-sign-in").hidden`, 30*time.Second)
	b.click("staff-sign-in")
	b.do("the IdP's login page", chromedp.WaitVisible(chromedp.ID("password")))
	b.screenshot("auth-idp-login-" + user)
	b.typeInto("username", user)
	b.typeInto("password", password)
	b.click("sign-in")
	b.do("back on the review page", chromedp.WaitVisible(chromedp.ID("staff-who")))
	b.waitText("staff-who", catalogText(i18n.EN, "page.staff.signed_in", "name", name, "roles", auth.RoleReviewer, "time", "")[:len("Signed in as "+name)])
}

// pageFetch sends a request from the page with its cookies (and headers
// hdr, a JS object literal) and returns "status code".
func (b *browser) pageFetch(method, path, hdr string) string {
	b.t.Helper()
	js := fmt.Sprintf(`fetch(%s, {method: %s, credentials: "same-origin", headers: Object.assign({Accept: "application/json"}, %s)})
		.then(async (r) => { let c = ""; try { c = (await r.json()).error.code; } catch (e) {} return r.status + " " + c; })`,
		jsString(path), jsString(method), hdr)
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("fetch %s %s: %v", method, path, err)
	}
	return strings.TrimSpace(got)
}

// TestStaffSignInInBrowser runs SPEC §5b's staff sign-in in Chromium
// against a real OpenID Provider: reviewer 1 signs in through the IdP's
// login page, claims and approves an appeal that needs two approvals,
// signs out; reviewer 2 signs in and gives the second approval, and the
// appeal is unbound (cool-down 0). A POST with the session cookie but
// without the CSRF token is refused (403 csrf_failed), and an ended
// session is asked to sign in again.
func TestStaffSignInInBrowser(t *testing.T) {
	s := startStaffStack(t)
	en := func(key string, kv ...string) string { return catalogText(i18n.EN, key, kv...) }
	putAccounts(t, s.st, demoOwner)
	s.bindDevice(t, demoOwner.ID)
	_, photo := writeJPEG(t, t.TempDir(), "p.jpg", 64, 48)
	id, appealToken := fileAppealHTTP(t, s, demoOwner, photo)

	b := newBrowser(t)
	defer b.checkFaults()

	// Not signed in: the queue offers the company sign-in (both languages).
	b.do("open the queue", chromedp.Navigate(s.url+"/review?lang=zh-CN"), chromedp.WaitVisible(chromedp.ID("staff-sign-in")))
	b.waitText("staff-who", catalogText(i18n.ZH, "page.staff.not_signed_in"))
	b.checkPage(i18n.ZH, "auth-01-queue-signed-out")
	b.do("the queue in English", chromedp.Navigate(s.url+"/review?lang=en"), chromedp.WaitVisible(chromedp.ID("staff-sign-in")))
	b.waitText("staff-who", en("page.staff.not_signed_in"))
	if got := b.pageFetch("GET", "/v1/review/appeals", "{}"); got != "401 unauthorized" {
		t.Errorf("the queue's API without a session: %s, want 401 unauthorized", got)
	}

	// Reviewer 1 signs in, claims and approves: the first of two approvals.
	b.do("open the case", chromedp.Navigate(s.url+"/review/case?id="+id), chromedp.WaitVisible(chromedp.ID("staff-sign-in")))
	b.signInAtIdP("reviewer1", "reviewer1-dev", "Reviewer One")
	b.waitLocation("/review/case?id="+id, 30*time.Second)
	if !eval[bool](b, `document.getElementById("auth").hidden && !document.getElementById("staff-sign-out").hidden`) {
		t.Error("signed in: the token card is still shown, or there is no sign-out button")
	}
	if eval[bool](b, `document.cookie.includes("mfaflow_staff")`) {
		t.Error("the session cookie is readable by the page's scripts (not HttpOnly)")
	}
	b.waitText("assign-note", en("page.case.n_nobody"))
	b.click("claim")
	b.waitText("assign-note", en("page.case.n_mine"))
	b.click("d-approve")
	b.click("decide")
	b.waitText("action-result", en("page.case.approved_first", "has", "1", "needed", "2"))
	b.checkPage(i18n.EN, "auth-02-first-approval")

	// A POST with the session cookie but without its CSRF token is refused,
	// and so is a sign-out without it: the session goes on.
	if got := b.pageFetch("POST", "/v1/review/appeals/"+id+"/claim", "{}"); got != "403 csrf_failed" {
		t.Errorf("claim without the CSRF token: %s, want 403 csrf_failed", got)
	}
	if got := b.pageFetch("POST", "/v1/review/appeals/"+id+"/claim", `{"X-CSRF-Token": "not-the-token"}`); got != "403 csrf_failed" {
		t.Errorf("claim with a wrong CSRF token: %s, want 403 csrf_failed", got)
	}
	if got := b.pageFetch("POST", "/auth/logout", "{}"); got != "403 csrf_failed" {
		t.Errorf("sign-out without the CSRF token: %s, want 403 csrf_failed", got)
	}
	if got := b.pageFetch("GET", "/auth/session", "{}"); !strings.HasPrefix(got, "200") {
		t.Errorf("the session after refused POSTs: %s, want 200", got)
	}

	// Reviewer 1 signs out: the session ends at the server.
	b.click("staff-sign-out")
	b.waitText("staff-who", en("page.staff.signed_out"))
	if got := b.pageFetch("GET", "/auth/session", "{}"); got != "401 unauthorized" {
		t.Errorf("the session after sign-out: %s, want 401 unauthorized", got)
	}
	b.screenshot("en-auth-03-signed-out")

	// Reviewer 2 signs in and gives the second approval.
	b.signInAtIdP("reviewer2", "reviewer2-dev", "Reviewer Two")
	b.waitLocation("/review/case?id="+id, 30*time.Second)
	b.waitText("assign-note", en("page.case.n_second"))
	b.click("claim")
	b.waitText("assign-note", en("page.case.n_mine"))
	b.click("d-approve")
	b.click("decide")
	b.waitText("action-result", strings.SplitN(en("page.case.approved", "status", ""), "“", 2)[0])
	b.screenshot("en-auth-04-second-approval")
	deadline := time.Now().Add(90 * time.Second)
	for st := ""; st != "unbound"; st = appealStatusHTTP(t, s, id, appealToken) {
		if st != "" && st != "cooling_down" {
			t.Fatalf("after the second approval the appeal is %s, want cooling_down, then unbound", st)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the appeal is %s 90 s after the second approval, want unbound", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The audit names both reviewers, by their IdP subjects: the sign-ins,
	// the sign-out and each approval.
	entries, err := s.st.ListAudit(context.Background(), store.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Outcome == "ok" {
			seen[e.Actor+" "+e.Action] = true
		}
	}
	for _, want := range []string{"reviewer:reviewer1 auth.sign_in", "reviewer:reviewer1 auth.sign_out", "reviewer:reviewer2 auth.sign_in",
		"reviewer:reviewer1 appeal.decide", "reviewer:reviewer2 appeal.decide"} {
		if !seen[want] {
			t.Errorf("no audit entry %q", want)
		}
	}

	// The session ends (the sweep, at a time past its expiry): the page
	// asks to sign in again, and the API says why.
	if _, err := s.st.DeleteExpiredSessions(context.Background(), time.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := b.pageFetch("GET", "/v1/review/appeals", "{}"); got != "401 session_expired" {
		t.Errorf("the queue's API with an ended session: %s, want 401 session_expired", got)
	}
	b.do("open the queue", chromedp.Navigate(s.url+"/review"), chromedp.WaitVisible(chromedp.ID("staff-who")))
	b.waitText("staff-who", en("page.staff.expired"))
	b.waitText("status", en("page.staff.expired"))
	if eval[bool](b, `document.getElementById("staff-sign-in").hidden`) {
		t.Error("an ended session is not offered the sign-in button")
	}
	b.checkPage(i18n.EN, "auth-05-session-ended")
}
