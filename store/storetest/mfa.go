package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

func sealed(key string, b byte) mfa.Sealed {
	return mfa.Sealed{KeyID: key, Ciphertext: []byte{b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}
}

func device(account string) store.Device {
	return store.Device{
		AccountID: account, Type: store.Virtual, Name: "phone", Secret: sealed("k1", 1),
		Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, LastStep: 100, Status: store.DeviceActive,
	}
}

func testDevices(t *testing.T, s store.Store) {
	c := ctx(t)
	before := time.Now()
	d, err := s.CreateDevice(c, device("acc-1"))
	must(t, err)
	if d.ID == "" {
		t.Fatal("CreateDevice assigned no ID")
	}
	checkTime(t, "CreatedAt", d.CreatedAt, before, time.Now())
	if !d.BoundAt.Equal(d.CreatedAt) {
		t.Errorf("active device BoundAt = %v, want CreatedAt %v", d.BoundAt, d.CreatedAt)
	}
	want := device("acc-1")
	want.ID, want.CreatedAt, want.BoundAt = d.ID, d.CreatedAt, d.BoundAt
	if !reflect.DeepEqual(d, want) {
		t.Errorf("CreateDevice =\n%+v\nwant\n%+v", d, want)
	}
	got, err := s.GetDevice(c, d.ID)
	must(t, err)
	if !reflect.DeepEqual(got, d) {
		t.Errorf("GetDevice =\n%+v\nwant\n%+v", got, d)
	}

	t.Run("not found", func(t *testing.T) {
		_, err := s.GetDevice(c, "nope")
		wantErr(t, err, store.ErrNotFound)
		_, err = s.ActivateDevice(c, "nope", time.Now())
		wantErr(t, err, store.ErrNotFound)
		_, err = s.RevokeDevice(c, "nope", time.Now())
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.TouchDevice(c, "nope", time.Now()), store.ErrNotFound)
		_, err = s.ResyncDevice(c, "nope", 1, 1)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.AdvanceStep(c, "nope", 1)
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, err, mfa.ErrNotFound)
	})
	t.Run("duplicate id", func(t *testing.T) {
		dup := device("acc-1")
		dup.ID = d.ID
		_, err := s.CreateDevice(c, dup)
		wantErr(t, err, store.ErrConflict)
	})
	t.Run("pending then active", func(t *testing.T) {
		p := device("acc-1")
		p.Status, p.Type, p.Serial = store.DevicePending, store.Hardware, "SN-1"
		p, err := s.CreateDevice(c, p)
		must(t, err)
		if !p.BoundAt.IsZero() {
			t.Errorf("pending device BoundAt = %v, want zero", p.BoundAt)
		}
		at := time.Date(2026, 5, 2, 3, 4, 5, 6789, time.UTC)
		a, err := s.ActivateDevice(c, p.ID, at)
		must(t, err)
		if a.Status != store.DeviceActive || !a.BoundAt.Equal(at.Truncate(time.Microsecond)) || a.Serial != "SN-1" {
			t.Errorf("ActivateDevice = %+v", a)
		}
		_, err = s.ActivateDevice(c, p.ID, at)
		wantErr(t, err, store.ErrConflict)

		// The card is on a live device: no other device may carry it.
		other := device("acc-2")
		other.Type, other.Serial = store.Hardware, "SN-1"
		_, err = s.CreateDevice(c, other)
		wantErr(t, err, store.ErrConflict)

		revoked, err := s.RevokeDevice(c, p.ID, at.Add(time.Hour))
		must(t, err)
		if !revoked {
			t.Error("RevokeDevice of an active device reported false")
		}
		revoked, err = s.RevokeDevice(c, p.ID, at.Add(2*time.Hour))
		must(t, err)
		if revoked {
			t.Error("RevokeDevice of a revoked device reported true")
		}
		r, err := s.GetDevice(c, p.ID)
		must(t, err)
		if r.Status != store.DeviceRevoked || !r.RevokedAt.Equal(at.Add(time.Hour).Truncate(time.Microsecond)) {
			t.Errorf("revoked device = %+v", r)
		}
		// Revoked, the card may go to another device.
		_, err = s.CreateDevice(c, other)
		must(t, err)
	})
	t.Run("list by account", func(t *testing.T) {
		list, err := s.ListDevices(c, "acc-1")
		must(t, err)
		if len(list) != 2 || list[0].ID != d.ID || list[1].Status != store.DeviceRevoked {
			t.Errorf("ListDevices(acc-1) = %+v", list)
		}
		list, err = s.ListDevices(c, "acc-none")
		must(t, err)
		if list == nil || len(list) != 0 {
			t.Errorf("ListDevices of an account without devices = %#v, want empty", list)
		}
	})
	t.Run("touch never goes back", func(t *testing.T) {
		t1 := time.Date(2026, 5, 3, 0, 0, 0, 0, time.UTC)
		must(t, s.TouchDevice(c, d.ID, t1))
		must(t, s.TouchDevice(c, d.ID, t1.Add(-time.Minute)))
		got, err := s.GetDevice(c, d.ID)
		must(t, err)
		if !got.LastUsedAt.Equal(t1) {
			t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, t1)
		}
		must(t, s.TouchDevice(c, d.ID, t1.Add(time.Minute)))
		got, _ = s.GetDevice(c, d.ID)
		if !got.LastUsedAt.Equal(t1.Add(time.Minute)) {
			t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, t1.Add(time.Minute))
		}
	})
	t.Run("advance step", func(t *testing.T) {
		tests := []struct {
			step int64
			want bool
		}{{101, true}, {101, false}, {100, false}, {50, false}, {105, true}, {104, false}}
		for _, tt := range tests {
			ok, err := s.AdvanceStep(c, d.ID, tt.step)
			must(t, err)
			if ok != tt.want {
				t.Errorf("AdvanceStep(%d) = %v, want %v", tt.step, ok, tt.want)
			}
		}
		got, _ := s.GetDevice(c, d.ID)
		if got.LastStep != 105 {
			t.Errorf("LastStep = %d, want 105", got.LastStep)
		}
	})
	t.Run("resync", func(t *testing.T) {
		ok, err := s.ResyncDevice(c, d.ID, -3, 105)
		must(t, err)
		if ok {
			t.Error("ResyncDevice at a used step reported true")
		}
		ok, err = s.ResyncDevice(c, d.ID, -3, 110)
		must(t, err)
		got, _ := s.GetDevice(c, d.ID)
		if !ok || got.Drift != -3 || got.LastStep != 110 {
			t.Errorf("ResyncDevice = %v; device drift %d step %d, want true, -3, 110", ok, got.Drift, got.LastStep)
		}
	})
}

