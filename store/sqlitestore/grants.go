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

const grantColumns = "id, account_id, action, resource, device_id, created_at, expires_at, used_at"

func scanGrant(row scanner) (store.Grant, error) {
	var g store.Grant
	var created, expires, used sql.NullInt64
	if err := row.Scan(&g.ID, &g.AccountID, &g.Action, &g.Resource, &g.DeviceID, &created, &expires, &used); err != nil {
		return store.Grant{}, classify(err)
	}
	g.CreatedAt, g.ExpiresAt, g.UsedAt = fromMicros(created), fromMicros(expires), fromMicros(used)
	return g, nil
}

// CreateGrant stores g, created now and unused, and returns it. It returns
// store.ErrConflict when the ID exists.
func (db *DB) CreateGrant(ctx context.Context, g store.Grant) (store.Grant, error) {
	if g.ID == "" || g.ExpiresAt.IsZero() {
		return store.Grant{}, errors.New("sqlitestore: create grant: id and expiry are required")
	}
	out, err := scanGrant(db.w.QueryRowContext(ctx, `INSERT INTO grants (`+grantColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, NULL) RETURNING `+grantColumns,
		g.ID, g.AccountID, g.Action, g.Resource, g.DeviceID, micros(dbutil.Now()), micros(dbutil.Time(g.ExpiresAt))))
	if err != nil {
		return store.Grant{}, fmt.Errorf("sqlitestore: create grant: %w", err)
	}
	return out, nil
}

// ConsumeGrant marks the grant used at now if it belongs to accountID, is
// for exactly action and resource, is unused and has not expired at now,
// and returns it. One conditional UPDATE on the single writer makes it a
// compare-and-set. It returns store.ErrNotFound (also for another
// account's grant), store.ErrGrantMismatch, store.ErrGrantUsed or
// store.ErrGrantExpired, changing nothing.
func (db *DB) ConsumeGrant(ctx context.Context, id, accountID, action, resource string, now time.Time) (store.Grant, error) {
	now = dbutil.Time(now)
	g, err := scanGrant(db.w.QueryRowContext(ctx, `UPDATE grants SET used_at = ?5
		WHERE id = ?1 AND account_id = ?2 AND action = ?3 AND resource = ?4 AND used_at IS NULL AND expires_at > ?5
		RETURNING `+grantColumns, id, accountID, action, resource, micros(now)))
	if err == store.ErrNotFound {
		err = db.grantRefusal(ctx, id, accountID, action, resource, now)
	}
	if err != nil {
		return store.Grant{}, fmt.Errorf("sqlitestore: consume grant: %w", err)
	}
	return g, nil
}

// grantRefusal says why grant id cannot be consumed. It reads through the
// writer so it sees what the writer just did.
func (db *DB) grantRefusal(ctx context.Context, id, accountID, action, resource string, now time.Time) error {
	g, err := scanGrant(db.w.QueryRowContext(ctx, "SELECT "+grantColumns+" FROM grants WHERE id = ?", id))
	if err != nil {
		return err
	}
	if err := dbutil.GrantRefusal(g, accountID, action, resource, now); err != nil {
		return err
	}
	// Consumable now but not a moment ago: nothing makes a grant usable
	// again, so this cannot happen; refuse rather than guess.
	return store.ErrConflict
}

// DeleteExpiredGrants removes grants that expired before cutoff and returns
// how many.
func (db *DB) DeleteExpiredGrants(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := db.update(ctx, "DELETE FROM grants WHERE expires_at < ?", micros(dbutil.Time(cutoff)))
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: delete expired grants: %w", err)
	}
	return int(n), nil
}
