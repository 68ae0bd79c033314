package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

// The console's code checks (store.CheckStore) are the hot path. Each half
// is one IMMEDIATE transaction on the writer made of statements prepared
// once (stmtCache): compiling SQL costs more than running it here.

// stmtCache keeps the writer's prepared statements by their SQL. They are
// prepared by prepare, when the store opens: preparing one later would
// wait for the writer's one connection, which a transaction holds.
type stmtCache struct {
	m atomic.Pointer[map[string]*sql.Stmt]
}

// hotStatements are the statements stmtCache holds.
var hotStatements = []string{checkAccountSQL, checkDevicesSQL, checkBudgetSQL, checkSpendSQL, checkAdvanceSQL,
	checkKnownSQL, checkResetSQL, checkAuditSQL, checkGrantSQL}

// prepare prepares hotStatements on the writer, once: when the store
// opens, or, as the statements need the schema, after Migrate.
func (c *stmtCache) prepare(ctx context.Context, w *sql.DB) error {
	if c.m.Load() != nil {
		return nil
	}
	m := make(map[string]*sql.Stmt, len(hotStatements))
	for _, q := range hotStatements {
		st, err := w.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range m {
				_ = st.Close()
			}
			return err
		}
		m[q] = st
	}
	if !c.m.CompareAndSwap(nil, &m) {
		for _, st := range m {
			_ = st.Close()
		}
	}
	return nil
}

// stmt returns the prepared statement of query for use inside tx, or
// prepares it in tx when the store could not prepare it at open.
func (db *DB) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if m := db.stmts.m.Load(); m != nil {
		if st, ok := (*m)[query]; ok {
			return tx.StmtContext(ctx, st), nil
		}
	}
	return tx.PrepareContext(ctx, query)
}

