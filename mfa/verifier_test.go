package mfa

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memStore is an in-memory StepStore and BudgetStore with the semantics the
// SQL stores must have (one mutex stands for the row lock).
type memStore struct {
	mu      sync.Mutex
	steps   map[string]int64
	budgets map[string]BudgetState
	fail    error // returned by every call when set
	spent   atomic.Int64
}

func newMemStore(devices ...string) *memStore {
	m := &memStore{steps: map[string]int64{}, budgets: map[string]BudgetState{}}
	for _, d := range devices {
		m.steps[d] = -1
	}
	return m
}

func (m *memStore) AdvanceStep(_ context.Context, deviceID string, step int64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	last, ok := m.steps[deviceID]
	if !ok {
		return false, ErrNotFound
	}
	if step <= last {
		return false, nil
	}
	m.steps[deviceID] = step
	return true, nil
}

func (m *memStore) SpendAttempt(_ context.Context, accountID string, now time.Time, policy func(int, time.Time) (time.Time, bool)) (BudgetState, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return BudgetState{}, false, m.fail
	}
	st := m.budgets[accountID]
	if st.Locked(now) {
		return st, false, nil
	}
	m.spent.Add(1)
	st.Failures++
	st.LockedUntil, st.Hard = policy(st.Failures, now)
	m.budgets[accountID] = st
	return st, true, nil
}

func (m *memStore) ResetBudget(_ context.Context, accountID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	delete(m.budgets, accountID)
	return nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newVerifier(st *memStore, c *clock) *Verifier {
	return &Verifier{Steps: st, Budget: st, Now: c.now}
}

func TestLockPolicy(t *testing.T) {
	var p LockPolicy
	now := testNow
	tests := []struct {
		failures int
		want     time.Duration
		hard     bool
	}{
		{1, 0, false}, {4, 0, false},
		{5, time.Minute, false}, {6, 2 * time.Minute, false}, {7, 4 * time.Minute, false},
		{8, 8 * time.Minute, false}, {9, 15 * time.Minute, false}, {50, 15 * time.Minute, false},
		{99, 15 * time.Minute, false}, {100, 0, true}, {1000, 0, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.failures), func(t *testing.T) {
			until, hard := p.LockFor(tt.failures, now)
			if hard != tt.hard {
				t.Fatalf("hard = %v", hard)
			}
			switch {
			case tt.hard:
				if !until.Equal(HardLockUntil) {
					t.Fatalf("until = %v", until)
				}
			case tt.want == 0:
				if !until.IsZero() {
					t.Fatalf("until = %v, want zero", until)
				}
			default:
				if got := until.Sub(now); got != tt.want {
					t.Fatalf("lock = %v, want %v", got, tt.want)
				}
			}
		})
	}
	// Huge Base or shifts do not overflow into short locks.
	if until, _ := (LockPolicy{Base: 1 << 60, Max: time.Hour}).LockFor(70, now); until.Sub(now) != time.Hour {
		t.Fatalf("overflow: %v", until.Sub(now))
	}
}

func TestVerifierReplay(t *testing.T) {
	st := newMemStore("dev1")
	c := &clock{testNow}
	v := newVerifier(st, c)
	ctx := context.Background()
	code := TOTP(rfcSeed20, c.t, Params{})
	step, err := v.Check(ctx, "acct", "dev1", rfcSeed20, code, VerifyOpts{})
	if err != nil || step != StepAt(c.t, Params{}) {
		t.Fatalf("first use: %d, %v", step, err)
	}
	if _, err := v.Check(ctx, "acct", "dev1", rfcSeed20, code, VerifyOpts{}); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second use: %v", err)
	}
	if got := st.budgets["acct"].Failures; got != 1 {
		t.Fatalf("replay should count as a failure, failures = %d", got)
	}
	// An older code that is still in the window is refused too.
	prev := HOTP(rfcSeed20, uint64(step-1), Params{})
	if _, err := v.Check(ctx, "acct", "dev1", rfcSeed20, prev, VerifyOpts{}); !errors.Is(err, ErrReplayed) {
		t.Fatalf("older code: %v", err)
	}
	// The next step's code is fresh.
	c.advance(30 * time.Second)
	if _, err := v.Check(ctx, "acct", "dev1", rfcSeed20, TOTP(rfcSeed20, c.t, Params{}), VerifyOpts{}); err != nil {
		t.Fatalf("next code: %v", err)
	}
	if got := st.budgets["acct"].Failures; got != 0 {
		t.Fatalf("success should reset, failures = %d", got)
	}
}

