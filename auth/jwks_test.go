package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// idp is a fake identity provider serving a JWKS document. It counts fetch
// attempts in its client, so attempts count even while the server is down.
type idp struct {
	srv      *httptest.Server
	requests atomic.Int64

	mu     sync.Mutex
	status int
	body   []byte
	cc     string // Cache-Control of the answers
}

// newIdP starts an IdP serving keys and stops it when the test ends.
func newIdP(t *testing.T, keys ...jwk) *idp {
	t.Helper()
	p := &idp{}
	p.serve(t, keys...)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		status, body, cc := p.status, p.body, p.cc
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// serve makes the IdP answer with a JWKS holding keys.
func (p *idp) serve(t *testing.T, keys ...jwk) {
	t.Helper()
	body, err := json.Marshal(map[string][]jwk{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	p.serveRaw(http.StatusOK, string(body))
}

// serveRaw makes the IdP answer with status and body.
func (p *idp) serveRaw(status int, body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status, p.body = status, []byte(body)
}

// cacheControl sets the Cache-Control header of the IdP's answers.
func (p *idp) cacheControl(cc string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cc = cc
}

// jwkJSON encodes one key as a JWKS entry.
func jwkJSON(t *testing.T, k jwk) string {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// count returns how many fetches were attempted through p.client.
func (p *idp) count() int { return int(p.requests.Load()) }

// client returns an HTTP client for the IdP that counts requests.
func (p *idp) client() *http.Client {
	return &http.Client{Transport: countingTransport{p.srv.Client().Transport, &p.requests}}
}

type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

var b64 = base64.RawURLEncoding.EncodeToString

func rsaJWK(kid string, pub *rsa.PublicKey) jwk {
	return jwk{Kty: "RSA", Kid: kid, Use: "sig", N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes())}
}

func ecJWK(t *testing.T, kid string, pub *ecdsa.PublicKey) jwk {
	t.Helper()
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	size := (len(b) - 1) / 2
	crv := map[int]string{32: "P-256", 48: "P-384"}[size]
	return jwk{Kty: "EC", Kid: kid, Crv: crv, X: b64(b[1 : 1+size]), Y: b64(b[1+size:])}
}

// The IdP's issuer and mfaflow's audience in the JWKS tests.
const (
	testIssuer   = "https://idp.example.com/"
	testAudience = "mfaflow"
)

// idpClaims are claims (see claims) issued by the test IdP for mfaflow.
func idpClaims(mods ...func(*Claims)) *Claims {
	return claims(append([]func(*Claims){func(c *Claims) {
		c.Issuer, c.Audience = testIssuer, jwt.ClaimStrings{testAudience}
	}}, mods...)...)
}

// jwksVerifier returns a verifier that reads keys from p.
func jwksVerifier(p *idp, minRefresh time.Duration) (*Verifier, *JWKS) {
	j := &JWKS{URL: p.srv.URL, Client: p.client(), MinRefresh: minRefresh}
	return &Verifier{Keys: j, Issuer: testIssuer, Audience: testAudience, Now: func() time.Time { return testNow }}, j
}

// age makes the JWKS cache, and the last failed fetch, d older.
func age(t *testing.T, j *JWKS, d time.Duration) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.fetched = j.fetched.Add(-d)
	j.failed = j.failed.Add(-d)
}

func TestJWKSVerify(t *testing.T) {
	keys := mustKeys(t)
	rsaPEM, err := x509.MarshalPKIXPublicKey(&keys.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPEM})
	p := newIdP(t,
		rsaJWK("rsa-1", &keys.rsa.PublicKey),
		ecJWK(t, "ec-1", &keys.ec.PublicKey),
		ecJWK(t, "ec-384", &keys.ec384.PublicKey),
	)
	admin := func(c *Claims) { c.Roles = []string{RoleAdmin}; c.Subject = "adm-7" }
	tests := []struct {
		name    string
		token   func(t *testing.T) string
		want    Principal
		wantErr bool
		reason  string
	}{
		{
			name:  "RS256",
			token: func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, keys.rsa, "rsa-1", idpClaims()) },
			want:  Principal{Subject: "rev-1", Roles: []string{RoleReviewer}, AccountID: "acct-42", Expires: testNow.Add(time.Hour)},
		},
		{
			name:  "RS512",
			token: func(t *testing.T) string { return sign(t, jwt.SigningMethodRS512, keys.rsa, "rsa-1", idpClaims()) },
			want:  Principal{Subject: "rev-1", Roles: []string{RoleReviewer}, AccountID: "acct-42", Expires: testNow.Add(time.Hour)},
		},
		{
			name:  "PS256",
			token: func(t *testing.T) string { return sign(t, jwt.SigningMethodPS256, keys.rsa, "rsa-1", idpClaims()) },
			want:  Principal{Subject: "rev-1", Roles: []string{RoleReviewer}, AccountID: "acct-42", Expires: testNow.Add(time.Hour)},
		},
		{
			name:  "ES256",
			token: func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, keys.ec, "ec-1", idpClaims(admin)) },
			want:  Principal{Subject: "adm-7", Roles: []string{RoleAdmin}, AccountID: "acct-42", Expires: testNow.Add(time.Hour)},
		},
		{
			name:  "ES384",
			token: func(t *testing.T) string { return sign(t, jwt.SigningMethodES384, keys.ec384, "ec-384", idpClaims()) },
			want:  Principal{Subject: "rev-1", Roles: []string{RoleReviewer}, AccountID: "acct-42", Expires: testNow.Add(time.Hour)},
		},
		{
			name:    "unknown kid",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, keys.rsa, "rsa-9", idpClaims()) },
			wantErr: true,
			reason:  "unverifiable",
		},
		{
			name:    "no kid",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, keys.rsa, "", idpClaims()) },
			wantErr: true,
		},
		{
			name:    "RS256 signed by another key",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, keys.rsa2, "rsa-1", idpClaims()) },
			wantErr: true,
			reason:  "bad signature",
		},
		{
			name:    "ES256 signed by another key",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, keys.ec2, "ec-1", idpClaims()) },
			wantErr: true,
			reason:  "bad signature",
		},
		{
			name:    "ES256 token naming the RSA kid",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, keys.ec, "rsa-1", idpClaims()) },
			wantErr: true,
		},
		{
			name:    "ES256 token naming the P-384 kid",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, keys.ec, "ec-384", idpClaims()) },
			wantErr: true,
		},
		{
			name:    "alg confusion: HS256 with the RSA public key PEM as secret",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, rsaPEM, "rsa-1", idpClaims()) },
			wantErr: true,
		},
		{
			name: "alg confusion: HS256 with the RSA modulus as secret",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, keys.rsa.PublicKey.N.Bytes(), "rsa-1", idpClaims())
			},
			wantErr: true,
		},
		{
			name: "alg none",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", idpClaims())
			},
			wantErr: true,
		},
		{
			name: "expired",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodES256, keys.ec, "ec-1", idpClaims(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Minute)) }))
			},
			wantErr: true,
			reason:  "expired",
		},
		{
			name: "only unknown roles",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodRS256, keys.rsa, "rsa-1", idpClaims(func(c *Claims) { c.Roles = []string{"auditor"} }))
			},
			wantErr: true,
			reason:  "no role",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := jwksVerifier(p, time.Nanosecond)
			token := tt.token(t)
			got, err := v.Verify(context.Background(), token)
			assertNoLeak(t, err, token)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Verify() error = %v, want %v", err, ErrInvalid)
				}
				if !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("Verify() error = %q, want it to contain %q", err, tt.reason)
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

