package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

// checkReq is a BeginCheck request of account with the usual policy.
func checkReq(account string, purpose store.CheckPurpose, types []store.DeviceType, now time.Time) store.CheckRequest {
	return store.CheckRequest{AccountID: account, Purpose: purpose, Types: types, Now: now, Policy: threshold(100)}
}

var mfaTypes = []store.DeviceType{store.Virtual, store.Hardware}

func deviceIDs(ds []store.Device) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func testCheck(t *testing.T, s store.Store) {
	c := ctx(t)
	now := time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC)
	_, err := s.PutAccount(c, account("acc-1"))
	must(t, err)
	_, err = s.SetProtection(c, "acc-1", store.Protection{Login: true})
	must(t, err)
	virtual, err := s.CreateDevice(c, device("acc-1"))
	must(t, err)
	hw := device("acc-1")
	hw.Type, hw.Serial = store.Hardware, "SN-CHECK-1"
	hardware, err := s.CreateDevice(c, hw)
	must(t, err)
	revoked, err := s.CreateDevice(c, device("acc-1"))
	must(t, err)
	_, err = s.RevokeDevice(c, revoked.ID, now)
	must(t, err)
	sc := device("acc-1")
	sc.Type, sc.ID = store.SecurityCenter, "sc-acc-1"
	_, err = s.CreateDevice(c, sc)
	must(t, err)

	t.Run("unknown account", func(t *testing.T) {
		_, err := s.BeginCheck(c, checkReq("nope", store.CheckAny, mfaTypes, now))
		wantErr(t, err, store.ErrNotFound)
	})

	t.Run("reads and spends", func(t *testing.T) {
		st, err := s.BeginCheck(c, checkReq("acc-1", store.CheckLogin, mfaTypes, now))
		must(t, err)
		if got, want := deviceIDs(st.Devices), []string{virtual.ID, hardware.ID}; !reflect.DeepEqual(got, want) {
			t.Errorf("devices = %v, want %v (active virtual and hardware, oldest first)", got, want)
		}
		if len(st.Devices) > 0 {
			got := st.Devices[0]
			if got.Secret.KeyID != virtual.Secret.KeyID || string(got.Secret.Ciphertext) != string(virtual.Secret.Ciphertext) ||
				got.LastStep != 100 || got.Digits != 6 || got.PeriodSeconds != 30 || got.Algorithm != "SHA1" || !got.CreatedAt.Equal(virtual.CreatedAt) {
				t.Errorf("device = %+v, want %+v", got, virtual)
			}
		}
		if st.LoginMethod != store.LoginMFA || !st.Protection.Login || st.Protection.Operation || st.Protection.UpdatedAt.IsZero() {
			t.Errorf("login method %q, protection %+v", st.LoginMethod, st.Protection)
		}
		if !st.Spent || !st.Allowed || st.Budget.Failures != 1 || st.Budget.Hard || !st.Budget.LockedUntil.IsZero() || st.OpenAppeal {
			t.Errorf("spent %v allowed %v budget %+v open appeal %v; want one failure counted", st.Spent, st.Allowed, st.Budget, st.OpenAppeal)
		}
	})

	t.Run("protection off spends nothing", func(t *testing.T) {
		st, err := s.BeginCheck(c, checkReq("acc-1", store.CheckOperation, mfaTypes, now))
		must(t, err)
		if st.Spent || st.Allowed || len(st.Devices) != 2 {
			t.Errorf("operation check with operation protection off: spent %v allowed %v devices %d", st.Spent, st.Allowed, len(st.Devices))
		}
		got, allowed, err := s.SpendAttempt(c, "acc-1", now, threshold(100))
		must(t, err)
		if !allowed || got.Failures != 2 {
			t.Errorf("after it SpendAttempt = %+v, %v; want the second failure", got, allowed)
		}
		must(t, s.ResetBudget(c, "acc-1"))
	})

	t.Run("types by login method", func(t *testing.T) {
		st, err := s.BeginCheck(c, checkReq("acc-1", store.CheckAny, nil, now))
		must(t, err)
		if got := deviceIDs(st.Devices); !reflect.DeepEqual(got, []string{virtual.ID, hardware.ID}) {
			t.Errorf("mfa login method: devices %v", got)
		}
		a := account("acc-sc")
		a.LoginMethod = store.LoginSecurityCenter
		_, err = s.PutAccount(c, a)
		must(t, err)
		sc2 := device("acc-sc")
		sc2.Type, sc2.ID = store.SecurityCenter, "sc-acc-sc"
		_, err = s.CreateDevice(c, sc2)
		must(t, err)
		_, err = s.CreateDevice(c, device("acc-sc"))
		must(t, err)
		st, err = s.BeginCheck(c, checkReq("acc-sc", store.CheckAny, nil, now))
		must(t, err)
		if got := deviceIDs(st.Devices); !reflect.DeepEqual(got, []string{"sc-acc-sc"}) || !st.Spent {
			t.Errorf("security-center login method: devices %v spent %v", got, st.Spent)
		}
		st, err = s.BeginCheck(c, checkReq("acc-sc", store.CheckAny, []store.DeviceType{}, now))
		must(t, err)
		if len(st.Devices) != 0 || st.Spent {
			t.Errorf("no types asked: devices %v spent %v", deviceIDs(st.Devices), st.Spent)
		}
	})

	t.Run("no device spends nothing", func(t *testing.T) {
		_, err := s.PutAccount(c, account("acc-empty"))
		must(t, err)
		st, err := s.BeginCheck(c, checkReq("acc-empty", store.CheckAny, mfaTypes, now))
		must(t, err)
		if st.Spent || len(st.Devices) != 0 || st.Devices == nil {
			t.Errorf("spent %v devices %v (want an empty list)", st.Spent, st.Devices)
		}
	})

	t.Run("locks as SpendAttempt", func(t *testing.T) {
		_, err := s.PutAccount(c, account("acc-lock"))
		must(t, err)
		_, err = s.CreateDevice(c, device("acc-lock"))
		must(t, err)
		req := checkReq("acc-lock", store.CheckAny, mfaTypes, now)
		req.Policy = threshold(5) // a minute from 3 failures, hard at 5
		steps := budgetSteps(now)
		for i, step := range steps {
			req.Now = step.at
			st, err := s.BeginCheck(c, req)
			must(t, err)
			b := st.Budget
			if !st.Spent || st.Allowed != step.wantAllowed || b.Failures != step.wantFails || !b.LockedUntil.Equal(step.wantUntil) || b.Hard != step.wantHard {
				t.Fatalf("step %d: spent %v allowed %v budget %+v; want allowed %v, %d failures until %v hard %v",
					i, st.Spent, st.Allowed, b, step.wantAllowed, step.wantFails, step.wantUntil, step.wantHard)
			}
		}
	})

	t.Run("finish", func(t *testing.T) {
		_, _, err := s.SpendAttempt(c, "acc-1", now, threshold(100))
		must(t, err)
		at := now.Add(3 * time.Second)
		f := store.CheckFinish{AccountID: "acc-1", DeviceID: virtual.ID, Step: 101, At: at,
			Audit: store.AuditEntry{At: at, Actor: "console", Action: "mfa.verify.operation", Outcome: "ok",
				Subject: virtual.ID, RemoteIP: "192.0.2.1", Details: map[string]string{"action": "vm.delete"}},
			Grant: &store.Grant{ID: store.GrantID("grt-check-1"), Action: "vm.delete", Resource: "vm-1", ExpiresAt: time.Now().Add(time.Minute)}}
		ok, err := s.FinishCheck(c, f)
		must(t, err)
		if !ok {
			t.Fatal("FinishCheck of a fresh step = false")
		}
		d, err := s.GetDevice(c, virtual.ID)
		must(t, err)
		if d.LastStep != 101 || !d.LastUsedAt.Equal(at) {
			t.Errorf("device after finish: last step %d, last used %v; want 101, %v", d.LastStep, d.LastUsedAt, at)
		}
		b, allowed, err := s.SpendAttempt(c, "acc-1", now, threshold(100))
		must(t, err)
		if !allowed || b.Failures != 1 {
			t.Errorf("budget after finish: %+v; want cleared (one failure after a new spend)", b)
		}
		must(t, s.ResetBudget(c, "acc-1"))
		entries, err := s.ListAudit(c, store.AuditFilter{AccountID: "acc-1"})
		must(t, err)
		if len(entries) != 1 {
			t.Fatalf("audit entries = %d, want 1", len(entries))
		}
		e := entries[0]
		if e.Action != "mfa.verify.operation" || e.Outcome != "ok" || e.Actor != "console" || e.Subject != virtual.ID ||
			e.RemoteIP != "192.0.2.1" || e.Details["action"] != "vm.delete" || !e.At.Equal(at) || e.AccountID != "acc-1" {
			t.Errorf("audit entry = %+v", e)
		}
		g, err := s.ConsumeGrant(c, store.GrantID("grt-check-1"), "acc-1", "vm.delete", "vm-1", time.Now())
		must(t, err)
		if g.DeviceID != virtual.ID {
			t.Errorf("grant device = %q, want %q", g.DeviceID, virtual.ID)
		}

		// The same step again: a replay writes nothing.
		f.Grant = &store.Grant{ID: store.GrantID("grt-check-2"), Action: "vm.delete", Resource: "vm-1", ExpiresAt: time.Now().Add(time.Minute)}
		ok, err = s.FinishCheck(c, f)
		must(t, err)
		if ok {
			t.Error("FinishCheck of a used step = true")
		}
		entries, err = s.ListAudit(c, store.AuditFilter{AccountID: "acc-1"})
		must(t, err)
		if len(entries) != 1 {
			t.Errorf("audit entries after the replay = %d, want 1", len(entries))
		}
		_, err = s.ConsumeGrant(c, store.GrantID("grt-check-2"), "acc-1", "vm.delete", "vm-1", time.Now())
		wantErr(t, err, store.ErrNotFound)

		// Another account's device, an unknown one and a revoked one are not found.
		f.Grant, f.Step = nil, 500
		f.AccountID = "acc-sc"
		_, err = s.FinishCheck(c, f)
		wantErr(t, err, store.ErrNotFound)
		f.AccountID, f.DeviceID = "acc-1", "nope"
		_, err = s.FinishCheck(c, f)
		wantErr(t, err, store.ErrNotFound)
		f.DeviceID = revoked.ID
		_, err = s.FinishCheck(c, f)
		wantErr(t, err, store.ErrNotFound)
		d, err = s.GetDevice(c, virtual.ID)
		must(t, err)
		if d.LastStep != 101 {
			t.Errorf("last step = %d after refused finishes, want 101", d.LastStep)
		}
	})

	t.Run("finish without an audit entry", func(t *testing.T) {
		before, err := s.ListAudit(c, store.AuditFilter{AccountID: "acc-1"})
		must(t, err)
		ok, err := s.FinishCheck(c, store.CheckFinish{AccountID: "acc-1", DeviceID: hardware.ID, Step: 150, At: now})
		must(t, err)
		after, err := s.ListAudit(c, store.AuditFilter{AccountID: "acc-1"})
		must(t, err)
		if !ok || len(after) != len(before) {
			t.Errorf("finish = %v; audit entries %d → %d, want none added", ok, len(before), len(after))
		}
	})

	t.Run("open appeal", func(t *testing.T) {
		_, err := s.CreateAppeal(c, appeal("ap-check", "acc-1", "token-check"))
		must(t, err)
		st, err := s.BeginCheck(c, checkReq("acc-1", store.CheckAny, mfaTypes, now))
		must(t, err)
		if !st.OpenAppeal {
			t.Error("OpenAppeal = false with an open appeal")
		}
		must(t, s.SetAppealStatus(c, "ap-check", "rejected", true, time.Time{}))
		st, err = s.BeginCheck(c, checkReq("acc-1", store.CheckAny, mfaTypes, now))
		must(t, err)
		if st.OpenAppeal {
			t.Error("OpenAppeal = true after the appeal closed")
		}
	})
}

