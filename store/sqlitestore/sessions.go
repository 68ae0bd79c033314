package sqlitestore

import (
	"context"
	"database/sql"
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
		return errors.New("sqlitestore: create session: id hash, subject and expiry are required")
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = dbutil.Now()
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO staff_sessions (id_hash, subject, name, roles, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		s.IDHash, s.Subject, s.Name, strings.Join(s.Roles, ","), micros(dbutil.Time(s.CreatedAt)), micros(dbutil.Time(s.ExpiresAt)))
	if err != nil {
		return fmt.Errorf("sqlitestore: create session: %w", classify(err))
	}
	return nil
}

// GetSession returns the session if it has not expired at now, else
// store.ErrNotFound. It reads through the writer, so a sign-out just made
// is seen.
func (db *DB) GetSession(ctx context.Context, idHash string, now time.Time) (store.StaffSession, error) {
	var s store.StaffSession
	var roles string
	var created, expires sql.NullInt64
	err := db.w.QueryRowContext(ctx, `SELECT id_hash, subject, name, roles, created_at, expires_at FROM staff_sessions
		WHERE id_hash = ? AND expires_at > ?`, idHash, micros(dbutil.Time(now))).
		Scan(&s.IDHash, &s.Subject, &s.Name, &roles, &created, &expires)
	if err != nil {
		return store.StaffSession{}, fmt.Errorf("sqlitestore: get session: %w", classify(err))
	}
	s.Roles, s.CreatedAt, s.ExpiresAt = dbutil.SplitRoles(roles), fromMicros(created), fromMicros(expires)
	return s, nil
}

// DeleteSession ends the session; an unknown one is no error.
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := db.update(ctx, "DELETE FROM staff_sessions WHERE id_hash = ?", idHash); err != nil {
		return fmt.Errorf("sqlitestore: delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions that expired before cutoff.
func (db *DB) DeleteExpiredSessions(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := db.update(ctx, "DELETE FROM staff_sessions WHERE expires_at < ?", micros(dbutil.Time(cutoff)))
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: delete expired sessions: %w", err)
	}
	return int(n), nil
}
