package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

// Upgrader is a store whose migrations can be applied up to a version; the
// upgrade case needs it.
type Upgrader interface {
	store.Store
	store.Migrator
	// MigrateTo applies the migrations up to and including version.
	MigrateTo(ctx context.Context, version int) error
}

// RunUpgrade checks that a database left by release 0002 (migrated up to
// 0002, holding devices of every type and status it knew) keeps every
// device row and the devices' rules when Migrate brings it to the latest
// schema, and then accepts security-center devices. open returns an empty,
// unmigrated store that it closes on t.Cleanup.
func RunUpgrade(t *testing.T, open func(t *testing.T) Upgrader) {
	c := ctx(t)
	s := open(t)
	must(t, s.MigrateTo(c, 2))

	// Not there yet: no security-center type and no grants table.
	if _, err := s.CreateDevice(c, securityCenter("acc-up")); err == nil {
		t.Fatal("a security-center device was stored at version 2")
	}
	if _, err := s.CreateGrant(c, grant("t", "acc-up", time.Now().Add(time.Minute))); err == nil {
		t.Fatal("a grant was stored at version 2")
	}

	at := time.Date(2026, 4, 1, 8, 0, 0, 654321000, time.UTC)
	create := func(d store.Device) store.Device {
		t.Helper()
		out, err := s.CreateDevice(c, d)
		must(t, err)
		return out
	}
	virtual := create(device("acc-up"))
	_, err := s.AdvanceStep(c, virtual.ID, 150)
	must(t, err)
	must(t, s.TouchDevice(c, virtual.ID, at))
	pending := device("acc-up")
	pending.Type, pending.Serial, pending.Status, pending.Name = store.Hardware, "UP-1", store.DevicePending, ""
	pending = create(pending)
	old := device("acc-up")
	old.Type, old.Serial, old.Secret = store.Hardware, "UP-2", sealed("k0", 3)
	old = create(old)
	_, err = s.ResyncDevice(c, old.ID, -2, 160)
	must(t, err)
	_, err = s.RevokeDevice(c, old.ID, at)
	must(t, err)
	card := device("acc-up-2")
	card.Type, card.Serial = store.Hardware, "UP-2"
	card = create(card)

	snapshot := func() (map[string][]store.Device, []store.SealedRow) {
		t.Helper()
		devs := map[string][]store.Device{}
		for _, acc := range []string{"acc-up", "acc-up-2"} {
			list, err := s.ListDevices(c, acc)
			must(t, err)
			devs[acc] = list
		}
		rows, err := s.ListSealed(c, store.SealedDevices, "", 1000)
		must(t, err)
		return devs, rows
	}
	devsBefore, sealedBefore := snapshot()
	if len(devsBefore["acc-up"]) != 3 || len(devsBefore["acc-up-2"]) != 1 || len(sealedBefore) != 4 {
		t.Fatalf("before the upgrade: %+v, %d sealed rows", devsBefore, len(sealedBefore))
	}

	must(t, s.Migrate(c))
	must(t, s.Migrate(c)) // nothing left to do

	devsAfter, sealedAfter := snapshot()
	if !reflect.DeepEqual(devsAfter, devsBefore) {
		t.Errorf("devices after the upgrade =\n%+v\nwant\n%+v", devsAfter, devsBefore)
	}
	if !reflect.DeepEqual(sealedAfter, sealedBefore) {
		t.Errorf("sealed rows after the upgrade =\n%+v\nwant\n%+v", sealedAfter, sealedBefore)
	}
	for _, d := range []store.Device{virtual, pending, old, card} {
		got, err := s.GetDevice(c, d.ID)
		must(t, err)
		if got.ID != d.ID || got.Type != d.Type || got.Serial != d.Serial || !reflect.DeepEqual(got.Secret, d.Secret) {
			t.Errorf("GetDevice(%s) after the upgrade = %+v", d.ID, got)
		}
	}

	t.Run("rules kept", func(t *testing.T) {
		for _, serial := range []string{"UP-1", "UP-2"} { // on a pending and an active device
			d := device("acc-other")
			d.Type, d.Serial = store.Hardware, serial
			_, err := s.CreateDevice(c, d)
			wantErr(t, err, store.ErrConflict)
		}
		dup := device("acc-up")
		dup.ID = virtual.ID
		_, err := s.CreateDevice(c, dup)
		wantErr(t, err, store.ErrConflict)
		bad := device("acc-up")
		bad.Type = "sms"
		if _, err := s.CreateDevice(c, bad); err == nil {
			t.Error("CreateDevice of type sms succeeded after the upgrade")
		}
		ok, err := s.AdvanceStep(c, virtual.ID, 150)
		if err != nil || ok {
			t.Errorf("AdvanceStep at the used step after the upgrade = %v, %v; want false", ok, err)
		}
		ok, err = s.AdvanceStep(c, virtual.ID, 151)
		if err != nil || !ok {
			t.Errorf("AdvanceStep after the upgrade = %v, %v; want true", ok, err)
		}
	})
	t.Run("new features", func(t *testing.T) {
		_, err := s.CreateDevice(c, securityCenter("acc-up"))
		must(t, err)
		_, err = s.CreateDevice(c, securityCenter("acc-up"))
		wantErr(t, err, store.ErrConflict)
		g, err := s.CreateGrant(c, grant("t", "acc-up", time.Now().Add(time.Minute)))
		must(t, err)
		_, err = s.ConsumeGrant(c, g.ID, "acc-up", g.Action, g.Resource, time.Now())
		must(t, err)
	})
}
