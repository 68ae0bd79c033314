package console_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
)

func TestMain(m *testing.M) { harness.Main(m) }

type fixture struct {
	st   store.Store
	svc  *console.Service
	keys *mfa.Keyring
	now  time.Time
}

func forEachStore(t *testing.T, f func(t *testing.T, fx *fixture)) {
	for name, open := range map[string]func(testing.TB) store.Store{
		"sqlite":   func(tb testing.TB) store.Store { return storetest.SQLite(tb) },
		"postgres": func(tb testing.TB) store.Store { return storetest.Postgres(tb) },
	} {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			keys, _ := mfa.GenerateKeyring()
			fx := &fixture{st: st, keys: keys, now: time.Unix(1_900_000_000, 0)}
			fx.svc = &console.Service{Store: st, Keys: keys, Notifier: notify.Outbox{Store: st}, Now: func() time.Time { return fx.now }}
			f(t, fx)
		})
	}
}

func (fx *fixture) account(t *testing.T, id string, method store.LoginMethod) {
	t.Helper()
	if _, err := fx.st.PutAccount(context.Background(), store.Account{ID: id, Type: store.Personal, BoundPhone: "13800138000", Email: id + "@example.com",
		Logins: []store.Login{{Kind: store.LoginEmail, ID: id + "@example.com"}}, LoginMethod: method}); err != nil {
		t.Fatal(err)
	}
}

// device stores an active device with a fresh secret and returns both.
func (fx *fixture) device(t *testing.T, account string, typ store.DeviceType, serial string) (store.Device, []byte) {
	t.Helper()
	secret, _ := mfa.NewSecret(nil)
	id := "dev-" + account + "-" + string(typ) + serial
	sealed, err := fx.keys.Seal(secret, mfa.AAD(string(store.SealedDevices), id))
	if err != nil {
		t.Fatal(err)
	}
	d, err := fx.st.CreateDevice(context.Background(), store.Device{ID: id, AccountID: account, Type: typ, Serial: serial, Secret: sealed,
		Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive})
	if err != nil {
		t.Fatal(err)
	}
	return d, secret
}

func (fx *fixture) outboxKinds(t *testing.T) map[string]int {
	t.Helper()
	msgs, err := fx.st.ListOutbox(context.Background(), "", 500)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, m := range msgs {
		kinds[m.Kind]++
	}
	return kinds
}

