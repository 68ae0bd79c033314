package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the verifier's clock in every test.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef")
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
)

// testKeys holds asymmetric keys generated once for the package's tests.
type testKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec, ec2   *ecdsa.PrivateKey
	ec384     *ecdsa.PrivateKey
}

var loadKeys = sync.OnceValues(func() (testKeys, error) {
	var k testKeys
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return k, err
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return k, err
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return k, err
	}
	if k.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return k, err
	}
	if k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return k, err
	}
	return k, nil
})

// mustKeys returns the shared test keys.
func mustKeys(t *testing.T) testKeys {
	t.Helper()
	k, err := loadKeys()
	if err != nil {
		t.Fatalf("generate keys: %v", err)
	}
	return k
}

// claims returns valid claims for a reviewer at testNow, changed by mods.
func claims(mods ...func(*Claims)) *Claims {
	c := &Claims{
		Roles:     []string{RoleReviewer},
		AccountID: "acct-42",
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   "rev-1",
			IssuedAt:  jwt.NewNumericDate(testNow.Add(-time.Minute)),
			NotBefore: jwt.NewNumericDate(testNow.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Hour)),
		},
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

// sign signs c with method and key, setting the kid header when kid is not empty.
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// assertNoLeak fails if err's message contains token or any of its parts.
func assertNoLeak(t *testing.T, err error, token string) {
	t.Helper()
	if err == nil || token == "" {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, token) {
		t.Fatalf("error %q contains the token", msg)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Fatalf("error %q contains part %q of the token", msg, part)
		}
	}
}

