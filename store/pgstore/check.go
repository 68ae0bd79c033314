package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

// The console's code checks (store.CheckStore) are the hot path: every
// login and sensitive operation makes one. Each half is one set-based
// statement over all the requests of a batch (dbutil.Batcher groups
// concurrent calls), so a check costs two round trips however busy the
// server is, and under load one statement serves many checks.

// Device types as bits, for the device filter of beginCheckSQL.
const (
	typeVirtual        = 1
	typeHardware       = 2
	typeSecurityCenter = 4
)

func typeBits(types []store.DeviceType) int32 {
	var n int32
	for _, t := range types {
		switch t {
		case store.Virtual:
			n |= typeVirtual
		case store.Hardware:
			n |= typeHardware
		case store.SecurityCenter:
			n |= typeSecurityCenter
		}
	}
	if n == 0 && types != nil {
		// An empty, non-nil list asks for no device at all.
		n = -1
	}
	return n
}

// beginCheckSQL reads, for every request of a batch (its position ord in
// the arrays), the account, its protection, whether an unbind appeal is open
// and its active devices of the asked types (a bit set: 1 virtual, 2
// hardware, 4 security center; 0: by the login method; negative: none).
// When the check can go ahead (ready) it counts one failure in the account's
// budget — only while the budget is unlocked and the new count stays below
// lock_at, the first count that locks; failures is then the new count. A
// ready request left uncounted takes SpendAttempt's row-locked path. One row
// per device, or one with NULL device columns; none for an unknown account.
// An account appears at most once in a batch (the batcher's key).
const beginCheckSQL = `WITH req AS (
        SELECT r.ord::integer AS ord, r.id, r.purpose, r.lock_at, r.now, a.login_method,
            coalesce(pr.login, false) AS login, coalesce(pr.operation, false) AS operation, pr.updated_at,
            CASE WHEN r.types <> 0 THEN r.types WHEN a.login_method = 'mfa' THEN 3 ELSE 4 END AS types
        FROM unnest($1::text[], $2::text[], $3::integer[], $4::integer[], $5::timestamptz[]) WITH ORDINALITY
            AS r(id, purpose, types, lock_at, now, ord)
        JOIN accounts a ON a.id = r.id
        LEFT JOIN protection pr ON pr.account_id = r.id
    ), ready AS (
        SELECT q.id, q.lock_at, q.now FROM req q
        WHERE q.types > 0
            AND (q.purpose = '' OR (q.purpose = 'login' AND q.login) OR (q.purpose = 'operation' AND q.operation))
            AND EXISTS (SELECT 1 FROM devices d WHERE d.account_id = q.id AND d.status = 'active'
                AND (q.types & CASE d.type WHEN 'virtual' THEN 1 WHEN 'hardware' THEN 2 ELSE 4 END) <> 0)
    ), spent AS (
        INSERT INTO failure_budgets AS b (account_id, failures, hard, updated_at)
        SELECT x.id, 1, false, $6::timestamptz FROM ready x WHERE x.lock_at > 1 ORDER BY x.id
        ON CONFLICT (account_id) DO UPDATE
            SET failures = b.failures + 1, locked_until = NULL, updated_at = EXCLUDED.updated_at
            WHERE NOT b.hard
                AND b.failures + 1 < (SELECT x.lock_at FROM ready x WHERE x.id = b.account_id)
                AND (b.locked_until IS NULL OR b.locked_until <= (SELECT x.now FROM ready x WHERE x.id = b.account_id))
        RETURNING b.account_id, b.failures
    )
    SELECT q.ord, q.login_method, q.login, q.operation, q.updated_at,
        EXISTS (SELECT 1 FROM appeals ap WHERE ap.account_id = q.id AND ap.closed_at IS NULL),
        EXISTS (SELECT 1 FROM ready x WHERE x.id = q.id),
        s.failures,
        d.id, d.account_id, d.type, d.name, d.serial, d.secret_key_id, d.sealed_secret, d.algorithm, d.digits,
        d.period_seconds, d.last_step, d.drift, d.status, d.created_at, d.bound_at, d.last_used_at, d.revoked_at
    FROM req q
    LEFT JOIN spent s ON s.account_id = q.id
    LEFT JOIN devices d ON d.account_id = q.id AND d.status = 'active' AND q.types > 0
        AND (q.types & CASE d.type WHEN 'virtual' THEN 1 WHEN 'hardware' THEN 2 ELSE 4 END) <> 0
    ORDER BY q.ord, d.created_at, d.id`

