package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestJWKSIssuerAudience: a token signed by the right IdP (RS256 or ES256
// keys from a real JWKS server) passes only with the configured issuer and
// an audience that names mfaflow.
func TestJWKSIssuerAudience(t *testing.T) {
	keys := mustKeys(t)
	p := newIdP(t, rsaJWK("rsa-1", &keys.rsa.PublicKey), ecJWK(t, "ec-1", &keys.ec.PublicKey))
	tests := []struct {
		name    string
		claims  *Claims
		wantErr bool
	}{
		{"issuer and audience", idpClaims(), false},
		{"audience among several", idpClaims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"billing", testAudience} }), false},
		{"wrong audience", idpClaims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"billing"} }), true},
		{"no audience", idpClaims(func(c *Claims) { c.Audience = nil }), true},
		{"audience differs in case", idpClaims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"MFAFLOW"} }), true},
		{"wrong issuer", idpClaims(func(c *Claims) { c.Issuer = "https://idp.example.com/other" }), true},
		{"issuer without its slash", idpClaims(func(c *Claims) { c.Issuer = "https://idp.example.com" }), true},
		{"no issuer", idpClaims(func(c *Claims) { c.Issuer = "" }), true},
	}
	for _, tt := range tests {
		for _, alg := range []struct {
			method jwt.SigningMethod
			key    any
			kid    string
		}{{jwt.SigningMethodRS256, keys.rsa, "rsa-1"}, {jwt.SigningMethodES256, keys.ec, "ec-1"}} {
			t.Run(tt.name+"/"+alg.method.Alg(), func(t *testing.T) {
				v, _ := jwksVerifier(p, time.Minute)
				tok := sign(t, alg.method, alg.key, alg.kid, tt.claims)
				_, err := v.Verify(context.Background(), tok)
				if (err != nil) != tt.wantErr {
					t.Fatalf("Verify() error = %v, wantErr %v", err, tt.wantErr)
				}
				if err != nil && !errors.Is(err, ErrInvalid) {
					t.Errorf("Verify() error = %v, want %v", err, ErrInvalid)
				}
				assertNoLeak(t, err, tok)
			})
		}
	}
}

// TestJWKSVerifierNeedsIssuerAndAudience: a JWKS verifier missing either
// setting refuses every token rather than accepting any application's.
func TestJWKSVerifierNeedsIssuerAndAudience(t *testing.T) {
	keys := mustKeys(t)
	p := newIdP(t, rsaJWK("rsa-1", &keys.rsa.PublicKey))
	tok := sign(t, jwt.SigningMethodRS256, keys.rsa, "rsa-1", idpClaims())
	for _, tt := range []struct{ name, iss, aud string }{{"no issuer", "", testAudience}, {"no audience", testIssuer, ""}, {"neither", "", ""}} {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := jwksVerifier(p, time.Minute)
			v.Issuer, v.Audience = tt.iss, tt.aud
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify() error = %v, want %v", err, ErrInvalid)
			}
		})
	}
}

