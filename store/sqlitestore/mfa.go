package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

const deviceColumns = `id, account_id, type, name, serial, secret_key_id, sealed_secret, algorithm, digits,
	period_seconds, last_step, drift, status, created_at, bound_at, last_used_at, revoked_at`

func scanDevice(row scanner) (store.Device, error) {
	var d store.Device
	var serial sql.NullString
	var created, bound, used, revoked sql.NullInt64
	err := row.Scan(&d.ID, &d.AccountID, &d.Type, &d.Name, &serial, &d.Secret.KeyID, &d.Secret.Ciphertext,
		&d.Algorithm, &d.Digits, &d.PeriodSeconds, &d.LastStep, &d.Drift, &d.Status, &created,
		&bound, &used, &revoked)
	if err != nil {
		return store.Device{}, classify(err)
	}
	d.Serial = serial.String
	d.CreatedAt, d.BoundAt, d.LastUsedAt, d.RevokedAt = fromMicros(created), fromMicros(bound), fromMicros(used), fromMicros(revoked)
	return d, nil
}

// CreateDevice stores d and returns it with its ID (assigned when empty),
// CreatedAt and, for an active device, BoundAt. It returns
// store.ErrConflict when the ID exists or the serial is on another live
// device.
func (db *DB) CreateDevice(ctx context.Context, d store.Device) (store.Device, error) {
	return createDevice(ctx, db.w, d)
}

// rowQuerier is the writer or a transaction on it.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
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
	row := q.QueryRowContext(ctx, `INSERT INTO devices (id, account_id, type, name, serial, secret_key_id, sealed_secret,
		algorithm, digits, period_seconds, last_step, drift, status, created_at, bound_at, last_used_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING `+deviceColumns,
		d.ID, d.AccountID, string(d.Type), d.Name, serial, d.Secret.KeyID, d.Secret.Ciphertext, d.Algorithm, d.Digits,
		d.PeriodSeconds, d.LastStep, d.Drift, string(d.Status), micros(d.CreatedAt), micros(dbutil.Time(d.BoundAt)),
		micros(dbutil.Time(d.LastUsedAt)), micros(dbutil.Time(d.RevokedAt)))
	out, err := scanDevice(row)
	if err != nil {
		return store.Device{}, fmt.Errorf("sqlitestore: create device: %w", err)
	}
	return out, nil
}

// GetDevice returns the device or store.ErrNotFound.
func (db *DB) GetDevice(ctx context.Context, id string) (store.Device, error) {
	d, err := scanDevice(db.r.QueryRowContext(ctx, "SELECT "+deviceColumns+" FROM devices WHERE id = ?", id))
	if err != nil {
		return store.Device{}, fmt.Errorf("sqlitestore: get device: %w", err)
	}
	return d, nil
}

// ListDevices returns the account's devices of every status, oldest first.
func (db *DB) ListDevices(ctx context.Context, accountID string) ([]store.Device, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+deviceColumns+" FROM devices WHERE account_id = ? ORDER BY created_at, id", accountID)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list devices: %w", classify(err))
	}
	defer rows.Close()
	out := []store.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: list devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list devices: %w", classify(err))
	}
	return out, nil
}

// ActivateDevice moves a pending device to active, bound at at, and returns
// it. It returns store.ErrNotFound, or store.ErrConflict when the device is
// not pending.
func (db *DB) ActivateDevice(ctx context.Context, id string, at time.Time) (store.Device, error) {
	d, err := scanDevice(db.w.QueryRowContext(ctx, `UPDATE devices SET status = 'active', bound_at = ?
		WHERE id = ? AND status = 'pending' RETURNING `+deviceColumns, micros(dbutil.Time(at)), id))
	if err == store.ErrNotFound {
		err = db.exists(ctx, "devices", "id", id, store.ErrConflict)
	}
	if err != nil {
		return store.Device{}, fmt.Errorf("sqlitestore: activate device: %w", err)
	}
	return d, nil
}

