package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/pgstore"
	"github.com/mfaflow/mfaflow/store/sqlitestore"
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

// RunUpgradeFrom3 checks that a database left by release 0003 (migrated up
// to 0003, holding rows of every table it knew) keeps them all, and their
// rules, when Migrate brings it to the latest schema, and then keeps unbind
// appeals and rate limits. open returns an empty, unmigrated store that it
// closes on t.Cleanup.
func RunUpgradeFrom3(t *testing.T, open func(t *testing.T) Upgrader) {
	c := ctx(t)
	s := open(t)
	must(t, s.MigrateTo(c, 3))

	// Not there yet: no appeals or rate limits.
	if _, err := s.CreateAppeal(c, appeal("ap-1", "acc-up", "token-1")); err == nil {
		t.Fatal("an appeal was stored at version 3")
	}
	if _, _, err := s.Hit(c, "k", time.Minute, 1, time.Now()); err == nil {
		t.Fatal("a rate-limit hit was counted at version 3")
	}

	now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	// The account row is written as release 0003 wrote it: today's
	// PutAccount needs the columns of 0007.
	putAccountV3(t, s, now)
	var err error
	_, err = s.AppendAudit(c, store.AuditEntry{At: now, Actor: "console", Action: "device.bind", Outcome: "ok",
		AccountID: "acc-up", Subject: "dev", Details: map[string]string{"k": "v"}})
	must(t, err)
	_, err = s.AddOutbox(c, store.OutboxMessage{At: now, Channel: "sms", To: "+861", Kind: "sms_code", Body: "b"})
	must(t, err)
	dev, err := s.CreateDevice(c, device("acc-up"))
	must(t, err)
	_, err = s.AdvanceStep(c, dev.ID, 150)
	must(t, err)
	sc, err := s.CreateDevice(c, securityCenter("acc-up"))
	must(t, err)
	_, err = s.ImportTokens(c, tokens("UP", 2))
	must(t, err)
	card := device("acc-up")
	card.Type, card.Serial = store.Hardware, "UP0000"
	card, err = s.CreateDevice(c, card)
	must(t, err)
	must(t, s.AssignToken(c, "UP0000", "acc-up", card.ID, now))
	_, err = s.SetProtection(c, "acc-up", store.Protection{Login: true, Operation: true})
	must(t, err)
	ch, err := s.CreateSMSChallenge(c, store.SMSChallenge{AccountID: "acc-up", Purpose: "bind_device",
		CodeHash: []byte("hash"), ExpiresAt: now.Add(5 * time.Minute), TriesLeft: 3})
	must(t, err)
	_, err = s.AttemptSMSChallenge(c, ch.ID, now)
	must(t, err)
	used, err := s.CreateGrant(c, grant("used", "acc-up", now.Add(time.Hour)))
	must(t, err)
	_, err = s.ConsumeGrant(c, used.ID, "acc-up", used.Action, used.Resource, now)
	must(t, err)
	unused, err := s.CreateGrant(c, grant("unused", "acc-up", now.Add(time.Hour)))
	must(t, err)
	_, _, err = s.SpendAttempt(c, "acc-up", now, threshold(100))
	must(t, err)

	type snapshot struct {
		Account    store.Account
		Audit      []store.AuditEntry
		Outbox     []store.OutboxMessage
		Devices    []store.Device
		Tokens     []store.HardwareToken
		Protection store.Protection
		Sealed     [][]store.SealedRow
	}
	take := func() snapshot {
		t.Helper()
		var sn snapshot
		var err error
		sn.Audit, err = s.ListAudit(c, store.AuditFilter{})
		must(t, err)
		sn.Outbox, err = s.ListOutbox(c, "", 0)
		must(t, err)
		sn.Devices, err = s.ListDevices(c, "acc-up")
		must(t, err)
		for _, serial := range []string{"UP0000", "UP0001"} {
			tok, err := s.GetToken(c, serial)
			must(t, err)
			sn.Tokens = append(sn.Tokens, tok)
		}
		sn.Protection, err = s.GetProtection(c, "acc-up")
		must(t, err)
		for _, table := range []store.SealedTable{store.SealedDevices, store.SealedTokens} {
			rows, err := s.ListSealed(c, table, "", 1000)
			must(t, err)
			sn.Sealed = append(sn.Sealed, rows)
		}
		return sn
	}
	before := take()
	if len(before.Audit) != 1 || len(before.Outbox) != 1 || len(before.Devices) != 3 || len(before.Sealed[1]) != 2 ||
		before.Tokens[0].State != store.TokenBound {
		t.Fatalf("before the upgrade: %+v", before)
	}

	must(t, s.Migrate(c))
	must(t, s.Migrate(c)) // nothing left to do

	if after := take(); !reflect.DeepEqual(after, before) {
		t.Errorf("after the upgrade:\n%+v\nwant\n%+v", after, before)
	}
	acct, err := s.GetAccount(c, "acc-up")
	must(t, err)
	wantAcct := account("acc-up", store.Login{Kind: store.LoginQQ, ID: "10001"})
	wantAcct.Locale, wantAcct.TimeZone = store.DefaultLocale, store.DefaultTimeZone // 0007's defaults
	wantAcct.CreatedAt, wantAcct.UpdatedAt = now, now
	if !reflect.DeepEqual(acct, wantAcct) {
		t.Errorf("account after the upgrade:\n%+v\nwant\n%+v", acct, wantAcct)
	}

	t.Run("rules kept", func(t *testing.T) {
		ok, err := s.AdvanceStep(c, dev.ID, 150)
		if err != nil || ok {
			t.Errorf("AdvanceStep at the used step = %v, %v; want false", ok, err)
		}
		_, err = s.CreateDevice(c, securityCenter("acc-up"))
		wantErr(t, err, store.ErrConflict)
		wantErr(t, s.AssignToken(c, "UP0000", "acc-other", "dev-other", now), store.ErrConflict)
		got, err := s.AttemptSMSChallenge(c, ch.ID, now)
		must(t, err)
		if got.TriesLeft != 1 {
			t.Errorf("SMS challenge tries left = %d, want 1", got.TriesLeft)
		}
		_, err = s.ConsumeGrant(c, used.ID, "acc-up", used.Action, used.Resource, now)
		wantErr(t, err, store.ErrGrantUsed)
		_, err = s.ConsumeGrant(c, unused.ID, "acc-up", unused.Action, unused.Resource, now)
		must(t, err)
		st, _, err := s.SpendAttempt(c, "acc-up", now, threshold(100))
		must(t, err)
		if st.Failures != 2 {
			t.Errorf("budget failures = %d, want 2", st.Failures)
		}
		if sc.Type != store.SecurityCenter {
			t.Errorf("security-center device = %+v", sc)
		}
	})
	t.Run("new features", func(t *testing.T) {
		a, err := s.CreateAppeal(c, appeal("ap-1", "acc-up", "token-1"))
		must(t, err)
		_, err = s.CreateAppeal(c, appeal("ap-2", "acc-up", "token-2"))
		wantErr(t, err, store.ErrConflict)
		got, err := s.FindAppealByToken(c, store.TokenHash("token-1"))
		must(t, err)
		if !reflect.DeepEqual(got, a) {
			t.Errorf("FindAppealByToken = %+v, want %+v", got, a)
		}
		must(t, s.SetAppealStatus(c, a.ID, "cancelled", true, now))
		_, err = s.CreateAppeal(c, appeal("ap-2", "acc-up", "token-2"))
		must(t, err)
		checkHits(t, s, []hit{
			{"first", "k", time.Minute, 1, now, true, 0},
			{"second", "k", time.Minute, 1, now, false, time.Minute},
		})
	})
}

