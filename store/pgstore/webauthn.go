package pgstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

// CreateWebAuthnDevice stores the active WebAuthn device d and its
// credential c in one transaction. It returns store.ErrConflict when the
// device or the credential ID exists.
func (db *DB) CreateWebAuthnDevice(ctx context.Context, d store.Device, c store.WebAuthnCredential) (store.Device, error) {
	d = dbutil.WebAuthnDevice(d)
	var out store.Device
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if out, err = createDevice(ctx, tx, d); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO webauthn_credentials (device_id, account_id, credential_id, user_handle, public_key,
			sign_count, aaguid, transports, backup_eligible, backup_state, user_verified, attestation_type)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			out.ID, out.AccountID, c.CredentialID, c.UserHandle, c.PublicKey, int64(c.SignCount), dbutil.Bytes(c.AAGUID),
			strings.Join(c.Transports, ","), c.BackupEligible, c.BackupState, c.UserVerified, c.AttestationType)
		return err
	})
	if err != nil {
		return store.Device{}, fmt.Errorf("pgstore: create webauthn device: %w", err)
	}
	return out, nil
}

// ListWebAuthnCredentials returns the credentials of the account's active
// WebAuthn devices, oldest first.
func (db *DB) ListWebAuthnCredentials(ctx context.Context, accountID string) ([]store.WebAuthnCredential, error) {
	rows, err := db.pool.Query(ctx, `SELECT c.device_id, c.account_id, c.credential_id, c.user_handle, c.public_key, c.sign_count,
		c.aaguid, c.transports, c.backup_eligible, c.backup_state, c.user_verified, c.attestation_type
		FROM webauthn_credentials c JOIN devices d ON d.id = c.device_id
		WHERE c.account_id = $1 AND d.status = 'active' ORDER BY d.created_at, d.id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list webauthn credentials: %w", classify(err))
	}
	defer rows.Close()
	var out []store.WebAuthnCredential
	for rows.Next() {
		var c store.WebAuthnCredential
		var count int64
		var transports string
		if err := rows.Scan(&c.DeviceID, &c.AccountID, &c.CredentialID, &c.UserHandle, &c.PublicKey, &count, &c.AAGUID,
			&transports, &c.BackupEligible, &c.BackupState, &c.UserVerified, &c.AttestationType); err != nil {
			return nil, fmt.Errorf("pgstore: list webauthn credentials: %w", classify(err))
		}
		c.SignCount, c.Transports = uint32(count), dbutil.SplitList(transports)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list webauthn credentials: %w", classify(err))
	}
	return out, nil
}

// AdvanceSignCount moves the stored counter from old to new and records the
// use, in one statement that is a compare-and-set on the counter.
func (db *DB) AdvanceSignCount(ctx context.Context, deviceID string, old, new uint32, at time.Time) (bool, error) {
	tag, err := db.pool.Exec(ctx, `WITH c AS (
			UPDATE webauthn_credentials SET sign_count = $3
			WHERE device_id = $1 AND sign_count = $2
			  AND EXISTS (SELECT 1 FROM devices WHERE id = $1 AND status = 'active')
			RETURNING device_id)
		UPDATE devices SET last_used_at = GREATEST(COALESCE(last_used_at, $4), $4)
		WHERE id IN (SELECT device_id FROM c)`, deviceID, int64(old), int64(new), dbutil.Time(at))
	if err != nil {
		return false, fmt.Errorf("pgstore: advance sign count: %w", classify(err))
	}
	return tag.RowsAffected() == 1, nil
}

const webauthnChallengeColumns = "id, account_id, purpose, action, resource, session, created_at, expires_at, used_at"

func scanWebAuthnChallenge(row pgx.Row) (store.WebAuthnChallenge, error) {
	var c store.WebAuthnChallenge
	var used *time.Time
	if err := row.Scan(&c.ID, &c.AccountID, &c.Purpose, &c.Action, &c.Resource, &c.Session, &c.CreatedAt, &c.ExpiresAt, &used); err != nil {
		return store.WebAuthnChallenge{}, classify(err)
	}
	c.CreatedAt, c.ExpiresAt, c.UsedAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC(), utc(used)
	return c, nil
}

// CreateWebAuthnChallenge stores c (now and then deleting challenges
// expired for longer than dbutil.ChallengePruneGrace), created now, and returns it.
func (db *DB) CreateWebAuthnChallenge(ctx context.Context, c store.WebAuthnChallenge) (store.WebAuthnChallenge, error) {
	if c.ID == "" {
		c.ID = dbutil.NewID("wac")
	}
	out, err := scanWebAuthnChallenge(db.pool.QueryRow(ctx, `INSERT INTO webauthn_challenges (`+webauthnChallengeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL) RETURNING `+webauthnChallengeColumns,
		c.ID, c.AccountID, c.Purpose, c.Action, c.Resource, dbutil.Bytes(c.Session), dbutil.Now(), dbutil.Time(c.ExpiresAt)))
	if err != nil {
		return store.WebAuthnChallenge{}, fmt.Errorf("pgstore: create webauthn challenge: %w", err)
	}
	if db.challengePrune.Due() {
		// Housekeeping: a failure is retried at a later creation.
		_, _ = db.pool.Exec(ctx, "DELETE FROM webauthn_challenges WHERE expires_at < $1", dbutil.Time(dbutil.Now().Add(-dbutil.ChallengePruneGrace)))
	}
	return out, nil
}

// UseWebAuthnChallenge marks the account's unused, unexpired challenge used
// with one conditional UPDATE (compare-and-set).
func (db *DB) UseWebAuthnChallenge(ctx context.Context, id, accountID string, now time.Time) (store.WebAuthnChallenge, error) {
	now = dbutil.Time(now)
	c, err := scanWebAuthnChallenge(db.pool.QueryRow(ctx, `UPDATE webauthn_challenges SET used_at = $3
		WHERE id = $1 AND account_id = $2 AND used_at IS NULL AND expires_at > $3 RETURNING `+webauthnChallengeColumns, id, accountID, now))
	if err == store.ErrNotFound {
		var prev store.WebAuthnChallenge
		prev, err = scanWebAuthnChallenge(db.pool.QueryRow(ctx, "SELECT "+webauthnChallengeColumns+" FROM webauthn_challenges WHERE id = $1", id))
		if err == nil {
			err = dbutil.WebAuthnChallengeRefusal(prev, accountID, now)
		}
	}
	if err != nil {
		return store.WebAuthnChallenge{}, fmt.Errorf("pgstore: use webauthn challenge: %w", err)
	}
	return c, nil
}