func testAdvanceStepRace(t *testing.T, s store.Store) {
	c := ctx(t)
	d, err := s.CreateDevice(c, device("acc-race"))
	must(t, err)
	for round, step := range []int64{200, 201, 205} {
		var wins atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Go(func() {
				ok, err := s.AdvanceStep(c, d.ID, step)
				if err != nil {
					errs <- err
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := wins.Load(); n != 1 {
			t.Errorf("round %d: %d of 50 AdvanceStep(%d) calls won, want exactly 1", round, n, step)
		}
	}
}

func testProtection(t *testing.T, s store.Store) {
	c := ctx(t)
	p, err := s.GetProtection(c, "acc-1")
	must(t, err)
	if p != (store.Protection{}) {
		t.Errorf("GetProtection of an account never set = %+v, want zero", p)
	}
	for _, want := range []store.Protection{{Login: true}, {Login: true, Operation: true}, {}} {
		before := time.Now()
		set, err := s.SetProtection(c, "acc-1", want)
		must(t, err)
		checkTime(t, "UpdatedAt", set.UpdatedAt, before, time.Now())
		got, err := s.GetProtection(c, "acc-1")
		must(t, err)
		if got != set || got.Login != want.Login || got.Operation != want.Operation {
			t.Errorf("GetProtection = %+v, want %+v", got, set)
		}
	}
}

func tokens(prefix string, n int) []store.HardwareToken {
	out := make([]store.HardwareToken, n)
	for i := range out {
		out[i] = store.HardwareToken{
			Serial: fmt.Sprintf("%s%04d", prefix, i), Seed: sealed("k1", byte(i)),
			Algorithm: "SHA1", Digits: 6, PeriodSeconds: 60, BatchID: "batch-" + prefix,
		}
	}
	return out
}

func testTokens(t *testing.T, s store.Store) {
	c := ctx(t)
	before := time.Now()
	n, err := s.ImportTokens(c, tokens("A", 1200))
	must(t, err)
	if n != 1200 {
		t.Fatalf("ImportTokens = %d, want 1200", n)
	}
	tok, err := s.GetToken(c, "A0007")
	must(t, err)
	checkTime(t, "ImportedAt", tok.ImportedAt, before, time.Now())
	want := tokens("A", 8)[7]
	want.State, want.ImportedAt = store.TokenUnassigned, tok.ImportedAt
	if !reflect.DeepEqual(tok, want) {
		t.Errorf("GetToken =\n%+v\nwant\n%+v", tok, want)
	}
	_, err = s.GetToken(c, "nope")
	wantErr(t, err, store.ErrNotFound)

	t.Run("clash with the inventory", func(t *testing.T) {
		batch := append(tokens("B", 3), tokens("A", 2)...) // A0000, A0001 exist
		_, err := s.ImportTokens(c, batch)
		wantErr(t, err, store.ErrConflict)
		var sc *store.SerialConflictError
		if !errors.As(err, &sc) || !reflect.DeepEqual(sc.Serials, []string{"A0000", "A0001"}) {
			t.Fatalf("error = %#v, want a SerialConflictError for A0000, A0001", err)
		}
		if _, err := s.GetToken(c, "B0000"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused batch was partly imported: %v", err)
		}
	})
	t.Run("repeated in the batch", func(t *testing.T) {
		batch := append(tokens("C", 3), tokens("C", 1)...)
		_, err := s.ImportTokens(c, batch)
		var sc *store.SerialConflictError
		if !errors.As(err, &sc) || !reflect.DeepEqual(sc.Serials, []string{"C0000"}) || !errors.Is(err, store.ErrConflict) {
			t.Fatalf("error = %#v, want a SerialConflictError for C0000", err)
		}
		if _, err := s.GetToken(c, "C0001"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused batch was partly imported: %v", err)
		}
	})
	t.Run("empty batch", func(t *testing.T) {
		n, err := s.ImportTokens(c, nil)
		if err != nil || n != 0 {
			t.Errorf("ImportTokens(nil) = %d, %v", n, err)
		}
	})
	t.Run("assign and release", func(t *testing.T) {
		at := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
		must(t, s.AssignToken(c, "A0001", "acc-1", "dev-1", at))
		must(t, s.AssignToken(c, "A0001", "acc-1", "dev-1", at)) // retried
		wantErr(t, s.AssignToken(c, "A0001", "acc-2", "dev-2", at), store.ErrConflict)
		wantErr(t, s.AssignToken(c, "A0001", "acc-1", "dev-9", at), store.ErrConflict)
		wantErr(t, s.AssignToken(c, "nope", "acc-1", "dev-1", at), store.ErrNotFound)
		tok, err := s.GetToken(c, "A0001")
		must(t, err)
		if tok.State != store.TokenBound || tok.AccountID != "acc-1" || tok.DeviceID != "dev-1" || !tok.BoundAt.Equal(at) {
			t.Errorf("bound token = %+v", tok)
		}
		released, err := s.ReleaseToken(c, "A0001", "dev-other")
		must(t, err)
		if released {
			t.Error("ReleaseToken for another device reported true")
		}
		released, err = s.ReleaseToken(c, "A0001", "dev-1")
		must(t, err)
		if !released {
			t.Error("ReleaseToken reported false")
		}
		released, err = s.ReleaseToken(c, "A0001", "dev-1")
		must(t, err)
		if released {
			t.Error("second ReleaseToken reported true")
		}
		_, err = s.ReleaseToken(c, "nope", "dev-1")
		wantErr(t, err, store.ErrNotFound)
		tok, _ = s.GetToken(c, "A0001")
		if tok.State != store.TokenUnassigned || tok.AccountID != "" || tok.DeviceID != "" || !tok.BoundAt.IsZero() {
			t.Errorf("released token = %+v", tok)
		}
		must(t, s.AssignToken(c, "A0001", "acc-2", "dev-2", at)) // free again
	})
}

func testAssignTokenRace(t *testing.T, s store.Store) {
	c := ctx(t)
	_, err := s.ImportTokens(c, tokens("R", 1))
	must(t, err)
	var wins atomic.Int32
	var winner atomic.Value
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			acc := fmt.Sprintf("acc-%d", i)
			err := s.AssignToken(c, "R0000", acc, "dev-"+acc, time.Now())
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(acc)
			case !errors.Is(err, store.ErrConflict):
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d of 50 AssignToken calls won, want exactly 1", n)
	}
	tok, err := s.GetToken(c, "R0000")
	must(t, err)
	if tok.AccountID != winner.Load() {
		t.Errorf("token bound to %s, winner was %s", tok.AccountID, winner.Load())
	}
}

func testSMSChallenges(t *testing.T, s store.Store) {
	c := ctx(t)
	now := time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)
	create := func(tries int) store.SMSChallenge {
		t.Helper()
		ch, err := s.CreateSMSChallenge(c, store.SMSChallenge{AccountID: "acc-1", Purpose: "bind_device",
			CodeHash: []byte("hash"), ExpiresAt: now.Add(5 * time.Minute), TriesLeft: tries})
		must(t, err)
		return ch
	}
	ch := create(3)
	if ch.ID == "" || ch.TriesLeft != 3 || !ch.ExpiresAt.Equal(now.Add(5*time.Minute)) || string(ch.CodeHash) != "hash" || !ch.UsedAt.IsZero() {
		t.Fatalf("CreateSMSChallenge = %+v", ch)
	}
	_, err := s.CreateSMSChallenge(c, store.SMSChallenge{ID: ch.ID, AccountID: "x", Purpose: "x", CodeHash: []byte("h"),
		ExpiresAt: now, TriesLeft: 1})
	wantErr(t, err, store.ErrConflict)

	t.Run("tries run out", func(t *testing.T) {
		for want := 2; want >= 0; want-- {
			got, err := s.AttemptSMSChallenge(c, ch.ID, now)
			must(t, err)
			if got.TriesLeft != want || string(got.CodeHash) != "hash" {
				t.Fatalf("attempt: tries left %d, want %d", got.TriesLeft, want)
			}
		}
		_, err := s.AttemptSMSChallenge(c, ch.ID, now)
		wantErr(t, err, store.ErrChallengeExhausted)
		// The last try matched: it may still be used.
		must(t, s.UseSMSChallenge(c, ch.ID, now))
	})
	t.Run("expired", func(t *testing.T) {
		e := create(5)
		_, err := s.AttemptSMSChallenge(c, e.ID, now.Add(5*time.Minute))
		wantErr(t, err, store.ErrChallengeExpired)
		wantErr(t, s.UseSMSChallenge(c, e.ID, now.Add(6*time.Minute)), store.ErrChallengeExpired)
	})
	t.Run("used once", func(t *testing.T) {
		u := create(5)
		_, err := s.AttemptSMSChallenge(c, u.ID, now)
		must(t, err)
		must(t, s.UseSMSChallenge(c, u.ID, now.Add(time.Second)))
		wantErr(t, s.UseSMSChallenge(c, u.ID, now.Add(time.Second)), store.ErrChallengeUsed)
		_, err = s.AttemptSMSChallenge(c, u.ID, now.Add(2*time.Second))
		wantErr(t, err, store.ErrChallengeUsed)
	})
	t.Run("not found", func(t *testing.T) {
		_, err := s.AttemptSMSChallenge(c, "nope", now)
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.UseSMSChallenge(c, "nope", now), store.ErrNotFound)
	})
	t.Run("concurrent tries", func(t *testing.T) {
		r := create(5)
		var ok atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if _, err := s.AttemptSMSChallenge(c, r.ID, now); err == nil {
					ok.Add(1)
				} else if !errors.Is(err, store.ErrChallengeExhausted) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := ok.Load(); n != 5 {
			t.Errorf("%d of 20 concurrent attempts allowed, want 5", n)
		}
	})
}

