package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

// finishOf is a finish of dev's step with an audit entry.
func finishOf(dev store.Device, step int64, at time.Time) store.CheckFinish {
	return store.CheckFinish{AccountID: dev.AccountID, DeviceID: dev.ID, Step: step, At: at,
		Audit: store.AuditEntry{Actor: "console", Action: "mfa.verify.login", Outcome: "ok", Subject: dev.ID}}
}

// testWholeCheck holds CheckStore.Check to its contract: eval runs only
// once the attempt is counted and allowed, its finishes are tried in
// order, and the outcome says what happened.
func testWholeCheck(t *testing.T, s store.Store) {
	c := ctx(t)
	now := time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC)
	_, err := s.PutAccount(c, account("acc-w"))
	must(t, err)
	_, err = s.SetProtection(c, "acc-w", store.Protection{Login: true})
	must(t, err)
	dev, err := s.CreateDevice(c, device("acc-w"))
	must(t, err)
	second, err := s.CreateDevice(c, device("acc-w"))
	must(t, err)
	_, err = s.PutAccount(c, account("acc-w-off"))
	must(t, err)
	_, err = s.CreateDevice(c, device("acc-w-off"))
	must(t, err)
	req := func(account string) store.CheckRequest {
		r := checkReq(account, store.CheckLogin, mfaTypes, now)
		r.Policy = func(f int, _ time.Time) (time.Time, bool) {
			if f >= 100 {
				return mfa.HardLockUntil, true
			}
			return time.Time{}, false
		}
		return r
	}
	noEval := func(t *testing.T) store.CheckEval {
		return func(store.CheckStart) ([]store.CheckFinish, error) {
			t.Error("eval called")
			return nil, nil
		}
	}

	t.Run("unknown account", func(t *testing.T) {
		_, err := s.Check(c, req("nope"), noEval(t))
		wantErr(t, err, store.ErrNotFound)
	})
	t.Run("protection off: nothing spent, nothing evaluated", func(t *testing.T) {
		out, err := s.Check(c, req("acc-w-off"), noEval(t))
		must(t, err)
		if out.Start.Spent || out.Evaluated || out.Consumed != -1 {
			t.Errorf("outcome %+v, want not spent, not evaluated", out)
		}
	})

	// A wrong code: the attempt is counted before eval sees it, and stays.
	var failures []int
	for range 3 {
		out, err := s.Check(c, req("acc-w"), func(st store.CheckStart) ([]store.CheckFinish, error) {
			if !st.Spent || !st.Allowed {
				t.Errorf("eval called on a start not spent and allowed: %+v", st)
			}
			failures = append(failures, st.Budget.Failures)
			return nil, mfa.ErrInvalidCode
		})
		must(t, err)
		if !out.Evaluated || out.EvalErr != mfa.ErrInvalidCode || out.Consumed != -1 {
			t.Errorf("wrong code: outcome %+v", out)
		}
	}
	if fmt.Sprint(failures) != "[1 2 3]" {
		t.Errorf("eval saw failure counts %v, want [1 2 3]: each attempt counted before it is evaluated", failures)
	}

	// A right code: the first finish whose step is fresh wins, with its
	// audit entry and grant, and the budget is cleared.
	grant := &store.Grant{ID: store.GrantID("grt-whole"), Action: "vm.delete", Resource: "vm-1", ExpiresAt: now.Add(time.Hour)}
	used := finishOf(dev, 50, now) // below the device's last step: used already
	fresh := finishOf(second, 150, now)
	fresh.Grant = grant
	out, err := s.Check(c, req("acc-w"), func(st store.CheckStart) ([]store.CheckFinish, error) {
		if st.Budget.Failures != 4 {
			t.Errorf("eval saw %d failures, want 4", st.Budget.Failures)
		}
		return []store.CheckFinish{used, fresh}, nil
	})
	must(t, err)
	if out.Consumed != 1 || len(out.Finishes) != 2 {
		t.Fatalf("outcome consumed %d of %d finishes, want the second", out.Consumed, len(out.Finishes))
	}
	d, err := s.GetDevice(c, second.ID)
	must(t, err)
	if d.LastStep != 150 {
		t.Errorf("last step %d, want 150", d.LastStep)
	}
	entries, err := s.ListAudit(c, store.AuditFilter{AccountID: "acc-w"})
	must(t, err)
	if len(entries) != 1 || entries[0].Subject != second.ID || entries[0].Action != "mfa.verify.login" {
		t.Errorf("audit %+v, want one entry for the device that matched", entries)
	}
	g, err := s.ConsumeGrant(c, grant.ID, "acc-w", "vm.delete", "vm-1", now)
	must(t, err)
	if g.DeviceID != second.ID {
		t.Errorf("grant device %q, want %q", g.DeviceID, second.ID)
	}
	out, err = s.Check(c, req("acc-w"), func(st store.CheckStart) ([]store.CheckFinish, error) {
		if st.Budget.Failures != 1 {
			t.Errorf("after a success eval saw %d failures, want 1: the budget was not cleared", st.Budget.Failures)
		}
		return []store.CheckFinish{finishOf(second, 150, now)}, nil
	})
	must(t, err)
	if out.Consumed != -1 {
		t.Error("a replayed step was consumed")
	}

	// A finish of a device that is not the account's: not found, the spend stays.
	_, err = s.Check(c, req("acc-w"), func(st store.CheckStart) ([]store.CheckFinish, error) {
		return []store.CheckFinish{{AccountID: "acc-w", DeviceID: "no-such-device", Step: 999, At: now}}, nil
	})
	wantErr(t, err, store.ErrNotFound)

	// A locked budget: eval never runs.
	locked := req("acc-w")
	locked.Policy = func(int, time.Time) (time.Time, bool) { return mfa.HardLockUntil, true }
	// The attempt that earns the lock is counted and still evaluated (as
	// SpendAttempt allows it); the next is refused without eval.
	out, err = s.Check(c, locked, func(st store.CheckStart) ([]store.CheckFinish, error) {
		if !st.Budget.Hard {
			t.Errorf("the locking attempt's eval saw %+v, want the hard lock it earned", st.Budget)
		}
		return nil, mfa.ErrInvalidCode
	})
	must(t, err)
	if !out.Start.Spent || !out.Evaluated {
		t.Fatalf("first locking attempt: spent %v, evaluated %v", out.Start.Spent, out.Evaluated)
	}
	out, err = s.Check(c, req("acc-w"), noEval(t))
	must(t, err)
	if out.Start.Allowed || out.Evaluated {
		t.Errorf("hard-locked account: outcome %+v, want refused without eval", out)
	}
}

