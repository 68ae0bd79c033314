package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

// ReplaceRecoveryCodes deletes the account's codes and stores codes as its
// new set, in one transaction that holds the account's advisory lock, so
// concurrent replacements with onlyIfNone store one set. It returns
// store.ErrConflict when an ID exists.
func (db *DB) ReplaceRecoveryCodes(ctx context.Context, accountID string, codes []store.RecoveryCode, onlyIfNone bool) (bool, error) {
	stored := false
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('recovery_codes:' || $1, 0))", accountID); err != nil {
			return err
		}
		if onlyIfNone {
			var n int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL", accountID).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
		}
		if _, err := tx.Exec(ctx, "DELETE FROM recovery_codes WHERE account_id = $1", accountID); err != nil {
			return err
		}
		now := dbutil.Now()
		for _, c := range codes {
			if c.ID == "" {
				c.ID = dbutil.NewID("rc")
			}
			if _, err := tx.Exec(ctx, `INSERT INTO recovery_codes (id, account_id, key_id, hash, created_at, used_at)
				VALUES ($1, $2, $3, $4, $5, NULL)`, c.ID, accountID, c.KeyID, c.Hash, now); err != nil {
				return err
			}
		}
		stored = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("pgstore: replace recovery codes: %w", err)
	}
	return stored, nil
}

// ListRecoveryCodes returns the account's unused codes, oldest first.
func (db *DB) ListRecoveryCodes(ctx context.Context, accountID string) ([]store.RecoveryCode, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, account_id, key_id, hash, created_at FROM recovery_codes
		WHERE account_id = $1 AND used_at IS NULL ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list recovery codes: %w", classify(err))
	}
	defer rows.Close()
	var out []store.RecoveryCode
	for rows.Next() {
		var c store.RecoveryCode
		if err := rows.Scan(&c.ID, &c.AccountID, &c.KeyID, &c.Hash, &c.CreatedAt); err != nil {
			return nil, fmt.Errorf("pgstore: list recovery codes: %w", classify(err))
		}
		c.CreatedAt = c.CreatedAt.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list recovery codes: %w", classify(err))
	}
	return out, nil
}

// UseRecoveryCode marks the account's unused code id used at at, with one
// conditional UPDATE (compare-and-set).
func (db *DB) UseRecoveryCode(ctx context.Context, accountID, id string, at time.Time) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE recovery_codes SET used_at = $3
		WHERE id = $1 AND account_id = $2 AND used_at IS NULL`, id, accountID, dbutil.Time(at))
	if err != nil {
		return false, fmt.Errorf("pgstore: use recovery code: %w", classify(err))
	}
	return tag.RowsAffected() == 1, nil
}

// ClearRecoveryCodes deletes the account's codes and returns how many were unused.
func (db *DB) ClearRecoveryCodes(ctx context.Context, accountID string) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `WITH gone AS (DELETE FROM recovery_codes WHERE account_id = $1 RETURNING used_at)
		SELECT count(*) FILTER (WHERE used_at IS NULL) FROM gone`, accountID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("pgstore: clear recovery codes: %w", classify(err))
	}
	return n, nil
}