// RevokeDevice revokes the device at at. It reports false when it was
// already revoked and returns store.ErrNotFound for an unknown device.
func (db *DB) RevokeDevice(ctx context.Context, id string, at time.Time) (bool, error) {
	n, err := db.update(ctx, `UPDATE devices SET status = 'revoked', revoked_at = ?
		WHERE id = ? AND status <> 'revoked'`, micros(dbutil.Time(at)), id)
	if err == nil && n == 0 {
		err = db.exists(ctx, "devices", "id", id, nil)
	}
	if err != nil {
		return false, fmt.Errorf("sqlitestore: revoke device: %w", err)
	}
	return n == 1, nil
}

// TouchDevice records a use at at; last_used_at never goes back. It returns
// store.ErrNotFound for an unknown device.
func (db *DB) TouchDevice(ctx context.Context, id string, at time.Time) error {
	n, err := db.update(ctx, `UPDATE devices SET last_used_at = max(coalesce(last_used_at, ?1), ?1) WHERE id = ?2`,
		micros(dbutil.Time(at)), id)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: touch device: %w", err)
	}
	return nil
}

// ResyncDevice records drift and moves last_step to step if step is
// greater; it reports false, changing nothing, otherwise. It returns
// store.ErrNotFound for an unknown device.
func (db *DB) ResyncDevice(ctx context.Context, id string, drift, step int64) (bool, error) {
	ok, err := db.advance(ctx, id, `UPDATE devices SET last_step = ?2, drift = ?3 WHERE id = ?1 AND last_step < ?2`, id, step, drift)
	if err != nil {
		return false, fmt.Errorf("sqlitestore: resync device: %w", err)
	}
	return ok, nil
}

// AdvanceStep sets the device's last used step to step if and only if step
// is greater, and reports false (a replay) otherwise. It returns an error
// matching store.ErrNotFound and mfa.ErrNotFound for an unknown device.
func (db *DB) AdvanceStep(ctx context.Context, deviceID string, step int64) (bool, error) {
	ok, err := db.advance(ctx, deviceID, `UPDATE devices SET last_step = ?2 WHERE id = ?1 AND last_step < ?2`, deviceID, step)
	if err != nil {
		return false, fmt.Errorf("sqlitestore: advance step: %w", err)
	}
	return ok, nil
}

// advance runs a compare-and-set update of device id.
func (db *DB) advance(ctx context.Context, id, query string, args ...any) (bool, error) {
	n, err := db.update(ctx, query, args...)
	if err != nil {
		return false, err
	}
	if n == 1 {
		return true, nil
	}
	if err := db.exists(ctx, "devices", "id", id, nil); err != nil {
		if err == store.ErrNotFound {
			return false, fmt.Errorf("%w (%w)", store.ErrNotFound, mfa.ErrNotFound)
		}
		return false, err
	}
	return false, nil
}

// update runs a write statement and returns the number of rows it changed.
func (db *DB) update(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := db.w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, classify(err)
	}
	n, err := res.RowsAffected()
	return n, classify(err)
}

// exists returns ifExists when table has a row with column = value, and
// store.ErrNotFound when it has none. It reads through the writer so it
// sees what the writer just did.
func (db *DB) exists(ctx context.Context, table, column string, value any, ifExists error) error {
	var one int
	err := db.w.QueryRowContext(ctx, "SELECT 1 FROM "+table+" WHERE "+column+" = ?", value).Scan(&one)
	if err != nil {
		return classify(err)
	}
	return ifExists
}

// GetProtection returns the account's protection, the zero Protection when
// it was never set.
func (db *DB) GetProtection(ctx context.Context, accountID string) (store.Protection, error) {
	var p store.Protection
	var updated int64
	err := db.r.QueryRowContext(ctx, "SELECT login, operation, updated_at FROM protection WHERE account_id = ?", accountID).
		Scan(&p.Login, &p.Operation, &updated)
	switch err = classify(err); err {
	case nil:
		p.UpdatedAt = fromMicros(sql.NullInt64{Int64: updated, Valid: true})
		return p, nil
	case store.ErrNotFound:
		return store.Protection{}, nil
	}
	return store.Protection{}, fmt.Errorf("sqlitestore: get protection: %w", err)
}

