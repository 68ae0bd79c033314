package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

func grant(token, account string, expires time.Time) store.Grant {
	return store.Grant{ID: store.GrantID(token), AccountID: account, Action: "vm.delete", Resource: "vm-1",
		DeviceID: "dev-1", ExpiresAt: expires}
}

func testGrants(t *testing.T, s store.Store) {
	c := ctx(t)
	now := time.Date(2026, 5, 7, 12, 0, 0, 123456789, time.UTC)
	exp := now.Add(5 * time.Minute)

	before := time.Now()
	g, err := s.CreateGrant(c, grant("token-1", "acc-1", exp))
	must(t, err)
	checkTime(t, "CreatedAt", g.CreatedAt, before, time.Now())
	want := grant("token-1", "acc-1", exp.Truncate(time.Microsecond))
	want.CreatedAt = g.CreatedAt
	if !reflect.DeepEqual(g, want) {
		t.Fatalf("CreateGrant =\n%+v\nwant\n%+v", g, want)
	}
	if len(g.ID) != 64 || g.ID == "token-1" {
		t.Errorf("grant ID %q is not the token's SHA-256 in hex", g.ID)
	}

	t.Run("create refusals", func(t *testing.T) {
		_, err := s.CreateGrant(c, grant("token-1", "acc-2", exp))
		wantErr(t, err, store.ErrConflict)
		if _, err := s.CreateGrant(c, store.Grant{AccountID: "acc-1", Action: "a", Resource: "r", ExpiresAt: exp}); err == nil {
			t.Error("CreateGrant without an ID succeeded")
		}
		if _, err := s.CreateGrant(c, store.Grant{ID: store.GrantID("no-expiry"), AccountID: "acc-1", Action: "a", Resource: "r"}); err == nil {
			t.Error("CreateGrant without an expiry succeeded")
		}
	})

	// Every refusal of an unused grant, checked before its one use: the use
	// at the end shows none of them changed it.
	refusals := []struct {
		name                       string
		id, account, action, resrc string
		at                         time.Time
		want                       error
	}{
		{"unknown grant", store.GrantID("token-x"), "acc-1", "vm.delete", "vm-1", now, store.ErrNotFound},
		{"token instead of its hash", "token-1", "acc-1", "vm.delete", "vm-1", now, store.ErrNotFound},
		{"another account", g.ID, "acc-2", "vm.delete", "vm-1", now, store.ErrNotFound},
		{"another account, other operation, expired", g.ID, "acc-2", "vm.stop", "vm-2", exp, store.ErrNotFound},
		{"other action", g.ID, "acc-1", "vm.stop", "vm-1", now, store.ErrGrantMismatch},
		{"other resource", g.ID, "acc-1", "vm.delete", "vm-2", now, store.ErrGrantMismatch},
		{"resource differs in case", g.ID, "acc-1", "vm.delete", "VM-1", now, store.ErrGrantMismatch},
		{"resource with a suffix", g.ID, "acc-1", "vm.delete", "vm-1 ", now, store.ErrGrantMismatch},
		{"empty operation", g.ID, "acc-1", "", "", now, store.ErrGrantMismatch},
		{"mismatch before expiry", g.ID, "acc-1", "vm.stop", "vm-1", exp.Add(time.Hour), store.ErrGrantMismatch},
		{"at expiry", g.ID, "acc-1", "vm.delete", "vm-1", exp, store.ErrGrantExpired},
		{"after expiry", g.ID, "acc-1", "vm.delete", "vm-1", exp.Add(time.Hour), store.ErrGrantExpired},
	}
	for _, tt := range refusals {
		t.Run("unused/"+tt.name, func(t *testing.T) {
			got, err := s.ConsumeGrant(c, tt.id, tt.account, tt.action, tt.resrc, tt.at)
			wantErr(t, err, tt.want)
			if tt.want == store.ErrNotFound && (errors.Is(err, store.ErrGrantMismatch) || errors.Is(err, store.ErrGrantExpired)) {
				t.Errorf("error %v reveals the grant", err)
			}
			if !reflect.DeepEqual(got, store.Grant{}) {
				t.Errorf("refused ConsumeGrant returned %+v, want the zero Grant", got)
			}
		})
	}

	usedAt := now.Add(time.Minute)
	t.Run("consume", func(t *testing.T) {
		got, err := s.ConsumeGrant(c, g.ID, "acc-1", "vm.delete", "vm-1", usedAt)
		must(t, err)
		want := g
		want.UsedAt = usedAt.Truncate(time.Microsecond)
		if !reflect.DeepEqual(got, want) || got.UsedAt.Location() != time.UTC {
			t.Errorf("ConsumeGrant =\n%+v\nwant\n%+v", got, want)
		}
	})

	used := []struct {
		name                   string
		account, action, resrc string
		at                     time.Time
		want                   error
	}{
		{"second use", "acc-1", "vm.delete", "vm-1", usedAt, store.ErrGrantUsed},
		{"second use later", "acc-1", "vm.delete", "vm-1", usedAt.Add(time.Second), store.ErrGrantUsed},
		{"used before expired", "acc-1", "vm.delete", "vm-1", exp.Add(time.Hour), store.ErrGrantUsed},
		{"mismatch before used", "acc-1", "vm.start", "vm-1", usedAt, store.ErrGrantMismatch},
		{"another account", "acc-2", "vm.delete", "vm-1", usedAt, store.ErrNotFound},
	}
	for _, tt := range used {
		t.Run("used/"+tt.name, func(t *testing.T) {
			_, err := s.ConsumeGrant(c, g.ID, tt.account, tt.action, tt.resrc, tt.at)
			wantErr(t, err, tt.want)
		})
	}

	t.Run("grants are independent", func(t *testing.T) {
		// Same operation, another grant: still usable after the first was used.
		g2, err := s.CreateGrant(c, grant("token-2", "acc-1", exp))
		must(t, err)
		_, err = s.ConsumeGrant(c, g2.ID, "acc-1", "vm.delete", "vm-1", now)
		must(t, err)
		// Another account's grant for the same operation.
		g3, err := s.CreateGrant(c, grant("token-3", "acc-2", exp))
		must(t, err)
		_, err = s.ConsumeGrant(c, g3.ID, "acc-1", "vm.delete", "vm-1", now)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.ConsumeGrant(c, g3.ID, "acc-2", "vm.delete", "vm-1", now)
		must(t, err)
	})
	t.Run("expired refusal changes nothing", func(t *testing.T) {
		g4, err := s.CreateGrant(c, grant("token-4", "acc-1", exp))
		must(t, err)
		_, err = s.ConsumeGrant(c, g4.ID, "acc-1", "vm.delete", "vm-1", exp)
		wantErr(t, err, store.ErrGrantExpired)
		// A clock behind the first caller's still finds it unused.
		got, err := s.ConsumeGrant(c, g4.ID, "acc-1", "vm.delete", "vm-1", exp.Add(-time.Microsecond))
		must(t, err)
		if !got.UsedAt.Equal(exp.Add(-time.Microsecond).Truncate(time.Microsecond)) {
			t.Errorf("UsedAt = %v", got.UsedAt)
		}
	})
}