func TestVerifierBindStepBlocksReuse(t *testing.T) {
	st := newMemStore()
	c := &clock{testNow}
	v := newVerifier(st, c)
	ctx := context.Background()
	p := Params{}
	cur := StepAt(c.t, p)
	c1, c2 := HOTP(rfcSeed20, uint64(cur-1), p), HOTP(rfcSeed20, uint64(cur), p)
	var last int64
	err := v.Attempt(ctx, "acct", func() error {
		s, err := VerifyConsecutive(rfcSeed20, c1, c2, VerifyOpts{Now: c.t})
		last = s
		return err
	})
	if err != nil || last != cur {
		t.Fatalf("bind: %d, %v", last, err)
	}
	// The binding stores the device with its last used step.
	st.steps["dev1"] = last
	for _, code := range []string{c1, c2} {
		if _, err := v.Check(ctx, "acct", "dev1", rfcSeed20, code, VerifyOpts{}); !errors.Is(err, ErrReplayed) {
			t.Fatalf("reuse of a binding code: %v", err)
		}
	}
}

func TestVerifierLockProgression(t *testing.T) {
	st := newMemStore("dev1")
	c := &clock{testNow}
	v := newVerifier(st, c)
	ctx := context.Background()
	wrong := "000000"
	if TOTP(rfcSeed20, c.t, Params{}) == wrong {
		wrong = "111111"
	}
	fail := func() error {
		_, err := v.Check(ctx, "acct", "dev1", rfcSeed20, wrong, VerifyOpts{Skew: NoSkew})
		return err
	}
	for i := 1; i <= 4; i++ {
		if err := fail(); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	for _, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 15 * time.Minute, 15 * time.Minute} {
		if err := fail(); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("locking failure: %v", err)
		}
		err := fail()
		var le *LockedError
		if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || le.Hard || le.RetryAfter != want {
			t.Fatalf("want lock %v, got %v", want, err)
		}
		c.advance(want - time.Second)
		if err := fail(); !errors.As(err, &le) || le.RetryAfter != time.Second {
			t.Fatalf("1s before expiry: %v", err)
		}
		c.advance(time.Second)
	}
	// A correct code after the lock resets the budget.
	if _, err := v.Check(ctx, "acct", "dev1", rfcSeed20, TOTP(rfcSeed20, c.t, Params{}), VerifyOpts{}); err != nil {
		t.Fatalf("success: %v", err)
	}
	if st.budgets["acct"].Failures != 0 {
		t.Fatal("success did not reset")
	}
}

func TestVerifierHardCeiling(t *testing.T) {
	st := newMemStore("dev1")
	c := &clock{testNow}
	v := newVerifier(st, c)
	ctx := context.Background()
	evaluated := 0
	for i := 0; i < 500; i++ {
		err := v.Attempt(ctx, "acct", func() error { evaluated++; return ErrInvalidCode })
		var le *LockedError
		if errors.As(err, &le) {
			if le.Hard {
				break
			}
			c.advance(le.RetryAfter)
		}
	}
	if evaluated != DefaultLockCeiling {
		t.Fatalf("evaluated %d failures, want exactly %d", evaluated, DefaultLockCeiling)
	}
	c.advance(1000 * time.Hour)
	err := v.Attempt(ctx, "acct", func() error { t.Fatal("evaluated after hard lock"); return nil })
	var le *LockedError
	if !errors.As(err, &le) || !le.Hard || le.RetryAfter != 0 || !errors.Is(err, ErrLocked) {
		t.Fatalf("after ceiling: %v", err)
	}
	// Only an out-of-band reset unlocks.
	if err := st.ResetBudget(ctx, "acct"); err != nil {
		t.Fatal(err)
	}
	if err := v.Attempt(ctx, "acct", func() error { return nil }); err != nil {
		t.Fatalf("after reset: %v", err)
	}
}

