package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

// ReplaceRecoveryCodes deletes the account's codes and stores codes as its
// new set, in one IMMEDIATE transaction on the single writer, so
// concurrent replacements with onlyIfNone store one set. It returns
// store.ErrConflict when an ID exists.
func (db *DB) ReplaceRecoveryCodes(ctx context.Context, accountID string, codes []store.RecoveryCode, onlyIfNone bool) (bool, error) {
	stored := false
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if onlyIfNone {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM recovery_codes WHERE account_id = ? AND used_at IS NULL", accountID).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM recovery_codes WHERE account_id = ?", accountID); err != nil {
			return err
		}
		now := micros(dbutil.Now())
		for _, c := range codes {
			if c.ID == "" {
				c.ID = dbutil.NewID("rc")
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (id, account_id, key_id, hash, created_at, used_at)
				VALUES (?, ?, ?, ?, ?, NULL)`, c.ID, accountID, c.KeyID, c.Hash, now); err != nil {
				return err
			}
		}
		stored = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlitestore: replace recovery codes: %w", err)
	}
	return stored, nil
}

// ListRecoveryCodes returns the account's unused codes, oldest first.
func (db *DB) ListRecoveryCodes(ctx context.Context, accountID string) ([]store.RecoveryCode, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, account_id, key_id, hash, created_at FROM recovery_codes
		WHERE account_id = ? AND used_at IS NULL ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list recovery codes: %w", classify(err))
	}
	defer rows.Close()
	var out []store.RecoveryCode
	for rows.Next() {
		var c store.RecoveryCode
		var created sql.NullInt64
		if err := rows.Scan(&c.ID, &c.AccountID, &c.KeyID, &c.Hash, &created); err != nil {
			return nil, fmt.Errorf("sqlitestore: list recovery codes: %w", classify(err))
		}
		c.CreatedAt = fromMicros(created)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list recovery codes: %w", classify(err))
	}
	return out, nil
}

// UseRecoveryCode marks the account's unused code id used at at, with one
// conditional UPDATE on the single writer (compare-and-set).
func (db *DB) UseRecoveryCode(ctx context.Context, accountID, id string, at time.Time) (bool, error) {
	res, err := db.w.ExecContext(ctx, `UPDATE recovery_codes SET used_at = ?
		WHERE id = ? AND account_id = ? AND used_at IS NULL`, micros(dbutil.Time(at)), id, accountID)
	if err != nil {
		return false, fmt.Errorf("sqlitestore: use recovery code: %w", classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlitestore: use recovery code: %w", classify(err))
	}
	return n == 1, nil
}

// ClearRecoveryCodes deletes the account's codes and returns how many were unused.
func (db *DB) ClearRecoveryCodes(ctx context.Context, accountID string) (int, error) {
	n := 0
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM recovery_codes WHERE account_id = ? AND used_at IS NULL", accountID).Scan(&n); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM recovery_codes WHERE account_id = ?", accountID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: clear recovery codes: %w", err)
	}
	return n, nil
}