// finishCheckSQL consumes, for every request of a batch, the device's step
// (compare-and-set) and, where it does, records the use, clears the
// account's budget, appends the audit entry (when action is not empty) and
// creates the grant (when grant_id is not empty), all in one statement. One
// row per request: whether the step was consumed and whether the device is
// the account's and active. An account appears at most once in a batch. A
// failing insert fails the whole statement, which changes nothing.
const finishCheckSQL = `WITH req AS (
        SELECT r.* FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::timestamptz[],
            $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::jsonb[], $12::text[], $13::text[],
            $14::text[], $15::timestamptz[]) WITH ORDINALITY
            AS r(device_id, account_id, step, used_at, audit_at, actor, action, outcome, subject, remote_ip, details,
                grant_id, grant_action, grant_resource, grant_expires, ord)
    ), adv AS (
        UPDATE devices d
            SET last_step = r.step, last_used_at = GREATEST(coalesce(d.last_used_at, r.used_at), r.used_at)
            FROM req r
            WHERE d.id = r.device_id AND d.account_id = r.account_id AND d.status = 'active' AND d.last_step < r.step
            RETURNING d.id
    ), rst AS (
        UPDATE failure_budgets b SET failures = 0, locked_until = NULL, hard = false, updated_at = $16::timestamptz
            FROM req r JOIN adv ON adv.id = r.device_id
            WHERE b.account_id = r.account_id AND (b.failures <> 0 OR b.locked_until IS NOT NULL OR b.hard)
    ), aud AS (
        INSERT INTO audit_log (at, actor, action, outcome, account_id, subject, remote_ip, details)
            SELECT r.audit_at, r.actor, r.action, r.outcome, r.account_id, r.subject, r.remote_ip, r.details
            FROM req r JOIN adv ON adv.id = r.device_id
            WHERE r.action <> ''
            ORDER BY r.ord
    ), gr AS (
        INSERT INTO grants (id, account_id, action, resource, device_id, created_at, expires_at, used_at)
            SELECT r.grant_id, r.account_id, r.grant_action, r.grant_resource, r.device_id, $16::timestamptz, r.grant_expires, NULL
            FROM req r JOIN adv ON adv.id = r.device_id
            WHERE r.grant_id <> ''
    )
    SELECT r.ord::integer, adv.id IS NOT NULL,
        adv.id IS NOT NULL OR EXISTS (SELECT 1 FROM devices x WHERE x.id = r.device_id AND x.account_id = r.account_id
            AND x.status = 'active')
    FROM req r LEFT JOIN adv ON adv.id = r.device_id`

// checkPool is the configuration of the connections the two statements run
// on, one per batch worker. They touch a handful of rows by key, and the
// planner settings say so: a generic plan, made once per connection
// (planning on every call cost more than running), and nested-loop index
// lookups only (a generic plan left free picks hash joins over whole
// tables). Set on these connections alone, they reach no other statement.
func checkPool(cfg *pgxpool.Config) *pgxpool.Config {
	c := cfg.Copy()
	c.MaxConns, c.MinConns = 2*checkWorkers, 0
	rp := c.ConnConfig.RuntimeParams
	rp["plan_cache_mode"] = "force_generic_plan"
	rp["enable_seqscan"] = "off"
	rp["enable_hashjoin"] = "off"
	rp["enable_mergejoin"] = "off"
	return c
}

// checkWorkers is how many batches of each half may run at once.
const checkWorkers = 1

// beginResult is one request's answer of a beginCheck batch.
type beginResult struct {
	found bool
	start store.CheckStart
	ready bool // the check can go ahead
	spent bool // counted by the statement
}

type beginReq struct {
	store.CheckRequest
	lockAt int
}

