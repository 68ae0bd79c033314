package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

const appealColumns = "id, account_id, applicant_type, token_hash, status, created_at, updated_at, closed_at"

func scanAppeal(row scanner) (store.Appeal, error) {
	var a store.Appeal
	var created, updated, closed sql.NullInt64
	if err := row.Scan(&a.ID, &a.AccountID, &a.ApplicantType, &a.TokenHash, &a.Status, &created, &updated, &closed); err != nil {
		return store.Appeal{}, classify(err)
	}
	a.CreatedAt, a.UpdatedAt, a.ClosedAt = fromMicros(created), fromMicros(updated), fromMicros(closed)
	return a, nil
}

// CreateAppeal stores a as a new open appeal, created now, and returns it.
// The unique indexes on the id, the token hash and the account's open
// appeal, checked on the single writer, make concurrent creations for one
// account end with one appeal; the others get store.ErrConflict.
func (db *DB) CreateAppeal(ctx context.Context, a store.Appeal) (store.Appeal, error) {
	if err := dbutil.CheckAppeal(a); err != nil {
		return store.Appeal{}, fmt.Errorf("sqlitestore: create appeal: %w", err)
	}
	now := micros(dbutil.Now())
	out, err := scanAppeal(db.w.QueryRowContext(ctx, `INSERT INTO appeals (`+appealColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, NULL) RETURNING `+appealColumns,
		a.ID, a.AccountID, a.ApplicantType, a.TokenHash, a.Status, now, now))
	if err != nil {
		return store.Appeal{}, fmt.Errorf("sqlitestore: create appeal: %w", err)
	}
	return out, nil
}

// GetAppeal returns the appeal or store.ErrNotFound.
func (db *DB) GetAppeal(ctx context.Context, id string) (store.Appeal, error) {
	a, err := scanAppeal(db.r.QueryRowContext(ctx, "SELECT "+appealColumns+" FROM appeals WHERE id = ?", id))
	if err != nil {
		return store.Appeal{}, fmt.Errorf("sqlitestore: get appeal: %w", err)
	}
	return a, nil
}

// FindAppealByToken returns the appeal with the token hash, or
// store.ErrNotFound.
func (db *DB) FindAppealByToken(ctx context.Context, tokenHash string) (store.Appeal, error) {
	a, err := scanAppeal(db.r.QueryRowContext(ctx, "SELECT "+appealColumns+" FROM appeals WHERE token_hash = ?", tokenHash))
	if err != nil {
		return store.Appeal{}, fmt.Errorf("sqlitestore: find appeal by token: %w", err)
	}
	return a, nil
}

// SetAppealStatus records the workflow's status at at and, when closed,
// closes the appeal (keeping an earlier ClosedAt). A closed appeal ignores
// an update that does not close it. It returns store.ErrNotFound for an
// unknown appeal.
func (db *DB) SetAppealStatus(ctx context.Context, id, status string, closed bool, at time.Time) error {
	if status == "" {
		return errors.New("sqlitestore: set appeal status: status is required")
	}
	if at.IsZero() {
		at = time.Now()
	}
	q := "UPDATE appeals SET status = ?2, updated_at = ?3 WHERE id = ?1 AND closed_at IS NULL"
	if closed {
		q = "UPDATE appeals SET status = ?2, updated_at = ?3, closed_at = coalesce(closed_at, ?3) WHERE id = ?1"
	}
	n, err := db.update(ctx, q, id, status, micros(dbutil.Time(at)))
	if err == nil && n == 0 {
		err = db.exists(ctx, "appeals", "id", id, nil) // nil: closed already, a late update
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: set appeal status: %w", err)
	}
	return nil
}

// ListAppeals returns the appeals with the status and of the account (empty:
// any), newest first, at most limit (0: 100, capped at 1000).
func (db *DB) ListAppeals(ctx context.Context, status, accountID string, limit int) ([]store.Appeal, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+appealColumns+` FROM appeals
		WHERE (?1 = '' OR status = ?1) AND (?2 = '' OR account_id = ?2)
		ORDER BY created_at DESC, id DESC LIMIT ?3`, status, accountID, dbutil.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list appeals: %w", classify(err))
	}
	defer rows.Close()
	out := []store.Appeal{}
	for rows.Next() {
		a, err := scanAppeal(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: list appeals: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list appeals: %w", classify(err))
	}
	return out, nil
}

// Hit counts one event for key in the window containing now with one
// upsert on the single writer, and reports whether the count is within
// limit. Now and then it prunes windows that ended more than
// dbutil.RateLimitPruneGrace before now; a failure to prune is ignored,
// pruning being only housekeeping.
func (db *DB) Hit(ctx context.Context, key string, window time.Duration, limit int, now time.Time) (bool, time.Duration, error) {
	start, end, err := dbutil.RateWindow(window, limit, now)
	if err != nil {
		return false, 0, fmt.Errorf("sqlitestore: rate limit hit: %w", err)
	}
	var hits int64
	err = db.w.QueryRowContext(ctx, `INSERT INTO rate_limits (key, window_start, window_end, hits) VALUES (?, ?, ?, 1)
		ON CONFLICT (key, window_start, window_end) DO UPDATE SET hits = hits + 1
		RETURNING hits`, key, micros(start), micros(end)).Scan(&hits)
	if err != nil {
		return false, 0, fmt.Errorf("sqlitestore: rate limit hit: %w", classify(err))
	}
	if db.prune.Due() {
		_, _ = db.w.ExecContext(ctx, "DELETE FROM rate_limits WHERE window_end < ?", micros(dbutil.Time(now.Add(-dbutil.RateLimitPruneGrace))))
	}
	allowed, retry := dbutil.RateVerdict(hits, limit, end, now)
	return allowed, retry, nil
}

// Peek reports whether one more hit for key in the window containing now
// would be within limit, reading the window's count without changing it.
func (db *DB) Peek(ctx context.Context, key string, window time.Duration, limit int, now time.Time) (bool, time.Duration, error) {
	start, end, err := dbutil.RateWindow(window, limit, now)
	if err != nil {
		return false, 0, fmt.Errorf("sqlitestore: rate limit peek: %w", err)
	}
	var hits int64
	err = db.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(hits), 0) FROM rate_limits WHERE key = ? AND window_start = ? AND window_end = ?`,
		key, micros(start), micros(end)).Scan(&hits)
	if err != nil {
		return false, 0, fmt.Errorf("sqlitestore: rate limit peek: %w", classify(err))
	}
	allowed, retry := dbutil.RateVerdict(hits+1, limit, end, now)
	return allowed, retry, nil
}
