// Package devidp is the dev stack's OpenID Provider: a real OP (zitadel's
// pkg/op: discovery, authorization with PKCE, token and userinfo endpoints,
// RS256-signed ID tokens) over an in-memory store, with a login page for a
// fixed set of staff users. `mfaflow dev` serves it so reviewers and an
// admin can sign in to the pages as they would through the company IdP, and
// the browser tests start it to run the real authorization-code flow.
//
// It is for development only: users and passwords are plain, and every
// request, code and token lives in memory.
package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is a staff member who can sign in at the provider.
type User struct {
	Username string   // typed on the login page; also the ID token's "sub"
	Password string   // plain: dev only
	Name     string   // the "name" claim
	Roles    []string // the roles claim: "reviewer", "admin"
}

// Client is the one relying party the provider serves (mfaflow).
type Client struct {
	ID           string
	Secret       string
	RedirectURIs []string // exact matches
}

// Config configures a Provider. The zero RolesClaim means "roles"; the zero
// IDTokenLifetime one hour.
type Config struct {
	Issuer          string // the provider's base URL, e.g. http://127.0.0.1:8085
	Client          Client
	Users           []User
	RolesClaim      string
	IDTokenLifetime time.Duration
}

// DevUsers are the dev stack's staff: two reviewers, so four-eyes can be
// done by two people, and one admin.
func DevUsers() []User {
	return []User{
		{Username: "reviewer1", Password: "reviewer1-dev", Name: "Reviewer One", Roles: []string{"reviewer"}},
		{Username: "reviewer2", Password: "reviewer2-dev", Name: "Reviewer Two", Roles: []string{"reviewer"}},
		{Username: "admin", Password: "admin-dev", Name: "Admin", Roles: []string{"admin"}},
	}
}

// Provider is a running dev OP.
type Provider struct {
	Issuer string
	srv    *http.Server
	done   chan error
}

// Start serves a provider on ln; cfg.Issuer, when empty, becomes
// http://<ln's address>. Close stops it.
func Start(ln net.Listener, cfg Config) (*Provider, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = "http://" + ln.Addr().String()
	}
	h, err := New(cfg)
	if err != nil {
		return nil, err
	}
	p := &Provider{Issuer: cfg.Issuer, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, done: make(chan error, 1)}
	go func() { p.done <- p.srv.Serve(ln) }()
	return p, nil
}

// Close stops the provider.
func (p *Provider) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if e := <-p.done; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// New returns the provider's handler: the OP's endpoints at the root and
// the login page at /login. It returns an error for a config without an
// issuer, a client or users.
func New(cfg Config) (http.Handler, error) {
	if cfg.Issuer == "" || cfg.Client.ID == "" || len(cfg.Users) == 0 {
		return nil, errors.New("devidp: issuer, client and users are required")
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "roles"
	}
	if cfg.IDTokenLifetime <= 0 {
		cfg.IDTokenLifetime = time.Hour
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("devidp: signing key: %w", err)
	}
	var crypto [32]byte
	if _, err := rand.Read(crypto[:]); err != nil {
		return nil, fmt.Errorf("devidp: crypto key: %w", err)
	}
	s := &storage{
		cfg:      cfg,
		key:      signingKey{id: rand.Text(), key: key},
		requests: map[string]*authRequest{},
		codes:    map[string]string{},
		tokens:   map[string]accessToken{},
	}
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:          crypto,
		CodeMethodS256:     true,
		AuthMethodPost:     true,
		SupportedUILocales: []language.Tag{language.SimplifiedChinese, language.English},
	}, s, op.StaticIssuer(cfg.Issuer), op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	l := &login{store: s, callback: op.AuthCallbackURL(provider), formTargets: origins(cfg.Client.RedirectURIs)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", l.page)
	mux.Handle("POST /login", op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(l.submit))
	mux.Handle("/", provider)
	return mux, nil
}

// storage is the OP's in-memory store (op.Storage).
type storage struct {
	cfg Config
	key signingKey

	mu       sync.Mutex
	requests map[string]*authRequest
	codes    map[string]string // code → request id
	tokens   map[string]accessToken
}

type accessToken struct {
	subject string
	expires time.Time
}

var errNotFound = errors.New("devidp: not found")

func (s *storage) user(name string) (User, bool) {
	i := slices.IndexFunc(s.cfg.Users, func(u User) bool { return u.Username == name })
	if i < 0 {
		return User{}, false
	}
	return s.cfg.Users[i], true
}

// authenticate checks a username and password and marks request id signed
// in. Every password is compared, so the time taken does not say which
// usernames exist.
func (s *storage) authenticate(id, username, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return errNotFound
	}
	match := ""
	for _, u := range s.cfg.Users {
		if subtle.ConstantTimeCompare([]byte(u.Username), []byte(username))&subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1 {
			match = u.Username
		}
	}
	if match == "" {
		return errBadPassword
	}
	r.subject, r.authTime, r.done = match, time.Now(), true
	return nil
}