func TestJWKSKeyErrors(t *testing.T) {
	keys := mustKeys(t)
	tests := []struct {
		name    string
		kid     string
		wantErr string
	}{
		{"unknown kid", "nope", "auth: unknown key id"},
		{"empty kid", "", "auth: unknown key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newIdP(t, rsaJWK("rsa-1", &keys.rsa.PublicKey))
			j := &JWKS{URL: p.srv.URL, Client: p.client()}
			_, err := j.Key(context.Background(), &jwt.Token{Header: map[string]any{"kid": tt.kid}})
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Key() error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestJWKSRotation(t *testing.T) {
	keys := mustKeys(t)
	oldTok := sign(t, jwt.SigningMethodRS256, keys.rsa, "old", idpClaims())
	newTok := sign(t, jwt.SigningMethodES256, keys.ec, "new", idpClaims())

	p := newIdP(t, rsaJWK("old", &keys.rsa.PublicKey))
	v, j := jwksVerifier(p, time.Hour)
	ctx := context.Background()

	steps := []struct {
		name      string
		before    func(t *testing.T)
		token     string
		wantErr   bool
		wantFetch int // requests the IdP has seen after the step
	}{
		{name: "first use fetches", token: oldTok, wantFetch: 1},
		{name: "cached key is reused", token: oldTok, wantFetch: 1},
		{name: "new kid before rotation: throttled", token: newTok, wantErr: true, wantFetch: 1},
		{
			name:      "IdP rotates: new kid still throttled",
			before:    func(t *testing.T) { p.serve(t, ecJWK(t, "new", &keys.ec.PublicKey)) },
			token:     newTok,
			wantErr:   true,
			wantFetch: 1,
		},
		{name: "old key still cached", token: oldTok, wantFetch: 1},
		{name: "repeated unknown kid does not fetch", token: newTok, wantErr: true, wantFetch: 1},
		{
			name:      "after MinRefresh the new kid refreshes",
			before:    func(t *testing.T) { age(t, j, time.Hour+time.Second) },
			token:     newTok,
			wantFetch: 2,
		},
		{name: "new key cached", token: newTok, wantFetch: 2},
		{name: "retired kid is gone and throttled", token: oldTok, wantErr: true, wantFetch: 2},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before(t)
		}
		_, err := v.Verify(ctx, s.token)
		assertNoLeak(t, err, s.token)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: Verify() error = %v, wantErr %v", s.name, err, s.wantErr)
		}
		if got := p.count(); got != s.wantFetch {
			t.Fatalf("%s: IdP was asked %d requests, want %d", s.name, got, s.wantFetch)
		}
	}
}

func TestJWKSRefreshTiming(t *testing.T) {
	keys := mustKeys(t)
	tests := []struct {
		name       string
		minRefresh time.Duration
		ttl        time.Duration
		kid        string // kid in the token; "a" is served
		age        time.Duration
		wantFetch  int
	}{
		{"unknown kid within default MinRefresh", 0, 0, "b", 10 * time.Second, 1},
		{"unknown kid after default MinRefresh", 0, 0, "b", 31 * time.Second, 2},
		{"unknown kid within MinRefresh", time.Minute, 0, "b", 59 * time.Second, 1},
		{"unknown kid after MinRefresh", time.Minute, 0, "b", 61 * time.Second, 2},
		{"known kid within default TTL", 0, 0, "a", 9 * time.Minute, 1},
		{"known kid after default TTL", 0, 0, "a", 11 * time.Minute, 2},
		{"known kid within TTL", 0, time.Hour, "a", 59 * time.Minute, 1},
		{"known kid after TTL", 0, time.Hour, "a", 61 * time.Minute, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newIdP(t, rsaJWK("a", &keys.rsa.PublicKey))
			j := &JWKS{URL: p.srv.URL, Client: p.client(), MinRefresh: tt.minRefresh, TTL: tt.ttl}
			ctx := context.Background()
			if _, err := j.Key(ctx, &jwt.Token{Header: map[string]any{"kid": "a"}}); err != nil {
				t.Fatalf("first Key() error = %v", err)
			}
			age(t, j, tt.age)
			_, _ = j.Key(ctx, &jwt.Token{Header: map[string]any{"kid": tt.kid}})
			if got := p.count(); got != tt.wantFetch {
				t.Errorf("IdP was asked %d requests, want %d", got, tt.wantFetch)
			}
		})
	}
}

