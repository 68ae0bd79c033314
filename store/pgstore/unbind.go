package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

// UnbindAccount unbinds the account in one transaction that first takes the
// account's advisory lock, so concurrent attempts run one after the other
// and the second finds the first's audit entry (see store.Unbinder).
func (db *DB) UnbindAccount(ctx context.Context, r store.UnbindRequest) ([]string, error) {
	var ids []string
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('unbind:' || $1, 0))", r.AccountID); err != nil {
			return err
		}
		var prior []byte
		err := tx.QueryRow(ctx, `SELECT details FROM audit_log WHERE account_id = $1 AND subject = $2 AND action = $3 AND outcome = $4
			ORDER BY id LIMIT 1`, r.AccountID, r.AppealID, r.Audit.Action, r.Audit.Outcome).Scan(&prior)
		switch {
		case err == nil:
			ids, err = dbutil.UnboundDevices(string(prior))
			return err
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		at := dbutil.Time(r.At)
		rows, _ := tx.Query(ctx, `SELECT id, coalesce(serial, '') FROM devices
			WHERE account_id = $1 AND type IN ('virtual', 'hardware', 'webauthn') AND status <> 'revoked'
			ORDER BY created_at, id FOR UPDATE`, r.AccountID)
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
			if _, err := tx.Exec(ctx, "UPDATE devices SET status = 'revoked', revoked_at = $2 WHERE id = $1", id, at); err != nil {
				return err
			}
			if serials[i] != "" {
				if _, err := tx.Exec(ctx, `UPDATE hardware_tokens SET state = 'unassigned', account_id = NULL, device_id = NULL, bound_at = NULL
					WHERE serial = $1 AND state = 'bound' AND device_id = $2`, serials[i], id); err != nil {
					return err
				}
			}
		}
		for _, q := range []string{"DELETE FROM recovery_codes WHERE account_id = $1", "DELETE FROM failure_budgets WHERE account_id = $1"} {
			if _, err := tx.Exec(ctx, q, r.AccountID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO protection (account_id, login, operation, updated_at) VALUES ($1, false, false, $2)
			ON CONFLICT (account_id) DO UPDATE SET login = false, operation = false, updated_at = excluded.updated_at`, r.AccountID, at); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE appeals SET status = $2, updated_at = $3, closed_at = coalesce(closed_at, $3) WHERE id = $1`,
			r.AppealID, r.Status, at); err != nil {
			return err
		}
		e := dbutil.UnbindAudit(r, ids)
		details, err := dbutil.MarshalMap(e.Details)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_log (at, actor, action, outcome, account_id, subject, remote_ip, details)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, e.At, e.Actor, e.Action, e.Outcome, e.AccountID, e.Subject, e.RemoteIP, details)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: unbind account: %w", err)
	}
	return ids, nil
}
