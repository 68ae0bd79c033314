package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

// CreateWebAuthnDevice stores the active WebAuthn device d and its
// credential c in one IMMEDIATE transaction. It returns store.ErrConflict
// when the device or the credential ID exists.
func (db *DB) CreateWebAuthnDevice(ctx context.Context, d store.Device, c store.WebAuthnCredential) (store.Device, error) {
	d = dbutil.WebAuthnDevice(d)
	var out store.Device
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if out, err = createDevice(ctx, tx, d); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO webauthn_credentials (device_id, account_id, credential_id, user_handle, public_key,
			sign_count, aaguid, transports, backup_eligible, backup_state, user_verified, attestation_type)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			out.ID, out.AccountID, c.CredentialID, c.UserHandle, c.PublicKey, int64(c.SignCount), dbutil.Bytes(c.AAGUID),
			strings.Join(c.Transports, ","), c.BackupEligible, c.BackupState, c.UserVerified, c.AttestationType)
		return err
	})
	if err != nil {
		return store.Device{}, fmt.Errorf("sqlitestore: create webauthn device: %w", err)
	}
	return out, nil
}

// ListWebAuthnCredentials returns the credentials of the account's active
// WebAuthn devices, oldest first.
func (db *DB) ListWebAuthnCredentials(ctx context.Context, accountID string) ([]store.WebAuthnCredential, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT c.device_id, c.account_id, c.credential_id, c.user_handle, c.public_key, c.sign_count,
		c.aaguid, c.transports, c.backup_eligible, c.backup_state, c.user_verified, c.attestation_type
		FROM webauthn_credentials c JOIN devices d ON d.id = c.device_id
		WHERE c.account_id = ? AND d.status = 'active' ORDER BY d.created_at, d.id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list webauthn credentials: %w", classify(err))
	}
	defer rows.Close()
	var out []store.WebAuthnCredential
	for rows.Next() {
		var c store.WebAuthnCredential
		var count int64
		var transports string
		if err := rows.Scan(&c.DeviceID, &c.AccountID, &c.CredentialID, &c.UserHandle, &c.PublicKey, &count, &c.AAGUID,
			&transports, &c.BackupEligible, &c.BackupState, &c.UserVerified, &c.AttestationType); err != nil {
			return nil, fmt.Errorf("sqlitestore: list webauthn credentials: %w", classify(err))
		}
		c.SignCount, c.Transports = uint32(count), dbutil.SplitList(transports)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list webauthn credentials: %w", classify(err))
	}
	return out, nil
}

// AdvanceSignCount moves the stored counter from old to new and records the
// use, in one transaction on the single writer (compare-and-set).
func (db *DB) AdvanceSignCount(ctx context.Context, deviceID string, old, new uint32, at time.Time) (bool, error) {
	ok := false
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webauthn_credentials SET sign_count = ?
			WHERE device_id = ? AND sign_count = ? AND EXISTS (SELECT 1 FROM devices WHERE id = ? AND status = 'active')`,
			int64(new), deviceID, int64(old), deviceID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		at := micros(dbutil.Time(at))
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET last_used_at = max(coalesce(last_used_at, ?), ?) WHERE id = ?`, at, at, deviceID); err != nil {
			return err
		}
		ok = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlitestore: advance sign count: %w", err)
	}
	return ok, nil
}

const webauthnChallengeColumns = "id, account_id, purpose, action, resource, session, created_at, expires_at, used_at"

func scanWebAuthnChallenge(row scanner) (store.WebAuthnChallenge, error) {
	var c store.WebAuthnChallenge
	var created, expires, used sql.NullInt64
	if err := row.Scan(&c.ID, &c.AccountID, &c.Purpose, &c.Action, &c.Resource, &c.Session, &created, &expires, &used); err != nil {
		return store.WebAuthnChallenge{}, classify(err)
	}
	c.CreatedAt, c.ExpiresAt, c.UsedAt = fromMicros(created), fromMicros(expires), fromMicros(used)
	return c, nil
}

// CreateWebAuthnChallenge stores c (now and then deleting challenges
// expired for longer than dbutil.ChallengePruneGrace), created now, and returns it.
func (db *DB) CreateWebAuthnChallenge(ctx context.Context, c store.WebAuthnChallenge) (store.WebAuthnChallenge, error) {
	if c.ID == "" {
		c.ID = dbutil.NewID("wac")
	}
	out, err := scanWebAuthnChallenge(db.w.QueryRowContext(ctx, `INSERT INTO webauthn_challenges (`+webauthnChallengeColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL) RETURNING `+webauthnChallengeColumns,
		c.ID, c.AccountID, c.Purpose, c.Action, c.Resource, dbutil.Bytes(c.Session), micros(dbutil.Now()), micros(dbutil.Time(c.ExpiresAt))))
	if err != nil {
		return store.WebAuthnChallenge{}, fmt.Errorf("sqlitestore: create webauthn challenge: %w", err)
	}
	if db.challengePrune.Due() {
		// Housekeeping: a failure is retried at a later creation.
		_, _ = db.w.ExecContext(ctx, "DELETE FROM webauthn_challenges WHERE expires_at < ?", micros(dbutil.Now().Add(-dbutil.ChallengePruneGrace)))
	}
	return out, nil
}

// UseWebAuthnChallenge marks the account's unused, unexpired challenge used
// with one conditional UPDATE on the single writer (compare-and-set).
func (db *DB) UseWebAuthnChallenge(ctx context.Context, id, accountID string, now time.Time) (store.WebAuthnChallenge, error) {
	now = dbutil.Time(now)
	c, err := scanWebAuthnChallenge(db.w.QueryRowContext(ctx, `UPDATE webauthn_challenges SET used_at = ?3
		WHERE id = ?1 AND account_id = ?2 AND used_at IS NULL AND expires_at > ?3 RETURNING `+webauthnChallengeColumns, id, accountID, micros(now)))
	if err == store.ErrNotFound {
		var prev store.WebAuthnChallenge
		prev, err = scanWebAuthnChallenge(db.r.QueryRowContext(ctx, "SELECT "+webauthnChallengeColumns+" FROM webauthn_challenges WHERE id = ?", id))
		if err == nil {
			err = dbutil.WebAuthnChallengeRefusal(prev, accountID, now)
		}
	}
	if err != nil {
		return store.WebAuthnChallenge{}, fmt.Errorf("sqlitestore: use webauthn challenge: %w", err)
	}
	return c, nil
}