func TestVerifyRules(t *testing.T) {
	forEachStore(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		c := console.Caller{Actor: "console"}
		fx.account(t, "a1", store.LoginMFA)
		if _, err := fx.svc.Verify(ctx, c, "nobody", "123456", console.PurposeLogin, console.Operation{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown account: %v", err)
		}
		if _, err := fx.svc.Verify(ctx, c, "a1", "123456", console.PurposeLogin, console.Operation{}); !errors.Is(err, console.ErrProtectionOff) {
			t.Fatalf("protection off: %v", err)
		}
		if _, err := fx.st.SetProtection(ctx, "a1", store.Protection{Login: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := fx.svc.Verify(ctx, c, "a1", "123456", console.PurposeLogin, console.Operation{}); !errors.Is(err, console.ErrNoDevice) {
			t.Fatalf("no device: %v", err)
		}
		if _, err := fx.svc.Verify(ctx, c, "a1", "123456", console.PurposeOperation, console.Operation{Action: "x", Resource: "y"}); !errors.Is(err, console.ErrProtectionOff) {
			t.Fatalf("operation protection off: %v", err)
		}
		// Two devices: either one verifies.
		_, s1 := fx.device(t, "a1", store.Virtual, "")
		_, s2 := fx.device(t, "a1", store.Hardware, "HW-0001")
		code2 := mfa.TOTP(s2, fx.now, mfa.Params{})
		res, err := fx.svc.Verify(ctx, c, "a1", code2, console.PurposeLogin, console.Operation{})
		if err != nil || res.DeviceID != "dev-a1-hardwareHW-0001" || res.Grant != "" {
			t.Fatalf("verify with the card = %+v, %v", res, err)
		}
		if _, err := fx.svc.Verify(ctx, c, "a1", code2, console.PurposeLogin, console.Operation{}); !errors.Is(err, mfa.ErrReplayed) {
			t.Fatalf("replay: %v", err)
		}
		if fx.outboxKinds(t)["code_reused"] == 0 {
			t.Fatal("replay not notified")
		}
		if _, err := fx.svc.Verify(ctx, c, "a1", mfa.TOTP(s1, fx.now, mfa.Params{}), console.PurposeLogin, console.Operation{}); err != nil {
			t.Fatalf("verify with the app: %v", err)
		}
		d, _ := fx.st.GetDevice(ctx, "dev-a1-virtual")
		if !d.LastUsedAt.Equal(fx.now) {
			t.Fatalf("last_used_at = %v, want %v", d.LastUsedAt, fx.now)
		}
	})
}

func TestLockIsAuditedAndNotified(t *testing.T) {
	forEachStore(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		fx.account(t, "a2", store.LoginMFA)
		fx.device(t, "a2", store.Virtual, "")
		_, _ = fx.st.SetProtection(ctx, "a2", store.Protection{Login: true})
		var last error
		for range 6 {
			_, last = fx.svc.Verify(ctx, console.Caller{}, "a2", "000000", console.PurposeLogin, console.Operation{})
		}
		var le *mfa.LockedError
		if !errors.As(last, &le) || le.RetryAfter != time.Minute {
			t.Fatalf("6th wrong code: %v, want a 1-minute lock", last)
		}
		if fx.outboxKinds(t)["mfa_locked"] != 2 { // SMS and e-mail
			t.Fatalf("lock notifications = %v", fx.outboxKinds(t))
		}
		es, _ := fx.st.ListAudit(ctx, store.AuditFilter{AccountID: "a2"})
		found := false
		for _, e := range es {
			found = found || (e.Action == "mfa.lock" && e.Outcome == "locked")
		}
		if !found {
			t.Fatal("lock not audited")
		}
	})
}

func TestSetProtectionNeedsACode(t *testing.T) {
	forEachStore(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		fx.account(t, "a3", store.LoginMFA)
		_, secret := fx.device(t, "a3", store.Virtual, "")
		if _, err := fx.svc.SetProtection(ctx, console.Caller{}, "a3", console.Proof{Code: "000000"}, store.Protection{Login: true}); !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("wrong code: %v", err)
		}
		if p, _ := fx.st.GetProtection(ctx, "a3"); p.Login {
			t.Fatal("protection changed by a wrong code")
		}
		p, err := fx.svc.SetProtection(ctx, console.Caller{}, "a3", console.Proof{Code: mfa.TOTP(secret, fx.now, mfa.Params{})}, store.Protection{Login: true, Operation: true})
		if err != nil || !p.Login || !p.Operation {
			t.Fatalf("SetProtection = %+v, %v", p, err)
		}
		if fx.outboxKinds(t)["protection_changed"] == 0 {
			t.Fatal("settings change not notified")
		}
	})
}

func TestResyncRecordsDrift(t *testing.T) {
	forEachStore(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		fx.account(t, "a4", store.LoginMFA)
		_, _ = fx.st.SetProtection(ctx, "a4", store.Protection{Login: true})
		if _, _, err := fx.svc.Resync(ctx, console.Caller{}, "a4", "123456", "654321"); !errors.Is(err, console.ErrNotHardware) {
			t.Fatalf("no card: %v", err)
		}
		card, seed := fx.device(t, "a4", store.Hardware, "HW-0004")
		// The card's clock runs 5 steps (2.5 minutes) fast.
		fast := fx.now.Add(5 * 30 * time.Second)
		if _, err := fx.svc.Verify(ctx, console.Caller{}, "a4", mfa.TOTP(seed, fast, mfa.Params{}), console.PurposeLogin, console.Operation{}); !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("drifted code before resync: %v", err)
		}
		if _, _, err := fx.svc.Resync(ctx, console.Caller{}, "a4", mfa.TOTP(seed, fast, mfa.Params{}), "000000"); !errors.Is(err, mfa.ErrResyncFailed) {
			t.Fatalf("one right, one wrong code: %v, want the generic ErrResyncFailed", err)
		}
		d, drift, err := fx.svc.Resync(ctx, console.Caller{}, "a4", mfa.TOTP(seed, fast.Add(-30*time.Second), mfa.Params{}), mfa.TOTP(seed, fast, mfa.Params{}))
		if err != nil || drift != 5 || d.ID != card.ID {
			t.Fatalf("Resync = %v, drift %d, %v", d.ID, drift, err)
		}
		got, _ := fx.st.GetDevice(ctx, card.ID)
		if got.Drift != 5 {
			t.Fatalf("stored drift = %d", got.Drift)
		}
		// Later codes from the fast card now verify, centred on the drift.
		later := fast.Add(30 * time.Second)
		fx.now = fx.now.Add(30 * time.Second)
		if _, err := fx.svc.Verify(ctx, console.Caller{}, "a4", mfa.TOTP(seed, later, mfa.Params{}), console.PurposeLogin, console.Operation{}); err != nil {
			t.Fatalf("code after resync: %v", err)
		}
	})
}