func (c *stmtCache) close() error {
	m := c.m.Swap(nil)
	if m == nil {
		return nil
	}
	var errs []error
	for _, st := range *m {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

const (
	checkAccountSQL = `SELECT a.login_method, p.account_id IS NOT NULL, coalesce(p.login, 0), coalesce(p.operation, 0), p.updated_at,
		EXISTS (SELECT 1 FROM appeals ap WHERE ap.account_id = a.id AND ap.closed_at IS NULL)
		FROM accounts a LEFT JOIN protection p ON p.account_id = a.id WHERE a.id = ?`
	checkDevicesSQL = "SELECT " + deviceColumns + " FROM devices WHERE account_id = ? AND status = 'active' ORDER BY created_at, id"
	checkBudgetSQL  = "SELECT failures, locked_until, hard FROM failure_budgets WHERE account_id = ?"
	checkSpendSQL   = `INSERT INTO failure_budgets (account_id, failures, locked_until, hard, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET failures = excluded.failures,
		locked_until = excluded.locked_until, hard = excluded.hard, updated_at = excluded.updated_at`
	checkAdvanceSQL = `UPDATE devices SET last_step = ?3, last_used_at = max(coalesce(last_used_at, ?4), ?4)
		WHERE id = ?1 AND account_id = ?2 AND status = 'active' AND last_step < ?3`
	checkKnownSQL = "SELECT 1 FROM devices WHERE id = ? AND account_id = ? AND status = 'active'"
	checkResetSQL = "DELETE FROM failure_budgets WHERE account_id = ?"
	checkAuditSQL = `INSERT INTO audit_log (at, actor, action, outcome, account_id, subject, remote_ip, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	checkGrantSQL = `INSERT INTO grants (` + grantColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`
)

// BeginCheck reads what a code check needs and spends one attempt of the
// account's budget when the check can go ahead (store.CheckStore).
func (db *DB) BeginCheck(ctx context.Context, r store.CheckRequest) (store.CheckStart, error) {
	if r.Policy == nil {
		return store.CheckStart{}, errors.New("sqlitestore: begin check: no lock policy")
	}
	var out store.CheckStart
	err := db.tx(ctx, func(tx *sql.Tx) error {
		st, err := db.stmt(ctx, tx, checkAccountSQL)
		if err != nil {
			return err
		}
		var method string
		var pSet bool
		var pUpdated sql.NullInt64
		if err := st.QueryRowContext(ctx, r.AccountID).Scan(&method, &pSet, &out.Protection.Login, &out.Protection.Operation,
			&pUpdated, &out.OpenAppeal); err != nil {
			return err
		}
		out.LoginMethod = store.LoginMethod(method)
		out.Protection.UpdatedAt = fromMicros(pUpdated)
		if st, err = db.stmt(ctx, tx, checkDevicesSQL); err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, r.AccountID)
		if err != nil {
			return err
		}
		types := r.CheckTypes(out.LoginMethod)
		out.Devices = []store.Device{}
		for rows.Next() {
			d, err := scanDevice(rows)
			if err != nil {
				rows.Close()
				return err
			}
			if slices.Contains(types, d.Type) {
				out.Devices = append(out.Devices, d)
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out.Devices) == 0 || !r.Protected(out.Protection) {
			return nil
		}
		out.Spent = true
		out.Budget, out.Allowed, err = db.spendTx(ctx, tx, r.AccountID, r.Now, r.Policy)
		return err
	})
	if err != nil {
		return store.CheckStart{}, fmt.Errorf("sqlitestore: begin check: %w", classify(err))
	}
	return out, nil
}

// spendTx is SpendAttempt inside tx.
func (db *DB) spendTx(ctx context.Context, tx *sql.Tx, accountID string, now time.Time,
	policy func(failures int, now time.Time) (time.Time, bool)) (mfa.BudgetState, bool, error) {
	var st mfa.BudgetState
	q, err := db.stmt(ctx, tx, checkBudgetSQL)
	if err != nil {
		return st, false, err
	}
	var locked sql.NullInt64
	err = q.QueryRowContext(ctx, accountID).Scan(&st.Failures, &locked, &st.Hard)
	if err != nil && err != sql.ErrNoRows {
		return st, false, err
	}
	st.LockedUntil = fromMicros(locked)
	if st.Locked(now) {
		return st, false, nil
	}
	st.Failures++
	until, hard := policy(st.Failures, now)
	st.LockedUntil, st.Hard = dbutil.Time(until), hard
	if q, err = db.stmt(ctx, tx, checkSpendSQL); err != nil {
		return st, false, err
	}
	_, err = q.ExecContext(ctx, accountID, st.Failures, micros(st.LockedUntil), st.Hard, micros(dbutil.Now()))
	return st, err == nil, err
}

// FinishCheck consumes the matched step and records the success in one
// transaction (store.CheckStore).
func (db *DB) FinishCheck(ctx context.Context, f store.CheckFinish) (bool, error) {
	if f.Grant != nil && (f.Grant.ID == "" || f.Grant.ExpiresAt.IsZero()) {
		return false, errors.New("sqlitestore: finish check: grant id and expiry are required")
	}
	e := f.Audit
	e.At = dbutil.Time(e.At)
	if e.At.IsZero() {
		e.At = dbutil.Now()
	}
	details, err := dbutil.MarshalMap(e.Details)
	if err != nil {
		return false, fmt.Errorf("sqlitestore: finish check: %w", err)
	}
	var consumed bool
	err = db.tx(ctx, func(tx *sql.Tx) error {
		st, err := db.stmt(ctx, tx, checkAdvanceSQL)
		if err != nil {
			return err
		}
		res, err := st.ExecContext(ctx, f.DeviceID, f.AccountID, f.Step, micros(dbutil.Time(f.At)))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if st, err = db.stmt(ctx, tx, checkKnownSQL); err != nil {
				return err
			}
			var one int
			return st.QueryRowContext(ctx, f.DeviceID, f.AccountID).Scan(&one)
		}
		consumed = true
		if st, err = db.stmt(ctx, tx, checkResetSQL); err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, f.AccountID); err != nil {
			return err
		}
		if e.Action != "" {
			if st, err = db.stmt(ctx, tx, checkAuditSQL); err != nil {
				return err
			}
			if _, err := st.ExecContext(ctx, micros(e.At), e.Actor, e.Action, e.Outcome, f.AccountID, e.Subject, e.RemoteIP, text(details)); err != nil {
				return err
			}
		}
		if g := f.Grant; g != nil {
			if st, err = db.stmt(ctx, tx, checkGrantSQL); err != nil {
				return err
			}
			if _, err := st.ExecContext(ctx, g.ID, f.AccountID, g.Action, g.Resource, f.DeviceID, micros(dbutil.Now()),
				micros(dbutil.Time(g.ExpiresAt))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlitestore: finish check: %w", classify(err))
	}
	return consumed, nil
}
