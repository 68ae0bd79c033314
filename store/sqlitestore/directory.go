package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// PutAccount creates or replaces the directory entry a.ID and its logins,
// keeping CreatedAt on replace. It reports whether the entry was created,
// and returns store.ErrConflict when a login belongs to another account.
func (db *DB) PutAccount(ctx context.Context, a store.Account) (bool, error) {
	now := micros(dbutil.Now())
	var created bool
	a = a.WithDefaults()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, type, bound_phone, email, real_name_verified, real_name,
			id_number, company_name, company_reg_number, login_method, locale, time_zone, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			a.ID, string(a.Type), a.BoundPhone, a.Email, a.RealName.Verified, a.RealName.Name, a.RealName.IDNumber,
			a.Company.Name, a.Company.RegNumber, string(a.LoginMethod), a.Locale, a.TimeZone, now, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		created = n == 1
		if !created {
			if _, err := tx.ExecContext(ctx, `UPDATE accounts SET type = ?, bound_phone = ?, email = ?,
				real_name_verified = ?, real_name = ?, id_number = ?, company_name = ?,
				company_reg_number = ?, login_method = ?, locale = ?, time_zone = ?, updated_at = ? WHERE id = ?`,
				string(a.Type), a.BoundPhone, a.Email, a.RealName.Verified, a.RealName.Name, a.RealName.IDNumber,
				a.Company.Name, a.Company.RegNumber, string(a.LoginMethod), a.Locale, a.TimeZone, now, a.ID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM account_logins WHERE account_id = ?", a.ID); err != nil {
				return err
			}
		}
		for i, l := range dbutil.Logins(a.Logins) {
			if _, err := tx.ExecContext(ctx, "INSERT INTO account_logins (kind, login_id, account_id, position) VALUES (?, ?, ?, ?)",
				string(l.Kind), l.ID, a.ID, i); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlitestore: put account: %w", err)
	}
	return created, nil
}

// GetAccount returns the entry or store.ErrNotFound.
func (db *DB) GetAccount(ctx context.Context, id string) (store.Account, error) {
	a, err := db.account(ctx, "a.id = ?", id)
	if err != nil {
		return store.Account{}, fmt.Errorf("sqlitestore: get account: %w", err)
	}
	return a, nil
}

// FindAccountByLogin returns the account with the login (kind, id) or
// store.ErrNotFound.
func (db *DB) FindAccountByLogin(ctx context.Context, kind store.LoginKind, id string) (store.Account, error) {
	a, err := db.account(ctx,
		"a.id = (SELECT account_id FROM account_logins WHERE kind = ? AND login_id = ?)", string(kind), id)
	if err != nil {
		return store.Account{}, fmt.Errorf("sqlitestore: find account by login: %w", err)
	}
	return a, nil
}

// account loads the one account matching where, with its logins, in one
// statement so the account and its logins agree.
func (db *DB) account(ctx context.Context, where string, args ...any) (store.Account, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT a.id, a.type, a.bound_phone, a.email, a.real_name_verified, a.real_name,
		a.id_number, a.company_name, a.company_reg_number, a.login_method, a.locale, a.time_zone, a.created_at, a.updated_at,
		l.kind, l.login_id
		FROM accounts a LEFT JOIN account_logins l ON l.account_id = a.id
		WHERE `+where+` ORDER BY l.position`, args...)
	if err != nil {
		return store.Account{}, classify(err)
	}
	defer rows.Close()
	var a store.Account
	found := false
	for rows.Next() {
		var kind, loginID sql.NullString
		var created, updated sql.NullInt64
		if err := rows.Scan(&a.ID, &a.Type, &a.BoundPhone, &a.Email, &a.RealName.Verified, &a.RealName.Name,
			&a.RealName.IDNumber, &a.Company.Name, &a.Company.RegNumber, &a.LoginMethod, &a.Locale, &a.TimeZone, &created, &updated,
			&kind, &loginID); err != nil {
			return store.Account{}, classify(err)
		}
		found = true
		a.CreatedAt, a.UpdatedAt = fromMicros(created), fromMicros(updated)
		if kind.Valid {
			a.Logins = append(a.Logins, store.Login{Kind: store.LoginKind(kind.String), ID: loginID.String})
		}
	}
	if err := rows.Err(); err != nil {
		return store.Account{}, classify(err)
	}
	if !found {
		return store.Account{}, store.ErrNotFound
	}
	if a.Logins == nil {
		a.Logins = []store.Login{}
	}
	return a, nil
}

// AppendAudit appends e, assigning its ID and, when zero, At, and returns it.
func (db *DB) AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error) {
	e.At = dbutil.Time(e.At)
	if e.At.IsZero() {
		e.At = dbutil.Now()
	}
	details, err := dbutil.MarshalMap(e.Details)
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("sqlitestore: append audit: %w", err)
	}
	err = db.w.QueryRowContext(ctx, `INSERT INTO audit_log (at, actor, action, outcome, account_id, subject, remote_ip, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		micros(e.At), e.Actor, e.Action, e.Outcome, e.AccountID, e.Subject, e.RemoteIP, text(details)).Scan(&e.ID)
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("sqlitestore: append audit: %w", classify(err))
	}
	return e, nil
}