func testConsumeGrantRace(t *testing.T, s store.Store) {
	c := ctx(t)
	now := time.Now()
	g, err := s.CreateGrant(c, grant("race-token", "acc-race", now.Add(time.Minute)))
	must(t, err)
	var wins atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := s.ConsumeGrant(c, g.ID, "acc-race", "vm.delete", "vm-1", now)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrGrantUsed):
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
		t.Fatalf("%d of 50 concurrent ConsumeGrant calls succeeded, want exactly 1", n)
	}
}

func testGrantCleanup(t *testing.T, s store.Store) {
	c := ctx(t)
	now := time.Date(2026, 5, 8, 0, 0, 0, 0, time.UTC)
	cutoff := now.Add(5 * time.Minute)
	expiries := map[string]time.Time{
		"old":          now.Add(-2 * time.Hour),
		"used-expired": now.Add(time.Minute),
		"just-before":  cutoff.Add(-time.Microsecond),
		"at-cutoff":    cutoff,
		"live":         now.Add(10 * time.Minute),
	}
	for token, exp := range expiries {
		_, err := s.CreateGrant(c, grant(token, "acc-1", exp))
		must(t, err)
	}
	_, err := s.ConsumeGrant(c, store.GrantID("used-expired"), "acc-1", "vm.delete", "vm-1", now)
	must(t, err)

	n, err := s.DeleteExpiredGrants(c, cutoff)
	must(t, err)
	if n != 3 {
		t.Errorf("DeleteExpiredGrants = %d, want 3", n)
	}
	for token, wantGone := range map[string]bool{"old": true, "used-expired": true, "just-before": true, "at-cutoff": false, "live": false} {
		_, err := s.ConsumeGrant(c, store.GrantID(token), "acc-1", "vm.delete", "vm-1", now)
		if gone := errors.Is(err, store.ErrNotFound); gone != wantGone {
			t.Errorf("grant %s: ConsumeGrant error %v, want deleted=%v", token, err, wantGone)
		}
	}
	n, err = s.DeleteExpiredGrants(c, cutoff)
	if err != nil || n != 0 {
		t.Errorf("second DeleteExpiredGrants = %d, %v; want 0", n, err)
	}
	n, err = s.DeleteExpiredGrants(c, now.Add(time.Hour))
	if err != nil || n != 2 {
		t.Errorf("DeleteExpiredGrants past every expiry = %d, %v; want 2", n, err)
	}
}

