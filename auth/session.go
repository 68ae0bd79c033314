package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
)

// Staff sessions (SPEC §5b). The browser holds a random session id in an
// HttpOnly cookie; the store keeps only its SHA-256 (SessionHash), so a
// copy of the database signs nobody in. The CSRF token is derived from the
// id (CSRFToken): only a page that was given it by GET /auth/session can
// send it, and it dies with the session.

// NewSessionID returns a fresh session id: 256 random bits, base64url.
func NewSessionID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SessionHash is what the store keeps of session id: its hex SHA-256.
func SessionHash(id string) string {
	h := sha256.Sum256([]byte("mfaflow session\x00" + id))
	return hex.EncodeToString(h[:])
}

// CSRFToken is the CSRF token of session id.
func CSRFToken(id string) string {
	h := sha256.Sum256([]byte("mfaflow csrf\x00" + id))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// CheckCSRF reports, in constant time, whether token is the CSRF token of
// session id.
func CheckCSRF(id, token string) bool {
	return id != "" && token != "" && subtle.ConstantTimeCompare([]byte(CSRFToken(id)), []byte(token)) == 1
}

// randomID is 128 random bits, for OIDC state and nonce.
func randomID() string {
	return rand.Text()
}

// Errors of a request made with a staff session cookie. Messages are safe
// to show.
var (
	// ErrSessionEnded is a session cookie whose session expired, was
	// signed out or never existed: the page asks to sign in again.
	ErrSessionEnded = errors.New("auth: the session has ended; sign in again")
	// ErrCSRF is a state-changing request made with the session cookie
	// without the session's CSRF token.
	ErrCSRF = errors.New("auth: CSRF token missing or wrong")
)