// accountsWithDevice stores n accounts, prefix00 on, each with one device
// (device's defaults), and returns the devices.
func accountsWithDevice(t *testing.T, s store.Store, prefix string, n int) []store.Device {
	t.Helper()
	c := ctx(t)
	devs := make([]store.Device, n)
	for i := range n {
		id := fmt.Sprintf("%s%02d", prefix, i)
		_, err := s.PutAccount(c, account(id))
		must(t, err)
		d, err := s.CreateDevice(c, device(id))
		must(t, err)
		devs[i] = d
	}
	return devs
}

// testCheckRace runs many checks at once, so the stores that group calls
// into shared statements group them: every call must still get its own
// answer, a step is consumed once, and the budget never allows more than
// the policy.
func testCheckRace(t *testing.T, s store.Store) {
	c := ctx(t)
	now := time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC)
	const accounts = 20
	devs := accountsWithDevice(t, s, "acc-r", accounts)

	// Every account: 10 concurrent checks under a policy that hard-locks at
	// 6 failures; exactly 6 are allowed.
	const ceiling = 6
	policy := func(f int, now time.Time) (time.Time, bool) {
		if f >= ceiling {
			return mfa.HardLockUntil, true
		}
		return time.Time{}, false
	}
	var allowed [accounts]atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, accounts*10)
	for i := range accounts {
		for range 10 {
			wg.Go(func() {
				st, err := s.BeginCheck(c, store.CheckRequest{AccountID: devs[i].AccountID, Types: mfaTypes, Now: now, Policy: policy})
				if err != nil {
					errs <- err
					return
				}
				if len(st.Devices) != 1 || st.Devices[0].ID != devs[i].ID {
					errs <- fmt.Errorf("%s: got devices %v, want its own", devs[i].AccountID, deviceIDs(st.Devices))
				}
				if st.Allowed {
					allowed[i].Add(1)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range accounts {
		if n := allowed[i].Load(); n != ceiling {
			t.Errorf("%s: %d of 10 concurrent checks allowed, want exactly %d", devs[i].AccountID, n, ceiling)
		}
		st, ok, err := s.SpendAttempt(c, devs[i].AccountID, now, policy)
		must(t, err)
		if ok || !st.Hard || st.Failures != ceiling {
			t.Errorf("%s after the race: %+v, %v; want hard-locked at %d", devs[i].AccountID, st, ok, ceiling)
		}
		must(t, s.ResetBudget(c, devs[i].AccountID))
	}

	// Every account: 10 concurrent finishes of one step; exactly one wins,
	// and one audit entry is written.
	var won [accounts]atomic.Int32
	errs = make(chan error, accounts*10)
	for i := range accounts {
		for j := range 10 {
			wg.Go(func() {
				ok, err := s.FinishCheck(c, store.CheckFinish{AccountID: devs[i].AccountID, DeviceID: devs[i].ID, Step: 200, At: now,
					Audit: store.AuditEntry{Actor: "console", Action: "mfa.verify.login", Outcome: "ok", Subject: devs[i].ID,
						Details: map[string]string{"try": fmt.Sprint(j)}}})
				if err != nil {
					errs <- err
					return
				}
				if ok {
					won[i].Add(1)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range accounts {
		if n := won[i].Load(); n != 1 {
			t.Errorf("%s: %d of 10 concurrent finishes of one step won, want exactly 1", devs[i].AccountID, n)
		}
		entries, err := s.ListAudit(c, store.AuditFilter{AccountID: devs[i].AccountID})
		must(t, err)
		if len(entries) != 1 || entries[0].Subject != devs[i].ID {
			t.Errorf("%s: %d audit entries, want 1 for its device", devs[i].AccountID, len(entries))
		}
	}

	// A finish that cannot be written (its grant ID is taken) fails alone;
	// the finishes running with it succeed.
	_, err := s.CreateGrant(c, store.Grant{ID: store.GrantID("grt-taken"), AccountID: "acc-r00", Action: "a", Resource: "r",
		ExpiresAt: time.Now().Add(time.Minute)})
	must(t, err)
	results := make([]error, accounts)
	oks := make([]bool, accounts)
	for i := range accounts {
		wg.Go(func() {
			f := store.CheckFinish{AccountID: devs[i].AccountID, DeviceID: devs[i].ID, Step: 300, At: now,
				Audit: store.AuditEntry{Actor: "console", Action: "mfa.verify.operation", Outcome: "ok"},
				Grant: &store.Grant{ID: store.GrantID(fmt.Sprintf("grt-r%02d", i)), Action: "a", Resource: "r", ExpiresAt: time.Now().Add(time.Minute)}}
			if i == 7 {
				f.Grant.ID = store.GrantID("grt-taken")
			}
			oks[i], results[i] = s.FinishCheck(c, f)
		})
	}
	wg.Wait()
	for i := range accounts {
		switch {
		case i == 7:
			wantErr(t, results[i], store.ErrConflict)
			d, err := s.GetDevice(c, devs[i].ID)
			must(t, err)
			if d.LastStep != 200 {
				t.Errorf("the failed finish consumed its step: last step %d", d.LastStep)
			}
		case results[i] != nil || !oks[i]:
			t.Errorf("%s: finish = %v, %v beside a failing one; want true", devs[i].AccountID, oks[i], results[i])
		}
	}
}