// TestJWKSFetchDoesNotBlockVerification: while one refresh hangs on a slow
// IdP, tokens whose keys are cached keep verifying at once, and the callers
// that need the refresh share a single fetch.
func TestJWKSFetchDoesNotBlockVerification(t *testing.T) {
	keys := mustKeys(t)
	release := make(chan struct{})
	var requests atomic.Int64
	body := `{"keys":[` + jwkJSON(t, rsaJWK("rsa-1", &keys.rsa.PublicKey)) + `]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) > 1 {
			<-release // every refresh after the first hangs until released
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	j := &JWKS{URL: srv.URL, Client: srv.Client(), MinRefresh: time.Millisecond}
	v := &Verifier{Keys: j, Issuer: testIssuer, Audience: testAudience, Now: func() time.Time { return testNow }}
	good := sign(t, jwt.SigningMethodRS256, keys.rsa, "rsa-1", idpClaims())
	unknown := sign(t, jwt.SigningMethodES256, keys.ec, "ec-unknown", idpClaims())
	ctx := context.Background()
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatalf("first Verify() error = %v", err)
	}
	time.Sleep(5 * time.Millisecond) // past MinRefresh: an unknown kid refreshes

	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { _, _ = v.Verify(ctx, unknown) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for requests.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if requests.Load() < 2 {
		t.Fatal("no refresh started for the unknown kid")
	}

	done := make(chan error, 1)
	go func() { _, err := v.Verify(ctx, good); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Verify() of a cached key during a refresh error = %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Verify() of a cached key waited for the IdP: the refresh holds the lock")
	}

	once.Do(func() { close(release) })
	wg.Wait()
	if got := requests.Load(); got != 2 {
		t.Errorf("IdP was asked %d times, want 2 (one shared refresh)", got)
	}
}

// TestJWKSCallerGivesUp: a caller whose context ends while it waits for
// the refresh gets its context's error; the refresh still completes for
// the others.
func TestJWKSCallerGivesUp(t *testing.T) {
	keys := mustKeys(t)
	release := make(chan struct{})
	body := `{"keys":[` + jwkJSON(t, rsaJWK("rsa-1", &keys.rsa.PublicKey)) + `]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	j := &JWKS{URL: srv.URL, Client: srv.Client()}
	tok := &jwt.Token{Header: map[string]any{"kid": "rsa-1"}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := j.Key(ctx, tok); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Key() error = %v, want %v", err, context.DeadlineExceeded)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		j.mu.Lock()
		n := len(j.keys)
		j.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refresh did not complete after its first caller gave up")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := j.Key(context.Background(), tok); err != nil {
		t.Fatalf("Key() after the refresh error = %v", err)
	}
}

// TestJWKSRemovedKeyExpires: a key the IdP no longer publishes stops
// verifying once the cache's max-age is over (the IdP's Cache-Control, or
// TTL), and cached keys stop verifying MaxStale after that while the IdP
// is unreachable.
func TestJWKSRemovedKeyExpires(t *testing.T) {
	keys := mustKeys(t)
	oldRS := sign(t, jwt.SigningMethodRS256, keys.rsa, "rsa-old", idpClaims())
	oldES := sign(t, jwt.SigningMethodES256, keys.ec, "ec-old", idpClaims())
	newES := sign(t, jwt.SigningMethodES256, keys.ec2, "ec-new", idpClaims())
	ctx := context.Background()

	t.Run("removed key, Cache-Control max-age", func(t *testing.T) {
		p := newIdP(t, rsaJWK("rsa-old", &keys.rsa.PublicKey), ecJWK(t, "ec-old", &keys.ec.PublicKey))
		p.cacheControl("public, max-age=120")
		v, j := jwksVerifier(p, 10*time.Second)
		j.TTL = time.Hour
		for _, tok := range []string{oldRS, oldES} {
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
		}
		p.serve(t, ecJWK(t, "ec-new", &keys.ec2.PublicKey)) // both old keys retired
		age(t, j, 100*time.Second)
		if _, err := v.Verify(ctx, oldRS); err != nil {
			t.Fatalf("Verify() within max-age error = %v, want the cached key", err)
		}
		age(t, j, 30*time.Second) // 130 s: past max-age
		for _, tok := range []string{oldRS, oldES} {
			if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify() of a retired key past max-age error = %v, want %v", err, ErrInvalid)
			}
		}
		if _, err := v.Verify(ctx, newES); err != nil {
			t.Fatalf("Verify() of the new key error = %v", err)
		}
	})

	t.Run("removed key, TTL shorter than max-age", func(t *testing.T) {
		p := newIdP(t, rsaJWK("rsa-old", &keys.rsa.PublicKey))
		p.cacheControl("max-age=86400")
		v, j := jwksVerifier(p, 10*time.Second)
		j.TTL = 5 * time.Minute
		if _, err := v.Verify(ctx, oldRS); err != nil {
			t.Fatalf("Verify() error = %v", err)
		}
		p.serve(t, ecJWK(t, "ec-new", &keys.ec2.PublicKey))
		age(t, j, 6*time.Minute)
		if _, err := v.Verify(ctx, oldRS); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Verify() of a retired key past TTL error = %v, want %v", err, ErrInvalid)
		}
	})

	t.Run("no-cache is held to MinRefresh", func(t *testing.T) {
		p := newIdP(t, rsaJWK("rsa-old", &keys.rsa.PublicKey))
		p.cacheControl("no-cache")
		v, j := jwksVerifier(p, 10*time.Second)
		for range 3 {
			if _, err := v.Verify(ctx, oldRS); err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
		}
		if got := p.count(); got != 1 {
			t.Fatalf("IdP was asked %d times within MinRefresh, want 1", got)
		}
		age(t, j, 11*time.Second)
		if _, err := v.Verify(ctx, oldRS); err != nil {
			t.Fatalf("Verify() error = %v", err)
		}
		if got := p.count(); got != 2 {
			t.Fatalf("IdP was asked %d times after MinRefresh, want 2", got)
		}
	})

	t.Run("IdP down past MaxStale", func(t *testing.T) {
		p := newIdP(t, ecJWK(t, "ec-old", &keys.ec.PublicKey))
		v, j := jwksVerifier(p, time.Minute)
		j.TTL, j.MaxStale = 10*time.Minute, 30*time.Minute
		if _, err := v.Verify(ctx, oldES); err != nil {
			t.Fatalf("Verify() error = %v", err)
		}
		p.serveRaw(http.StatusServiceUnavailable, "down")
		age(t, j, 39*time.Minute) // expired 29 minutes ago: still within MaxStale
		if _, err := v.Verify(ctx, oldES); err != nil {
			t.Fatalf("Verify() within MaxStale during an outage error = %v, want the cached key", err)
		}
		age(t, j, 2*time.Minute) // 41 minutes: past TTL + MaxStale
		if _, err := v.Verify(ctx, oldES); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Verify() past MaxStale error = %v, want %v", err, ErrInvalid)
		}
		p.serve(t, ecJWK(t, "ec-old", &keys.ec.PublicKey))
		age(t, j, 2*time.Minute) // past MinRefresh since the failed attempt
		if _, err := v.Verify(ctx, oldES); err != nil {
			t.Fatalf("Verify() after the IdP recovered error = %v", err)
		}
	})
}

func TestMaxAge(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"public, max-age=300", 300 * time.Second},
		{"Max-Age=60, must-revalidate", time.Minute},
		{`max-age="90"`, 90 * time.Second},
		{"max-age=0", time.Nanosecond},
		{"no-store", time.Nanosecond},
		{"no-cache, max-age=600", time.Nanosecond},
		{"max-age=-1", 0},
		{"max-age=soon", 0},
		{"s-maxage=600", 0},
	}
	for _, tt := range tests {
		if got := maxAge(tt.in); got != tt.want {
			t.Errorf("maxAge(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
