package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

const deviceColumns = `id, account_id, type, name, serial, secret_key_id, sealed_secret, algorithm, digits,
	period_seconds, last_step, drift, status, created_at, bound_at, last_used_at, revoked_at`

func scanDevice(row pgx.Row) (store.Device, error) {
	var d store.Device
	var serial *string
	var bound, used, revoked *time.Time
	err := row.Scan(&d.ID, &d.AccountID, &d.Type, &d.Name, &serial, &d.Secret.KeyID, &d.Secret.Ciphertext,
		&d.Algorithm, &d.Digits, &d.PeriodSeconds, &d.LastStep, &d.Drift, &d.Status, &d.CreatedAt,
		&bound, &used, &revoked)
	if err != nil {
		return store.Device{}, classify(err)
	}
	if serial != nil {
		d.Serial = *serial
	}
	d.CreatedAt = d.CreatedAt.UTC()
	d.BoundAt, d.LastUsedAt, d.RevokedAt = utc(bound), utc(used), utc(revoked)
	return d, nil
}

// CreateDevice stores d and returns it with its ID (assigned when empty),
// CreatedAt and, for an active device, BoundAt. It returns
// store.ErrConflict when the ID exists or the serial is on another live
// device.
func (db *DB) CreateDevice(ctx context.Context, d store.Device) (store.Device, error) {
	return createDevice(ctx, db.pool, d)
}

// rowQuerier is a pool or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func createDevice(ctx context.Context, q rowQuerier, d store.Device) (store.Device, error) {
	if d.ID == "" {
		d.ID = dbutil.NewID("dev")
	}
	d.CreatedAt = dbutil.Now()
	if d.Status == store.DeviceActive && d.BoundAt.IsZero() {
		d.BoundAt = d.CreatedAt
	}
	var serial any
	if d.Serial != "" {
		serial = d.Serial
	}
	row := q.QueryRow(ctx, `INSERT INTO devices (id, account_id, type, name, serial, secret_key_id, sealed_secret,
		algorithm, digits, period_seconds, last_step, drift, status, created_at, bound_at, last_used_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		RETURNING `+deviceColumns,
		d.ID, d.AccountID, d.Type, d.Name, serial, d.Secret.KeyID, d.Secret.Ciphertext, d.Algorithm, d.Digits,
		d.PeriodSeconds, d.LastStep, d.Drift, d.Status, d.CreatedAt, nullTime(d.BoundAt), nullTime(d.LastUsedAt),
		nullTime(d.RevokedAt))
	out, err := scanDevice(row)
	if err != nil {
		return store.Device{}, fmt.Errorf("pgstore: create device: %w", err)
	}
	return out, nil
}

// GetDevice returns the device or store.ErrNotFound.
func (db *DB) GetDevice(ctx context.Context, id string) (store.Device, error) {
	d, err := scanDevice(db.pool.QueryRow(ctx, "SELECT "+deviceColumns+" FROM devices WHERE id = $1", id))
	if err != nil {
		return store.Device{}, fmt.Errorf("pgstore: get device: %w", err)
	}
	return d, nil
}

// ListDevices returns the account's devices of every status, oldest first.
func (db *DB) ListDevices(ctx context.Context, accountID string) ([]store.Device, error) {
	rows, _ := db.pool.Query(ctx, "SELECT "+deviceColumns+" FROM devices WHERE account_id = $1 ORDER BY created_at, id", accountID)
	defer rows.Close()
	out := []store.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("pgstore: list devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list devices: %w", classify(err))
	}
	return out, nil
}

// ActivateDevice moves a pending device to active, bound at at, and returns
// it. It returns store.ErrNotFound, or store.ErrConflict when the device is
// not pending.
func (db *DB) ActivateDevice(ctx context.Context, id string, at time.Time) (store.Device, error) {
	d, err := scanDevice(db.pool.QueryRow(ctx, `UPDATE devices SET status = 'active', bound_at = $2
		WHERE id = $1 AND status = 'pending' RETURNING `+deviceColumns, id, dbutil.Time(at)))
	if err == store.ErrNotFound {
		err = db.exists(ctx, "devices", "id", id, store.ErrConflict)
	}
	if err != nil {
		return store.Device{}, fmt.Errorf("pgstore: activate device: %w", err)
	}
	return d, nil
}