func (db *DB) newBatchers() {
	db.begin = &dbutil.Batcher[beginReq, beginResult]{
		Run:     db.beginBatch,
		Key:     func(r beginReq) string { return r.AccountID },
		Workers: checkWorkers,
	}
	db.finish = &dbutil.Batcher[store.CheckFinish, finishResult]{
		Run: db.finishBatch,
		// A batch changes each device and each budget at most once.
		Key:     func(f store.CheckFinish) string { return f.AccountID },
		Workers: checkWorkers,
	}
	// One worker: a batch runs both statements, so the checks that come
	// meanwhile gather into the next, larger batch. Two workers split the
	// batches and cost PostgreSQL a quarter more CPU per check for no more
	// throughput (BenchmarkHTTPVerify, 2026-12-03).
	db.checks = &dbutil.Batcher[dbutil.CheckCall, dbutil.CheckResult]{
		Run:     db.checkBatch,
		Key:     func(c dbutil.CheckCall) string { return c.Req.AccountID },
		Workers: 1,
	}
}

// BeginCheck reads what a code check needs and spends one attempt of the
// account's budget when the check can go ahead (store.CheckStore).
func (db *DB) BeginCheck(ctx context.Context, r store.CheckRequest) (store.CheckStart, error) {
	if r.Policy == nil {
		return store.CheckStart{}, errors.New("pgstore: begin check: no lock policy")
	}
	res, err := db.begin.Do(ctx, beginReq{CheckRequest: r, lockAt: dbutil.FirstLock(r.Policy, r.Now)})
	if err != nil {
		return store.CheckStart{}, fmt.Errorf("pgstore: begin check: %w", classify(err))
	}
	if !res.found {
		return store.CheckStart{}, fmt.Errorf("pgstore: begin check: %w", store.ErrNotFound)
	}
	st := res.start
	if res.ready && !res.spent {
		// Locked, or this attempt earns a lock: the row-locked path.
		st.Budget, st.Allowed, err = db.SpendAttempt(ctx, r.AccountID, r.Now, r.Policy)
		if err != nil {
			return store.CheckStart{}, fmt.Errorf("pgstore: begin check: %w", err)
		}
		st.Spent = true
	}
	return st, nil
}

