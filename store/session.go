package store

import (
	"context"
	"time"
)

// StaffSession is a reviewer's or admin's signed-in browser session,
// created after the company IdP's sign-in (SPEC §5b). Only the SHA-256 of
// the session id is stored: the id itself lives in the browser's cookie.
type StaffSession struct {
	IDHash    string    `json:"-"` // hex SHA-256 of the session id
	Subject   string    `json:"subject"`
	Name      string    `json:"name,omitempty"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SessionStore keeps staff sessions where every API replica sees them, so
// a sign-out on one ends the session on all.
type SessionStore interface {
	// CreateSession stores s (CreatedAt is set to now when zero). It
	// returns ErrConflict when s.IDHash exists.
	CreateSession(ctx context.Context, s StaffSession) error
	// GetSession returns the session whose id hashes to idHash if it has
	// not expired at now, else ErrNotFound.
	GetSession(ctx context.Context, idHash string, now time.Time) (StaffSession, error)
	// DeleteSession ends the session (sign-out). Ending an unknown or
	// ended session is no error.
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteExpiredSessions removes sessions that expired before cutoff
	// and returns how many.
	DeleteExpiredSessions(ctx context.Context, cutoff time.Time) (int, error)
}
