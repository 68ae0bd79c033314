package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/devstack/devidp"
	"github.com/mfaflow/mfaflow/internal/harness"
)

// TestDevOIDC runs the dev stack with a company IdP given by the
// MFAFLOW_OIDC_* settings (a real OpenID Provider, devidp, standing for
// it, with a client, a user and a roles claim of its own) and signs a
// reviewer in through it with the authorization-code flow: the sign-in goes
// to the given issuer instead of the embedded one, as the given client (its
// secret passes the code exchange), and the roles come from the given claim.
func TestDevOIDC(t *testing.T) {
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	api := fmt.Sprintf("http://127.0.0.1:%d", port)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const clientID, clientSecret, claim = "given-client", "given-client-secret-0123456789", "groups"
	idp, err := devidp.Start(ln, devidp.Config{
		Client:     devidp.Client{ID: clientID, Secret: clientSecret, RedirectURIs: []string{api + "/auth/callback"}},
		Users:      []devidp.User{{Username: "ann", Password: "ann-password", Name: "Ann", Roles: []string{"reviewer"}}},
		RolesClaim: claim,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()

	d := runDevInProcess(t, map[string]string{
		"MFAFLOW_HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", port), "MFAFLOW_OIDC_ISSUER": idp.Issuer,
		"MFAFLOW_OIDC_CLIENT_ID": clientID, "MFAFLOW_OIDC_CLIENT_SECRET": clientSecret, "MFAFLOW_OIDC_ROLES_CLAIM": claim,
	}, "-ui-port", "-1", "-http-addr", fmt.Sprintf("127.0.0.1:%d", port))
	if !strings.Contains(d.stdout.String(), idp.Issuer) {
		t.Errorf("the banner does not name the given IdP %s:\n%s", idp.Issuer, d.stdout)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: time.Minute, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if prev := via[len(via)-1].URL; prev.Path == "/auth/callback" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	res, err := c.Get(d.api + "/auth/login?return=/review")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	issuer, _ := url.Parse(idp.Issuer)
	if res.StatusCode != http.StatusOK || res.Request.URL.Host != issuer.Host || res.Request.URL.Path != "/login" {
		t.Fatalf("GET /auth/login ended at %s with %d, want the given IdP's login page", res.Request.URL, res.StatusCode)
	}
	var authorize *url.URL
	for r := res.Request; r != nil; r = r.Response.Request {
		if r.URL.Host == issuer.Host && r.URL.Query().Get("client_id") != "" {
			authorize = r.URL
		}
		if r.Response == nil {
			break
		}
	}
	if authorize == nil || authorize.Query().Get("client_id") != clientID {
		t.Errorf("the authorization request = %v, want client_id %s", authorize, clientID)
	}
	form := url.Values{"id": {res.Request.URL.Query().Get("authRequestID")}, "username": {"ann"}, "password": {"ann-password"}}
	res, err = c.PostForm(res.Request.URL.ResolveReference(&url.URL{Path: "/login"}).String(), form)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.Request.URL.Path != "/auth/callback" || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the sign-in ended at %s with %d, want the callback's 303 (the code exchange with the given client secret)", res.Request.URL, res.StatusCode)
	}
	res, err = c.Get(d.api + "/auth/session")
	if err != nil {
		t.Fatal(err)
	}
	var sess struct {
		Subject string   `json:"subject"`
		Roles   []string `json:"roles"`
	}
	_ = json.NewDecoder(res.Body).Decode(&sess)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || sess.Subject != "ann" || !slices.Contains(sess.Roles, "reviewer") {
		t.Errorf("GET /auth/session = %d %+v, want ann with the reviewer role of the %q claim", res.StatusCode, sess, claim)
	}
	d.stop()
}