func testSealed(t *testing.T, s store.Store) {
	c := ctx(t)
	var devIDs []string
	for range 5 {
		d, err := s.CreateDevice(c, device("acc-1"))
		must(t, err)
		devIDs = append(devIDs, d.ID)
	}
	_, err := s.ImportTokens(c, tokens("S", 3))
	must(t, err)

	walk := func(table store.SealedTable) []store.SealedRow {
		var all []store.SealedRow
		after := ""
		for {
			page, err := s.ListSealed(c, table, after, 2)
			must(t, err)
			if len(page) == 0 {
				return all
			}
			all = append(all, page...)
			after = page[len(page)-1].ID
		}
	}
	devRows := walk(store.SealedDevices)
	if len(devRows) != 5 {
		t.Fatalf("ListSealed(devices) walked %d rows, want 5", len(devRows))
	}
	for i := 1; i < len(devRows); i++ {
		if devRows[i].ID <= devRows[i-1].ID {
			t.Errorf("rows not in ID order: %s then %s", devRows[i-1].ID, devRows[i].ID)
		}
	}
	tokRows := walk(store.SealedTokens)
	if len(tokRows) != 3 || tokRows[0].ID != "S0000" || tokRows[0].Table != store.SealedTokens ||
		!reflect.DeepEqual(tokRows[0].Sealed, sealed("k1", 0)) {
		t.Fatalf("ListSealed(tokens) = %+v", tokRows)
	}

	must(t, s.Reseal(c, store.SealedDevices, devIDs[0], "k1", sealed("k2", 9)))
	d, err := s.GetDevice(c, devIDs[0])
	must(t, err)
	if !reflect.DeepEqual(d.Secret, sealed("k2", 9)) {
		t.Errorf("resealed secret = %v", d.Secret)
	}
	wantErr(t, s.Reseal(c, store.SealedDevices, devIDs[0], "k1", sealed("k3", 9)), store.ErrConflict)
	wantErr(t, s.Reseal(c, store.SealedDevices, "nope", "k1", sealed("k3", 9)), store.ErrNotFound)
	must(t, s.Reseal(c, store.SealedTokens, "S0001", "k1", sealed("k2", 8)))
	tok, err := s.GetToken(c, "S0001")
	must(t, err)
	if !reflect.DeepEqual(tok.Seed, sealed("k2", 8)) {
		t.Errorf("resealed seed = %v", tok.Seed)
	}
	if _, err := s.ListSealed(c, "accounts", "", 10); err == nil {
		t.Error("ListSealed of a table without secrets succeeded")
	}
	if err := s.Reseal(c, "accounts", "x", "k1", sealed("k2", 1)); err == nil {
		t.Error("Reseal of a table without secrets succeeded")
	}
}