func TestVerifierMalformedSpendsBudget(t *testing.T) {
	st := newMemStore("dev1")
	v := newVerifier(st, &clock{testNow})
	_, err := v.Check(context.Background(), "acct", "dev1", rfcSeed20, "12ab56", VerifyOpts{})
	if !errors.Is(err, ErrMalformedCode) {
		t.Fatalf("err = %v", err)
	}
	if st.budgets["acct"].Failures != 1 {
		t.Fatal("malformed code did not spend budget")
	}
}

func TestVerifierFailsClosed(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("db down")
	code := TOTP(rfcSeed20, testNow, Params{})

	st := newMemStore("dev1")
	st.fail = boom
	v := newVerifier(st, &clock{testNow})
	if _, err := v.Check(ctx, "acct", "dev1", rfcSeed20, code, VerifyOpts{}); !errors.Is(err, boom) {
		t.Fatalf("budget down: %v", err)
	}
	if err := v.Attempt(ctx, "acct", func() error { t.Fatal("ran with budget down"); return nil }); !errors.Is(err, boom) {
		t.Fatalf("attempt budget down: %v", err)
	}

	// Budget works, steps fail.
	good := newMemStore()
	v = &Verifier{Steps: failingSteps{boom}, Budget: good, Now: func() time.Time { return testNow }}
	if _, err := v.Check(ctx, "acct", "dev1", rfcSeed20, code, VerifyOpts{}); !errors.Is(err, boom) {
		t.Fatalf("steps down: %v", err)
	}
	// Unknown device.
	v = newVerifier(newMemStore(), &clock{testNow})
	if _, err := v.Check(ctx, "acct", "nope", rfcSeed20, code, VerifyOpts{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown device: %v", err)
	}
	// Reset fails after the step was consumed: still an error.
	rs := &resetFails{memStore: newMemStore("dev1"), err: boom}
	v = &Verifier{Steps: rs, Budget: rs, Now: func() time.Time { return testNow }}
	if _, err := v.Check(ctx, "acct", "dev1", rfcSeed20, code, VerifyOpts{}); !errors.Is(err, boom) {
		t.Fatalf("reset down: %v", err)
	}
	// Missing stores.
	if _, err := (&Verifier{Steps: good}).Check(ctx, "a", "d", rfcSeed20, code, VerifyOpts{Now: testNow}); err == nil {
		t.Fatal("nil budget accepted")
	}
}

type failingSteps struct{ err error }

func (f failingSteps) AdvanceStep(context.Context, string, int64) (bool, error) { return false, f.err }

type resetFails struct {
	*memStore
	err error
}

func (r *resetFails) ResetBudget(context.Context, string) error { return r.err }

func TestVerifierCheckAny(t *testing.T) {
	st := newMemStore("card", "app")
	c := &clock{testNow}
	v := newVerifier(st, c)
	ctx := context.Background()
	appSecret := []byte("another-secret-of-20")
	cands := []Candidate{
		{DeviceID: "card", Secret: rfcSeed20, Opts: VerifyOpts{Params: Params{Digits: 8}}},
		{DeviceID: "app", Secret: appSecret},
	}
	code := TOTP(appSecret, c.t, Params{})
	dev, step, err := v.CheckAny(ctx, "acct", cands, code)
	if err != nil || dev != "app" || step != StepAt(c.t, Params{}) {
		t.Fatalf("CheckAny = %q, %d, %v", dev, step, err)
	}
	if _, _, err := v.CheckAny(ctx, "acct", cands, code); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	code8 := TOTP(rfcSeed20, c.t, Params{Digits: 8})
	if dev, _, err := v.CheckAny(ctx, "acct", cands, code8); err != nil || dev != "card" {
		t.Fatalf("card: %q, %v", dev, err)
	}
	// 7 digits fit no device: malformed. 6 wrong digits: invalid.
	if _, _, err := v.CheckAny(ctx, "acct", cands, "1234567"); !errors.Is(err, ErrMalformedCode) {
		t.Fatalf("7 digits: %v", err)
	}
	if _, _, err := v.CheckAny(ctx, "acct", nil, "123456"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no candidates: %v", err)
	}
}

func TestVerifierResync(t *testing.T) {
	st := newMemStore("card")
	c := &clock{testNow}
	v := newVerifier(st, c)
	ctx := context.Background()
	p := Params{Period: time.Minute}
	cur := StepAt(c.t, p)
	c1, c2 := HOTP(rfcSeed20, uint64(cur+5), p), HOTP(rfcSeed20, uint64(cur+6), p)
	drift, step, err := v.Resync(ctx, "acct", "card", rfcSeed20, c1, c2, ResyncOpts{Params: p})
	if err != nil || drift != 6 || step != cur+6 {
		t.Fatalf("Resync = %d, %d, %v", drift, step, err)
	}
	if _, _, err := v.Resync(ctx, "acct", "card", rfcSeed20, c1, c2, ResyncOpts{Params: p}); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replayed resync: %v", err)
	}
	if _, _, err := v.Resync(ctx, "acct", "card", rfcSeed20, c2, c1, ResyncOpts{Params: p}); err != ErrResyncFailed {
		t.Fatalf("wrong resync: %v", err)
	}
}

