package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

// The console's code checks (store.CheckStore) are the hot path: every
// login and sensitive operation makes one. Each half is one statement over
// all the requests of a batch (dbutil.Batcher groups concurrent calls), so
// a check costs two round trips however busy the server is, and under load
// one statement serves many checks.

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

// beginCheckSQL and finishCheckSQL call the functions of migration 0005,
// which say what they do.
const (
	beginCheckSQL  = `SELECT * FROM mfaflow_begin_check($1, $2, $3, $4, $5, $6)`
	finishCheckSQL = `SELECT * FROM mfaflow_finish_check($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`
)

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
		Run: db.beginBatch,
		Key: func(r beginReq) string { return r.AccountID },
	}
	db.finish = &dbutil.Batcher[store.CheckFinish, finishResult]{
		Run: db.finishBatch,
		// A batch changes each device and each budget at most once.
		Key: func(f store.CheckFinish) string { return f.AccountID },
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
		rows, _ := db.pool.Query(ctx, beginCheckSQL, ids, purposes, types, lockAt, nows, dbutil.Now())
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
		rows, _ := db.pool.Query(ctx, finishCheckSQL, devIDs, accIDs, steps, usedAt, auditAt, actor, action, outcome,
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
