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

// The console's code checks (store.CheckStore) are the hot path. Check runs
// a whole check — the reads, the spend, the evaluation and the finish — in
// one IMMEDIATE transaction on the writer, and the checks that arrive while
// one runs share the next transaction (group commit: one commit, one WAL
// write, for the lot). BeginCheck and FinishCheck are each one
// transaction. All of them run statements prepared once (stmtCache):
// compiling SQL costs more than running it here.

// stmtCache keeps the writer's prepared statements by their SQL. They are
// prepared by prepare, when the store opens: preparing one later would
// wait for the writer's one connection, which a transaction holds.
type stmtCache struct {
	m atomic.Pointer[map[string]*sql.Stmt]
}

// hotStatements are the statements stmtCache holds.
var hotStatements = []string{checkAccountSQL, checkDevicesSQL, checkBudgetSQL, checkSpendSQL, checkCountSQL,
	checkAdvanceSQL, checkKnownSQL, checkResetSQL, checkAuditSQL, checkGrantSQL}

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
	// checkCountSQL counts one failure while the budget is unlocked and
	// the new count stays below ?3, the first count that locks, and
	// returns the new count; no row otherwise (spendTx then takes the
	// read-modify-write path, so the policy sees every count that locks).
	checkCountSQL = `INSERT INTO failure_budgets (account_id, failures, locked_until, hard, updated_at)
		VALUES (?1, 1, NULL, 0, ?2) ON CONFLICT (account_id) DO UPDATE SET failures = failures + 1,
		locked_until = NULL, updated_at = excluded.updated_at
		WHERE NOT hard AND failures + 1 < ?3 AND (locked_until IS NULL OR locked_until <= ?4)
		RETURNING failures`
	checkAdvanceSQL = `UPDATE devices SET last_step = ?3, last_used_at = max(coalesce(last_used_at, ?4), ?4)
		WHERE id = ?1 AND account_id = ?2 AND status = 'active' AND last_step < ?3`
	checkKnownSQL = "SELECT 1 FROM devices WHERE id = ? AND account_id = ? AND status = 'active'"
	checkResetSQL = "DELETE FROM failure_budgets WHERE account_id = ?"
	checkAuditSQL = `INSERT INTO audit_log (at, actor, action, outcome, account_id, subject, remote_ip, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	checkGrantSQL = `INSERT INTO grants (` + grantColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`
)

// txStmts hands out the prepared statements of one transaction, each made
// for it once however many checks the transaction runs.
type txStmts struct {
	db  *DB
	ctx context.Context
	tx  *sql.Tx
	m   map[string]*sql.Stmt
}

func (db *DB) txStmts(ctx context.Context, tx *sql.Tx) *txStmts {
	return &txStmts{db: db, ctx: ctx, tx: tx, m: make(map[string]*sql.Stmt, len(hotStatements))}
}

func (t *txStmts) get(query string) (*sql.Stmt, error) {
	if st, ok := t.m[query]; ok {
		return st, nil
	}
	st, err := t.db.stmt(t.ctx, t.tx, query)
	if err != nil {
		return nil, err
	}
	t.m[query] = st
	return st, nil
}

// BeginCheck reads what a code check needs and spends one attempt of the
// account's budget when the check can go ahead (store.CheckStore).
func (db *DB) BeginCheck(ctx context.Context, r store.CheckRequest) (store.CheckStart, error) {
	if r.Policy == nil {
		return store.CheckStart{}, errors.New("sqlitestore: begin check: no lock policy")
	}
	lockAt := dbutil.FirstLock(r.Policy, r.Now)
	var out store.CheckStart
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = db.beginTx(db.txStmts(ctx, tx), r, lockAt)
		return err
	})
	if err != nil {
		return store.CheckStart{}, fmt.Errorf("sqlitestore: begin check: %w", classify(err))
	}
	return out, nil
}

// beginTx is BeginCheck inside a transaction. An unknown account is
// sql.ErrNoRows, before anything is written.
func (db *DB) beginTx(t *txStmts, r store.CheckRequest, lockAt int) (store.CheckStart, error) {
	var out store.CheckStart
	ctx := t.ctx
	st, err := t.get(checkAccountSQL)
	if err != nil {
		return out, err
	}
	var method string
	var pSet bool
	var pUpdated sql.NullInt64
	if err := st.QueryRowContext(ctx, r.AccountID).Scan(&method, &pSet, &out.Protection.Login, &out.Protection.Operation,
		&pUpdated, &out.OpenAppeal); err != nil {
		return out, err
	}
	out.LoginMethod = store.LoginMethod(method)
	out.Protection.UpdatedAt = fromMicros(pUpdated)
	if st, err = t.get(checkDevicesSQL); err != nil {
		return out, err
	}
	rows, err := st.QueryContext(ctx, r.AccountID)
	if err != nil {
		return out, err
	}
	types := r.CheckTypes(out.LoginMethod)
	out.Devices = []store.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			rows.Close()
			return out, err
		}
		if slices.Contains(types, d.Type) {
			out.Devices = append(out.Devices, d)
		}
	}
	if err := rows.Close(); err != nil {
		return out, err
	}
	if err := rows.Err(); err != nil {
		return out, err
	}
	if len(out.Devices) == 0 || !r.Protected(out.Protection) {
		return out, nil
	}
	out.Spent = true
	if lockAt > 1 {
		// The usual case in one statement: count the failure.
		if st, err = t.get(checkCountSQL); err != nil {
			return out, err
		}
		now := micros(dbutil.Time(r.Now))
		err = st.QueryRowContext(ctx, r.AccountID, micros(dbutil.Now()), min(lockAt, 1<<30), now).Scan(&out.Budget.Failures)
		if err == nil {
			out.Allowed = true
			return out, nil
		}
		if err != sql.ErrNoRows {
			return out, err
		}
	}
	out.Budget, out.Allowed, err = db.spendTx(t, r.AccountID, r.Now, r.Policy)
	return out, err
}

