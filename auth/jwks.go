package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWKS fetches verification keys from an IdP's JWKS URL. Keys are cached
// for TTL, or for the shorter max-age of the answer's Cache-Control; an
// unknown kid triggers a refresh, at most once per MinRefresh. The network
// fetch runs without the cache's lock, one at a time: verifications whose
// keys are fresh never wait for it, and those that need it share it.
//
// A key removed from the JWKS stops verifying once the cache that held it
// expires and a refresh succeeds. While the IdP is unreachable, cached keys
// keep verifying for MaxStale past their expiry, then every token is
// refused until the IdP answers again.
type JWKS struct {
	URL        string
	Client     *http.Client  // nil: 5 s timeout
	MinRefresh time.Duration // 0: 30 s
	TTL        time.Duration // 0: 10 min
	MaxStale   time.Duration // 0: 1 h

	mu       sync.Mutex
	keys     map[string]any
	fetched  time.Time     // last successful fetch
	maxAge   time.Duration // the last answer's Cache-Control max-age; 0: none
	failed   time.Time     // last failed fetch; no retry within MinRefresh
	inflight *refresh      // the fetch under way, if any
}

// refresh is one fetch that every caller needing it waits for.
type refresh struct {
	done chan struct{}
	err  error
}

// errKeysExpired means the cached keys outlived MaxStale while the IdP was
// unreachable.
var errKeysExpired = errors.New("auth: jwks keys expired")

// Methods accepts RSA and ECDSA signatures.
func (*JWKS) Methods() []string {
	return []string{"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}
}

func (j *JWKS) settings() (ttl, minRefresh, maxStale time.Duration) {
	ttl, minRefresh, maxStale = j.TTL, j.MinRefresh, j.MaxStale
	if ttl == 0 {
		ttl = 10 * time.Minute
	}
	if minRefresh == 0 {
		minRefresh = 30 * time.Second
	}
	if maxStale == 0 {
		maxStale = time.Hour
	}
	return ttl, minRefresh, maxStale
}

// lookup returns the cached key for kid and whether the cache should be
// refreshed first. Call with j.mu held.
func (j *JWKS) lookup(kid string) (k any, ok, usable, wantRefresh bool) {
	ttl, minRefresh, maxStale := j.settings()
	if j.maxAge > 0 && j.maxAge < ttl {
		ttl = max(j.maxAge, minRefresh)
	}
	age := time.Since(j.fetched)
	k, ok = j.keys[kid]
	usable = ok && age <= ttl+maxStale
	wantRefresh = (age > ttl || (!ok && age > minRefresh)) && time.Since(j.failed) > minRefresh
	return k, ok, usable, wantRefresh
}

// Key returns the key named by the token's kid. It returns an error for an
// unknown kid, for keys past MaxStale, and when the IdP cannot be reached
// and no usable key is cached.
func (j *JWKS) Key(ctx context.Context, t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	j.mu.Lock()
	k, ok, usable, wantRefresh := j.lookup(kid)
	if !wantRefresh {
		j.mu.Unlock()
		return pick(k, ok, usable, nil)
	}
	r := j.inflight
	if r == nil {
		r = &refresh{done: make(chan struct{})}
		j.inflight = r
		go j.refresh(r)
	}
	j.mu.Unlock()

	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	j.mu.Lock()
	k, ok, usable, _ = j.lookup(kid)
	j.mu.Unlock()
	return pick(k, ok, usable, r.err)
}

// pick decides on a looked-up key: a usable key is served (also while the
// IdP is unreachable); else the fetch error, or why the kid is refused.
func pick(k any, ok, usable bool, fetchErr error) (any, error) {
	switch {
	case usable:
		return k, nil
	case ok:
		if fetchErr != nil {
			return nil, fetchErr
		}
		return nil, errKeysExpired
	case fetchErr != nil:
		return nil, fetchErr
	}
	return nil, errors.New("auth: unknown key id")
}

// refresh fetches the JWKS, installs it, and wakes whoever waits for r. It
// runs apart from any one caller's context, so a caller that gives up does
// not fail the others.
func (j *JWKS) refresh(r *refresh) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, maxAge, err := j.fetch(ctx)
	j.mu.Lock()
	if err != nil {
		j.failed = time.Now()
	} else {
		j.keys, j.fetched, j.maxAge = keys, time.Now(), maxAge
	}
	r.err = err
	j.inflight = nil
	j.mu.Unlock()
	close(r.done)
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// fetch reads the JWKS and the max-age of its Cache-Control header.
func (j *JWKS) fetch(ctx context.Context) (map[string]any, time.Duration, error) {
	c := j.Client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.URL, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("auth: jwks request: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, errors.New("auth: jwks unreachable")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("auth: jwks status %d", resp.StatusCode)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, 0, errors.New("auth: jwks malformed")
	}
	keys := make(map[string]any, len(set.Keys))
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		pub, err := k.public()
		if err != nil {
			continue // skip keys we cannot use rather than failing the set
		}
		keys[k.Kid] = pub
	}
	return keys, maxAge(resp.Header.Get("Cache-Control")), nil
}

// maxAge returns the max-age of a Cache-Control header; 0 when absent or
// malformed. no-cache and no-store count as the shortest age (the caller
// raises it to MinRefresh).
func maxAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "no-cache" || d == "no-store" {
			return time.Nanosecond
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
			if err != nil || n < 0 {
				return 0
			}
			if n == 0 {
				return time.Nanosecond
			}
			return time.Duration(min(n, 1<<31)) * time.Second
		}
	}
	return 0
}

func (k jwk) public() (any, error) {
	dec := base64.RawURLEncoding.DecodeString
	switch k.Kty {
	case "RSA":
		n, err1 := dec(k.N)
		e, err2 := dec(k.E)
		if err1 != nil || err2 != nil || len(n) < 256 || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA key")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return nil, errors.New("unsupported curve")
		}
		x, err1 := dec(k.X)
		y, err2 := dec(k.Y)
		if err1 != nil || err2 != nil {
			return nil, errors.New("bad EC key")
		}
		pub := &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
		if !curve.IsOnCurve(pub.X, pub.Y) { //nolint:staticcheck // validation of untrusted input
			return nil, errors.New("EC point not on curve")
		}
		return pub, nil
	}
	return nil, errors.New("unsupported key type")
}