func (db *DB) beginBatch(ctx context.Context, reqs []beginReq) ([]beginResult, error) {
	n := len(reqs)
	order := byAccount(n, func(i int) string { return reqs[i].AccountID })
	ids, purposes := make([]string, n), make([]string, n)
	types, lockAt := make([]int32, n), make([]int32, n)
	nows := make([]time.Time, n)
	for j, i := range order {
		r := reqs[i]
		ids[j], purposes[j], types[j], nows[j] = r.AccountID, string(r.Purpose), typeBits(r.Types), dbutil.Time(r.Now)
		lockAt[j] = int32(min(r.lockAt, 1<<30))
	}
	out := make([]beginResult, n)
	err := retryDeadlock(func() error {
		clear(out)
		rows, _ := db.hot.Query(ctx, beginCheckSQL, ids, purposes, types, lockAt, nows, dbutil.Now())
		defer rows.Close()
		for rows.Next() {
			var (
				ord                        int32
				method                     string
				pLogin, pOp, open, ready   bool
				pUpdated                   *time.Time
				failures                   *int32
				devID, devAccount, devType *string
			)
			var d deviceRow
			if err := rows.Scan(&ord, &method, &pLogin, &pOp, &pUpdated, &open, &ready, &failures,
				&devID, &devAccount, &devType, &d.name, &d.serial, &d.keyID, &d.sealed, &d.algorithm,
				&d.digits, &d.period, &d.lastStep, &d.drift, &d.status, &d.created, &d.bound, &d.used, &d.revoked); err != nil {
				return err
			}
			if ord < 1 || int(ord) > n {
				return fmt.Errorf("begin check: unexpected row in the answer")
			}
			res := &out[order[ord-1]]
			if !res.found {
				res.found, res.ready = true, ready
				res.start.LoginMethod = store.LoginMethod(method)
				res.start.Protection = store.Protection{Login: pLogin, Operation: pOp, UpdatedAt: utc(pUpdated)}
				res.start.OpenAppeal = open
				res.start.Devices = []store.Device{}
				if failures != nil {
					res.spent = true
					res.start.Spent, res.start.Allowed = true, true
					res.start.Budget.Failures = int(*failures)
				}
			}
			if devID != nil {
				d.id, d.accountID, d.typ = *devID, *devAccount, *devType
				res.start.Devices = append(res.start.Devices, d.device())
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// deviceRow holds the nullable device columns of a joined row.
type deviceRow struct {
	id, accountID, typ             string
	name, keyID, algorithm, status *string
	serial                         *string
	sealed                         []byte
	digits, period                 *int32
	lastStep, drift                *int64
	created, bound, used, revoked  *time.Time
}

func (r deviceRow) device() store.Device {
	str := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	d := store.Device{
		ID: r.id, AccountID: r.accountID, Type: store.DeviceType(r.typ), Name: str(r.name), Serial: str(r.serial),
		Algorithm: str(r.algorithm), Status: store.DeviceStatus(str(r.status)),
		CreatedAt: utc(r.created), BoundAt: utc(r.bound), LastUsedAt: utc(r.used), RevokedAt: utc(r.revoked),
	}
	d.Secret.KeyID, d.Secret.Ciphertext = str(r.keyID), r.sealed
	if r.digits != nil {
		d.Digits = int(*r.digits)
	}
	if r.period != nil {
		d.PeriodSeconds = int(*r.period)
	}
	if r.lastStep != nil {
		d.LastStep = *r.lastStep
	}
	if r.drift != nil {
		d.Drift = *r.drift
	}
	return d
}

type finishResult struct {
	consumed bool
	known    bool
}

// FinishCheck consumes the matched step and records the success in one
// transaction (store.CheckStore).
func (db *DB) FinishCheck(ctx context.Context, f store.CheckFinish) (bool, error) {
	if f.Grant != nil && (f.Grant.ID == "" || f.Grant.ExpiresAt.IsZero()) {
		return false, errors.New("pgstore: finish check: grant id and expiry are required")
	}
	res, err := db.finish.Do(ctx, f)
	if err != nil {
		return false, fmt.Errorf("pgstore: finish check: %w", classify(err))
	}
	if !res.known {
		return false, fmt.Errorf("pgstore: finish check: %w", store.ErrNotFound)
	}
	return res.consumed, nil
}

func (db *DB) finishBatch(ctx context.Context, reqs []store.CheckFinish) ([]finishResult, error) {
	n := len(reqs)
	var (
		devIDs, accIDs                    = make([]string, n), make([]string, n)
		steps                             = make([]int64, n)
		usedAt, auditAt, grantExp         = make([]time.Time, n), make([]time.Time, n), make([]*time.Time, n)
		actor, action, outcome, subj, ips = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		details                           = make([][]byte, n)
		grantID, grantAct, grantRes       = make([]string, n), make([]string, n), make([]string, n)
	)
	order := byAccount(n, func(i int) string { return reqs[i].AccountID })
	for i, j := range order {
		f := reqs[j]
		devIDs[i], accIDs[i], steps[i], usedAt[i] = f.DeviceID, f.AccountID, f.Step, dbutil.Time(f.At)
		e := f.Audit
		auditAt[i] = dbutil.Time(e.At)
		if auditAt[i].IsZero() {
			auditAt[i] = dbutil.Now()
		}
		actor[i], action[i], outcome[i], subj[i], ips[i] = e.Actor, e.Action, e.Outcome, e.Subject, e.RemoteIP
		b, err := dbutil.MarshalMap(e.Details)
		if err != nil {
			return nil, err
		}
		details[i] = b
		if g := f.Grant; g != nil {
			exp := dbutil.Time(g.ExpiresAt)
			grantID[i], grantAct[i], grantRes[i], grantExp[i] = g.ID, g.Action, g.Resource, &exp
		}
	}
	out := make([]finishResult, n)
	err := retryDeadlock(func() error {
		clear(out)
		rows, _ := db.hot.Query(ctx, finishCheckSQL, devIDs, accIDs, steps, usedAt, auditAt, actor, action, outcome,
			subj, ips, details, grantID, grantAct, grantRes, grantExp, dbutil.Now())
		defer rows.Close()
		for rows.Next() {
			var ord int32
			var r finishResult
			if err := rows.Scan(&ord, &r.consumed, &r.known); err != nil {
				return err
			}
			if ord < 1 || int(ord) > n {
				return fmt.Errorf("finish check: unexpected row in the answer")
			}
			out[order[ord-1]] = r
		}
		return rows.Err()
	})
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// byAccount returns the indices 0..n-1 ordered by account, so that
// concurrent batches take the rows of their accounts in one order.
func byAccount(n int, account func(int) string) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(account(a), account(b)) })
	return order
}

// retryDeadlock runs fn again, a few times, when PostgreSQL chose it as
// the victim of a deadlock: each statement is atomic, so the victim
// changed nothing. (Two batches that lock the same accounts' rows in
// different orders can deadlock; it takes two concurrent checks of each of
// two accounts at once.)
func retryDeadlock(fn func() error) error {
	var err error
	for range 3 {
		err = fn()
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
			return err
		}
	}
	return err
}

// Check runs a whole code check (store.CheckStore): the checks that gather
// while a batch runs share the next one, which runs the begin statement
// for all of them (reads and spends), evaluates each, and runs the finish
// statement for all the matches: two round trips for the batch, and one
// hand-over per check. (The two statements are separate transactions, as
// with BeginCheck and FinishCheck: each spend is committed before its code
// is evaluated.)
func (db *DB) Check(ctx context.Context, r store.CheckRequest, eval store.CheckEval) (store.CheckOutcome, error) {
	out, err := dbutil.DoCheck(ctx, db.checks, r, eval)
	if err != nil {
		return out, fmt.Errorf("pgstore: check: %w", classify(err))
	}
	return out, nil
}

// checkBatch is the checks batcher's run. It fails as a whole only when
// the begin statement fails (which changed nothing, so the batcher may run
// the checks again); after that every check gets its own answer, and a
// finish statement that fails is run again check by check.
func (db *DB) checkBatch(ctx context.Context, calls []dbutil.CheckCall) ([]dbutil.CheckResult, error) {
	n := len(calls)
	breqs := make([]beginReq, n)
	for i, c := range calls {
		breqs[i] = beginReq{CheckRequest: c.Req, lockAt: c.LockAt}
	}
	begun, err := db.beginBatch(ctx, breqs)
	if err != nil {
		return nil, err
	}
	out := make([]dbutil.CheckResult, n)
	next := make([]int, n) // the next finish of each check to try
	var pending []int      // checks with a finish to try
	for i, c := range calls {
		o := &out[i].Out
		o.Consumed = -1
		b := begun[i]
		if !b.found {
			out[i].Err = store.ErrNotFound
			continue
		}
		st := b.start
		if b.ready && !b.spent {
			// Locked, or this attempt earns a lock: the row-locked path.
			if st.Budget, st.Allowed, err = db.SpendAttempt(ctx, c.Req.AccountID, c.Req.Now, c.Req.Policy); err != nil {
				out[i].Err = err
				continue
			}
			st.Spent = true
		}
		o.Start = st
		if !st.Spent || !st.Allowed {
			continue
		}
		o.Evaluated = true
		if o.Finishes, o.EvalErr = c.Eval(st); o.EvalErr == nil && len(o.Finishes) > 0 {
			pending = append(pending, i)
		}
	}
	for len(pending) > 0 {
		fs := make([]store.CheckFinish, 0, len(pending))
		valid := pending[:0]
		for _, i := range pending {
			f := out[i].Out.Finishes[next[i]]
			if f.Grant != nil && (f.Grant.ID == "" || f.Grant.ExpiresAt.IsZero()) {
				out[i].Err = errors.New("grant id and expiry are required")
				continue
			}
			fs, valid = append(fs, f), append(valid, i)
		}
		if pending = valid; len(pending) == 0 {
			break
		}
		res, err := db.finishBatch(ctx, fs)
		if err != nil && len(pending) > 1 {
			// One bad finish must not fail the others: each alone.
			res = make([]finishResult, len(pending))
			for j := range pending {
				r, err := db.finishBatch(ctx, fs[j:j+1])
				if err != nil {
					out[pending[j]].Err = err
					continue
				}
				res[j] = r[0]
			}
		} else if err != nil {
			out[pending[0]].Err = err
			break
		}
		more := pending[:0]
		for j, i := range pending {
			switch r := res[j]; {
			case out[i].Err != nil:
			case !r.known:
				out[i].Err = store.ErrNotFound
			case r.consumed:
				out[i].Out.Consumed = next[i]
			case next[i]+1 < len(out[i].Out.Finishes):
				next[i]++
				more = append(more, i)
			}
		}
		pending = more
	}
	return out, nil
}