// testWholeCheckRace: 20 concurrent checks of one code on one account give
// exactly one success and one audit entry; across 20 accounts checked at
// once, a check whose finish cannot be written fails alone.
func testWholeCheckRace(t *testing.T, s store.Store) {
	c := ctx(t)
	now := time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC)
	const n = 20
	devs := accountsWithDevice(t, s, "acc-wr", n)
	var wins atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			out, err := s.Check(c, checkReq(devs[0].AccountID, store.CheckAny, mfaTypes, now),
				func(store.CheckStart) ([]store.CheckFinish, error) {
					return []store.CheckFinish{finishOf(devs[0], 200, now)}, nil
				})
			if err != nil {
				errs <- err
				return
			}
			if out.Consumed == 0 {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if w := wins.Load(); w != 1 {
		t.Errorf("%d of %d concurrent uses of one code succeeded, want exactly 1", w, n)
	}
	entries, err := s.ListAudit(c, store.AuditFilter{AccountID: devs[0].AccountID})
	must(t, err)
	if len(entries) != 1 {
		t.Errorf("%d audit entries, want 1", len(entries))
	}

	_, err = s.CreateGrant(c, store.Grant{ID: store.GrantID("grt-w-taken"), AccountID: devs[1].AccountID, Action: "a", Resource: "r",
		ExpiresAt: time.Now().Add(time.Minute)})
	must(t, err)
	results := make([]error, n)
	outs := make([]store.CheckOutcome, n)
	for i := 1; i < n; i++ {
		wg.Go(func() {
			outs[i], results[i] = s.Check(c, checkReq(devs[i].AccountID, store.CheckAny, mfaTypes, now),
				func(store.CheckStart) ([]store.CheckFinish, error) {
					f := finishOf(devs[i], 300, now)
					f.Grant = &store.Grant{ID: store.GrantID(fmt.Sprintf("grt-w%02d", i)), Action: "a", Resource: "r", ExpiresAt: time.Now().Add(time.Minute)}
					if i == 7 {
						f.Grant.ID = store.GrantID("grt-w-taken")
					}
					return []store.CheckFinish{f}, nil
				})
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		switch {
		case i == 7:
			wantErr(t, results[i], store.ErrConflict)
			d, err := s.GetDevice(c, devs[i].ID)
			must(t, err)
			if d.LastStep != 100 {
				t.Errorf("the failed check consumed its step: last step %d", d.LastStep)
			}
			entries, err := s.ListAudit(c, store.AuditFilter{AccountID: devs[i].AccountID})
			must(t, err)
			if len(entries) != 0 {
				t.Errorf("the failed check left %d audit entries", len(entries))
			}
		case results[i] != nil || outs[i].Consumed != 0:
			t.Errorf("%s: check = %+v, %v beside a failing one; want consumed", devs[i].AccountID, outs[i], results[i])
		}
	}
}
