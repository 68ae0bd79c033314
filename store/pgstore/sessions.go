package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

// CreateSession stores s. It returns store.ErrConflict when s.IDHash exists.
func (db *DB) CreateSession(ctx context.Context, s store.StaffSession) error {
	if s.IDHash == "" || s.Subject == "" || s.ExpiresAt.IsZero() {
		return errors.New("pgstore: create session: id hash, subject and expiry are required")
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = dbutil.Now()
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO staff_sessions (id_hash, subject, name, roles, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		s.IDHash, s.Subject, s.Name, strings.Join(s.Roles, ","), dbutil.Time(s.CreatedAt), dbutil.Time(s.ExpiresAt))
	if err != nil {
		return fmt.Errorf("pgstore: create session: %w", classify(err))
	}
	return nil
}

// GetSession returns the session if it has not expired at now, else
// store.ErrNotFound.
func (db *DB) GetSession(ctx context.Context, idHash string, now time.Time) (store.StaffSession, error) {
	var s store.StaffSession
	var roles string
	err := db.pool.QueryRow(ctx, `SELECT id_hash, subject, name, roles, created_at, expires_at FROM staff_sessions
		WHERE id_hash = $1 AND expires_at > $2`, idHash, dbutil.Time(now)).
		Scan(&s.IDHash, &s.Subject, &s.Name, &roles, &s.CreatedAt, &s.ExpiresAt)
	if err != nil {
		return store.StaffSession{}, fmt.Errorf("pgstore: get session: %w", classify(err))
	}
	s.Roles, s.CreatedAt, s.ExpiresAt = dbutil.SplitRoles(roles), s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	return s, nil
}

// DeleteSession ends the session; an unknown one is no error.
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := db.pool.Exec(ctx, "DELETE FROM staff_sessions WHERE id_hash = $1", idHash); err != nil {
		return fmt.Errorf("pgstore: delete session: %w", classify(err))
	}
	return nil
}

// DeleteExpiredSessions removes sessions that expired before cutoff.
func (db *DB) DeleteExpiredSessions(ctx context.Context, cutoff time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, "DELETE FROM staff_sessions WHERE expires_at < $1", dbutil.Time(cutoff))
	if err != nil {
		return 0, fmt.Errorf("pgstore: delete expired sessions: %w", classify(err))
	}
	return int(tag.RowsAffected()), nil
}
