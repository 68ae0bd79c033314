// Package auth identifies callers: the console by bearer key, reviewers and
// admins by JWT (HS256 with a local secret, or RS256/ES256 keys from the
// company IdP's JWKS URL).
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Roles carried in the JWT "roles" claim.
const (
	RoleReviewer = "reviewer"
	RoleAdmin    = "admin"
)

// Errors returned by the authenticators. Messages are safe to show.
var (
	ErrNoCredentials = errors.New("auth: missing credentials")
	ErrInvalid       = errors.New("auth: invalid credentials")
	ErrForbidden     = errors.New("auth: not allowed")
)

// ConsoleKeys checks console bearer keys in constant time. Only their
// SHA-256 digests are kept in memory.
type ConsoleKeys struct {
	digests [][32]byte
}

// NewConsoleKeys returns a checker for keys.
func NewConsoleKeys(keys []string) *ConsoleKeys {
	c := &ConsoleKeys{}
	for _, k := range keys {
		c.digests = append(c.digests, sha256.Sum256([]byte(k)))
	}
	return c
}

// Check reports whether key is one of the console keys. Every key is compared
// so the time taken does not depend on which one matched.
func (c *ConsoleKeys) Check(key string) bool {
	d := sha256.Sum256([]byte(key))
	ok := 0
	for i := range c.digests {
		ok |= subtle.ConstantTimeCompare(d[:], c.digests[i][:])
	}
	return ok == 1 && key != ""
}

// Principal is an authenticated reviewer or admin.
type Principal struct {
	Subject   string    // the reviewer's id ("sub")
	Roles     []string  // "reviewer", "admin"
	AccountID string    // the reviewer's own cloud account, if any
	Expires   time.Time // "exp"
}

// Has reports whether p holds role; an admin holds every role.
func (p Principal) Has(role string) bool {
	return slices.Contains(p.Roles, role) || slices.Contains(p.Roles, RoleAdmin)
}

// Claims are the JWT claims mfaflow reads.
type Claims struct {
	Roles     []string `json:"roles"`
	AccountID string   `json:"account_id,omitempty"`
	jwt.RegisteredClaims
}

// KeySource finds the key that verifies a token.
type KeySource interface {
	// Key returns the verification key for the token's header, or an error.
	Key(ctx context.Context, t *jwt.Token) (any, error)
	// Methods lists the accepted signing algorithms.
	Methods() []string
}

// HS256 verifies tokens signed with a shared secret.
type HS256 []byte

// Key returns the secret.
func (h HS256) Key(context.Context, *jwt.Token) (any, error) { return []byte(h), nil }

// Methods accepts HS256 only.
func (HS256) Methods() []string { return []string{"HS256"} }

// Verifier checks reviewer and admin JWTs.
type Verifier struct {
	Keys KeySource
	// Issuer must equal "iss" and Audience be one of "aud". Both are
	// checked when set, and required with JWKS keys: an IdP signs tokens for
	// every application it serves, so its signature alone says nothing of
	// who the token is for.
	Issuer   string
	Audience string
	Leeway   time.Duration
	Now      func() time.Time
}

// Verify parses and checks token: signature, algorithm, exp (required),
// nbf/iat when present, issuer and audience when configured (always with
// JWKS keys), a non-empty sub and at least one known role. It returns
// ErrInvalid on any failure, also for a JWKS verifier without an issuer or
// audience.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrNoCredentials
	}
	if _, idp := v.Keys.(*JWKS); idp && (v.Issuer == "" || v.Audience == "") {
		return Principal{}, fmt.Errorf("%w: no issuer or audience configured for the IdP", ErrInvalid)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.Keys.Methods()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.Leeway),
	}
	if v.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(v.Now))
	}
	if v.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.Issuer))
	}
	if v.Audience != "" {
		opts = append(opts, jwt.WithAudience(v.Audience))
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) { return v.Keys.Key(ctx, t) }, opts...)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %s", ErrInvalid, reason(err))
	}
	if c.Subject == "" {
		return Principal{}, fmt.Errorf("%w: no subject", ErrInvalid)
	}
	var roles []string
	for _, r := range c.Roles {
		if r == RoleReviewer || r == RoleAdmin {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return Principal{}, fmt.Errorf("%w: no role", ErrInvalid)
	}
	return Principal{Subject: c.Subject, Roles: roles, AccountID: c.AccountID, Expires: c.ExpiresAt.Time}, nil
}

// reason names the failure without echoing the token.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing claim"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong issuer or audience"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable"
	}
	return "rejected"
}

// SignHS256 issues a token for the dev stack and tests.
func SignHS256(secret []byte, sub string, roles []string, accountID string, ttl time.Duration, now time.Time) (string, error) {
	c := Claims{
		Roles:     roles,
		AccountID: accountID,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}