func TestJWKSIdPDown(t *testing.T) {
	keys := mustKeys(t)
	good := sign(t, jwt.SigningMethodES256, keys.ec, "ec-1", idpClaims())
	unknown := sign(t, jwt.SigningMethodES256, keys.ec2, "ec-2", idpClaims())
	tests := []struct {
		name string
		down func(p *idp)
	}{
		{"server error", func(p *idp) { p.serveRaw(http.StatusServiceUnavailable, "down") }},
		{"not found", func(p *idp) { p.serveRaw(http.StatusNotFound, "") }},
		{"malformed body", func(p *idp) { p.serveRaw(http.StatusOK, "<html>maintenance</html>") }},
		{"connection refused", func(p *idp) { p.srv.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newIdP(t, ecJWK(t, "ec-1", &keys.ec.PublicKey))
			v, j := jwksVerifier(p, time.Minute)
			j.TTL = 5 * time.Minute
			ctx := context.Background()
			if _, err := v.Verify(ctx, good); err != nil {
				t.Fatalf("Verify() before outage error = %v", err)
			}
			tt.down(p)

			age(t, j, 6*time.Minute) // the cache is stale
			for i := range 3 {
				if _, err := v.Verify(ctx, good); err != nil {
					t.Fatalf("Verify() #%d during outage error = %v, want the cached key", i, err)
				}
			}
			if _, err := v.Verify(ctx, unknown); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify() of unknown kid during outage error = %v, want %v", err, ErrInvalid)
			}
			before := p.count()
			if before > 2 {
				t.Errorf("IdP was asked %d requests, want at most 2 (one refresh attempt per MinRefresh)", before)
			}

			age(t, j, 2*time.Minute) // past MinRefresh: one more attempt
			for range 3 {
				if _, err := v.Verify(ctx, good); err != nil {
					t.Fatalf("Verify() during outage error = %v, want the cached key", err)
				}
				_, _ = v.Verify(ctx, unknown)
			}
			if got := p.count(); got > before+1 {
				t.Errorf("IdP was asked %d requests after MinRefresh, want at most %d", got, before+1)
			}
		})
	}
}