// RevokeDevice revokes the device at at. It reports false when it was
// already revoked and returns store.ErrNotFound for an unknown device.
func (db *DB) RevokeDevice(ctx context.Context, id string, at time.Time) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE devices SET status = 'revoked', revoked_at = $2
		WHERE id = $1 AND status <> 'revoked'`, id, dbutil.Time(at))
	if err == nil && tag.RowsAffected() == 0 {
		err = db.exists(ctx, "devices", "id", id, nil)
	}
	if err != nil {
		return false, fmt.Errorf("pgstore: revoke device: %w", classify(err))
	}
	return tag.RowsAffected() == 1, nil
}

// TouchDevice records a use at at; last_used_at never goes back. It returns
// store.ErrNotFound for an unknown device.
func (db *DB) TouchDevice(ctx context.Context, id string, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE devices SET last_used_at = GREATEST(COALESCE(last_used_at, $2), $2)
		WHERE id = $1`, id, dbutil.Time(at))
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("pgstore: touch device: %w", classify(err))
	}
	return nil
}

// ResyncDevice records drift and moves last_step to step if step is
// greater; it reports false, changing nothing, otherwise. It returns
// store.ErrNotFound for an unknown device.
func (db *DB) ResyncDevice(ctx context.Context, id string, drift, step int64) (bool, error) {
	ok, err := db.advance(ctx, `UPDATE devices SET last_step = $2, drift = $3 WHERE id = $1 AND last_step < $2`, id, step, drift)
	if err != nil {
		return false, fmt.Errorf("pgstore: resync device: %w", err)
	}
	return ok, nil
}

// AdvanceStep sets the device's last used step to step if and only if step
// is greater, and reports false (a replay) otherwise. It returns an error
// matching store.ErrNotFound and mfa.ErrNotFound for an unknown device.
func (db *DB) AdvanceStep(ctx context.Context, deviceID string, step int64) (bool, error) {
	ok, err := db.advance(ctx, `UPDATE devices SET last_step = $2 WHERE id = $1 AND last_step < $2`, deviceID, step)
	if err != nil {
		return false, fmt.Errorf("pgstore: advance step: %w", err)
	}
	return ok, nil
}

// advance runs a compare-and-set update of one device.
func (db *DB) advance(ctx context.Context, sql string, args ...any) (bool, error) {
	tag, err := db.pool.Exec(ctx, sql, args...)
	if err != nil {
		return false, classify(err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	if err := db.exists(ctx, "devices", "id", args[0], nil); err != nil {
		if err == store.ErrNotFound {
			return false, fmt.Errorf("%w (%w)", store.ErrNotFound, mfa.ErrNotFound)
		}
		return false, err
	}
	return false, nil
}

// exists returns ifExists when table has a row with column = value, and
// store.ErrNotFound when it has none.
func (db *DB) exists(ctx context.Context, table, column string, value any, ifExists error) error {
	var one int
	err := db.pool.QueryRow(ctx, "SELECT 1 FROM "+table+" WHERE "+column+" = $1", value).Scan(&one)
	if err != nil {
		return classify(err)
	}
	return ifExists
}

// GetProtection returns the account's protection, the zero Protection when
// it was never set.
func (db *DB) GetProtection(ctx context.Context, accountID string) (store.Protection, error) {
	var p store.Protection
	err := db.pool.QueryRow(ctx, "SELECT login, operation, updated_at FROM protection WHERE account_id = $1", accountID).
		Scan(&p.Login, &p.Operation, &p.UpdatedAt)
	switch err = classify(err); err {
	case nil:
		p.UpdatedAt = p.UpdatedAt.UTC()
		return p, nil
	case store.ErrNotFound:
		return store.Protection{}, nil
	}
	return store.Protection{}, fmt.Errorf("pgstore: get protection: %w", err)
}

// SetProtection stores the account's protection, updated now, and returns it.
func (db *DB) SetProtection(ctx context.Context, accountID string, p store.Protection) (store.Protection, error) {
	p.UpdatedAt = dbutil.Now()
	_, err := db.pool.Exec(ctx, `INSERT INTO protection (account_id, login, operation, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id) DO UPDATE SET login = excluded.login, operation = excluded.operation, updated_at = excluded.updated_at`,
		accountID, p.Login, p.Operation, p.UpdatedAt)
	if err != nil {
		return store.Protection{}, fmt.Errorf("pgstore: set protection: %w", classify(err))
	}
	return p, nil
}

// ImportTokens adds the batch as unassigned tokens, all or nothing, and
// returns how many it added. It returns a *store.SerialConflictError
// (matching store.ErrConflict) listing the serials already present or
// repeated in the batch.
func (db *DB) ImportTokens(ctx context.Context, batch []store.HardwareToken) (int, error) {
	if dup := dbutil.DuplicateSerials(batch); len(dup) > 0 {
		return 0, fmt.Errorf("pgstore: import tokens: %w", &store.SerialConflictError{Serials: dup})
	}
	if len(batch) == 0 {
		return 0, nil
	}
	now := dbutil.Now()
	serials := make([]string, len(batch))
	for i, t := range batch {
		serials[i] = t.Serial
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// Imports are rare: serialise them so the check below stays true
		// until the commit. Readers and binds are not blocked.
		if _, err := tx.Exec(ctx, "LOCK TABLE hardware_tokens IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, "SELECT serial FROM hardware_tokens WHERE serial = ANY($1) ORDER BY serial", serials)
		clash, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(clash) > 0 {
			return &store.SerialConflictError{Serials: clash}
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"hardware_tokens"},
			[]string{"serial", "seed_key_id", "sealed_seed", "algorithm", "digits", "period_seconds", "state", "batch_id", "imported_at"},
			pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
				t := batch[i]
				return []any{t.Serial, t.Seed.KeyID, t.Seed.Ciphertext, t.Algorithm, int32(t.Digits), int32(t.PeriodSeconds),
					string(store.TokenUnassigned), t.BatchID, now}, nil
			}))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: import tokens: %w", err)
	}
	return len(batch), nil
}