// SetProtection stores the account's protection, updated now, and returns it.
func (db *DB) SetProtection(ctx context.Context, accountID string, p store.Protection) (store.Protection, error) {
	p.UpdatedAt = dbutil.Now()
	_, err := db.w.ExecContext(ctx, `INSERT INTO protection (account_id, login, operation, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (account_id) DO UPDATE SET login = excluded.login, operation = excluded.operation, updated_at = excluded.updated_at`,
		accountID, p.Login, p.Operation, micros(p.UpdatedAt))
	if err != nil {
		return store.Protection{}, fmt.Errorf("sqlitestore: set protection: %w", classify(err))
	}
	return p, nil
}

// ImportTokens adds the batch as unassigned tokens, all or nothing, and
// returns how many it added. It returns a *store.SerialConflictError
// (matching store.ErrConflict) listing the serials already present or
// repeated in the batch.
func (db *DB) ImportTokens(ctx context.Context, batch []store.HardwareToken) (int, error) {
	if dup := dbutil.DuplicateSerials(batch); len(dup) > 0 {
		return 0, fmt.Errorf("sqlitestore: import tokens: %w", &store.SerialConflictError{Serials: dup})
	}
	if len(batch) == 0 {
		return 0, nil
	}
	now := micros(dbutil.Now())
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var clash []string
		const chunk = 500
		for i := 0; i < len(batch); i += chunk {
			part := batch[i:min(i+chunk, len(batch))]
			args := make([]any, len(part))
			for j, t := range part {
				args[j] = t.Serial
			}
			rows, err := tx.QueryContext(ctx, "SELECT serial FROM hardware_tokens WHERE serial IN (?"+
				strings.Repeat(", ?", len(part)-1)+")", args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					rows.Close()
					return err
				}
				clash = append(clash, s)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		if len(clash) > 0 {
			slices.Sort(clash)
			return &store.SerialConflictError{Serials: clash}
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO hardware_tokens (serial, seed_key_id, sealed_seed, algorithm,
			digits, period_seconds, state, batch_id, imported_at) VALUES (?, ?, ?, ?, ?, ?, 'unassigned', ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, t := range batch {
			if _, err := stmt.ExecContext(ctx, t.Serial, t.Seed.KeyID, t.Seed.Ciphertext, t.Algorithm, t.Digits,
				t.PeriodSeconds, t.BatchID, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: import tokens: %w", err)
	}
	return len(batch), nil
}

// GetToken returns the token or store.ErrNotFound.
func (db *DB) GetToken(ctx context.Context, serial string) (store.HardwareToken, error) {
	var t store.HardwareToken
	var account, device sql.NullString
	var imported, bound sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT serial, seed_key_id, sealed_seed, algorithm, digits, period_seconds, state,
		account_id, device_id, batch_id, imported_at, bound_at FROM hardware_tokens WHERE serial = ?`, serial).
		Scan(&t.Serial, &t.Seed.KeyID, &t.Seed.Ciphertext, &t.Algorithm, &t.Digits, &t.PeriodSeconds, &t.State,
			&account, &device, &t.BatchID, &imported, &bound)
	if err != nil {
		return store.HardwareToken{}, fmt.Errorf("sqlitestore: get token: %w", classify(err))
	}
	t.AccountID, t.DeviceID = account.String, device.String
	t.ImportedAt, t.BoundAt = fromMicros(imported), fromMicros(bound)
	return t, nil
}

// AssignToken binds an unassigned token to the account's device at at
// (compare-and-set); assigning it again to the same account and device
// succeeds. It returns store.ErrNotFound for an unknown serial and
// store.ErrConflict when the token is bound elsewhere or revoked.
func (db *DB) AssignToken(ctx context.Context, serial, accountID, deviceID string, at time.Time) error {
	n, err := db.update(ctx, `UPDATE hardware_tokens SET state = 'bound', account_id = ?, device_id = ?, bound_at = ?
		WHERE serial = ? AND state = 'unassigned'`, accountID, deviceID, micros(dbutil.Time(at)), serial)
	if err == nil && n == 0 {
		var same bool
		err = db.w.QueryRowContext(ctx, `SELECT coalesce(state = 'bound' AND account_id = ? AND device_id = ?, 0)
			FROM hardware_tokens WHERE serial = ?`, accountID, deviceID, serial).Scan(&same)
		if err == nil && !same {
			err = store.ErrConflict
		}
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: assign token: %w", classify(err))
	}
	return nil
}

// ReleaseToken returns a token bound to deviceID to the unassigned pool. It
// reports false when the token is not bound to deviceID, and returns
// store.ErrNotFound for an unknown serial.
func (db *DB) ReleaseToken(ctx context.Context, serial, deviceID string) (bool, error) {
	n, err := db.update(ctx, `UPDATE hardware_tokens SET state = 'unassigned', account_id = NULL, device_id = NULL, bound_at = NULL
		WHERE serial = ? AND state = 'bound' AND device_id = ?`, serial, deviceID)
	if err == nil && n == 0 {
		err = db.exists(ctx, "hardware_tokens", "serial", serial, nil)
	}
	if err != nil {
		return false, fmt.Errorf("sqlitestore: release token: %w", err)
	}
	return n == 1, nil
}

const challengeColumns = "id, account_id, purpose, code_hash, created_at, expires_at, tries_left, used_at"

func scanChallenge(row scanner) (store.SMSChallenge, error) {
	var c store.SMSChallenge
	var created, expires, used sql.NullInt64
	if err := row.Scan(&c.ID, &c.AccountID, &c.Purpose, &c.CodeHash, &created, &expires, &c.TriesLeft, &used); err != nil {
		return store.SMSChallenge{}, classify(err)
	}
	c.CreatedAt, c.ExpiresAt, c.UsedAt = fromMicros(created), fromMicros(expires), fromMicros(used)
	return c, nil
}

// CreateSMSChallenge stores c with its ID (assigned when empty) and
// CreatedAt, and returns it. It returns store.ErrConflict when the ID exists.
func (db *DB) CreateSMSChallenge(ctx context.Context, c store.SMSChallenge) (store.SMSChallenge, error) {
	if c.ID == "" {
		c.ID = dbutil.NewID("sms")
	}
	out, err := scanChallenge(db.w.QueryRowContext(ctx, `INSERT INTO sms_challenges (`+challengeColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, NULL) RETURNING `+challengeColumns,
		c.ID, c.AccountID, c.Purpose, c.CodeHash, micros(dbutil.Now()), micros(dbutil.Time(c.ExpiresAt)), c.TriesLeft))
	if err != nil {
		return store.SMSChallenge{}, fmt.Errorf("sqlitestore: create sms challenge: %w", err)
	}
	return out, nil
}

// AttemptSMSChallenge spends one try of the challenge at now and returns it.
// It returns store.ErrNotFound, store.ErrChallengeUsed,
// store.ErrChallengeExpired or store.ErrChallengeExhausted, spending
// nothing, when the challenge cannot be tried.
func (db *DB) AttemptSMSChallenge(ctx context.Context, id string, now time.Time) (store.SMSChallenge, error) {
	now = dbutil.Time(now)
	c, err := scanChallenge(db.w.QueryRowContext(ctx, `UPDATE sms_challenges SET tries_left = tries_left - 1
		WHERE id = ? AND used_at IS NULL AND expires_at > ? AND tries_left > 0 RETURNING `+challengeColumns, id, micros(now)))
	if err == store.ErrNotFound {
		err = db.challengeRefusal(ctx, id, now)
	}
	if err != nil {
		return store.SMSChallenge{}, fmt.Errorf("sqlitestore: attempt sms challenge: %w", err)
	}
	return c, nil
}

// UseSMSChallenge marks the challenge used at now, once. It returns
// store.ErrNotFound, store.ErrChallengeUsed or store.ErrChallengeExpired.
func (db *DB) UseSMSChallenge(ctx context.Context, id string, now time.Time) error {
	now = dbutil.Time(now)
	n, err := db.update(ctx, `UPDATE sms_challenges SET used_at = ?1
		WHERE id = ?2 AND used_at IS NULL AND expires_at > ?1`, micros(now), id)
	if err == nil && n == 0 {
		// Running out of tries does not stop the use of a try that matched.
		if err = db.challengeRefusal(ctx, id, now); err == nil || err == store.ErrChallengeExhausted {
			err = store.ErrConflict
		}
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: use sms challenge: %w", err)
	}
	return nil
}

// challengeRefusal says why challenge id cannot be tried at now.
func (db *DB) challengeRefusal(ctx context.Context, id string, now time.Time) error {
	c, err := scanChallenge(db.w.QueryRowContext(ctx, "SELECT "+challengeColumns+" FROM sms_challenges WHERE id = ?", id))
	if err != nil {
		return err
	}
	return dbutil.ChallengeRefusal(c, now)
}

// ListSealed returns up to limit rows of table after afterID, in ID order.
func (db *DB) ListSealed(ctx context.Context, table store.SealedTable, afterID string, limit int) ([]store.SealedRow, error) {
	keyCol, sealedCol, idCol, ok := dbutil.SealedColumns(table)
	if !ok {
		return nil, fmt.Errorf("sqlitestore: list sealed: unknown table %q", table)
	}
	rows, err := db.r.QueryContext(ctx, "SELECT "+idCol+", "+keyCol+", "+sealedCol+" FROM "+string(table)+
		" WHERE "+keyCol+" <> '' AND "+idCol+" > ? ORDER BY "+idCol+" LIMIT ?", afterID, dbutil.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list sealed: %w", classify(err))
	}
	defer rows.Close()
	out := []store.SealedRow{}
	for rows.Next() {
		r := store.SealedRow{Table: table}
		if err := rows.Scan(&r.ID, &r.Sealed.KeyID, &r.Sealed.Ciphertext); err != nil {
			return nil, fmt.Errorf("sqlitestore: list sealed: %w", classify(err))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list sealed: %w", classify(err))
	}
	return out, nil
}

// Reseal replaces the sealed value of row id if its key id is still
// oldKeyID. It returns store.ErrNotFound for an unknown row and
// store.ErrConflict when the key id changed meanwhile.
func (db *DB) Reseal(ctx context.Context, table store.SealedTable, id, oldKeyID string, s mfa.Sealed) error {
	keyCol, sealedCol, idCol, ok := dbutil.SealedColumns(table)
	if !ok {
		return fmt.Errorf("sqlitestore: reseal: unknown table %q", table)
	}
	n, err := db.update(ctx, "UPDATE "+string(table)+" SET "+keyCol+" = ?, "+sealedCol+" = ? WHERE "+
		idCol+" = ? AND "+keyCol+" = ?", s.KeyID, s.Ciphertext, id, oldKeyID)
	if err == nil && n == 0 {
		err = db.exists(ctx, string(table), idCol, id, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: reseal: %w", err)
	}
	return nil
}

// SpendAttempt counts one attempt against the account's failure budget in
// an IMMEDIATE transaction: when the budget is locked at now it returns the
// state and false without counting; otherwise it counts a failure, applies
// policy to the new count and returns the stored state and true.
func (db *DB) SpendAttempt(ctx context.Context, accountID string, now time.Time,
	policy func(failures int, now time.Time) (time.Time, bool)) (mfa.BudgetState, bool, error) {
	var st mfa.BudgetState
	var allowed bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var locked sql.NullInt64
		err := tx.QueryRowContext(ctx, "SELECT failures, locked_until, hard FROM failure_budgets WHERE account_id = ?",
			accountID).Scan(&st.Failures, &locked, &st.Hard)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		st.LockedUntil = fromMicros(locked)
		if st.Locked(now) {
			return nil
		}
		allowed = true
		st.Failures++
		until, hard := policy(st.Failures, now)
		st.LockedUntil, st.Hard = dbutil.Time(until), hard
		_, err = tx.ExecContext(ctx, `INSERT INTO failure_budgets (account_id, failures, locked_until, hard, updated_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET failures = excluded.failures,
			locked_until = excluded.locked_until, hard = excluded.hard, updated_at = excluded.updated_at`,
			accountID, st.Failures, micros(st.LockedUntil), st.Hard, micros(dbutil.Now()))
		return err
	})
	if err != nil {
		return mfa.BudgetState{}, false, fmt.Errorf("sqlitestore: spend attempt: %w", err)
	}
	return st, allowed, nil
}

// ResetBudget clears the account's failures and any lock.
func (db *DB) ResetBudget(ctx context.Context, accountID string) error {
	if _, err := db.w.ExecContext(ctx, "DELETE FROM failure_budgets WHERE account_id = ?", accountID); err != nil {
		return fmt.Errorf("sqlitestore: reset budget: %w", classify(err))
	}
	return nil
}
