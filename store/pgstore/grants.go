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

const grantColumns = "id, account_id, action, resource, device_id, created_at, expires_at, used_at"

func scanGrant(row pgx.Row) (store.Grant, error) {
	var g store.Grant
	var used *time.Time
	if err := row.Scan(&g.ID, &g.AccountID, &g.Action, &g.Resource, &g.DeviceID, &g.CreatedAt, &g.ExpiresAt, &used); err != nil {
		return store.Grant{}, classify(err)
	}
	g.CreatedAt, g.ExpiresAt, g.UsedAt = g.CreatedAt.UTC(), g.ExpiresAt.UTC(), utc(used)
	return g, nil
}

// CreateGrant stores g, created now and unused, and returns it. It returns
// store.ErrConflict when the ID exists.
func (db *DB) CreateGrant(ctx context.Context, g store.Grant) (store.Grant, error) {
	if g.ID == "" || g.ExpiresAt.IsZero() {
		return store.Grant{}, errors.New("pgstore: create grant: id and expiry are required")
	}
	out, err := scanGrant(db.pool.QueryRow(ctx, `INSERT INTO grants (`+grantColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) RETURNING `+grantColumns,
		g.ID, g.AccountID, g.Action, g.Resource, g.DeviceID, dbutil.Now(), dbutil.Time(g.ExpiresAt)))
	if err != nil {
		return store.Grant{}, fmt.Errorf("pgstore: create grant: %w", err)
	}
	return out, nil
}

// ConsumeGrant marks the grant used at now if it belongs to accountID, is
// for exactly action and resource, is unused and has not expired at now,
// and returns it. One conditional UPDATE makes it a compare-and-set. It
// returns store.ErrNotFound (also for another account's grant),
// store.ErrGrantMismatch, store.ErrGrantUsed or store.ErrGrantExpired,
// changing nothing.
func (db *DB) ConsumeGrant(ctx context.Context, id, accountID, action, resource string, now time.Time) (store.Grant, error) {
	now = dbutil.Time(now)
	g, err := scanGrant(db.pool.QueryRow(ctx, `UPDATE grants SET used_at = $5
		WHERE id = $1 AND account_id = $2 AND action = $3 AND resource = $4 AND used_at IS NULL AND expires_at > $5
		RETURNING `+grantColumns, id, accountID, action, resource, now))
	if err == store.ErrNotFound {
		err = db.grantRefusal(ctx, id, accountID, action, resource, now)
	}
	if err != nil {
		return store.Grant{}, fmt.Errorf("pgstore: consume grant: %w", err)
	}
	return g, nil
}

// grantRefusal says why grant id cannot be consumed.
func (db *DB) grantRefusal(ctx context.Context, id, accountID, action, resource string, now time.Time) error {
	g, err := scanGrant(db.pool.QueryRow(ctx, "SELECT "+grantColumns+" FROM grants WHERE id = $1", id))
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
	tag, err := db.pool.Exec(ctx, "DELETE FROM grants WHERE expires_at < $1", dbutil.Time(cutoff))
	if err != nil {
		return 0, fmt.Errorf("pgstore: delete expired grants: %w", classify(err))
	}
	return int(tag.RowsAffected()), nil
}