// RunUpgradeFrom5 checks that a database left by release 0005 keeps its
// devices, their used steps and the recovery codes when Migrate adds
// WebAuthn (0006 rebuilds the devices table on SQLite to widen its type
// check), and then accepts WebAuthn devices beside them.
func RunUpgradeFrom5(t *testing.T, open func(t *testing.T) Upgrader) {
	c := ctx(t)
	s := open(t)
	must(t, s.MigrateTo(c, 5))
	app := device("acc-up5")
	app.ID = "up5-app"
	_, err := s.CreateDevice(c, app)
	must(t, err)
	if ok, err := s.AdvanceStep(c, "up5-app", 4242); err != nil || !ok {
		t.Fatalf("AdvanceStep = %v, %v", ok, err)
	}
	mustOK(t)(s.ReplaceRecoveryCodes(c, "acc-up5", recoverySet("up5", 10), false))
	before, err := s.ListDevices(c, "acc-up5")
	must(t, err)

	must(t, s.Migrate(c))
	must(t, s.Migrate(c)) // nothing left to do
	after, err := s.ListDevices(c, "acc-up5")
	must(t, err)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("devices after the upgrade = %+v, want %+v", after, before)
	}
	if after[0].LastStep != 4242 {
		t.Fatalf("last step after the upgrade = %d", after[0].LastStep)
	}
	if codes, err := s.ListRecoveryCodes(c, "acc-up5"); err != nil || len(codes) != 10 {
		t.Fatalf("recovery codes after the upgrade = %d, %v", len(codes), err)
	}
	if _, err := s.CreateWebAuthnDevice(c, store.Device{ID: "up5-key", AccountID: "acc-up5"}, webauthnCred(5)); err != nil {
		t.Fatalf("a webauthn device after the upgrade: %v", err)
	}
	if _, err := s.CreateDevice(c, app); err == nil {
		t.Fatal("the rebuilt devices table lost its primary key")
	}
}

// putAccountV3 writes the directory entry account("acc-up", qq 10001) with
// created and updated at as the schema of release 0003 holds it.
func putAccountV3(t *testing.T, s Upgrader, at time.Time) {
	t.Helper()
	a := account("acc-up")
	cols := `INSERT INTO accounts (id, type, bound_phone, email, real_name_verified, real_name, id_number,
		company_name, company_reg_number, login_method, created_at, updated_at) `
	var err error
	switch db := s.(type) {
	case *pgstore.DB:
		err = db.ExecRaw(ctx(t), cols+"VALUES ($1, $2, $3, $4, $5, $6, $7, '', '', $8, $9, $9)",
			a.ID, string(a.Type), a.BoundPhone, a.Email, a.RealName.Verified, a.RealName.Name, a.RealName.IDNumber, string(a.LoginMethod), at)
		if err == nil {
			err = db.ExecRaw(ctx(t), "INSERT INTO account_logins (kind, login_id, account_id, position) VALUES ('qq', '10001', $1, 0)", a.ID)
		}
	case *sqlitestore.DB:
		err = db.ExecRaw(ctx(t), cols+"VALUES (?, ?, ?, ?, ?, ?, ?, '', '', ?, ?, ?)",
			a.ID, string(a.Type), a.BoundPhone, a.Email, a.RealName.Verified, a.RealName.Name, a.RealName.IDNumber, string(a.LoginMethod),
			at.UnixMicro(), at.UnixMicro())
		if err == nil {
			err = db.ExecRaw(ctx(t), "INSERT INTO account_logins (kind, login_id, account_id, position) VALUES ('qq', '10001', ?, 0)", a.ID)
		}
	default:
		t.Fatalf("putAccountV3: no release-0003 insert for %T", s)
	}
	must(t, err)
}
