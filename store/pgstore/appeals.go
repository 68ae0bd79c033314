package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

const appealColumns = "id, account_id, applicant_type, token_hash, status, created_at, updated_at, closed_at"

func scanAppeal(row pgx.Row) (store.Appeal, error) {
	var a store.Appeal
	var closed *time.Time
	if err := row.Scan(&a.ID, &a.AccountID, &a.ApplicantType, &a.TokenHash, &a.Status, &a.CreatedAt, &a.UpdatedAt, &closed); err != nil {
		return store.Appeal{}, classify(err)
	}
	a.CreatedAt, a.UpdatedAt, a.ClosedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC(), utc(closed)
	return a, nil
}

// CreateAppeal stores a as a new open appeal, created now, and returns it.
// The unique indexes on the id, the token hash and the account's open
// appeal make concurrent creations for one account end with one appeal; the
// others get store.ErrConflict.
func (db *DB) CreateAppeal(ctx context.Context, a store.Appeal) (store.Appeal, error) {
	if err := dbutil.CheckAppeal(a); err != nil {
		return store.Appeal{}, fmt.Errorf("pgstore: create appeal: %w", err)
	}
	out, err := scanAppeal(db.pool.QueryRow(ctx, `INSERT INTO appeals (`+appealColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $6, NULL) RETURNING `+appealColumns,
		a.ID, a.AccountID, a.ApplicantType, a.TokenHash, a.Status, dbutil.Now()))
	if err != nil {
		return store.Appeal{}, fmt.Errorf("pgstore: create appeal: %w", err)
	}
	return out, nil
}

// GetAppeal returns the appeal or store.ErrNotFound.
func (db *DB) GetAppeal(ctx context.Context, id string) (store.Appeal, error) {
	a, err := scanAppeal(db.pool.QueryRow(ctx, "SELECT "+appealColumns+" FROM appeals WHERE id = $1", id))
	if err != nil {
		return store.Appeal{}, fmt.Errorf("pgstore: get appeal: %w", err)
	}
	return a, nil
}

// FindAppealByToken returns the appeal with the token hash, or
// store.ErrNotFound.
func (db *DB) FindAppealByToken(ctx context.Context, tokenHash string) (store.Appeal, error) {
	a, err := scanAppeal(db.pool.QueryRow(ctx, "SELECT "+appealColumns+" FROM appeals WHERE token_hash = $1", tokenHash))
	if err != nil {
		return store.Appeal{}, fmt.Errorf("pgstore: find appeal by token: %w", err)
	}
	return a, nil
}

// SetAppealStatus records the workflow's status at at and, when closed,
// closes the appeal (keeping an earlier ClosedAt). A closed appeal ignores
// an update that does not close it. It returns store.ErrNotFound for an
// unknown appeal.
func (db *DB) SetAppealStatus(ctx context.Context, id, status string, closed bool, at time.Time) error {
	if status == "" {
		return errors.New("pgstore: set appeal status: status is required")
	}
	if at.IsZero() {
		at = time.Now()
	}
	q := "UPDATE appeals SET status = $2, updated_at = $3 WHERE id = $1 AND closed_at IS NULL"
	if closed {
		q = "UPDATE appeals SET status = $2, updated_at = $3, closed_at = coalesce(closed_at, $3) WHERE id = $1"
	}
	tag, err := db.pool.Exec(ctx, q, id, status, dbutil.Time(at))
	if err == nil && tag.RowsAffected() == 0 {
		err = db.exists(ctx, "appeals", "id", id, nil) // nil: closed already, a late update
	}
	if err != nil {
		return fmt.Errorf("pgstore: set appeal status: %w", classify(err))
	}
	return nil
}

// ListAppeals returns the appeals with the status and of the account (empty:
// any), newest first, at most limit (0: 100, capped at 1000).
func (db *DB) ListAppeals(ctx context.Context, status, accountID string, limit int) ([]store.Appeal, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+appealColumns+` FROM appeals
		WHERE ($1 = '' OR status = $1) AND ($2 = '' OR account_id = $2)
		ORDER BY created_at DESC, id DESC LIMIT $3`, status, accountID, dbutil.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("pgstore: list appeals: %w", classify(err))
	}
	defer rows.Close()
	out := []store.Appeal{}
	for rows.Next() {
		a, err := scanAppeal(rows)
		if err != nil {
			return nil, fmt.Errorf("pgstore: list appeals: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list appeals: %w", classify(err))
	}
	return out, nil
}

// Hit counts one event for key in the window containing now with one
// INSERT … ON CONFLICT DO UPDATE, which PostgreSQL makes atomic, and
// reports whether the count is within limit. Now and then it prunes windows
// that ended more than dbutil.RateLimitPruneGrace before now; a failure to
// prune is ignored, pruning being only housekeeping.
func (db *DB) Hit(ctx context.Context, key string, window time.Duration, limit int, now time.Time) (bool, time.Duration, error) {
	start, end, err := dbutil.RateWindow(window, limit, now)
	if err != nil {
		return false, 0, fmt.Errorf("pgstore: rate limit hit: %w", err)
	}
	var hits int64
	err = db.pool.QueryRow(ctx, `INSERT INTO rate_limits (key, window_start, window_end, hits) VALUES ($1, $2, $3, 1)
		ON CONFLICT (key, window_start, window_end) DO UPDATE SET hits = rate_limits.hits + 1
		RETURNING hits`, key, start, end).Scan(&hits)
	if err != nil {
		return false, 0, fmt.Errorf("pgstore: rate limit hit: %w", classify(err))
	}
	if db.prune.Due() {
		_, _ = db.pool.Exec(ctx, "DELETE FROM rate_limits WHERE window_end < $1", dbutil.Time(now.Add(-dbutil.RateLimitPruneGrace)))
	}
	allowed, retry := dbutil.RateVerdict(hits, limit, end, now)
	return allowed, retry, nil
}

// Peek reports whether one more hit for key in the window containing now
// would be within limit, reading the window's count without changing it.
func (db *DB) Peek(ctx context.Context, key string, window time.Duration, limit int, now time.Time) (bool, time.Duration, error) {
	start, end, err := dbutil.RateWindow(window, limit, now)
	if err != nil {
		return false, 0, fmt.Errorf("pgstore: rate limit peek: %w", err)
	}
	var hits int64
	err = db.pool.QueryRow(ctx, `SELECT COALESCE(SUM(hits), 0) FROM rate_limits WHERE key = $1 AND window_start = $2 AND window_end = $3`,
		key, start, end).Scan(&hits)
	if err != nil {
		return false, 0, fmt.Errorf("pgstore: rate limit peek: %w", classify(err))
	}
	allowed, retry := dbutil.RateVerdict(hits+1, limit, end, now)
	return allowed, retry, nil
}