// GetToken returns the token or store.ErrNotFound.
func (db *DB) GetToken(ctx context.Context, serial string) (store.HardwareToken, error) {
	var t store.HardwareToken
	var account, device *string
	var bound *time.Time
	err := db.pool.QueryRow(ctx, `SELECT serial, seed_key_id, sealed_seed, algorithm, digits, period_seconds, state,
		account_id, device_id, batch_id, imported_at, bound_at FROM hardware_tokens WHERE serial = $1`, serial).
		Scan(&t.Serial, &t.Seed.KeyID, &t.Seed.Ciphertext, &t.Algorithm, &t.Digits, &t.PeriodSeconds, &t.State,
			&account, &device, &t.BatchID, &t.ImportedAt, &bound)
	if err != nil {
		return store.HardwareToken{}, fmt.Errorf("pgstore: get token: %w", classify(err))
	}
	if account != nil {
		t.AccountID = *account
	}
	if device != nil {
		t.DeviceID = *device
	}
	t.ImportedAt, t.BoundAt = t.ImportedAt.UTC(), utc(bound)
	return t, nil
}

// AssignToken binds an unassigned token to the account's device at at
// (compare-and-set); assigning it again to the same account and device
// succeeds. It returns store.ErrNotFound for an unknown serial and
// store.ErrConflict when the token is bound elsewhere or revoked.
func (db *DB) AssignToken(ctx context.Context, serial, accountID, deviceID string, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE hardware_tokens SET state = 'bound', account_id = $2, device_id = $3, bound_at = $4
		WHERE serial = $1 AND state = 'unassigned'`, serial, accountID, deviceID, dbutil.Time(at))
	if err == nil && tag.RowsAffected() == 0 {
		var same bool
		err = db.pool.QueryRow(ctx, `SELECT COALESCE(state = 'bound' AND account_id = $2 AND device_id = $3, false)
			FROM hardware_tokens WHERE serial = $1`, serial, accountID, deviceID).Scan(&same)
		if err == nil && !same {
			err = store.ErrConflict
		}
	}
	if err != nil {
		return fmt.Errorf("pgstore: assign token: %w", classify(err))
	}
	return nil
}

// ReleaseToken returns a token bound to deviceID to the unassigned pool. It
// reports false when the token is not bound to deviceID, and returns
// store.ErrNotFound for an unknown serial.
func (db *DB) ReleaseToken(ctx context.Context, serial, deviceID string) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE hardware_tokens SET state = 'unassigned', account_id = NULL, device_id = NULL, bound_at = NULL
		WHERE serial = $1 AND state = 'bound' AND device_id = $2`, serial, deviceID)
	if err == nil && tag.RowsAffected() == 0 {
		err = db.exists(ctx, "hardware_tokens", "serial", serial, nil)
	}
	if err != nil {
		return false, fmt.Errorf("pgstore: release token: %w", classify(err))
	}
	return tag.RowsAffected() == 1, nil
}