// threshold locks for a minute from 3 failures and hard at ceiling.
func threshold(ceiling int) func(int, time.Time) (time.Time, bool) {
	return func(failures int, now time.Time) (time.Time, bool) {
		switch {
		case failures >= ceiling:
			return mfa.HardLockUntil, true
		case failures >= 3:
			return now.Add(time.Minute), false
		}
		return time.Time{}, false
	}
}

// budgetStep is one attempt of budgetSteps.
type budgetStep struct {
	at          time.Time
	wantAllowed bool
	wantFails   int
	wantUntil   time.Time
	wantHard    bool
}

// budgetSteps are attempts on one budget from now under threshold(5) and
// the states they must leave.
func budgetSteps(now time.Time) []budgetStep {
	return []budgetStep{
		{now, true, 1, time.Time{}, false},
		{now, true, 2, time.Time{}, false},
		{now, true, 3, now.Add(time.Minute), false},
		{now.Add(30 * time.Second), false, 3, now.Add(time.Minute), false}, // locked: not counted
		{now.Add(time.Minute), true, 4, now.Add(2 * time.Minute), false},   // lock over
		{now.Add(2 * time.Minute), true, 5, mfa.HardLockUntil, true},
		{now.Add(time.Hour), false, 5, mfa.HardLockUntil, true}, // hard: never over
	}
}

