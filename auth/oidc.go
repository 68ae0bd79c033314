package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Errors of the staff sign-in (OpenID Connect). Messages are safe to show.
var (
	// ErrFlow is a callback that does not finish a sign-in this browser
	// started: no flow cookie, a state that differs, or an IdP error.
	ErrFlow = errors.New("auth: sign-in flow mismatch")
	// ErrIDToken is an ID token that fails verification (signature,
	// issuer, audience, expiry, nonce) or a code the IdP would not
	// exchange (a wrong PKCE verifier among others).
	ErrIDToken = errors.New("auth: ID token refused")
	// ErrNoRole is a valid sign-in by someone with neither the reviewer
	// nor the admin role.
	ErrNoRole = errors.New("auth: no reviewer or admin role")
)

// OIDCConfig configures the staff sign-in through the company IdP.
type OIDCConfig struct {
	Issuer       string // MFAFLOW_OIDC_ISSUER; discovery at <Issuer>/.well-known/openid-configuration
	ClientID     string // MFAFLOW_OIDC_CLIENT_ID; the ID token's audience
	ClientSecret string // MFAFLOW_OIDC_CLIENT_SECRET
	RolesClaim   string // MFAFLOW_OIDC_ROLES_CLAIM; "roles" when empty
	RedirectURL  string // <public URL>/auth/callback
	// HTTPClient reaches the IdP; http.DefaultClient with a 10 s timeout
	// when nil.
	HTTPClient *http.Client
	// Now is the verifier's clock (time.Now when nil).
	Now func() time.Time
}

// OIDC is the relying party of the staff sign-in: authorization code with
// PKCE (S256), state and nonce. The IdP's discovery document is read on
// first use and kept once read, so a server starts while the IdP is down.
type OIDC struct {
	cfg OIDCConfig

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// NewOIDC returns the relying party for cfg. It returns an error when the
// issuer, client id or redirect URL is missing.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("auth: OIDC needs an issuer, a client id and a redirect URL")
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "roles"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &OIDC{cfg: cfg}, nil
}

// Flow is one sign-in's secrets, kept by the browser (in a short-lived
// HttpOnly cookie) between the redirect to the IdP and the callback.
type Flow struct {
	State    string // returned by the IdP; compared in constant time
	Nonce    string // must come back in the ID token
	Verifier string // the PKCE code verifier; its S256 challenge goes to the IdP
	Return   string // the page to go back to (a local path)
}

// NewFlow makes a flow with fresh random state, nonce and verifier.
func NewFlow(ret string) Flow {
	return Flow{State: randomID(), Nonce: randomID(), Verifier: oauth2.GenerateVerifier(), Return: ret}
}

func (o *OIDC) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, o.cfg.HTTPClient)
}

// setup reads the IdP's discovery document once.
func (o *OIDC) setup(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.oauth != nil {
		return o.oauth, o.verifier, nil
	}
	p, err := oidc.NewProvider(o.ctx(ctx), o.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: OIDC discovery: %w", err)
	}
	o.oauth = &oauth2.Config{
		ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, RedirectURL: o.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile"},
	}
	o.verifier = p.VerifierContext(o.ctx(context.WithoutCancel(ctx)), &oidc.Config{ClientID: o.cfg.ClientID, Now: o.cfg.Now})
	return o.oauth, o.verifier, nil
}

// AuthURL is where the browser goes to sign in: the IdP's authorization
// endpoint with f's state, nonce and S256 code challenge. It returns an
// error when the IdP's discovery document cannot be read.
func (o *OIDC) AuthURL(ctx context.Context, f Flow) (string, error) {
	oc, _, err := o.setup(ctx)
	if err != nil {
		return "", err
	}
	return oc.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), nil
}

// Identity is who signed in.
type Identity struct {
	Subject string
	Name    string
	Roles   []string // "reviewer" and/or "admin" only
	Expires time.Time
}

// Finish completes the sign-in f started: state must equal f.State, the
// code is exchanged with f's PKCE verifier, and the ID token's signature,
// issuer, audience, expiry and nonce are checked. It returns ErrFlow,
// ErrIDToken (wrapped with a reason that never echoes a token) or
// ErrNoRole (with the Identity, for the audit), or the discovery error.
func (o *OIDC) Finish(ctx context.Context, f Flow, state, code string) (Identity, error) {
	if f.State == "" || subtle.ConstantTimeCompare([]byte(f.State), []byte(state)) != 1 {
		return Identity{}, fmt.Errorf("%w: state", ErrFlow)
	}
	if code == "" {
		return Identity{}, fmt.Errorf("%w: no code", ErrFlow)
	}
	oc, v, err := o.setup(ctx)
	if err != nil {
		return Identity{}, err
	}
	tok, err := oc.Exchange(o.ctx(ctx), code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: the code exchange was refused", ErrIDToken)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: no ID token", ErrIDToken)
	}
	idt, err := v.Verify(o.ctx(ctx), raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %s", ErrIDToken, idTokenReason(err))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return Identity{}, fmt.Errorf("%w: nonce", ErrIDToken)
	}
	if idt.Subject == "" {
		return Identity{}, fmt.Errorf("%w: no subject", ErrIDToken)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: claims", ErrIDToken)
	}
	id := Identity{Subject: idt.Subject, Name: claimString(claims, "name"), Expires: idt.Expiry}
	if id.Name == "" {
		id.Name = claimString(claims, "preferred_username")
	}
	for _, r := range claimRoles(claims[o.cfg.RolesClaim]) {
		if (r == RoleReviewer || r == RoleAdmin) && !slices.Contains(id.Roles, r) {
			id.Roles = append(id.Roles, r)
		}
	}
	if len(id.Roles) == 0 {
		return id, ErrNoRole
	}
	return id, nil
}

// idTokenReason names a go-oidc verification failure without the token.
func idTokenReason(err error) string {
	var exp *oidc.TokenExpiredError
	s := err.Error()
	switch {
	case errors.As(err, &exp):
		return "expired"
	case strings.Contains(s, "issued by a different provider"):
		return "wrong issuer"
	case strings.Contains(s, "audience"):
		return "wrong audience"
	case strings.Contains(s, "signature"):
		return "bad signature"
	}
	return "invalid"
}

func claimString(c map[string]any, k string) string {
	s, _ := c[k].(string)
	return s
}

// claimRoles reads a roles claim: a JSON array of strings, or one string
// of roles separated by spaces or commas.
func claimRoles(v any) []string {
	switch t := v.(type) {
	case []any:
		var out []string
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case string:
		return strings.FieldsFunc(t, func(r rune) bool { return r == ' ' || r == ',' })
	}
	return nil
}
