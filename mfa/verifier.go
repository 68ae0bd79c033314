package mfa

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// StepStore records the last time step consumed per device.
type StepStore interface {
	// AdvanceStep sets the device's last used step to step if and only if step is
	// greater than the stored one (compare-and-set). It reports false when it is not
	// (the code was already used). It returns ErrNotFound for an unknown device.
	AdvanceStep(ctx context.Context, deviceID string, step int64) (bool, error)
}

// BudgetState is an account's failure budget.
type BudgetState struct {
	Failures    int       // consecutive failures so far, including provisional ones
	LockedUntil time.Time // zero when not locked
	Hard        bool      // the hard ceiling is reached: locked until reset out of band
}

// Locked reports whether the budget refuses attempts at now: a hard lock
// always does, a timed lock until LockedUntil. BudgetStore implementations
// use it to decide SpendAttempt's allowed result.
func (s BudgetState) Locked(now time.Time) bool {
	return s.Hard || now.Before(s.LockedUntil)
}

// BudgetStore keeps failure budgets per account, shared by every API replica.
type BudgetStore interface {
	// SpendAttempt atomically (one transaction / row lock) loads the account's budget; if it is locked at now
	// it returns the state and allowed=false without counting; otherwise it counts one provisional failure,
	// sets LockedUntil/Hard from policy(failuresAfterIncrement, now), stores and returns the new state with allowed=true.
	SpendAttempt(ctx context.Context, accountID string, now time.Time, policy func(failures int, now time.Time) (lockedUntil time.Time, hard bool)) (BudgetState, bool, error)
	// ResetBudget clears the failures and any lock after a success.
	ResetBudget(ctx context.Context, accountID string) error
}

// Lock policy defaults (NIST SP 800-63B: at most 100 consecutive failures).
const (
	DefaultLockThreshold = 5
	DefaultLockBase      = time.Minute
	DefaultLockMax       = 15 * time.Minute
	DefaultLockCeiling   = 100
)

// HardLockUntil is the LockedUntil that LockFor returns with a hard lock, so
// a store that only compares LockedUntil still refuses every attempt.
var HardLockUntil = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// LockPolicy is the progressive lock of a failure budget. Zero (or negative)
// fields take their defaults: Threshold 5, Base 1m, Max 15m, Ceiling 100.
//
// From Threshold consecutive failures on, each failure locks the account for
// Base·2^(failures−Threshold), capped at Max: 1m, 2m, 4m, 8m, 15m, 15m…
// At Ceiling failures the lock is hard: it lasts until the budget is reset out
// of band, by an approved unbind appeal or an administrator.
type LockPolicy struct {
	Threshold int
	Base      time.Duration
	Max       time.Duration
	Ceiling   int
}

func (p LockPolicy) withDefaults() LockPolicy {
	if p.Threshold <= 0 {
		p.Threshold = DefaultLockThreshold
	}
	if p.Base <= 0 {
		p.Base = DefaultLockBase
	}
	if p.Max <= 0 {
		p.Max = DefaultLockMax
	}
	if p.Ceiling <= 0 {
		p.Ceiling = DefaultLockCeiling
	}
	return p
}

// LockFor returns the lock that failures consecutive failures earn at now:
// the zero time when none, now plus the progressive delay, or HardLockUntil
// and hard=true at the ceiling. It is the policy passed to
// BudgetStore.SpendAttempt.
func (p LockPolicy) LockFor(failures int, now time.Time) (lockedUntil time.Time, hard bool) {
	p = p.withDefaults()
	if failures >= p.Ceiling {
		return HardLockUntil, true
	}
	if failures < p.Threshold {
		return time.Time{}, false
	}
	d := p.Max
	if n := failures - p.Threshold; n < 62 {
		if b := p.Base << n; b>>n == p.Base && b > 0 && b < p.Max {
			d = b
		}
	}
	return now.Add(d), false
}

// LockedError is the error of an attempt refused because the account is
// locked. errors.Is(err, ErrLocked) is true.
type LockedError struct {
	RetryAfter time.Duration // whole seconds, at least 1s; 0 when Hard
	Hard       bool          // locked until reset out of band
}

// Error says the account is locked and for how long; nothing else.
func (e *LockedError) Error() string {
	if e.Hard {
		return "mfa: locked until reset"
	}
	return "mfa: locked, retry after " + e.RetryAfter.String()
}