func TestJWKSRecoversAfterOutage(t *testing.T) {
	keys := mustKeys(t)
	tok := sign(t, jwt.SigningMethodRS256, keys.rsa, "rsa-1", idpClaims())
	p := newIdP(t)
	p.serveRaw(http.StatusBadGateway, "")
	v, j := jwksVerifier(p, time.Minute)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Verify() with IdP down error = %v, want %v", err, ErrInvalid)
	}
	p.serve(t, rsaJWK("rsa-1", &keys.rsa.PublicKey))
	age(t, j, 2*time.Minute)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("Verify() after the IdP recovered error = %v", err)
	}
}

func TestJWKSBadDocuments(t *testing.T) {
	keys := mustKeys(t)
	tok := sign(t, jwt.SigningMethodES256, keys.ec, "k", idpClaims())
	rsaTok := sign(t, jwt.SigningMethodRS256, keys.rsa, "k", idpClaims())

	ec := ecJWK(t, "k", &keys.ec.PublicKey)
	offCurve := ec
	y, _ := base64.RawURLEncoding.DecodeString(ec.Y)
	y[len(y)-1] ^= 1
	offCurve.Y = b64(y)
	swapped := ec
	swapped.X, swapped.Y = ec.Y, ec.X

	ecDoc := func(k jwk) string {
		b, err := json.Marshal(map[string][]jwk{"keys": {k}})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	withEC := func(f func(k *jwk)) string { k := ec; f(&k); return ecDoc(k) }
	withRSA := func(f func(k *jwk)) string { k := rsaJWK("k", &keys.rsa.PublicKey); f(&k); return ecDoc(k) }

	tests := []struct {
		name   string
		status int
		body   string
		token  string
		wantOK bool
		errMsg string // the key source's error, checked through Key
	}{
		{name: "control: good EC key", body: ecDoc(ec), token: tok, wantOK: true},
		{name: "control: good RSA key", body: withRSA(func(*jwk) {}), token: rsaTok, wantOK: true},
		{name: "malformed JSON", body: `{"keys": [`, token: tok, errMsg: "auth: jwks malformed"},
		{name: "not JSON", body: "hello", token: tok, errMsg: "auth: jwks malformed"},
		{name: "keys is not a list", body: `{"keys": {"kid": "k"}}`, token: tok, errMsg: "auth: jwks malformed"},
		{name: "status 500", status: http.StatusInternalServerError, body: ecDoc(ec), token: tok, errMsg: "auth: jwks status 500"},
		{name: "empty set", body: `{"keys": []}`, token: tok, errMsg: "auth: unknown key id"},
		{name: "point not on curve", body: ecDoc(offCurve), token: tok, errMsg: "auth: unknown key id"},
		{name: "coordinates swapped", body: ecDoc(swapped), token: tok, errMsg: "auth: unknown key id"},
		{name: "unsupported curve", body: withEC(func(k *jwk) { k.Crv = "P-521" }), token: tok, errMsg: "auth: unknown key id"},
		{name: "EC x not base64url", body: withEC(func(k *jwk) { k.X = "!!" }), token: tok, errMsg: "auth: unknown key id"},
		{name: "encryption key", body: withEC(func(k *jwk) { k.Use = "enc" }), token: tok, errMsg: "auth: unknown key id"},
		{name: "unsupported kty", body: withEC(func(k *jwk) { k.Kty = "OKP" }), token: tok, errMsg: "auth: unknown key id"},
		{name: "RSA modulus too short", body: withRSA(func(k *jwk) { k.N = b64(keys.rsa.N.Bytes()[:128]) }), token: rsaTok, errMsg: "auth: unknown key id"},
		{name: "RSA exponent missing", body: withRSA(func(k *jwk) { k.E = "" }), token: rsaTok, errMsg: "auth: unknown key id"},
		{name: "RSA exponent too long", body: withRSA(func(k *jwk) { k.E = b64([]byte{1, 0, 0, 0, 1}) }), token: rsaTok, errMsg: "auth: unknown key id"},
		{
			name:   "one bad key does not spoil the set",
			body:   `{"keys": [{"kty": "EC", "kid": "bad", "crv": "P-256", "x": "AA", "y": "AA"}, ` + strings.TrimPrefix(ecDoc(ec), `{"keys":[`),
			token:  tok,
			wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newIdP(t)
			status := tt.status
			if status == 0 {
				status = http.StatusOK
			}
			p.serveRaw(status, tt.body)
			v, j := jwksVerifier(p, time.Nanosecond)
			_, err := v.Verify(context.Background(), tt.token)
			assertNoLeak(t, err, tt.token)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("Verify() error = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify() error = %v, want %v", err, ErrInvalid)
			}
			parsed, _, perr := jwt.NewParser().ParseUnverified(tt.token, &Claims{})
			if perr != nil {
				t.Fatal(perr)
			}
			age(t, j, time.Second)
			if _, err := j.Key(context.Background(), parsed); err == nil || err.Error() != tt.errMsg {
				t.Errorf("Key() error = %v, want %q", err, tt.errMsg)
			}
		})
	}
}