func TestUnbindAndLoginMethod(t *testing.T) {
	forEachStore(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		fx.account(t, "a5", store.LoginSecurityCenter)
		fx.account(t, "a6", store.LoginMFA)
		app, appSecret := fx.device(t, "a5", store.Virtual, "")
		other, _ := fx.device(t, "a6", store.Virtual, "")
		// Ordinary account: login protection uses the security-center app, not the MFA device.
		if _, err := fx.svc.LoginVerify(ctx, console.Caller{}, "a5", mfa.TOTP(appSecret, fx.now, mfa.Params{})); !errors.Is(err, console.ErrNoDevice) {
			t.Fatalf("security-center login before provisioning: %v", err)
		}
		sc, scSecret, err := fx.svc.ProvisionSecurityCenter(ctx, "a5")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := fx.svc.ProvisionSecurityCenter(ctx, "a5"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second provisioning: %v", err)
		}
		if id, err := fx.svc.LoginVerify(ctx, console.Caller{}, "a5", mfa.TOTP(scSecret, fx.now, mfa.Params{})); err != nil || id != sc.ID {
			t.Fatalf("security-center login = %s, %v", id, err)
		}
		// The security-center app is not an MFA device of the account.
		devs, _, _ := fx.svc.Devices(ctx, "a5")
		if len(devs) != 1 || devs[0].ID != app.ID {
			t.Fatalf("Devices = %+v", devs)
		}
		// Another account's device cannot be unbound.
		if err := fx.svc.Unbind(ctx, console.Caller{}, "a5", other.ID, console.Proof{Code: mfa.TOTP(appSecret, fx.now, mfa.Params{})}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unbinding another account's device: %v", err)
		}
		if err := fx.svc.Unbind(ctx, console.Caller{}, "a5", app.ID, console.Proof{Code: "000000"}); !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("unbind with a wrong code: %v", err)
		}
		if err := fx.svc.Unbind(ctx, console.Caller{}, "a5", app.ID, console.Proof{Code: mfa.TOTP(appSecret, fx.now, mfa.Params{})}); err != nil {
			t.Fatalf("unbind: %v", err)
		}
		if d, _ := fx.st.GetDevice(ctx, app.ID); d.Status != store.DeviceRevoked {
			t.Fatalf("device after unbind = %s", d.Status)
		}
		if fx.outboxKinds(t)["device_unbound"] == 0 {
			t.Fatal("unbind not notified")
		}
	})
}

// TestNoticesInTheAccountsLanguage locks two accounts by a wrong code: the
// one with the directory's defaults is told in Chinese with the time in
// UTC+8, the one set to en and Asia/Tokyo in English with the time in
// UTC+9, each SMS in one segment.
func TestNoticesInTheAccountsLanguage(t *testing.T) {
	forEachStore(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		fx.svc.Policy = mfa.LockPolicy{Threshold: 1}
		for i, a := range []struct{ id, locale, zone string }{{"lang-zh", "", ""}, {"lang-en", "en", "Asia/Tokyo"}} {
			if _, err := fx.st.PutAccount(ctx, store.Account{ID: a.id, Type: store.Personal, BoundPhone: "1380013800" + string(rune('1'+i)),
				Email: a.id + "@example.com", Logins: []store.Login{{Kind: store.LoginEmail, ID: a.id + "@example.com"}},
				LoginMethod: store.LoginMFA, Locale: a.locale, TimeZone: a.zone}); err != nil {
				t.Fatal(err)
			}
			if _, err := fx.st.SetProtection(ctx, a.id, store.Protection{Login: true}); err != nil {
				t.Fatal(err)
			}
			_, secret := fx.device(t, a.id, store.Virtual, "")
			wrong := mfa.TOTP(secret, fx.now.Add(time.Hour), mfa.Params{})
			if _, err := fx.svc.Verify(ctx, console.Caller{Actor: "console"}, a.id, wrong, console.PurposeLogin, console.Operation{}); err == nil {
				t.Fatal("a wrong code verified")
			}
		}
		msgs, err := fx.st.ListOutbox(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, m := range msgs {
			if m.Kind != "mfa_locked" {
				continue
			}
			zh := m.To == "13800138001" || m.To == "lang-zh@example.com"
			prefix, offset := "[mfaflow] ", "(UTC+9)"
			if zh {
				prefix, offset = "【mfaflow】", "（UTC+8）"
			}
			if !strings.HasPrefix(m.Body, prefix) || !strings.Contains(m.Body, offset) || strings.ContainsFunc(m.Body, func(r rune) bool { return r >= 0x4e00 && r <= 0x9fff }) == !zh {
				t.Errorf("lock notice to %s: %q, want %s… with %s", m.To, m.Body, prefix, offset)
			}
			if n, segment := notify.SMSLength(m.Body); m.Channel == notify.SMS && n > segment {
				t.Errorf("lock SMS to %s is %d of %d: %q", m.To, n, segment, m.Body)
			}
			seen[m.To] = true
		}
		if len(seen) != 4 {
			t.Fatalf("lock notices went to %v, want both phones and e-mails", seen)
		}
	})
}

