package verifyint

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
)

func TestMain(m *testing.M) { harness.Main(m) }

func stores(tb testing.TB) map[string]func() store.Store {
	return map[string]func() store.Store{
		"sqlite":   func() store.Store { return storetest.SQLite(tb) },
		"postgres": func() store.Store { return storetest.Postgres(tb) },
	}
}

// bindDevice stores an active virtual device with secret, bound at bindStep.
func bindDevice(tb testing.TB, st store.Store, keys *mfa.Keyring, account string, secret []byte, bindStep int64) store.Device {
	tb.Helper()
	ctx := context.Background()
	d, err := st.CreateDevice(ctx, store.Device{AccountID: account, Type: store.Virtual, Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive,
		Secret: mfa.Sealed{KeyID: keys.CurrentID(), Ciphertext: []byte{0}}})
	if err != nil {
		tb.Fatal(err)
	}
	if ok, err := st.AdvanceStep(ctx, d.ID, bindStep); err != nil || !ok {
		tb.Fatalf("AdvanceStep to the binding step: %v %v", ok, err)
	}
	return d
}

// TestSameCodeConcurrently: 50 goroutines submit the same valid code; exactly one succeeds.
func TestSameCodeConcurrently(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := open()
			keys, _ := mfa.GenerateKeyring()
			secret, _ := mfa.NewSecret(nil)
			now := time.Now()
			step := mfa.StepAt(now, mfa.Params{})
			dev := bindDevice(t, st, keys, "acct-race", secret, step-5)
			code := mfa.TOTP(secret, now, mfa.Params{})
			// A permissive budget so the race is about the replay guard alone.
			v := &mfa.Verifier{Steps: st, Budget: st, Policy: mfa.LockPolicy{Threshold: 1000, Ceiling: 1000}, Now: func() time.Time { return now }}
			var ok, replayed, other atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := v.Check(context.Background(), "acct-race", dev.ID, secret, code, mfa.VerifyOpts{Now: now})
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, mfa.ErrReplayed):
						replayed.Add(1)
					default:
						other.Add(1)
						t.Errorf("unexpected error: %v", err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if ok.Load() != 1 || replayed.Load() != 49 {
				t.Fatalf("successes = %d, replays = %d, other = %d; want 1 and 49", ok.Load(), replayed.Load(), other.Load())
			}
		})
	}
}

// TestBindingCodesCannotLogIn: the step recorded at binding blocks the codes used to bind.
func TestBindingCodesCannotLogIn(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := open()
			keys, _ := mfa.GenerateKeyring()
			secret, _ := mfa.NewSecret(nil)
			now := time.Now()
			c1 := mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{})
			c2 := mfa.TOTP(secret, now, mfa.Params{})
			last, err := mfa.VerifyConsecutive(secret, c1, c2, mfa.VerifyOpts{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			dev := bindDevice(t, st, keys, "acct-bind", secret, last)
			v := &mfa.Verifier{Steps: st, Budget: st, Now: func() time.Time { return now }}
			for _, c := range []string{c1, c2} {
				if _, err := v.Check(context.Background(), "acct-bind", dev.ID, secret, c, mfa.VerifyOpts{Now: now}); !errors.Is(err, mfa.ErrReplayed) {
					t.Fatalf("binding code at login: err = %v, want ErrReplayed", err)
				}
			}
			later := now.Add(30 * time.Second)
			if _, err := v.Check(context.Background(), "acct-bind", dev.ID, secret, mfa.TOTP(secret, later, mfa.Params{}), mfa.VerifyOpts{Now: later}); err != nil {
				t.Fatalf("fresh code: %v", err)
			}
		})
	}
}

// TestLockHoldsAcrossReplicas: two verifiers (two API replicas) sharing one
// database share one budget, and never evaluate more than the ceiling.
func TestLockHoldsAcrossReplicas(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := open()
			keys, _ := mfa.GenerateKeyring()
			secret, _ := mfa.NewSecret(nil)
			now := time.Now()
			dev := bindDevice(t, st, keys, "acct-lock", secret, mfa.StepAt(now, mfa.Params{})-10)
			clock := now
			nowf := func() time.Time { return clock }
			a := &mfa.Verifier{Steps: st, Budget: st, Now: nowf}
			b := &mfa.Verifier{Steps: st, Budget: st, Now: nowf}
			evaluated := 0
			for i := 0; i < 1000; i++ {
				v := a
				if i%2 == 1 {
					v = b
				}
				_, err := v.Check(context.Background(), "acct-lock", dev.ID, secret, "000000", mfa.VerifyOpts{Now: clock})
				var le *mfa.LockedError
				switch {
				case errors.As(err, &le):
					if !le.Hard && le.RetryAfter <= 0 {
						t.Fatalf("lock without a retry time: %+v", le)
					}
					if le.Hard {
						break
					}
					clock = clock.Add(le.RetryAfter) // wait the lock out
				case errors.Is(err, mfa.ErrInvalidCode):
					evaluated++
				default:
					t.Fatalf("attempt %d: %v", i, err)
				}
			}
			if evaluated > 100 {
				t.Fatalf("%d consecutive failures evaluated, the ceiling is 100", evaluated)
			}
			_, err := a.Check(context.Background(), "acct-lock", dev.ID, secret, mfa.TOTP(secret, clock, mfa.Params{}), mfa.VerifyOpts{Now: clock})
			if !errors.Is(err, mfa.ErrLocked) {
				t.Fatalf("after the ceiling a valid code got %v, want the hard lock", err)
			}
		})
	}
}

// BenchmarkVerifyWithReplayWrite measures one successful verification with
// its compare-and-set of the used step, per database.
func BenchmarkVerifyWithReplayWrite(b *testing.B) {
	for name, open := range stores(b) {
		b.Run(name, func(b *testing.B) {
			st := open()
			keys, _ := mfa.GenerateKeyring()
			secret, _ := mfa.NewSecret(nil)
			base := time.Unix(1_700_000_000, 0)
			dev := bindDevice(b, st, keys, "acct-bench", secret, mfa.StepAt(base, mfa.Params{}))
			step := 0
			v := &mfa.Verifier{Steps: st, Budget: st}
			b.ResetTimer()
			for b.Loop() {
				// Three steps apart, so the ±1 windows of two checks never
				// overlap: a code that happens to equal its neighbour's
				// (one in a million per pair) may match the earlier step,
				// which must still be fresh for the next check.
				step += 3
				at := base.Add(time.Duration(step) * 30 * time.Second)
				v.Now = func() time.Time { return at }
				if _, err := v.Check(context.Background(), "acct-bench", dev.ID, secret, mfa.TOTP(secret, at, mfa.Params{}), mfa.VerifyOpts{Now: at}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
