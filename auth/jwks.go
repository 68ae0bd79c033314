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
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWKS fetches verification keys from an IdP's JWKS URL. Keys are cached;
// an unknown kid triggers a refresh, at most once per MinRefresh.
type JWKS struct {
	URL        string
	Client     *http.Client  // nil: 5 s timeout
	MinRefresh time.Duration // 0: 30 s
	TTL        time.Duration // 0: 10 min

	mu      sync.Mutex
	keys    map[string]any
	fetched time.Time // last successful fetch
	failed  time.Time // last failed fetch; no retry within MinRefresh
}

// Methods accepts RSA and ECDSA signatures.
func (*JWKS) Methods() []string {
	return []string{"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}
}

// Key returns the key named by the token's kid.
func (j *JWKS) Key(ctx context.Context, t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	j.mu.Lock()
	defer j.mu.Unlock()
	ttl, minRefresh := j.TTL, j.MinRefresh
	if ttl == 0 {
		ttl = 10 * time.Minute
	}
	if minRefresh == 0 {
		minRefresh = 30 * time.Second
	}
	k, ok := j.keys[kid]
	stale := time.Since(j.fetched) > ttl
	if ((!ok && time.Since(j.fetched) > minRefresh) || stale) && time.Since(j.failed) > minRefresh {
		keys, err := j.fetch(ctx)
		if err != nil {
			j.failed = time.Now()
			if ok {
				return k, nil // serve the cached key while the IdP is unreachable
			}
			return nil, err
		}
		j.keys, j.fetched = keys, time.Now()
		k, ok = keys[kid]
	}
	if !ok {
		return nil, errors.New("auth: unknown key id")
	}
	return k, nil
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

func (j *JWKS) fetch(ctx context.Context) (map[string]any, error) {
	c := j.Client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: jwks request: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, errors.New("auth: jwks unreachable")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: jwks status %d", resp.StatusCode)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, errors.New("auth: jwks malformed")
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
	return keys, nil
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