// Is reports whether target is ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Verifier checks codes against the replay guard and the account's failure
// budget. Steps is needed by Check, CheckAny and Resync; Budget by every
// method. Now nil means time.Now.
//
// Every method spends the budget before evaluating the code, so concurrent
// attempts can never evaluate more than the policy allows; a success resets
// it. Store errors are returned as they are (wrapped) and never turn into a
// success. Wrong, malformed and (for the client) replayed codes stay counted.
type Verifier struct {
	Steps  StepStore
	Budget BudgetStore
	Policy LockPolicy
	Now    func() time.Time
	// OnLock, when set, is called when an attempt puts the account under a
	// lock (the attempt itself is still evaluated), so the caller can audit
	// the lock and tell the owner. It must not block for long.
	OnLock func(ctx context.Context, accountID string, st BudgetState)
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

var (
	errNoBudget = errors.New("mfa: verifier has no budget store")
	errNoSteps  = errors.New("mfa: verifier has no step store")
)

func (v *Verifier) spend(ctx context.Context, accountID string, now time.Time) error {
	if v.Budget == nil {
		return errNoBudget
	}
	st, allowed, err := v.Budget.SpendAttempt(ctx, accountID, now, v.Policy.LockFor)
	if err != nil {
		return fmt.Errorf("mfa: spend attempt: %w", err)
	}
	return v.Admit(ctx, accountID, st, allowed, now)
}

// Admit turns the answer of a budget spend made at now (SpendAttempt with
// v.Policy.LockFor, or a store that spends as part of a larger call) into
// the verifier's: nil when the attempt was allowed, calling OnLock when
// the attempt put the account under a lock; otherwise a *LockedError with
// the time left.
func (v *Verifier) Admit(ctx context.Context, accountID string, st BudgetState, allowed bool, now time.Time) error {
	if allowed {
		if v.OnLock != nil && st.Locked(now) {
			v.OnLock(ctx, accountID, st)
		}
		return nil
	}
	if st.Hard {
		return &LockedError{Hard: true}
	}
	d := st.LockedUntil.Sub(now)
	d = (d + time.Second - 1).Truncate(time.Second)
	if d < time.Second {
		d = time.Second
	}
	return &LockedError{RetryAfter: d}
}

func (v *Verifier) reset(ctx context.Context, accountID string) error {
	if err := v.Budget.ResetBudget(ctx, accountID); err != nil {
		return fmt.Errorf("mfa: reset budget: %w", err)
	}
	return nil
}

// Attempt runs check under the account's failure budget: it spends one
// attempt, runs check, and resets the budget when check returns nil. Use it
// for codes that are not TOTP (SMS codes) and for binding
// (VerifyConsecutive), so every code shares one budget.
//
// It returns a *LockedError (errors.Is ErrLocked) without running check when
// the account is locked, check's error as it is, or a store error.
func (v *Verifier) Attempt(ctx context.Context, accountID string, check func() error) error {
	if err := v.spend(ctx, accountID, v.now()); err != nil {
		return err
	}
	if err := check(); err != nil {
		return err
	}
	return v.reset(ctx, accountID)
}

// Check verifies a TOTP code of one device under the failure budget and the
// replay guard and returns the consumed step. opts.Now zero means v.Now().
//
// It returns a *LockedError (errors.Is ErrLocked) when the account is
// locked; ErrMalformedCode or ErrInvalidCode for a wrong code; ErrReplayed
// when the code's step was already used (the caller audits and notifies);
// ErrInvalidParams or ErrInvalidSecret for a bad device; or a store error.
// A store error after the code was accepted is still an error (fail closed).
func (v *Verifier) Check(ctx context.Context, accountID, deviceID string, secret []byte, code string, opts VerifyOpts) (step int64, err error) {
	_, step, err = v.CheckAny(ctx, accountID, []Candidate{{DeviceID: deviceID, Secret: secret, Opts: opts}}, code)
	return step, err
}

// Candidate is one active device of an account for CheckAny.
type Candidate struct {
	DeviceID string
	Secret   Secret
	Opts     VerifyOpts
}

// CheckAny verifies a code against every candidate device of an account
// under one budget attempt, and consumes the step of the device that
// matched. Every candidate is evaluated, whatever matched first. It returns
// the matched device and step.
//
// It returns ErrNotFound without spending when cands is empty; otherwise the
// errors of Check. The code is malformed (ErrMalformedCode) only if it is
// malformed for every candidate. If several devices match, the first whose
// step is fresh is used; ErrReplayed only when all matches are replays.
//
// CheckAny makes three or four store calls. A store that can read, spend
// and consume in fewer calls composes the same check from its pieces:
// spend, then Admit, then MatchAny, then consume (the console's code checks
// do so through the app store's Check).
func (v *Verifier) CheckAny(ctx context.Context, accountID string, cands []Candidate, code string) (deviceID string, step int64, err error) {
	if len(cands) == 0 {
		return "", 0, ErrNotFound
	}
	if v.Steps == nil {
		return "", 0, errNoSteps
	}
	now := v.now()
	if err := v.spend(ctx, accountID, now); err != nil {
		return "", 0, err
	}
	matched, err := MatchAny(cands, code, now)
	if err != nil {
		return "", 0, err
	}
	for _, m := range matched {
		id := cands[m.Index].DeviceID
		ok, err := v.Steps.AdvanceStep(ctx, id, m.Step)
		if err != nil {
			return "", 0, fmt.Errorf("mfa: advance step: %w", err)
		}
		if ok {
			if err := v.reset(ctx, accountID); err != nil {
				return "", 0, err
			}
			return id, m.Step, nil
		}
	}
	return "", 0, ErrReplayed
}

// Match is a candidate of MatchAny whose code matched, and the step it
// matched at.
type Match struct {
	Index int // into the candidates
	Step  int64
}

// MatchAny evaluates code against every candidate at now (a candidate's
// Opts.Now, when set, wins), whatever matched first, and returns the
// matches in candidate order. It consults no store: the caller has spent
// the budget before and consumes a match's step after (CheckAny does
// both). It returns ErrMalformedCode when the code is malformed for every
// candidate, ErrInvalidCode when nothing matched, and ErrInvalidParams or
// ErrInvalidSecret for a bad candidate.
func MatchAny(cands []Candidate, code string, now time.Time) ([]Match, error) {
	var (
		matched   []Match
		malformed = 0
		cfgErr    error
	)
	for i := range cands {
		o := cands[i].Opts
		if o.Now.IsZero() {
			o.Now = now
		}
		s, err := Verify(cands[i].Secret, code, o)
		switch {
		case err == nil:
			matched = append(matched, Match{Index: i, Step: s})
		case errors.Is(err, ErrMalformedCode):
			malformed++
		case errors.Is(err, ErrInvalidCode):
		default:
			if cfgErr == nil {
				cfgErr = err
			}
		}
	}
	switch {
	case cfgErr != nil:
		return nil, cfgErr
	case len(matched) > 0:
		return matched, nil
	case malformed == len(cands):
		return nil, ErrMalformedCode
	}
	return nil, ErrInvalidCode
}

// Resync runs Resync for a hardware card under the failure budget and
// consumes the returned step, so the two codes cannot be used again. The
// caller stores newDrift for the card. opts.Now zero means v.Now().
//
// It returns a *LockedError when locked, ErrResyncFailed for wrong or
// malformed codes, ErrReplayed when the matched step was already used,
// ErrInvalidParams or ErrInvalidSecret for a bad card, or a store error.
func (v *Verifier) Resync(ctx context.Context, accountID, deviceID string, secret []byte, code1, code2 string, opts ResyncOpts) (newDrift, step int64, err error) {
	if v.Steps == nil {
		return 0, 0, errNoSteps
	}
	now := v.now()
	if opts.Now.IsZero() {
		opts.Now = now
	}
	if err := v.spend(ctx, accountID, now); err != nil {
		return 0, 0, err
	}
	newDrift, step, err = Resync(secret, code1, code2, opts)
	if err != nil {
		return 0, 0, err
	}
	ok, err := v.Steps.AdvanceStep(ctx, deviceID, step)
	if err != nil {
		return 0, 0, fmt.Errorf("mfa: advance step: %w", err)
	}
	if !ok {
		return 0, 0, ErrReplayed
	}
	if err := v.reset(ctx, accountID); err != nil {
		return 0, 0, err
	}
	return newDrift, step, nil
}