func securityCenter(account string) store.Device {
	d := device(account)
	d.Type, d.Name = store.SecurityCenter, "security center"
	return d
}

func testSecurityCenter(t *testing.T, s store.Store) {
	c := ctx(t)
	sc, err := s.CreateDevice(c, securityCenter("acc-1"))
	must(t, err)
	want := securityCenter("acc-1")
	want.ID, want.CreatedAt, want.BoundAt = sc.ID, sc.CreatedAt, sc.BoundAt
	if !reflect.DeepEqual(sc, want) {
		t.Fatalf("CreateDevice =\n%+v\nwant\n%+v", sc, want)
	}
	got, err := s.GetDevice(c, sc.ID)
	must(t, err)
	if !reflect.DeepEqual(got, sc) {
		t.Errorf("GetDevice =\n%+v\nwant\n%+v", got, sc)
	}

	count := func(account string) int {
		t.Helper()
		list, err := s.ListDevices(c, account)
		must(t, err)
		return len(list)
	}
	t.Run("second one refused", func(t *testing.T) {
		_, err := s.CreateDevice(c, securityCenter("acc-1"))
		wantErr(t, err, store.ErrConflict)
		pending := securityCenter("acc-1")
		pending.Status = store.DevicePending
		_, err = s.CreateDevice(c, pending)
		wantErr(t, err, store.ErrConflict)
		if n := count("acc-1"); n != 1 {
			t.Errorf("refused devices were stored: %d devices", n)
		}
	})
	t.Run("other devices and accounts unaffected", func(t *testing.T) {
		_, err := s.CreateDevice(c, device("acc-1"))
		must(t, err)
		_, err = s.CreateDevice(c, securityCenter("acc-2"))
		must(t, err)
	})
	t.Run("unknown type refused", func(t *testing.T) {
		d := device("acc-3")
		d.Type = "sms"
		if _, err := s.CreateDevice(c, d); err == nil {
			t.Error("CreateDevice of type sms succeeded")
		}
	})
	t.Run("existing methods", func(t *testing.T) {
		list, err := s.ListDevices(c, "acc-1")
		must(t, err)
		if len(list) != 2 || !reflect.DeepEqual(list[0], sc) || list[1].Type != store.Virtual {
			t.Errorf("ListDevices = %+v", list)
		}
		ok, err := s.AdvanceStep(c, sc.ID, 101)
		if err != nil || !ok {
			t.Errorf("AdvanceStep(101) = %v, %v; want true", ok, err)
		}
		ok, err = s.AdvanceStep(c, sc.ID, 101)
		if err != nil || ok {
			t.Errorf("AdvanceStep replay = %v, %v; want false", ok, err)
		}
		at := time.Date(2026, 5, 9, 0, 0, 0, 0, time.UTC)
		must(t, s.TouchDevice(c, sc.ID, at))
		ok, err = s.ResyncDevice(c, sc.ID, 2, 110)
		if err != nil || !ok {
			t.Errorf("ResyncDevice = %v, %v", ok, err)
		}
		got, err := s.GetDevice(c, sc.ID)
		must(t, err)
		if got.LastStep != 110 || got.Drift != 2 || !got.LastUsedAt.Equal(at) || got.Type != store.SecurityCenter {
			t.Errorf("device after use = %+v", got)
		}
		var found bool
		after := ""
		for {
			page, err := s.ListSealed(c, store.SealedDevices, after, 1000)
			must(t, err)
			if len(page) == 0 {
				break
			}
			for _, r := range page {
				found = found || r.ID == sc.ID
			}
			after = page[len(page)-1].ID
		}
		if !found {
			t.Error("ListSealed(devices) misses the security-center device")
		}
		must(t, s.Reseal(c, store.SealedDevices, sc.ID, "k1", sealed("k2", 7)))
		got, _ = s.GetDevice(c, sc.ID)
		if !reflect.DeepEqual(got.Secret, sealed("k2", 7)) {
			t.Errorf("resealed secret = %v", got.Secret)
		}
	})
	t.Run("revoke then create again", func(t *testing.T) {
		revoked, err := s.RevokeDevice(c, sc.ID, time.Now())
		must(t, err)
		if !revoked {
			t.Fatal("RevokeDevice reported false")
		}
		pending := securityCenter("acc-1")
		pending.Status = store.DevicePending
		next, err := s.CreateDevice(c, pending)
		must(t, err)
		_, err = s.CreateDevice(c, securityCenter("acc-1"))
		wantErr(t, err, store.ErrConflict)
		a, err := s.ActivateDevice(c, next.ID, time.Now())
		must(t, err)
		if a.Type != store.SecurityCenter || a.Status != store.DeviceActive {
			t.Errorf("ActivateDevice = %+v", a)
		}
		// Revoked twice over: any number of revoked ones may stay.
		_, err = s.RevokeDevice(c, next.ID, time.Now())
		must(t, err)
		third, err := s.CreateDevice(c, securityCenter("acc-1"))
		must(t, err)
		list, err := s.ListDevices(c, "acc-1")
		must(t, err)
		var live, revokedN int
		for _, d := range list {
			if d.Type != store.SecurityCenter {
				continue
			}
			if d.Status == store.DeviceRevoked {
				revokedN++
			} else {
				live++
				if d.ID != third.ID {
					t.Errorf("live security-center device %s, want %s", d.ID, third.ID)
				}
			}
		}
		if live != 1 || revokedN != 2 {
			t.Errorf("security-center devices: %d live, %d revoked; want 1, 2", live, revokedN)
		}
	})
}

func testSecurityCenterRace(t *testing.T, s store.Store) {
	c := ctx(t)
	var wins atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := s.CreateDevice(c, securityCenter("acc-race"))
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrConflict):
				errs <- fmt.Errorf("CreateDevice: %w", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d of 20 concurrent security-center devices created, want exactly 1", n)
	}
}