func TestConsoleKeys(t *testing.T) {
	const (
		k1 = "console-key-one-0123456789"
		k2 = "console-key-two-0123456789"
		k3 = "console-key-three-0123456"
	)
	tests := []struct {
		name string
		keys []string
		key  string
		want bool
	}{
		{"right key", []string{k1}, k1, true},
		{"wrong key", []string{k1}, k2, false},
		{"empty key", []string{k1}, "", false},
		{"prefix of key", []string{k1}, k1[:len(k1)-1], false},
		{"key with suffix", []string{k1}, k1 + "x", false},
		{"different case", []string{k1}, strings.ToUpper(k1), false},
		{"first of several", []string{k1, k2, k3}, k1, true},
		{"middle of several", []string{k1, k2, k3}, k2, true},
		{"last of several", []string{k1, k2, k3}, k3, true},
		{"none of several", []string{k1, k2, k3}, "console-key-four-01234567", false},
		{"no keys configured", nil, k1, false},
		{"no keys configured, empty key", nil, "", false},
		{"empty key configured, empty key given", []string{"", k1}, "", false},
		{"duplicate keys", []string{k1, k1}, k1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConsoleKeys(tt.keys)
			if got := c.Check(tt.key); got != tt.want {
				t.Errorf("Check(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}

func TestConsoleKeysKeepOnlyDigests(t *testing.T) {
	const key = "console-key-one-0123456789"
	c := NewConsoleKeys([]string{key})
	for _, d := range c.digests {
		if strings.Contains(string(d[:]), key) {
			t.Fatal("ConsoleKeys keeps the key itself")
		}
	}
}

func TestVerifyHS256(t *testing.T) {
	keys := mustKeys(t)
	hs := func(c jwt.Claims) func(*testing.T) string {
		return func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, testSecret, "", c) }
	}
	tests := []struct {
		name     string
		token    func(t *testing.T) string
		verifier func(v *Verifier)
		want     Principal
		wantErr  error
		reason   string // a substring of the error message
	}{
		{
			name:  "valid reviewer",
			token: hs(claims()),
			want:  Principal{Subject: "rev-1", Roles: []string{RoleReviewer}, AccountID: "acct-42", Expires: testNow.Add(time.Hour)},
		},
		{
			name:  "valid admin without account",
			token: hs(claims(func(c *Claims) { c.Roles = []string{RoleAdmin}; c.AccountID = "" })),
			want:  Principal{Subject: "rev-1", Roles: []string{RoleAdmin}, Expires: testNow.Add(time.Hour)},
		},
		{
			name:  "unknown roles dropped",
			token: hs(claims(func(c *Claims) { c.Roles = []string{"auditor", RoleReviewer, "Admin", RoleAdmin} })),
			want:  Principal{Subject: "rev-1", Roles: []string{RoleReviewer, RoleAdmin}, AccountID: "acct-42", Expires: testNow.Add(time.Hour)},
		},
		{
			name:  "no nbf and no iat",
			token: hs(claims(func(c *Claims) { c.NotBefore = nil; c.IssuedAt = nil })),
			want:  Principal{Subject: "rev-1", Roles: []string{RoleReviewer}, AccountID: "acct-42", Expires: testNow.Add(time.Hour)},
		},
		{
			name:    "expired",
			token:   hs(claims(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Second)) })),
			wantErr: ErrInvalid,
			reason:  "expired",
		},
		{
			name:    "expires now",
			token:   hs(claims(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow) })),
			wantErr: ErrInvalid,
			reason:  "expired",
		},
		{
			name:     "expired within leeway",
			token:    hs(claims(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-30 * time.Second)) })),
			verifier: func(v *Verifier) { v.Leeway = time.Minute },
			want:     Principal{Subject: "rev-1", Roles: []string{RoleReviewer}, AccountID: "acct-42", Expires: testNow.Add(-30 * time.Second)},
		},
		{
			name:     "expired beyond leeway",
			token:    hs(claims(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-2 * time.Minute)) })),
			verifier: func(v *Verifier) { v.Leeway = time.Minute },
			wantErr:  ErrInvalid,
			reason:   "expired",
		},
		{
			name:    "nbf in the future",
			token:   hs(claims(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(testNow.Add(time.Minute)) })),
			wantErr: ErrInvalid,
			reason:  "not valid yet",
		},
		{
			name:    "iat in the future",
			token:   hs(claims(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Minute)) })),
			wantErr: ErrInvalid,
			reason:  "not valid yet",
		},
		{
			name:     "iat in the future within leeway",
			token:    hs(claims(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(testNow.Add(30 * time.Second)) })),
			verifier: func(v *Verifier) { v.Leeway = time.Minute },
			want:     Principal{Subject: "rev-1", Roles: []string{RoleReviewer}, AccountID: "acct-42", Expires: testNow.Add(time.Hour)},
		},
		{
			name:    "missing exp",
			token:   hs(claims(func(c *Claims) { c.ExpiresAt = nil })),
			wantErr: ErrInvalid,
			reason:  "missing claim",
		},
		{
			name:    "bad signature (other secret)",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, otherSecret, "", claims()) },
			wantErr: ErrInvalid,
			reason:  "bad signature",
		},
		{
			name: "tampered payload",
			token: func(t *testing.T) string {
				tok := sign(t, jwt.SigningMethodHS256, testSecret, "", claims())
				parts := strings.Split(tok, ".")
				payload, err := json.Marshal(claims(func(c *Claims) { c.Roles = []string{RoleAdmin} }))
				if err != nil {
					t.Fatal(err)
				}
				parts[1] = base64.RawURLEncoding.EncodeToString(payload)
				return strings.Join(parts, ".")
			},
			wantErr: ErrInvalid,
			reason:  "bad signature",
		},
		{
			name: "signature stripped",
			token: func(t *testing.T) string {
				tok := sign(t, jwt.SigningMethodHS256, testSecret, "", claims())
				return tok[:strings.LastIndex(tok, ".")+1]
			},
			wantErr: ErrInvalid,
		},
		{
			name: "alg none",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims())
			},
			wantErr: ErrInvalid,
		},
		{
			name: "alg none, hand-made",
			token: func(t *testing.T) string {
				payload, err := json.Marshal(claims())
				if err != nil {
					t.Fatal(err)
				}
				enc := base64.RawURLEncoding.EncodeToString
				return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
			},
			wantErr: ErrInvalid,
		},
		{
			name:    "HS384 with the right secret",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodHS384, testSecret, "", claims()) },
			wantErr: ErrInvalid,
		},
		{
			name:    "alg confusion: RS256 token",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, keys.rsa, "", claims()) },
			wantErr: ErrInvalid,
		},
		{
			name:    "alg confusion: ES256 token",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, keys.ec, "", claims()) },
			wantErr: ErrInvalid,
		},
		{
			name:    "no sub",
			token:   hs(claims(func(c *Claims) { c.Subject = "" })),
			wantErr: ErrInvalid,
			reason:  "no subject",
		},
		{
			name:    "only unknown roles",
			token:   hs(claims(func(c *Claims) { c.Roles = []string{"auditor", "Reviewer", "root"} })),
			wantErr: ErrInvalid,
			reason:  "no role",
		},
		{
			name:    "no roles",
			token:   hs(claims(func(c *Claims) { c.Roles = nil })),
			wantErr: ErrInvalid,
			reason:  "no role",
		},
		{
			name:    "roles is a string",
			token:   hs(jwt.MapClaims{"sub": "rev-1", "roles": RoleAdmin, "exp": testNow.Add(time.Hour).Unix()}),
			wantErr: ErrInvalid,
		},
		{
			name:    "empty token",
			token:   func(*testing.T) string { return "" },
			wantErr: ErrNoCredentials,
		},
		{
			name:    "garbage",
			token:   func(*testing.T) string { return "not-a-jwt-at-all" },
			wantErr: ErrInvalid,
			reason:  "malformed",
		},
		{
			name:     "issuer matches",
			token:    hs(claims(func(c *Claims) { c.Issuer = "https://idp.example" })),
			verifier: func(v *Verifier) { v.Issuer = "https://idp.example" },
			want:     Principal{Subject: "rev-1", Roles: []string{RoleReviewer}, AccountID: "acct-42", Expires: testNow.Add(time.Hour)},
		},
		{
			name:     "wrong issuer",
			token:    hs(claims(func(c *Claims) { c.Issuer = "https://evil.example" })),
			verifier: func(v *Verifier) { v.Issuer = "https://idp.example" },
			wantErr:  ErrInvalid,
			reason:   "wrong issuer or audience",
		},
		{
			name:     "missing issuer",
			token:    hs(claims()),
			verifier: func(v *Verifier) { v.Issuer = "https://idp.example" },
			wantErr:  ErrInvalid,
		},
		{
			name:     "audience matches",
			token:    hs(claims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other", "mfaflow"} })),
			verifier: func(v *Verifier) { v.Audience = "mfaflow" },
			want:     Principal{Subject: "rev-1", Roles: []string{RoleReviewer}, AccountID: "acct-42", Expires: testNow.Add(time.Hour)},
		},
		{
			name:     "wrong audience",
			token:    hs(claims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other"} })),
			verifier: func(v *Verifier) { v.Audience = "mfaflow" },
			wantErr:  ErrInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Verifier{Keys: HS256(testSecret), Now: func() time.Time { return testNow }}
			if tt.verifier != nil {
				tt.verifier(v)
			}
			token := tt.token(t)
			got, err := v.Verify(context.Background(), token)
			assertNoLeak(t, err, token)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify() error = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("Verify() error = %q, want it to contain %q", err, tt.reason)
				}
				if got.Subject != "" || got.Roles != nil {
					t.Errorf("Verify() returned principal %+v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			assertPrincipal(t, got, tt.want)
		})
	}
}