const challengeColumns = "id, account_id, purpose, code_hash, created_at, expires_at, tries_left, used_at"

func scanChallenge(row pgx.Row) (store.SMSChallenge, error) {
	var c store.SMSChallenge
	var used *time.Time
	if err := row.Scan(&c.ID, &c.AccountID, &c.Purpose, &c.CodeHash, &c.CreatedAt, &c.ExpiresAt, &c.TriesLeft, &used); err != nil {
		return store.SMSChallenge{}, classify(err)
	}
	c.CreatedAt, c.ExpiresAt, c.UsedAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC(), utc(used)
	return c, nil
}

// CreateSMSChallenge stores c with its ID (assigned when empty) and
// CreatedAt, and returns it. It returns store.ErrConflict when the ID exists.
func (db *DB) CreateSMSChallenge(ctx context.Context, c store.SMSChallenge) (store.SMSChallenge, error) {
	if c.ID == "" {
		c.ID = dbutil.NewID("sms")
	}
	out, err := scanChallenge(db.pool.QueryRow(ctx, `INSERT INTO sms_challenges (`+challengeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) RETURNING `+challengeColumns,
		c.ID, c.AccountID, c.Purpose, c.CodeHash, dbutil.Now(), dbutil.Time(c.ExpiresAt), c.TriesLeft))
	if err != nil {
		return store.SMSChallenge{}, fmt.Errorf("pgstore: create sms challenge: %w", err)
	}
	return out, nil
}

// AttemptSMSChallenge spends one try of the challenge at now and returns it.
// It returns store.ErrNotFound, store.ErrChallengeUsed,
// store.ErrChallengeExpired or store.ErrChallengeExhausted, spending
// nothing, when the challenge cannot be tried.
func (db *DB) AttemptSMSChallenge(ctx context.Context, id string, now time.Time) (store.SMSChallenge, error) {
	now = dbutil.Time(now)
	c, err := scanChallenge(db.pool.QueryRow(ctx, `UPDATE sms_challenges SET tries_left = tries_left - 1
		WHERE id = $1 AND used_at IS NULL AND expires_at > $2 AND tries_left > 0 RETURNING `+challengeColumns, id, now))
	if err == store.ErrNotFound {
		err = db.challengeRefusal(ctx, id, now)
	}
	if err != nil {
		return store.SMSChallenge{}, fmt.Errorf("pgstore: attempt sms challenge: %w", err)
	}
	return c, nil
}

// UseSMSChallenge marks the challenge used at now, once. It returns
// store.ErrNotFound, store.ErrChallengeUsed or store.ErrChallengeExpired.
func (db *DB) UseSMSChallenge(ctx context.Context, id string, now time.Time) error {
	now = dbutil.Time(now)
	tag, err := db.pool.Exec(ctx, `UPDATE sms_challenges SET used_at = $2
		WHERE id = $1 AND used_at IS NULL AND expires_at > $2`, id, now)
	if err == nil && tag.RowsAffected() == 0 {
		// Running out of tries does not stop the use of a try that matched.
		if err = db.challengeRefusal(ctx, id, now); err == nil || err == store.ErrChallengeExhausted {
			err = store.ErrConflict
		}
	}
	if err != nil {
		return fmt.Errorf("pgstore: use sms challenge: %w", classify(err))
	}
	return nil
}

// challengeRefusal says why challenge id cannot be tried at now.
func (db *DB) challengeRefusal(ctx context.Context, id string, now time.Time) error {
	c, err := scanChallenge(db.pool.QueryRow(ctx, "SELECT "+challengeColumns+" FROM sms_challenges WHERE id = $1", id))
	if err != nil {
		return err
	}
	return dbutil.ChallengeRefusal(c, now)
}

// ListSealed returns up to limit rows of table after afterID, in ID order
// (byte order, whatever the database's collation).
func (db *DB) ListSealed(ctx context.Context, table store.SealedTable, afterID string, limit int) ([]store.SealedRow, error) {
	keyCol, sealedCol, idCol, ok := dbutil.SealedColumns(table)
	if !ok {
		return nil, fmt.Errorf("pgstore: list sealed: unknown table %q", table)
	}
	rows, _ := db.pool.Query(ctx, "SELECT "+idCol+", "+keyCol+", "+sealedCol+" FROM "+string(table)+
		" WHERE "+keyCol+" <> '' AND "+idCol+" COLLATE \"C\" > $1 ORDER BY "+idCol+" COLLATE \"C\" LIMIT $2", afterID, dbutil.Limit(limit))
	defer rows.Close()
	out := []store.SealedRow{}
	for rows.Next() {
		r := store.SealedRow{Table: table}
		if err := rows.Scan(&r.ID, &r.Sealed.KeyID, &r.Sealed.Ciphertext); err != nil {
			return nil, fmt.Errorf("pgstore: list sealed: %w", classify(err))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list sealed: %w", classify(err))
	}
	return out, nil
}

// Reseal replaces the sealed value of row id if its key id is still
// oldKeyID. It returns store.ErrNotFound for an unknown row and
// store.ErrConflict when the key id changed meanwhile.
func (db *DB) Reseal(ctx context.Context, table store.SealedTable, id, oldKeyID string, s mfa.Sealed) error {
	keyCol, sealedCol, idCol, ok := dbutil.SealedColumns(table)
	if !ok {
		return fmt.Errorf("pgstore: reseal: unknown table %q", table)
	}
	tag, err := db.pool.Exec(ctx, "UPDATE "+string(table)+" SET "+keyCol+" = $3, "+sealedCol+" = $4 WHERE "+
		idCol+" = $1 AND "+keyCol+" = $2", id, oldKeyID, s.KeyID, s.Ciphertext)
	if err == nil && tag.RowsAffected() == 0 {
		err = db.exists(ctx, string(table), idCol, id, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("pgstore: reseal: %w", classify(err))
	}
	return nil
}

// SpendAttempt counts one attempt against the account's failure budget
// under a row lock: when the budget is locked at now it returns the state
// and false without counting; otherwise it counts a failure, applies policy
// to the new count and returns the stored state and true.
func (db *DB) SpendAttempt(ctx context.Context, accountID string, now time.Time,
	policy func(failures int, now time.Time) (time.Time, bool)) (mfa.BudgetState, bool, error) {
	var st mfa.BudgetState
	var allowed bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// One statement creates the row or locks the existing one, so a
		// concurrent ResetBudget cannot leave nothing to lock between two steps.
		var locked *time.Time
		if err := tx.QueryRow(ctx, `INSERT INTO failure_budgets (account_id, failures, hard, updated_at)
			VALUES ($1, 0, false, $2)
			ON CONFLICT (account_id) DO UPDATE SET account_id = EXCLUDED.account_id
			RETURNING failures, locked_until, hard`, accountID, dbutil.Now()).Scan(&st.Failures, &locked, &st.Hard); err != nil {
			return err
		}
		st.LockedUntil = utc(locked)
		if st.Locked(now) {
			return nil
		}
		allowed = true
		st.Failures++
		until, hard := policy(st.Failures, now)
		st.LockedUntil, st.Hard = dbutil.Time(until), hard
		_, err := tx.Exec(ctx, `UPDATE failure_budgets SET failures = $2, locked_until = $3, hard = $4, updated_at = $5
			WHERE account_id = $1`, accountID, st.Failures, nullTime(st.LockedUntil), st.Hard, dbutil.Now())
		return err
	})
	if err != nil {
		return mfa.BudgetState{}, false, fmt.Errorf("pgstore: spend attempt: %w", err)
	}
	return st, allowed, nil
}

// ResetBudget clears the account's failures and any lock.
func (db *DB) ResetBudget(ctx context.Context, accountID string) error {
	if _, err := db.pool.Exec(ctx, `UPDATE failure_budgets SET failures = 0, locked_until = NULL, hard = false, updated_at = $2
		WHERE account_id = $1 AND (failures <> 0 OR locked_until IS NOT NULL OR hard)`, accountID, dbutil.Now()); err != nil {
		return fmt.Errorf("pgstore: reset budget: %w", classify(err))
	}
	return nil
}
