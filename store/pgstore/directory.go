package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

// PutAccount creates or replaces the directory entry a.ID and its logins,
// keeping CreatedAt on replace. It reports whether the entry was created,
// and returns store.ErrConflict when a login belongs to another account.
func (db *DB) PutAccount(ctx context.Context, a store.Account) (bool, error) {
	now := dbutil.Now()
	var created bool
	a = a.WithDefaults()
	err := db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO accounts (id, type, bound_phone, email, real_name_verified, real_name,
			id_number, company_name, company_reg_number, login_method, locale, time_zone, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $13, $11, $11)
			ON CONFLICT (id) DO NOTHING`,
			a.ID, a.Type, a.BoundPhone, a.Email, a.RealName.Verified, a.RealName.Name, a.RealName.IDNumber,
			a.Company.Name, a.Company.RegNumber, a.LoginMethod, now, a.Locale, a.TimeZone)
		if err != nil {
			return err
		}
		created = tag.RowsAffected() == 1
		if !created {
			if _, err := tx.Exec(ctx, `UPDATE accounts SET type = $2, bound_phone = $3, email = $4,
				real_name_verified = $5, real_name = $6, id_number = $7, company_name = $8,
				company_reg_number = $9, login_method = $10, updated_at = $11, locale = $12, time_zone = $13 WHERE id = $1`,
				a.ID, a.Type, a.BoundPhone, a.Email, a.RealName.Verified, a.RealName.Name, a.RealName.IDNumber,
				a.Company.Name, a.Company.RegNumber, a.LoginMethod, now, a.Locale, a.TimeZone); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "DELETE FROM account_logins WHERE account_id = $1", a.ID); err != nil {
				return err
			}
		}
		for i, l := range dbutil.Logins(a.Logins) {
			if _, err := tx.Exec(ctx, "INSERT INTO account_logins (kind, login_id, account_id, position) VALUES ($1, $2, $3, $4)",
				l.Kind, l.ID, a.ID, i); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("pgstore: put account: %w", err)
	}
	return created, nil
}

// GetAccount returns the entry or store.ErrNotFound.
func (db *DB) GetAccount(ctx context.Context, id string) (store.Account, error) {
	a, err := db.account(ctx, "a.id = $1", id)
	if err != nil {
		return store.Account{}, fmt.Errorf("pgstore: get account: %w", err)
	}
	return a, nil
}

// FindAccountByLogin returns the account with the login (kind, id) or
// store.ErrNotFound.
func (db *DB) FindAccountByLogin(ctx context.Context, kind store.LoginKind, id string) (store.Account, error) {
	a, err := db.account(ctx,
		"a.id = (SELECT account_id FROM account_logins WHERE kind = $1 AND login_id = $2)", kind, id)
	if err != nil {
		return store.Account{}, fmt.Errorf("pgstore: find account by login: %w", err)
	}
	return a, nil
}

// account loads the one account matching where, with its logins.
func (db *DB) account(ctx context.Context, where string, args ...any) (store.Account, error) {
	rows, _ := db.pool.Query(ctx, `SELECT a.id, a.type, a.bound_phone, a.email, a.real_name_verified, a.real_name,
		a.id_number, a.company_name, a.company_reg_number, a.login_method, a.locale, a.time_zone, a.created_at, a.updated_at,
		l.kind, l.login_id
		FROM accounts a LEFT JOIN account_logins l ON l.account_id = a.id
		WHERE `+where+` ORDER BY l.position`, args...)
	defer rows.Close()
	var a store.Account
	found := false
	for rows.Next() {
		var kind, loginID *string
		if err := rows.Scan(&a.ID, &a.Type, &a.BoundPhone, &a.Email, &a.RealName.Verified, &a.RealName.Name,
			&a.RealName.IDNumber, &a.Company.Name, &a.Company.RegNumber, &a.LoginMethod, &a.Locale, &a.TimeZone, &a.CreatedAt, &a.UpdatedAt,
			&kind, &loginID); err != nil {
			return store.Account{}, classify(err)
		}
		found = true
		if kind != nil {
			a.Logins = append(a.Logins, store.Login{Kind: store.LoginKind(*kind), ID: *loginID})
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
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
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
		return store.AuditEntry{}, fmt.Errorf("pgstore: append audit: %w", err)
	}
	err = db.pool.QueryRow(ctx, `INSERT INTO audit_log (at, actor, action, outcome, account_id, subject, remote_ip, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		e.At, e.Actor, e.Action, e.Outcome, e.AccountID, e.Subject, e.RemoteIP, details).Scan(&e.ID)
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("pgstore: append audit: %w", classify(err))
	}
	return e, nil
}

// ListAudit returns the entries matching f, newest first.
func (db *DB) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	rows, _ := db.pool.Query(ctx, `SELECT id, at, actor, action, outcome, account_id, subject, remote_ip, details
		FROM audit_log
		WHERE ($1 = '' OR account_id = $1) AND ($2 = '' OR subject = $2) AND ($3 = 0 OR id < $3)
		ORDER BY id DESC LIMIT $4`, f.AccountID, f.Subject, f.BeforeID, dbutil.Limit(f.Limit))
	defer rows.Close()
	out := []store.AuditEntry{}
	for rows.Next() {
		var e store.AuditEntry
		var details []byte
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Outcome, &e.AccountID, &e.Subject, &e.RemoteIP, &details); err != nil {
			return nil, fmt.Errorf("pgstore: list audit: %w", classify(err))
		}
		e.At = e.At.UTC()
		var err error
		if e.Details, err = dbutil.UnmarshalMap(details); err != nil {
			return nil, fmt.Errorf("pgstore: list audit: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list audit: %w", classify(err))
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
		return store.OutboxMessage{}, fmt.Errorf("pgstore: add outbox: %w", err)
	}
	err = db.pool.QueryRow(ctx, `INSERT INTO outbox (at, channel, to_addr, kind, body, data)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		m.At, m.Channel, m.To, m.Kind, m.Body, data).Scan(&m.ID)
	if err != nil {
		return store.OutboxMessage{}, fmt.Errorf("pgstore: add outbox: %w", classify(err))
	}
	return m, nil
}

// ListOutbox returns up to limit (0: 100, at most 1000) messages to the
// recipient, all recipients when to is empty, newest first.
func (db *DB) ListOutbox(ctx context.Context, to string, limit int) ([]store.OutboxMessage, error) {
	rows, _ := db.pool.Query(ctx, `SELECT id, at, channel, to_addr, kind, body, data FROM outbox
		WHERE ($1 = '' OR to_addr = $1) ORDER BY id DESC LIMIT $2`, to, dbutil.Limit(limit))
	defer rows.Close()
	out := []store.OutboxMessage{}
	for rows.Next() {
		var m store.OutboxMessage
		var data []byte
		if err := rows.Scan(&m.ID, &m.At, &m.Channel, &m.To, &m.Kind, &m.Body, &data); err != nil {
			return nil, fmt.Errorf("pgstore: list outbox: %w", classify(err))
		}
		m.At = m.At.UTC()
		var err error
		if m.Data, err = dbutil.UnmarshalMap(data); err != nil {
			return nil, fmt.Errorf("pgstore: list outbox: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list outbox: %w", classify(err))
	}
	return out, nil
}

// utc returns *t in UTC, or the zero time for nil.
func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// nullTime returns t for a nullable column: nil for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return dbutil.Time(t)
}