func TestJWKPublic(t *testing.T) {
	keys := mustKeys(t)
	ec := ecJWK(t, "k", &keys.ec.PublicKey)
	offCurve := ec
	offCurve.Y = ec.X
	tests := []struct {
		name    string
		key     jwk
		wantErr string
	}{
		{"RSA", rsaJWK("k", &keys.rsa.PublicKey), ""},
		{"P-256", ec, ""},
		{"P-384", ecJWK(t, "k", &keys.ec384.PublicKey), ""},
		{"point not on curve", offCurve, "EC point not on curve"},
		{"zero point", jwk{Kty: "EC", Crv: "P-256", X: "AA", Y: "AA"}, "EC point not on curve"},
		{"unsupported curve", jwk{Kty: "EC", Crv: "secp256k1", X: ec.X, Y: ec.Y}, "unsupported curve"},
		{"bad EC encoding", jwk{Kty: "EC", Crv: "P-256", X: "a+b/", Y: ec.Y}, "bad EC key"},
		{"short RSA modulus", jwk{Kty: "RSA", N: b64(make([]byte, 255)), E: "AQAB"}, "bad RSA key"},
		{"bad RSA encoding", jwk{Kty: "RSA", N: "a+b/", E: "AQAB"}, "bad RSA key"},
		{"unknown type", jwk{Kty: "oct"}, "unsupported key type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := tt.key.public()
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("public() = %v, %v; want error %q", pub, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("public() error = %v", err)
			}
			switch want := tt.key.Kty; want {
			case "RSA":
				if got, ok := pub.(*rsa.PublicKey); !ok || !got.Equal(&keys.rsa.PublicKey) {
					t.Errorf("public() = %T, want the RSA test key", pub)
				}
			case "EC":
				if _, ok := pub.(*ecdsa.PublicKey); !ok {
					t.Errorf("public() = %T, want *ecdsa.PublicKey", pub)
				}
			}
		})
	}
}

func TestJWKSConcurrent(t *testing.T) {
	keys := mustKeys(t)
	p := newIdP(t, rsaJWK("rsa-1", &keys.rsa.PublicKey), ecJWK(t, "ec-1", &keys.ec.PublicKey))
	v, _ := jwksVerifier(p, time.Hour)
	toks := []string{
		sign(t, jwt.SigningMethodRS256, keys.rsa, "rsa-1", idpClaims()),
		sign(t, jwt.SigningMethodES256, keys.ec, "ec-1", idpClaims()),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), toks[i%2]); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Verify() error = %v", err)
	}
	if got := p.count(); got != 1 {
		t.Errorf("IdP was asked %d requests, want 1", got)
	}
}