// TestConcurrentSameCode submits one valid code from 50 goroutines: exactly
// one succeeds, whatever the interleaving.
func TestConcurrentSameCode(t *testing.T) {
	for _, policy := range []LockPolicy{{}, {Threshold: 1000, Ceiling: 10000}} {
		t.Run(fmt.Sprint(policy.Threshold), func(t *testing.T) {
			st := newMemStore("dev1")
			v := &Verifier{Steps: st, Budget: st, Policy: policy, Now: func() time.Time { return testNow }}
			code := TOTP(rfcSeed20, testNow, Params{})
			var ok, replayed, locked atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 50 {
				wg.Go(func() {
					<-start
					_, err := v.Check(context.Background(), "acct", "dev1", rfcSeed20, code, VerifyOpts{})
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, ErrReplayed):
						replayed.Add(1)
					case errors.Is(err, ErrLocked):
						locked.Add(1)
					default:
						t.Errorf("unexpected error: %v", err)
					}
				})
			}
			close(start)
			wg.Wait()
			if ok.Load() != 1 {
				t.Fatalf("%d successes, want exactly 1 (replayed %d, locked %d)", ok.Load(), replayed.Load(), locked.Load())
			}
			if ok.Load()+replayed.Load()+locked.Load() != 50 {
				t.Fatal("lost results")
			}
		})
	}
}

// TestConcurrentBudgetCeiling hammers one account with wrong codes from many
// goroutines: no more attempts are evaluated than the policy allows before
// it locks.
func TestConcurrentBudgetCeiling(t *testing.T) {
	st := newMemStore("dev1")
	v := &Verifier{Steps: st, Budget: st, Now: func() time.Time { return testNow }}
	var evaluated atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			_ = v.Attempt(context.Background(), "acct", func() error { evaluated.Add(1); return ErrInvalidCode })
		})
	}
	wg.Wait()
	if n := evaluated.Load(); n != DefaultLockThreshold {
		t.Fatalf("evaluated %d, want %d before the lock", n, DefaultLockThreshold)
	}
}

func TestVerifierOnLock(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	budget := newMemStore()
	var locks []BudgetState
	v := &Verifier{Budget: budget, Now: func() time.Time { return now },
		OnLock: func(_ context.Context, _ string, st BudgetState) { locks = append(locks, st) }}
	for i := 0; i < 5; i++ {
		_ = v.Attempt(context.Background(), "acct", func() error { return ErrInvalidCode })
	}
	if len(locks) != 1 || locks[0].Failures != 5 || !locks[0].LockedUntil.Equal(now.Add(time.Minute)) {
		t.Fatalf("locks = %+v, want one lock at the 5th failure for 1m", locks)
	}
	// Refused attempts while locked do not report a new lock.
	_ = v.Attempt(context.Background(), "acct", func() error { return nil })
	if len(locks) != 1 {
		t.Fatalf("a refused attempt reported a lock: %+v", locks)
	}
}