// TestStepUpCodeOnTwoDevices: a code that two devices answer (the same
// secret bound twice) passes step-up on the first fresh one; each use's
// audit entry names its own device.
func TestStepUpCodeOnTwoDevices(t *testing.T) {
	forEachStore(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		c := console.Caller{Actor: "console"}
		fx.account(t, "a2", store.LoginMFA)
		d1, secret := fx.device(t, "a2", store.Virtual, "")
		id2 := "dev-a2-second"
		sealed, err := fx.keys.Seal(secret, mfa.AAD(string(store.SealedDevices), id2))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fx.st.CreateDevice(ctx, store.Device{ID: id2, AccountID: "a2", Type: store.Virtual, Secret: sealed,
			Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive}); err != nil {
			t.Fatal(err)
		}
		code := mfa.TOTP(secret, fx.now, mfa.Params{})
		var got []string
		for range 2 {
			up, err := fx.svc.StepUp(ctx, c, "a2", console.Proof{Code: code}, "device.remove")
			if err != nil {
				t.Fatalf("step-up %d: %v", len(got)+1, err)
			}
			got = append(got, up.DeviceID)
		}
		if got[0] != d1.ID || got[1] != id2 {
			t.Fatalf("step-ups used %v, want %s then %s", got, d1.ID, id2)
		}
		if _, err := fx.svc.StepUp(ctx, c, "a2", console.Proof{Code: code}, "device.remove"); !errors.Is(err, mfa.ErrReplayed) {
			t.Fatalf("third use of the code: %v, want a replay", err)
		}
		entries, err := fx.st.ListAudit(ctx, store.AuditFilter{AccountID: "a2"})
		if err != nil {
			t.Fatal(err)
		}
		ok := 0
		for _, e := range entries {
			if e.Action == "mfa.step_up" && e.Outcome == "ok" {
				ok++
				if e.Details["device_id"] != e.Subject {
					t.Errorf("step-up audit of %s says device_id %q", e.Subject, e.Details["device_id"])
				}
			}
		}
		if ok != 2 {
			t.Errorf("%d step-up audit entries, want 2", ok)
		}
	})
}

// TestCheckResealsOldSecrets: a device sealed with a key that is no longer
// current verifies, and its secret is sealed again with the current key.
func TestCheckResealsOldSecrets(t *testing.T) {
	forEachStore(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		fx.account(t, "a3", store.LoginMFA)
		if _, err := fx.st.SetProtection(ctx, "a3", store.Protection{Login: true}); err != nil {
			t.Fatal(err)
		}
		d, secret := fx.device(t, "a3", store.Virtual, "")
		old := fx.keys.CurrentID()
		newer, err := mfa.GenerateKeyring()
		if err != nil {
			t.Fatal(err)
		}
		ring, err := mfa.ParseKeyring(strings.Join([]string{newer.Encode(), fx.keys.Encode()}, ","))
		if err != nil {
			t.Fatal(err)
		}
		fx.svc.Keys = ring
		if _, err := fx.svc.Verify(ctx, console.Caller{Actor: "console"}, "a3", mfa.TOTP(secret, fx.now, mfa.Params{}), console.PurposeLogin, console.Operation{}); err != nil {
			t.Fatalf("verify with a secret sealed by the older key: %v", err)
		}
		got, err := fx.st.GetDevice(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Secret.KeyID == old || got.Secret.KeyID != ring.CurrentID() {
			t.Fatalf("secret sealed with %q after the check, want the current key %q", got.Secret.KeyID, ring.CurrentID())
		}
	})
}
