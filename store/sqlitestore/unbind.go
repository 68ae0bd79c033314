package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

// UnbindAccount unbinds the account in one IMMEDIATE transaction on the
// single writer (see store.Unbinder).
func (db *DB) UnbindAccount(ctx context.Context, r store.UnbindRequest) ([]string, error) {
	var ids []string
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var prior sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT details FROM audit_log WHERE account_id = ? AND subject = ? AND action = ? AND outcome = ?
			ORDER BY id LIMIT 1`, r.AccountID, r.AppealID, r.Audit.Action, r.Audit.Outcome).Scan(&prior)
		switch {
		case err == nil:
			ids, err = dbutil.UnboundDevices(prior.String)
			return err
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		at := micros(dbutil.Time(r.At))
		rows, err := tx.QueryContext(ctx, `SELECT id, coalesce(serial, '') FROM devices
			WHERE account_id = ? AND type IN ('virtual', 'hardware', 'webauthn') AND status <> 'revoked' ORDER BY created_at, id`, r.AccountID)
		if err != nil {
			return err
		}
		var serials []string
		for rows.Next() {
			var id, serial string
			if err := rows.Scan(&id, &serial); err != nil {
				rows.Close()
				return err
			}
			ids, serials = append(ids, id), append(serials, serial)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i, id := range ids {
			if _, err := tx.ExecContext(ctx, "UPDATE devices SET status = 'revoked', revoked_at = ? WHERE id = ?", at, id); err != nil {
				return err
			}
			if serials[i] != "" {
				if _, err := tx.ExecContext(ctx, `UPDATE hardware_tokens SET state = 'unassigned', account_id = NULL, device_id = NULL, bound_at = NULL
					WHERE serial = ? AND state = 'bound' AND device_id = ?`, serials[i], id); err != nil {
					return err
				}
			}
		}
		for _, q := range []string{"DELETE FROM recovery_codes WHERE account_id = ?", "DELETE FROM failure_budgets WHERE account_id = ?"} {
			if _, err := tx.ExecContext(ctx, q, r.AccountID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO protection (account_id, login, operation, updated_at) VALUES (?, 0, 0, ?)
			ON CONFLICT (account_id) DO UPDATE SET login = 0, operation = 0, updated_at = excluded.updated_at`, r.AccountID, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE appeals SET status = ?2, updated_at = ?3, closed_at = coalesce(closed_at, ?3) WHERE id = ?1`,
			r.AppealID, r.Status, at); err != nil {
			return err
		}
		e := dbutil.UnbindAudit(r, ids)
		details, err := dbutil.MarshalMap(e.Details)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO audit_log (at, actor, action, outcome, account_id, subject, remote_ip, details)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, micros(e.At), e.Actor, e.Action, e.Outcome, e.AccountID, e.Subject, e.RemoteIP, text(details))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: unbind account: %w", err)
	}
	return ids, nil
}