var errBadPassword = errors.New("devidp: wrong username or password")

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	r := &authRequest{
		id: rand.Text(), clientID: req.ClientID, redirectURI: req.RedirectURI, scopes: req.Scopes,
		state: req.State, nonce: req.Nonce, responseType: req.ResponseType, responseMode: req.ResponseMode,
		created: time.Now(),
	}
	if req.CodeChallenge != "" {
		r.challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[r.id] = r
	return r, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok || time.Since(r.created) > 10*time.Minute {
		return nil, errNotFound
	}
	return r, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errNotFound
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest forgets the request and its code, so a code is
// exchanged at most once.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for c, rid := range s.codes {
		if rid == id {
			delete(s.codes, c)
		}
	}
	return nil
}

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, exp := rand.Text(), time.Now().Add(5*time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[id] = accessToken{subject: req.GetSubject(), expires: exp}
	return id, exp, nil
}

var errNoRefresh = errors.New("devidp: refresh tokens are not issued")

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNoRefresh
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(_ context.Context, token, _, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
	return nil
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{publicKey{s.key}}, nil }

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != s.cfg.Client.ID {
		return nil, errNotFound
	}
	return client{c: s.cfg.Client, lifetime: s.cfg.IDTokenLifetime}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != s.cfg.Client.ID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.Client.Secret)) != 1 {
		return errors.New("devidp: invalid client")
	}
	return nil
}

// SetUserinfoFromScopes is empty: SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims: sub, name,
// preferred_username and the roles claim.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	return s.userinfo(info, req.GetSubject())
}

func (s *storage) userinfo(info *oidc.UserInfo, subject string) error {
	u, ok := s.user(subject)
	if !ok {
		return errNotFound
	}
	info.Subject, info.Name, info.PreferredUsername = u.Username, u.Name, u.Username
	info.AppendClaims(s.cfg.RolesClaim, u.Roles)
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errNotFound
	}
	return s.userinfo(info, t.subject)
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, _, clientID string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errNotFound
	}
	resp.Active, resp.Subject, resp.ClientID = true, t.subject, clientID
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("devidp: JWT profile grants are not supported")
}

func (s *storage) Health(context.Context) error { return nil }

// authRequest is one authorization request (op.AuthRequest).
type authRequest struct {
	id, clientID, redirectURI, state, nonce string
	scopes                                  []string
	responseType                            oidc.ResponseType
	responseMode                            oidc.ResponseMode
	challenge                               *oidc.CodeChallenge
	created                                 time.Time

	subject  string
	authTime time.Time
	done     bool
}

func (r *authRequest) GetID() string                         { return r.id }
func (r *authRequest) GetACR() string                        { return "" }
func (r *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (r *authRequest) GetAudience() []string                 { return []string{r.clientID} }
func (r *authRequest) GetAuthTime() time.Time                { return r.authTime }
func (r *authRequest) GetClientID() string                   { return r.clientID }
func (r *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return r.challenge }
func (r *authRequest) GetNonce() string                      { return r.nonce }
func (r *authRequest) GetRedirectURI() string                { return r.redirectURI }
func (r *authRequest) GetResponseType() oidc.ResponseType    { return r.responseType }
func (r *authRequest) GetResponseMode() oidc.ResponseMode    { return r.responseMode }
func (r *authRequest) GetScopes() []string                   { return r.scopes }
func (r *authRequest) GetState() string                      { return r.state }
func (r *authRequest) GetSubject() string                    { return r.subject }
func (r *authRequest) Done() bool                            { return r.done }

// client is the relying party (op.Client): a confidential web app using
// the authorization-code grant.
type client struct {
	c        Client
	lifetime time.Duration
}

func (c client) GetID() string                       { return c.c.ID }
func (c client) RedirectURIs() []string              { return c.c.RedirectURIs }
func (c client) PostLogoutRedirectURIs() []string    { return nil }
func (c client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c client) GrantTypes() []oidc.GrantType         { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c client) LoginURL(id string) string            { return "/login?authRequestID=" + id }
func (c client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c client) IDTokenLifetime() time.Duration       { return c.lifetime }
func (c client) DevMode() bool                        { return true } // http redirect URIs on loopback
func (c client) IsScopeAllowed(string) bool           { return false }
func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c client) ClockSkew() time.Duration             { return 0 }
func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// signingKey is the provider's RS256 key (op.SigningKey).
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

// publicKey is its public half (op.Key).
type publicKey struct{ k signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

// origins lists the distinct origins of uris, space-separated, for a CSP.
func origins(uris []string) string {
	var out []string
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			continue
		}
		if o := u.Scheme + "://" + u.Host; !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return strings.Join(out, " ")
}