// ListAudit returns the entries matching f, newest first.
func (db *DB) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, at, actor, action, outcome, account_id, subject, remote_ip, details
		FROM audit_log
		WHERE (?1 = '' OR account_id = ?1) AND (?2 = '' OR subject = ?2) AND (?3 = 0 OR id < ?3)
		ORDER BY id DESC LIMIT ?4`, f.AccountID, f.Subject, f.BeforeID, dbutil.Limit(f.Limit))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list audit: %w", classify(err))
	}
	defer rows.Close()
	out := []store.AuditEntry{}
	for rows.Next() {
		var e store.AuditEntry
		var at int64
		var details sql.NullString
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Outcome, &e.AccountID, &e.Subject, &e.RemoteIP, &details); err != nil {
			return nil, fmt.Errorf("sqlitestore: list audit: %w", classify(err))
		}
		e.At = fromMicros(sql.NullInt64{Int64: at, Valid: true})
		if e.Details, err = dbutil.UnmarshalMap([]byte(details.String)); err != nil {
			return nil, fmt.Errorf("sqlitestore: list audit: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list audit: %w", classify(err))
	}
	return out, nil
}

// AddOutbox stores m, assigning its ID and, when zero, At, and returns it.
func (db *DB) AddOutbox(ctx context.Context, m store.OutboxMessage) (store.OutboxMessage, error) {
	m.At = dbutil.Time(m.At)
	if m.At.IsZero() {
		m.At = dbutil.Now()
	}
	data, err := dbutil.MarshalMap(m.Data)
	if err != nil {
		return store.OutboxMessage{}, fmt.Errorf("sqlitestore: add outbox: %w", err)
	}
	err = db.w.QueryRowContext(ctx, `INSERT INTO outbox (at, channel, to_addr, kind, body, data)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		micros(m.At), m.Channel, m.To, m.Kind, m.Body, text(data)).Scan(&m.ID)
	if err != nil {
		return store.OutboxMessage{}, fmt.Errorf("sqlitestore: add outbox: %w", classify(err))
	}
	return m, nil
}

// ListOutbox returns up to limit (0: 100, at most 1000) messages to the
// recipient, all recipients when to is empty, newest first.
func (db *DB) ListOutbox(ctx context.Context, to string, limit int) ([]store.OutboxMessage, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, at, channel, to_addr, kind, body, data FROM outbox
		WHERE (?1 = '' OR to_addr = ?1) ORDER BY id DESC LIMIT ?2`, to, dbutil.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list outbox: %w", classify(err))
	}
	defer rows.Close()
	out := []store.OutboxMessage{}
	for rows.Next() {
		var m store.OutboxMessage
		var at int64
		var data sql.NullString
		if err := rows.Scan(&m.ID, &at, &m.Channel, &m.To, &m.Kind, &m.Body, &data); err != nil {
			return nil, fmt.Errorf("sqlitestore: list outbox: %w", classify(err))
		}
		m.At = fromMicros(sql.NullInt64{Int64: at, Valid: true})
		if m.Data, err = dbutil.UnmarshalMap([]byte(data.String)); err != nil {
			return nil, fmt.Errorf("sqlitestore: list outbox: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list outbox: %w", classify(err))
	}
	return out, nil
}

// text returns JSON bytes as a TEXT value, NULL for nil.
func text(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}