// assertPrincipal compares two principals field by field.
func assertPrincipal(t *testing.T, got, want Principal) {
	t.Helper()
	if got.Subject != want.Subject || got.AccountID != want.AccountID ||
		!slices.Equal(got.Roles, want.Roles) || !got.Expires.Equal(want.Expires) {
		t.Errorf("principal = %+v, want %+v", got, want)
	}
}

func TestVerifyDefaultClock(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		ttl     time.Duration
		wantErr bool
	}{
		{"fresh", time.Hour, false},
		{"expired", -time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := SignHS256(testSecret, "rev-1", []string{RoleReviewer}, "", tt.ttl, now)
			if err != nil {
				t.Fatal(err)
			}
			v := &Verifier{Keys: HS256(testSecret)}
			_, err = v.Verify(context.Background(), tok)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Verify() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestSignHS256RoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		sub       string
		roles     []string
		accountID string
		ttl       time.Duration
		wantErr   error
	}{
		{"reviewer", "rev-1", []string{RoleReviewer}, "acct-1", 10 * time.Minute, nil},
		{"admin and reviewer", "adm-1", []string{RoleAdmin, RoleReviewer}, "", time.Hour, nil},
		{"expired", "rev-1", []string{RoleReviewer}, "", -time.Minute, ErrInvalid},
		{"no role", "rev-1", nil, "", time.Hour, ErrInvalid},
		{"no subject", "", []string{RoleAdmin}, "", time.Hour, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := SignHS256(testSecret, tt.sub, tt.roles, tt.accountID, tt.ttl, testNow)
			if err != nil {
				t.Fatalf("SignHS256() error = %v", err)
			}
			v := &Verifier{Keys: HS256(testSecret), Now: func() time.Time { return testNow }}
			got, err := v.Verify(context.Background(), tok)
			assertNoLeak(t, err, tok)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify() error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			assertPrincipal(t, got, Principal{Subject: tt.sub, Roles: tt.roles, AccountID: tt.accountID, Expires: testNow.Add(tt.ttl)})
		})
	}
}

func TestPrincipalHas(t *testing.T) {
	tests := []struct {
		name  string
		roles []string
		role  string
		want  bool
	}{
		{"reviewer has reviewer", []string{RoleReviewer}, RoleReviewer, true},
		{"reviewer lacks admin", []string{RoleReviewer}, RoleAdmin, false},
		{"admin has admin", []string{RoleAdmin}, RoleAdmin, true},
		{"admin has reviewer", []string{RoleAdmin}, RoleReviewer, true},
		{"admin has any role", []string{RoleAdmin}, "auditor", true},
		{"both roles", []string{RoleReviewer, RoleAdmin}, RoleReviewer, true},
		{"no roles", nil, RoleReviewer, false},
		{"no roles, empty role", nil, "", false},
		{"reviewer lacks other role", []string{RoleReviewer}, "auditor", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Principal{Subject: "rev-1", Roles: tt.roles}
			if got := p.Has(tt.role); got != tt.want {
				t.Errorf("Principal{Roles: %v}.Has(%q) = %v, want %v", tt.roles, tt.role, got, tt.want)
			}
		})
	}
}