// spendTx is SpendAttempt inside a transaction.
func (db *DB) spendTx(t *txStmts, accountID string, now time.Time,
	policy func(failures int, now time.Time) (time.Time, bool)) (mfa.BudgetState, bool, error) {
	var st mfa.BudgetState
	q, err := t.get(checkBudgetSQL)
	if err != nil {
		return st, false, err
	}
	var locked sql.NullInt64
	err = q.QueryRowContext(t.ctx, accountID).Scan(&st.Failures, &locked, &st.Hard)
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
	if q, err = t.get(checkSpendSQL); err != nil {
		return st, false, err
	}
	_, err = q.ExecContext(t.ctx, accountID, st.Failures, micros(st.LockedUntil), st.Hard, micros(dbutil.Now()))
	return st, err == nil, err
}

// FinishCheck consumes the matched step and records the success in one
// transaction (store.CheckStore).
func (db *DB) FinishCheck(ctx context.Context, f store.CheckFinish) (bool, error) {
	if err := checkFinishValid(f); err != nil {
		return false, fmt.Errorf("sqlitestore: finish check: %w", err)
	}
	var consumed bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		consumed, err = db.finishTx(db.txStmts(ctx, tx), f)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlitestore: finish check: %w", classify(err))
	}
	return consumed, nil
}

func checkFinishValid(f store.CheckFinish) error {
	if f.Grant != nil && (f.Grant.ID == "" || f.Grant.ExpiresAt.IsZero()) {
		return errors.New("grant id and expiry are required")
	}
	return nil
}

// finishTx is FinishCheck inside a transaction. A device that is not the
// account's active one is sql.ErrNoRows, with nothing written.
func (db *DB) finishTx(t *txStmts, f store.CheckFinish) (bool, error) {
	ctx := t.ctx
	e := f.Audit
	e.At = dbutil.Time(e.At)
	if e.At.IsZero() {
		e.At = dbutil.Now()
	}
	st, err := t.get(checkAdvanceSQL)
	if err != nil {
		return false, err
	}
	res, err := st.ExecContext(ctx, f.DeviceID, f.AccountID, f.Step, micros(dbutil.Time(f.At)))
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, err
	} else if n == 0 {
		if st, err = t.get(checkKnownSQL); err != nil {
			return false, err
		}
		var one int
		return false, st.QueryRowContext(ctx, f.DeviceID, f.AccountID).Scan(&one)
	}
	if st, err = t.get(checkResetSQL); err != nil {
		return false, err
	}
	if _, err := st.ExecContext(ctx, f.AccountID); err != nil {
		return false, err
	}
	if e.Action != "" {
		details, err := dbutil.MarshalMap(e.Details)
		if err != nil {
			return false, err
		}
		if st, err = t.get(checkAuditSQL); err != nil {
			return false, err
		}
		if _, err := st.ExecContext(ctx, micros(e.At), e.Actor, e.Action, e.Outcome, f.AccountID, e.Subject, e.RemoteIP, text(details)); err != nil {
			return false, err
		}
	}
	if g := f.Grant; g != nil {
		if st, err = t.get(checkGrantSQL); err != nil {
			return false, err
		}
		if _, err := st.ExecContext(ctx, g.ID, f.AccountID, g.Action, g.Resource, f.DeviceID, micros(dbutil.Now()),
			micros(dbutil.Time(g.ExpiresAt))); err != nil {
			return false, err
		}
	}
	return true, nil
}

// Check runs a whole code check in one transaction, shared with the
// checks that gathered while the last one ran (store.CheckStore). eval
// runs inside the transaction, after the spend; the outcome is returned
// after the commit. A batch that fails as a whole is rolled back and each
// of its checks run again alone (dbutil.Batcher), eval included.
func (db *DB) Check(ctx context.Context, r store.CheckRequest, eval store.CheckEval) (store.CheckOutcome, error) {
	out, err := dbutil.DoCheck(ctx, db.checks, r, eval)
	if err != nil {
		return out, fmt.Errorf("sqlitestore: check: %w", classify(err))
	}
	return out, nil
}

// checkBatch is the batcher's run: every check of the batch, in arrival
// order, in one transaction. Two checks of one account run one after the
// other in it, the second seeing the first's spend and step.
func (db *DB) checkBatch(ctx context.Context, calls []dbutil.CheckCall) ([]dbutil.CheckResult, error) {
	out := make([]dbutil.CheckResult, len(calls))
	err := db.tx(ctx, func(tx *sql.Tx) error {
		t := db.txStmts(ctx, tx)
		clear(out)
		for i, c := range calls {
			o, err := db.checkTx(t, c)
			if errors.Is(err, sql.ErrNoRows) {
				// Unknown account or device: nothing of this check was
				// written after its spend; the others go on.
				out[i].Err = store.ErrNotFound
				continue
			}
			if err != nil {
				return err
			}
			out[i].Out = o
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkTx is one whole check inside the batch's transaction.
func (db *DB) checkTx(t *txStmts, c dbutil.CheckCall) (store.CheckOutcome, error) {
	return store.RunCheck(t.ctx,
		func(_ context.Context, r store.CheckRequest) (store.CheckStart, error) {
			return db.beginTx(t, r, c.LockAt)
		},
		func(_ context.Context, f store.CheckFinish) (bool, error) {
			if err := checkFinishValid(f); err != nil {
				return false, err
			}
			return db.finishTx(t, f)
		}, c.Req, c.Eval)
}
