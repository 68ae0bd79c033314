package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/devstack/devidp"
)

// The staff sign-in's relying party against the dev stack's real OpenID
// Provider (zitadel's OP: discovery, authorization with PKCE, token
// endpoint, RS256 ID tokens), driven over HTTP as a browser would.

const testCallback = "http://127.0.0.1:1/auth/callback" // never reached: the test reads the redirect

type idpFixture struct {
	idp    *devidp.Provider
	client devidp.Client
}

func startIDP(t *testing.T, claim string, users ...devidp.User) idpFixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if len(users) == 0 {
		users = devidp.DevUsers()
	}
	cl := devidp.Client{ID: "mfaflow-test", Secret: "client-secret-for-tests", RedirectURIs: []string{testCallback}}
	p, err := devidp.Start(ln, devidp.Config{Client: cl, Users: users, RolesClaim: claim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return idpFixture{idp: p, client: cl}
}

func (f idpFixture) rp(t *testing.T, claim string, now func() time.Time) *auth.OIDC {
	t.Helper()
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: f.idp.Issuer, ClientID: f.client.ID, ClientSecret: f.client.Secret,
		RolesClaim: claim, RedirectURL: testCallback, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// browse follows the provider's redirects with a cookie jar, stopping at
// the relying party's callback, whose URL it returns.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), testCallback) {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

// signIn opens authURL (the IdP's login page), submits user and password,
// and returns the login page's status and the callback URL the IdP sent
// the browser to ("" when it sent none).
func (b *browser) signIn(authURL, user, password string) (int, *url.URL) {
	b.t.Helper()
	res, err := b.c.Get(authURL)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="password"`) {
		b.t.Fatalf("login page: %d %.300s", res.StatusCode, body)
	}
	id := res.Request.URL.Query().Get("authRequestID")
	login := res.Request.URL.ResolveReference(&url.URL{Path: "/login"})
	res, err = b.c.PostForm(login.String(), url.Values{"id": {id}, "username": {user}, "password": {password}})
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		return res.StatusCode, nil
	}
	u, err := res.Location()
	if err != nil || !strings.HasPrefix(u.String(), testCallback) {
		b.t.Fatalf("sign-in ended at %v (%v): %.300s", u, err, body)
	}
	return res.StatusCode, u
}

func authURL(t *testing.T, o *auth.OIDC, f auth.Flow) string {
	t.Helper()
	u, err := o.AuthURL(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestOIDCAuthURL(t *testing.T) {
	fx := startIDP(t, "")
	o := fx.rp(t, "", nil)
	f := auth.NewFlow("/review")
	u, err := url.Parse(authURL(t, o, f))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	sum := sha256.Sum256([]byte(f.Verifier))
	want := map[string]string{
		"response_type": "code", "client_id": fx.client.ID, "redirect_uri": testCallback, "state": f.State, "nonce": f.Nonce,
		"code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]), "code_challenge_method": "S256",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if !strings.HasPrefix(u.String(), fx.idp.Issuer+"/") {
		t.Errorf("authorization endpoint %s is not the issuer's (%s)", u, fx.idp.Issuer)
	}
	if !slices.Contains(strings.Fields(q.Get("scope")), "openid") {
		t.Errorf("scope %q lacks openid", q.Get("scope"))
	}
	if f2 := auth.NewFlow("/"); f2.State == f.State || f2.Nonce == f.Nonce || f2.Verifier == f.Verifier || len(f.Verifier) < 43 {
		t.Error("flows share secrets, or the verifier is short")
	}
}

func TestOIDCSignIn(t *testing.T) {
	fx := startIDP(t, "")
	o := fx.rp(t, "", nil)
	ctx := context.Background()
	for _, tt := range []struct {
		user, password string
		name           string
		roles          []string
	}{
		{"reviewer1", "reviewer1-dev", "Reviewer One", []string{auth.RoleReviewer}},
		{"reviewer2", "reviewer2-dev", "Reviewer Two", []string{auth.RoleReviewer}},
		{"admin", "admin-dev", "Admin", []string{auth.RoleAdmin}},
	} {
		t.Run(tt.user, func(t *testing.T) {
			f := auth.NewFlow("/review")
			_, cb := newBrowser(t).signIn(authURL(t, o, f), tt.user, tt.password)
			id, err := o.Finish(ctx, f, cb.Query().Get("state"), cb.Query().Get("code"))
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if id.Subject != tt.user || id.Name != tt.name || !slices.Equal(id.Roles, tt.roles) {
				t.Errorf("identity = %+v", id)
			}
			if time.Until(id.Expires) < 30*time.Minute {
				t.Errorf("ID token expires %v", id.Expires)
			}
			// The code is spent: the IdP refuses it a second time.
			if _, err := o.Finish(ctx, f, cb.Query().Get("state"), cb.Query().Get("code")); !errors.Is(err, auth.ErrIDToken) {
				t.Errorf("second exchange of the code: %v, want ErrIDToken", err)
			}
		})
	}
}

func TestOIDCRefusals(t *testing.T) {
	users := append(devidp.DevUsers(), devidp.User{Username: "visitor", Password: "visitor-dev", Name: "Visitor", Roles: []string{"auditor"}})
	fx := startIDP(t, "", users...)
	o := fx.rp(t, "", nil)
	ctx := context.Background()
	signIn := func(t *testing.T, f auth.Flow, user, pw string) *url.URL {
		t.Helper()
		_, cb := newBrowser(t).signIn(authURL(t, o, f), user, pw)
		return cb
	}

	t.Run("wrong password", func(t *testing.T) {
		if st, cb := newBrowser(t).signIn(authURL(t, o, auth.NewFlow("/")), "reviewer1", "reviewer2-dev"); st != http.StatusUnauthorized || cb != nil {
			t.Errorf("status %d, callback %v; want 401 and none", st, cb)
		}
	})
	t.Run("state differs", func(t *testing.T) {
		f := auth.NewFlow("/")
		cb := signIn(t, f, "reviewer1", "reviewer1-dev")
		if _, err := o.Finish(ctx, f, auth.NewFlow("/").State, cb.Query().Get("code")); !errors.Is(err, auth.ErrFlow) {
			t.Errorf("err = %v, want ErrFlow", err)
		}
		if _, err := o.Finish(ctx, auth.Flow{}, "", cb.Query().Get("code")); !errors.Is(err, auth.ErrFlow) {
			t.Errorf("no flow: err = %v, want ErrFlow", err)
		}
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		f := auth.NewFlow("/")
		cb := signIn(t, f, "reviewer1", "reviewer1-dev")
		f.Verifier = auth.NewFlow("/").Verifier
		if _, err := o.Finish(ctx, f, cb.Query().Get("state"), cb.Query().Get("code")); !errors.Is(err, auth.ErrIDToken) {
			t.Errorf("err = %v, want ErrIDToken", err)
		}
	})
	t.Run("nonce differs", func(t *testing.T) {
		f := auth.NewFlow("/")
		cb := signIn(t, f, "reviewer1", "reviewer1-dev")
		f.Nonce = auth.NewFlow("/").Nonce
		_, err := o.Finish(ctx, f, cb.Query().Get("state"), cb.Query().Get("code"))
		if !errors.Is(err, auth.ErrIDToken) || !strings.Contains(err.Error(), "nonce") {
			t.Errorf("err = %v, want ErrIDToken (nonce)", err)
		}
	})
	t.Run("no reviewer or admin role", func(t *testing.T) {
		f := auth.NewFlow("/")
		cb := signIn(t, f, "visitor", "visitor-dev")
		id, err := o.Finish(ctx, f, cb.Query().Get("state"), cb.Query().Get("code"))
		if !errors.Is(err, auth.ErrNoRole) || id.Subject != "visitor" || len(id.Roles) != 0 {
			t.Errorf("identity %+v, err = %v; want visitor without roles, ErrNoRole", id, err)
		}
	})
	t.Run("expired ID token", func(t *testing.T) {
		late := fx.rp(t, "", func() time.Time { return time.Now().Add(3 * time.Hour) })
		f := auth.NewFlow("/")
		_, cb := newBrowser(t).signIn(authURL(t, late, f), "reviewer1", "reviewer1-dev")
		_, err := late.Finish(ctx, f, cb.Query().Get("state"), cb.Query().Get("code"))
		if !errors.Is(err, auth.ErrIDToken) || !strings.Contains(err.Error(), "expired") {
			t.Errorf("err = %v, want ErrIDToken (expired)", err)
		}
	})
	t.Run("another client's token", func(t *testing.T) {
		other, err := auth.NewOIDC(auth.OIDCConfig{Issuer: fx.idp.Issuer, ClientID: "someone-else", ClientSecret: "x", RedirectURL: testCallback})
		if err != nil {
			t.Fatal(err)
		}
		// The IdP knows no such client: its authorization endpoint refuses.
		res, err := http.Get(authURL(t, other, auth.NewFlow("/")))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK && strings.Contains(res.Request.URL.Path, "/login") {
			t.Errorf("an unknown client reached the login page")
		}
	})
}

func TestOIDCRolesClaim(t *testing.T) {
	fx := startIDP(t, "groups")
	ctx := context.Background()
	// Reading the default "roles" claim finds nothing: the roles are in "groups".
	for _, tt := range []struct {
		claim string
		want  error
	}{{"groups", nil}, {"", auth.ErrNoRole}} {
		o := fx.rp(t, tt.claim, nil)
		f := auth.NewFlow("/")
		_, cb := newBrowser(t).signIn(authURL(t, o, f), "admin", "admin-dev")
		id, err := o.Finish(ctx, f, cb.Query().Get("state"), cb.Query().Get("code"))
		if !errors.Is(err, tt.want) || (tt.want == nil && !slices.Equal(id.Roles, []string{auth.RoleAdmin})) {
			t.Errorf("claim %q: identity %+v, err %v; want err %v", tt.claim, id, err, tt.want)
		}
	}
}

func TestSessionSecrets(t *testing.T) {
	a, b := auth.NewSessionID(), auth.NewSessionID()
	if a == b || len(a) != 43 {
		t.Fatalf("session ids %q %q", a, b)
	}
	if auth.SessionHash(a) == auth.SessionHash(b) || len(auth.SessionHash(a)) != 64 || strings.Contains(auth.SessionHash(a), a) {
		t.Error("session hashes")
	}
	if !auth.CheckCSRF(a, auth.CSRFToken(a)) {
		t.Error("a session's own CSRF token is refused")
	}
	for _, tok := range []string{"", auth.CSRFToken(b), a, auth.SessionHash(a)} {
		if auth.CheckCSRF(a, tok) {
			t.Errorf("CSRF token %q accepted", tok)
		}
	}
	if auth.CheckCSRF("", auth.CSRFToken("")) {
		t.Error("an empty session accepts a CSRF token")
	}
}