func testBudget(t *testing.T, s store.Store) {
	c := ctx(t)
	now := time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC)
	policy := threshold(5)
	steps := budgetSteps(now)
	for i, st := range steps {
		got, allowed, err := s.SpendAttempt(c, "acc-1", st.at, policy)
		must(t, err)
		want := mfa.BudgetState{Failures: st.wantFails, LockedUntil: st.wantUntil, Hard: st.wantHard}
		if allowed != st.wantAllowed || got.Failures != want.Failures || !got.LockedUntil.Equal(want.LockedUntil) || got.Hard != want.Hard {
			t.Fatalf("step %d: SpendAttempt = %+v, %v; want %+v, %v", i, got, allowed, want, st.wantAllowed)
		}
	}
	// Another account has its own budget.
	got, allowed, err := s.SpendAttempt(c, "acc-2", now, policy)
	must(t, err)
	if !allowed || got.Failures != 1 {
		t.Errorf("other account: %+v, %v", got, allowed)
	}
	must(t, s.ResetBudget(c, "acc-1"))
	must(t, s.ResetBudget(c, "acc-never"))
	got, allowed, err = s.SpendAttempt(c, "acc-1", now.Add(time.Hour), policy)
	must(t, err)
	if !allowed || got.Failures != 1 || got.Hard || !got.LockedUntil.IsZero() {
		t.Errorf("after reset: %+v, %v", got, allowed)
	}
}

func testSpendAttemptRace(t *testing.T, s store.Store) {
	c := ctx(t)
	const ceiling = 10
	now := time.Now()
	var allowed atomic.Int32
	var maxSeen atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			st, ok, err := s.SpendAttempt(c, "acc-race", now, func(f int, now time.Time) (time.Time, bool) {
				if f >= ceiling {
					return mfa.HardLockUntil, true
				}
				return time.Time{}, false
			})
			if err != nil {
				errs <- err
				return
			}
			if ok {
				allowed.Add(1)
			}
			for {
				m := maxSeen.Load()
				if int32(st.Failures) <= m || maxSeen.CompareAndSwap(m, int32(st.Failures)) {
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := allowed.Load(); n != ceiling {
		t.Errorf("%d of 50 concurrent attempts allowed, want exactly %d", n, ceiling)
	}
	if m := maxSeen.Load(); m != ceiling {
		t.Errorf("highest failure count seen %d, want %d", m, ceiling)
	}
	st, ok, err := s.SpendAttempt(c, "acc-race", now, threshold(ceiling))
	must(t, err)
	if ok || st.Failures != ceiling || !st.Hard {
		t.Errorf("after the race: %+v, %v; want %d failures, hard, refused", st, ok, ceiling)
	}
}
