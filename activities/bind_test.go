package activities_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/workflows"
)

func TestMain(m *testing.M) { harness.Main(m) }

// clock is a settable clock shared by the activities and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	st    store.Store
	keys  *mfa.Keyring
	clock *clock
	a     *activities.Activities
}

// eachStore runs fn against a fresh SQLite store and a fresh PostgreSQL store.
func eachStore(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Helper()
	for name, open := range map[string]func(testing.TB) store.Store{
		"sqlite":   func(tb testing.TB) store.Store { return storetest.SQLite(tb) },
		"postgres": func(tb testing.TB) store.Store { return storetest.Postgres(tb) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newFixture(t, open(t)))
		})
	}
}

func newFixture(t *testing.T, st store.Store) *fixture {
	t.Helper()
	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now().Truncate(time.Second)}
	return &fixture{st: st, keys: keys, clock: c, a: &activities.Activities{
		Store: st, Notifier: notify.Outbox{Store: st}, Keys: keys, Now: c.Now,
	}}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantType fails unless err is a non-retryable application error of type typ.
func wantType(t *testing.T, err error, typ string) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != typ {
		t.Fatalf("error = %v, want application error %s", err, typ)
	}
	if !appErr.NonRetryable() {
		t.Fatalf("%s error is retryable", typ)
	}
	return appErr
}

func (f *fixture) account(t *testing.T, id, phone, email string) {
	t.Helper()
	_, err := f.st.PutAccount(ctx(t), store.Account{ID: id, Type: store.Personal, BoundPhone: phone, Email: email,
		Logins: []store.Login{{Kind: store.LoginEmail, ID: id + "@example.com"}}, LoginMethod: store.LoginMFA})
	must(t, err)
}

var smsCode = regexp.MustCompile(`\b[0-9]{6}\b`)

// lastSMSCode returns the code of the newest sms_code message to phone.
func (f *fixture) lastSMSCode(t *testing.T, phone string) string {
	t.Helper()
	msgs, err := f.st.ListOutbox(ctx(t), phone, 100)
	must(t, err)
	for _, m := range msgs {
		if m.Kind == activities.KindSMSCode {
			return smsCode.FindString(m.Body)
		}
	}
	t.Fatal("no sms code sent")
	return ""
}

func (f *fixture) outbox(t *testing.T, kind string) []store.OutboxMessage {
	t.Helper()
	msgs, err := f.st.ListOutbox(ctx(t), "", 1000)
	must(t, err)
	var out []store.OutboxMessage
	for _, m := range msgs {
		if kind == "" || m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

func (f *fixture) audit(t *testing.T, account, action, outcome string) []store.AuditEntry {
	t.Helper()
	es, err := f.st.ListAudit(ctx(t), store.AuditFilter{AccountID: account, Limit: 1000})
	must(t, err)
	var out []store.AuditEntry
	for _, e := range es {
		if e.Action == action && (outcome == "" || e.Outcome == outcome) {
			out = append(out, e)
		}
	}
	return out
}

// secret opens the sealed secret of device id.
func (f *fixture) secret(t *testing.T, id string) []byte {
	t.Helper()
	d, err := f.st.GetDevice(ctx(t), id)
	must(t, err)
	s, err := f.keys.Open(d.Secret, mfa.AAD(string(store.SealedDevices), id))
	must(t, err)
	return s
}

// pendingVirtual creates the pending virtual device of binding.
func (f *fixture) pendingVirtual(t *testing.T, account, binding string) string {
	t.Helper()
	out, err := f.a.CreatePendingDevice(ctx(t), workflows.CreatePendingDeviceInput{AccountID: account, BindingID: binding, DeviceType: workflows.DeviceVirtual})
	must(t, err)
	return out.DeviceID
}

// codes returns two consecutive codes of secret ending at the clock's step.
func (f *fixture) codes(secret []byte, p mfa.Params) (string, string) {
	now := f.clock.Now()
	return mfa.TOTP(secret, now.Add(-p.WithDefaults().Period), p), mfa.TOTP(secret, now, p)
}

// importCard adds a card to the inventory and returns its seed.
func (f *fixture) importCard(t *testing.T, serial string, p mfa.Params) []byte {
	t.Helper()
	seed, err := mfa.NewSecret(nil)
	must(t, err)
	sealed, err := f.keys.Seal(seed, mfa.AAD(string(store.SealedTokens), serial))
	must(t, err)
	p = p.WithDefaults()
	_, err = f.st.ImportTokens(ctx(t), []store.HardwareToken{{Serial: serial, Seed: sealed,
		Algorithm: p.Algorithm.String(), Digits: p.Digits, PeriodSeconds: int(p.Period / time.Second), BatchID: "test"}})
	must(t, err)
	return seed
}

func TestSendAndCheckBindingSMS(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		f.account(t, "acct-1", "+8613800000001", "")
		sent, err := f.a.SendBindingSMS(c, workflows.SendBindingSMSInput{AccountID: "acct-1", BindingID: "b1"})
		must(t, err)
		if sent.ChallengeID == "" || !sent.ExpiresAt.Equal(f.clock.Now().Add(mfa.SMSCodeTTL)) {
			t.Fatalf("SendBindingSMS = %+v", sent)
		}
		msgs := f.outbox(t, activities.KindSMSCode)
		if len(msgs) != 1 || msgs[0].To != "+8613800000001" || msgs[0].Channel != notify.SMS || msgs[0].Data["message_id"] != "sms-code-"+sent.ChallengeID {
			t.Fatalf("outbox = %+v", msgs)
		}
		code := f.lastSMSCode(t, "+8613800000001")
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		_, err = f.a.CheckBindingSMS(c, workflows.CheckBindingSMSInput{AccountID: "acct-1", ChallengeID: sent.ChallengeID, Code: wrong})
		appErr := wantType(t, err, workflows.ErrTypeInvalidCode)
		var left int
		if err := appErr.Details(&left); err != nil || left != 4 {
			t.Fatalf("tries left = %d (%v), want 4", left, err)
		}
		if strings.Contains(err.Error(), code) || strings.Contains(err.Error(), wrong) {
			t.Fatal("error message holds a code")
		}
		got, err := f.a.CheckBindingSMS(c, workflows.CheckBindingSMSInput{AccountID: "acct-1", ChallengeID: sent.ChallengeID, Code: code})
		must(t, err)
		if got.TriesLeft != 3 {
			t.Fatalf("TriesLeft = %d, want 3", got.TriesLeft)
		}
		// A retried attempt after success succeeds; a wrong code after use does too,
		// since the challenge is this binding's own and already passed.
		_, err = f.a.CheckBindingSMS(c, workflows.CheckBindingSMSInput{AccountID: "acct-1", ChallengeID: sent.ChallengeID, Code: code})
		must(t, err)
	})
}

func TestBindingSMSRefusals(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, f *fixture) error
		want string
	}{
		{"no account", func(t *testing.T, f *fixture) error {
			_, err := f.a.SendBindingSMS(ctx(t), workflows.SendBindingSMSInput{AccountID: "nobody", BindingID: "b"})
			return err
		}, workflows.ErrTypeNoAccount},
		{"no phone", func(t *testing.T, f *fixture) error {
			f.account(t, "acct-np", "", "np@example.com")
			_, err := f.a.SendBindingSMS(ctx(t), workflows.SendBindingSMSInput{AccountID: "acct-np", BindingID: "b"})
			return err
		}, workflows.ErrTypeNoPhone},
		{"five wrong codes", func(t *testing.T, f *fixture) error {
			f.a.Policy = mfa.LockPolicy{Threshold: 50}
			id := f.sendSMS(t, "acct-5")
			wrong := f.wrongSMS(t, "acct-5")
			for i := 4; i >= 1; i-- {
				_, err := f.a.CheckBindingSMS(ctx(t), workflows.CheckBindingSMSInput{AccountID: "acct-5", ChallengeID: id, Code: wrong})
				wantType(t, err, workflows.ErrTypeInvalidCode)
			}
			_, err := f.a.CheckBindingSMS(ctx(t), workflows.CheckBindingSMSInput{AccountID: "acct-5", ChallengeID: id, Code: wrong})
			wantType(t, err, workflows.ErrTypeSMSExhausted)
			// Exhausted stays exhausted, even with the right code.
			_, err = f.a.CheckBindingSMS(ctx(t), workflows.CheckBindingSMSInput{AccountID: "acct-5", ChallengeID: id, Code: f.lastSMSCode(t, "+86-acct-5")})
			return err
		}, workflows.ErrTypeSMSExhausted},
		{"expired", func(t *testing.T, f *fixture) error {
			id := f.sendSMS(t, "acct-exp")
			f.clock.Add(mfa.SMSCodeTTL + time.Second)
			_, err := f.a.CheckBindingSMS(ctx(t), workflows.CheckBindingSMSInput{AccountID: "acct-exp", ChallengeID: id, Code: f.lastSMSCode(t, "+86-acct-exp")})
			return err
		}, workflows.ErrTypeExpired},
		{"another account's challenge", func(t *testing.T, f *fixture) error {
			id := f.sendSMS(t, "acct-a")
			f.account(t, "acct-b", "+86-acct-b", "")
			_, err := f.a.CheckBindingSMS(ctx(t), workflows.CheckBindingSMSInput{AccountID: "acct-b", ChallengeID: id, Code: f.lastSMSCode(t, "+86-acct-a")})
			return err
		}, workflows.ErrTypeWrongState},
		{"locked", func(t *testing.T, f *fixture) error {
			f.a.Policy = mfa.LockPolicy{Threshold: 2}
			id := f.sendSMS(t, "acct-lock")
			wrong := f.wrongSMS(t, "acct-lock")
			for range 2 {
				_, err := f.a.CheckBindingSMS(ctx(t), workflows.CheckBindingSMSInput{AccountID: "acct-lock", ChallengeID: id, Code: wrong})
				wantType(t, err, workflows.ErrTypeInvalidCode)
			}
			_, err := f.a.CheckBindingSMS(ctx(t), workflows.CheckBindingSMSInput{AccountID: "acct-lock", ChallengeID: id, Code: f.lastSMSCode(t, "+86-acct-lock")})
			appErr := wantType(t, err, workflows.ErrTypeLocked)
			var secs int
			if err := appErr.Details(&secs); err != nil || secs < 1 || secs > 120 {
				t.Fatalf("retry after = %d (%v)", secs, err)
			}
			// The lock is audited when it starts and when it refuses an attempt;
			// both notices carry one message ID, so receivers deliver one.
			for _, outcome := range []string{"locked", "denied"} {
				if n := len(f.audit(t, "acct-lock", activities.AuditMFALock, outcome)); n != 1 {
					t.Fatalf("lock audit entries with outcome %s = %d, want 1", outcome, n)
				}
			}
			notes := f.outbox(t, activities.KindLocked)
			if len(notes) != 2 || notes[0].Data["message_id"] != notes[1].Data["message_id"] || notes[0].To != "+86-acct-lock" {
				t.Fatalf("lock notices = %+v, want two with one message id", notes)
			}
			return err
		}, workflows.ErrTypeLocked},
	}
	eachStore(t, func(t *testing.T, f *fixture) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				g := newFixture(t, f.st)
				wantType(t, tt.run(t, g), tt.want)
			})
		}
	})
}

func (f *fixture) sendSMS(t *testing.T, account string) string {
	t.Helper()
	f.account(t, account, "+86-"+account, "")
	out, err := f.a.SendBindingSMS(ctx(t), workflows.SendBindingSMSInput{AccountID: account, BindingID: "b-" + account})
	must(t, err)
	return out.ChallengeID
}

func (f *fixture) wrongSMS(t *testing.T, account string) string {
	if f.lastSMSCode(t, "+86-"+account) == "000000" {
		return "111111"
	}
	return "000000"
}

func TestCreatePendingDevice(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		id := f.pendingVirtual(t, "acct-1", "bind-1")
		if id != "dev-bind-1" {
			t.Fatalf("device id = %q", id)
		}
		d, err := f.st.GetDevice(c, id)
		must(t, err)
		if d.Status != store.DevicePending || d.Type != store.Virtual || d.AccountID != "acct-1" || d.Digits != 6 || d.PeriodSeconds != 30 || d.Algorithm != "SHA1" {
			t.Fatalf("device = %+v", d)
		}
		if s := f.secret(t, id); len(s) != 20 {
			t.Fatalf("secret is %d bytes, want 20 (160 bits)", len(s))
		}
		// A retry finds the same device.
		if again := f.pendingVirtual(t, "acct-1", "bind-1"); again != id {
			t.Fatalf("retry made %q", again)
		}
		ds, err := f.st.ListDevices(c, "acct-1")
		must(t, err)
		if len(ds) != 1 {
			t.Fatalf("devices = %d, want 1", len(ds))
		}
		// Hardware: nothing until the card is confirmed.
		hw, err := f.a.CreatePendingDevice(c, workflows.CreatePendingDeviceInput{AccountID: "acct-1", BindingID: "bind-2", DeviceType: workflows.DeviceHardware})
		must(t, err)
		if hw.DeviceID != "" {
			t.Fatalf("hardware pending device %q", hw.DeviceID)
		}
		// The limit counts active devices only.
		f.a.MaxDevices = 1
		f.pendingVirtual(t, "acct-1", "bind-3")
		_, err = f.st.ActivateDevice(c, id, f.clock.Now())
		must(t, err)
		for _, typ := range []string{workflows.DeviceVirtual, workflows.DeviceHardware} {
			_, err = f.a.CreatePendingDevice(c, workflows.CreatePendingDeviceInput{AccountID: "acct-1", BindingID: "bind-4", DeviceType: typ})
			wantType(t, err, workflows.ErrTypeTooManyDevices)
		}
	})
}

func TestConfirmVirtual(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		f.account(t, "acct-1", "+86-1", "one@example.com")
		id := f.pendingVirtual(t, "acct-1", "bind-1")
		secret := f.secret(t, id)
		c1, c2 := f.codes(secret, mfa.Params{})
		in := workflows.ConfirmVirtualInput{AccountID: "acct-1", BindingID: "bind-1", DeviceID: id, Code1: c1, Code2: c2,
			Protection: workflows.Protection{Login: true}, Actor: "console", RemoteIP: "192.0.2.1"}
		out, err := f.a.ConfirmVirtual(c, in)
		must(t, err)
		if out.DeviceID != id || !out.Protection.Login || out.Protection.Operation || out.ProtectionUnchanged {
			t.Fatalf("ConfirmVirtual = %+v", out)
		}
		d, err := f.st.GetDevice(c, id)
		must(t, err)
		if d.Status != store.DeviceActive || d.BoundAt.IsZero() || d.LastStep != mfa.StepAt(f.clock.Now(), mfa.Params{}) {
			t.Fatalf("device = %+v", d)
		}
		p, err := f.st.GetProtection(c, "acct-1")
		must(t, err)
		if !p.Login || p.Operation {
			t.Fatalf("protection = %+v", p)
		}
		// The binding codes can never log in.
		v := &mfa.Verifier{Steps: f.st, Budget: f.st, Now: f.clock.Now}
		for _, code := range []string{c1, c2} {
			if _, err := v.Check(c, "acct-1", id, secret, code, mfa.VerifyOpts{Now: f.clock.Now()}); !errors.Is(err, mfa.ErrReplayed) {
				t.Fatalf("binding code at login: %v, want ErrReplayed", err)
			}
		}
		// Called again (a retried attempt): one device, one audit entry, one notice per channel.
		out2, err := f.a.ConfirmVirtual(c, in)
		must(t, err)
		if out2.DeviceID != id {
			t.Fatalf("retry = %+v", out2)
		}
		ds, err := f.st.ListDevices(c, "acct-1")
		must(t, err)
		if len(ds) != 1 {
			t.Fatalf("devices = %d, want 1", len(ds))
		}
		audit := f.audit(t, "acct-1", activities.AuditDeviceBind, "ok")
		if len(audit) != 1 {
			t.Fatalf("bind audit entries = %d, want 1", len(audit))
		}
		if e := audit[0]; e.Subject != id || e.Details["type"] != "virtual" || e.Details["device_id"] != id || e.Details["scopes"] != "login" || e.RemoteIP != "192.0.2.1" {
			t.Fatalf("audit = %+v", e)
		}
		notes := f.outbox(t, activities.KindDeviceBound)
		if len(notes) != 2 {
			t.Fatalf("device_bound notices = %d, want 2 (sms and email)", len(notes))
		}
		for _, n := range notes {
			if n.To != "+86-1" && n.To != "one@example.com" {
				t.Fatalf("notice to %q", n.To)
			}
		}
	})
}

func TestConfirmVirtualRefusals(t *testing.T) {
	tests := []struct {
		name  string
		codes func(secret []byte, now time.Time) (string, string)
		want  string
	}{
		{"wrong codes", func(s []byte, now time.Time) (string, string) {
			c1, c2 := mfa.TOTP(s, now.Add(-30*time.Second), mfa.Params{}), mfa.TOTP(s, now, mfa.Params{})
			return flip(c1), flip(c2)
		}, workflows.ErrTypeInvalidCode},
		{"one wrong code", func(s []byte, now time.Time) (string, string) {
			return mfa.TOTP(s, now.Add(-30*time.Second), mfa.Params{}), flip(mfa.TOTP(s, now, mfa.Params{}))
		}, workflows.ErrTypeInvalidCode},
		{"same code twice", func(s []byte, now time.Time) (string, string) {
			c := mfa.TOTP(s, now, mfa.Params{})
			return c, c
		}, workflows.ErrTypeNotConsecutive},
		{"reversed", func(s []byte, now time.Time) (string, string) {
			return mfa.TOTP(s, now, mfa.Params{}), mfa.TOTP(s, now.Add(-30*time.Second), mfa.Params{})
		}, workflows.ErrTypeNotConsecutive},
		{"a step apart", func(s []byte, now time.Time) (string, string) {
			return mfa.TOTP(s, now.Add(-30*time.Second), mfa.Params{}), mfa.TOTP(s, now.Add(30*time.Second), mfa.Params{})
		}, workflows.ErrTypeNotConsecutive},
	}
	eachStore(t, func(t *testing.T, f *fixture) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				account := "acct-" + strings.ReplaceAll(tt.name, " ", "-")
				id := f.pendingVirtual(t, account, "bind-"+string(rune('a'+i)))
				c1, c2 := tt.codes(f.secret(t, id), f.clock.Now())
				_, err := f.a.ConfirmVirtual(ctx(t), workflows.ConfirmVirtualInput{AccountID: account, DeviceID: id, Code1: c1, Code2: c2})
				wantType(t, err, tt.want)
				if strings.Contains(err.Error(), c1) || strings.Contains(err.Error(), c2) {
					t.Fatal("error message holds a code")
				}
				d, err := f.st.GetDevice(ctx(t), id)
				must(t, err)
				if d.Status != store.DevicePending || d.LastStep != 0 {
					t.Fatalf("device after refusal = %s, last step %d", d.Status, d.LastStep)
				}
			})
		}
		t.Run("another account's device", func(t *testing.T) {
			id := f.pendingVirtual(t, "acct-owner", "bind-owner")
			c1, c2 := f.codes(f.secret(t, id), mfa.Params{})
			_, err := f.a.ConfirmVirtual(ctx(t), workflows.ConfirmVirtualInput{AccountID: "acct-thief", DeviceID: id, Code1: c1, Code2: c2})
			wantType(t, err, workflows.ErrTypeWrongState)
		})
		t.Run("locked", func(t *testing.T) {
			g := newFixture(t, f.st)
			g.a.Policy = mfa.LockPolicy{Threshold: 1}
			g.account(t, "acct-locked", "+86-locked", "")
			id := g.pendingVirtual(t, "acct-locked", "bind-locked")
			c1, c2 := g.codes(g.secret(t, id), mfa.Params{})
			_, err := g.a.ConfirmVirtual(ctx(t), workflows.ConfirmVirtualInput{AccountID: "acct-locked", DeviceID: id, Code1: flip(c1), Code2: c2})
			wantType(t, err, workflows.ErrTypeInvalidCode)
			_, err = g.a.ConfirmVirtual(ctx(t), workflows.ConfirmVirtualInput{AccountID: "acct-locked", DeviceID: id, Code1: c1, Code2: c2})
			wantType(t, err, workflows.ErrTypeLocked)
		})
		t.Run("no scope ticked", func(t *testing.T) {
			g := newFixture(t, f.st)
			_, err := g.st.SetProtection(ctx(t), "acct-noscope", store.Protection{Operation: true})
			must(t, err)
			id := g.pendingVirtual(t, "acct-noscope", "bind-noscope")
			c1, c2 := g.codes(g.secret(t, id), mfa.Params{})
			out, err := g.a.ConfirmVirtual(ctx(t), workflows.ConfirmVirtualInput{AccountID: "acct-noscope", DeviceID: id, Code1: c1, Code2: c2})
			must(t, err)
			if !out.ProtectionUnchanged || out.Protection != (workflows.Protection{Operation: true}) {
				t.Fatalf("ConfirmVirtual = %+v, want protection left as it was", out)
			}
		})
	})
}

// flip changes the last digit of a code.
func flip(code string) string {
	b := []byte(code)
	b[len(b)-1] = '0' + (b[len(b)-1]-'0'+1)%10
	return string(b)
}

func TestConfirmHardware(t *testing.T) {
	card := mfa.Params{Algorithm: mfa.SHA256, Digits: 8, Period: 60 * time.Second}
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		f.account(t, "acct-1", "+86-1", "")
		seed := f.importCard(t, "SN-0001", card)
		code := mfa.TOTP(seed, f.clock.Now(), card)
		in := workflows.ConfirmHardwareInput{AccountID: "acct-1", BindingID: "bind-1", Serial: "SN-0001", Code: code, Protection: workflows.Protection{Login: true, Operation: true}}
		out, err := f.a.ConfirmHardware(c, in)
		must(t, err)
		id := activities.BindDeviceID("bind-1", "SN-0001")
		if out.DeviceID != id || out.Protection != (workflows.Protection{Login: true, Operation: true}) {
			t.Fatalf("ConfirmHardware = %+v", out)
		}
		d, err := f.st.GetDevice(c, id)
		must(t, err)
		if d.Status != store.DeviceActive || d.Type != store.Hardware || d.Serial != "SN-0001" || d.Algorithm != "SHA256" || d.Digits != 8 || d.PeriodSeconds != 60 ||
			d.LastStep != mfa.StepAt(f.clock.Now(), card) {
			t.Fatalf("device = %+v", d)
		}
		if got := f.secret(t, id); string(got) != string(seed) {
			t.Fatal("device secret is not the card's seed")
		}
		tok, err := f.st.GetToken(c, "SN-0001")
		must(t, err)
		if tok.State != store.TokenBound || tok.AccountID != "acct-1" || tok.DeviceID != id {
			t.Fatalf("token = %+v", tok)
		}
		// A retried attempt: same device, one audit entry.
		if _, err := f.a.ConfirmHardware(c, in); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if n := len(f.audit(t, "acct-1", activities.AuditDeviceBind, "ok")); n != 1 {
			t.Fatalf("bind audit entries = %d, want 1", n)
		}
		if e := f.audit(t, "acct-1", activities.AuditDeviceBind, "ok")[0]; e.Details["serial"] != "SN-0001" || e.Details["type"] != "hardware" {
			t.Fatalf("audit = %+v", e)
		}

		refusals := []struct {
			name, account, serial, code, want string
		}{
			{"unknown serial", "acct-2", "SN-9999", code, workflows.ErrTypeSerialUnknown},
			{"bound elsewhere", "acct-2", "SN-0001", code, workflows.ErrTypeSerialUnavailable},
			{"revoked card", "acct-2", "SN-REV1", "12345678", workflows.ErrTypeSerialUnavailable},
			{"wrong code", "acct-2", "SN-0002", flip(mfa.TOTP(f.importCard(t, "SN-0002", card), f.clock.Now(), card)), workflows.ErrTypeInvalidCode},
		}
		f.importCard(t, "SN-REV1", card)
		must(t, f.st.(storetest.RawExecer).ExecRaw(c, `UPDATE hardware_tokens SET state = 'revoked' WHERE serial = 'SN-REV1'`))
		for _, r := range refusals {
			t.Run(r.name, func(t *testing.T) {
				_, err := f.a.ConfirmHardware(ctx(t), workflows.ConfirmHardwareInput{AccountID: r.account, BindingID: "bind-2", Serial: r.serial, Code: r.code})
				wantType(t, err, r.want)
				ds, err := f.st.ListDevices(ctx(t), r.account)
				must(t, err)
				if len(ds) != 0 {
					t.Fatalf("refusal left devices: %+v", ds)
				}
			})
		}
	})
}

// TestConfirmHardwareRace: two accounts confirm the same card at once;
// exactly one wins and the loser keeps no device.
func TestConfirmHardwareRace(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		for i := range 5 {
			serial := "RACE-" + string(rune('A'+i))
			seed := f.importCard(t, serial, mfa.Params{})
			code := mfa.TOTP(seed, f.clock.Now(), mfa.Params{})
			accounts := []string{serial + "-x", serial + "-y"}
			errs := make([]error, len(accounts))
			var wg sync.WaitGroup
			start := make(chan struct{})
			for j, acct := range accounts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[j] = f.a.ConfirmHardware(context.Background(), workflows.ConfirmHardwareInput{AccountID: acct, BindingID: "bind-" + acct, Serial: serial, Code: code})
				}()
			}
			close(start)
			wg.Wait()
			winners := 0
			for j, err := range errs {
				ds, lerr := f.st.ListDevices(ctx(t), accounts[j])
				must(t, lerr)
				if err == nil {
					winners++
					if len(ds) != 1 || ds[0].Status != store.DeviceActive {
						t.Fatalf("winner's devices: %+v", ds)
					}
					continue
				}
				wantType(t, err, workflows.ErrTypeSerialUnavailable)
				for _, d := range ds {
					if d.Status != store.DeviceRevoked {
						t.Fatalf("loser keeps a %s device", d.Status)
					}
				}
			}
			if winners != 1 {
				t.Fatalf("%s: %d winners, want 1 (errors %v)", serial, winners, errs)
			}
		}
	})
}

func TestExpireBinding(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		// A pending virtual device is revoked.
		id := f.pendingVirtual(t, "acct-1", "bind-1")
		in := workflows.ExpireBindingInput{AccountID: "acct-1", BindingID: "bind-1", DeviceID: id}
		must(t, f.a.ExpireBinding(c, in))
		must(t, f.a.ExpireBinding(c, in))
		d, err := f.st.GetDevice(c, id)
		must(t, err)
		if d.Status != store.DeviceRevoked {
			t.Fatalf("device = %s, want revoked", d.Status)
		}
		if n := len(f.audit(t, "acct-1", activities.AuditDeviceBind, workflows.BindingExpired)); n != 1 {
			t.Fatalf("expired audit entries = %d, want 1", n)
		}

		// A half-bound card (device pending, card assigned) goes back to the pool.
		seed := f.importCard(t, "SN-HALF", mfa.Params{})
		hid := activities.BindDeviceID("bind-2", "SN-HALF")
		sealed, err := f.keys.Seal(seed, mfa.AAD(string(store.SealedDevices), hid))
		must(t, err)
		_, err = f.st.CreateDevice(c, store.Device{ID: hid, AccountID: "acct-2", Type: store.Hardware, Serial: "SN-HALF", Secret: sealed,
			Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DevicePending})
		must(t, err)
		must(t, f.st.AssignToken(c, "SN-HALF", "acct-2", hid, f.clock.Now()))
		must(t, f.a.ExpireBinding(c, workflows.ExpireBindingInput{AccountID: "acct-2", BindingID: "bind-2", Outcome: workflows.BindingFailed}))
		tok, err := f.st.GetToken(c, "SN-HALF")
		must(t, err)
		if tok.State != store.TokenUnassigned {
			t.Fatalf("card = %s, want unassigned", tok.State)
		}
		if d, _ := f.st.GetDevice(c, hid); d.Status != store.DeviceRevoked {
			t.Fatalf("device = %s, want revoked", d.Status)
		}
		if n := len(f.audit(t, "acct-2", activities.AuditDeviceBind, workflows.BindingFailed)); n != 1 {
			t.Fatalf("failed audit entries = %d, want 1", n)
		}

		// A bound device is left alone.
		f.account(t, "acct-3", "+86-3", "")
		bid := f.pendingVirtual(t, "acct-3", "bind-3")
		c1, c2 := f.codes(f.secret(t, bid), mfa.Params{})
		_, err = f.a.ConfirmVirtual(c, workflows.ConfirmVirtualInput{AccountID: "acct-3", DeviceID: bid, Code1: c1, Code2: c2})
		must(t, err)
		must(t, f.a.ExpireBinding(c, workflows.ExpireBindingInput{AccountID: "acct-3", BindingID: "bind-3", DeviceID: bid}))
		if d, _ := f.st.GetDevice(c, bid); d.Status != store.DeviceActive {
			t.Fatalf("bound device = %s after expiry, want active", d.Status)
		}
	})
}

// TestNoCodesOrSecretsLeak runs both bind flows and looks for every code
// and secret in the audit log and the outbox: only the SMS code message may
// hold its code.
func TestNoCodesOrSecretsLeak(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		f.account(t, "acct-1", "+86-1", "one@example.com")
		var secrets []string
		for _, binding := range []string{"bind-v", "bind-h"} {
			sent, err := f.a.SendBindingSMS(c, workflows.SendBindingSMSInput{AccountID: "acct-1", BindingID: binding})
			must(t, err)
			code := f.lastSMSCode(t, "+86-1")
			secrets = append(secrets, code)
			_, err = f.a.CheckBindingSMS(c, workflows.CheckBindingSMSInput{AccountID: "acct-1", ChallengeID: sent.ChallengeID, Code: code})
			must(t, err)
		}
		id := f.pendingVirtual(t, "acct-1", "bind-v")
		secret := f.secret(t, id)
		c1, c2 := f.codes(secret, mfa.Params{})
		_, err := f.a.ConfirmVirtual(c, workflows.ConfirmVirtualInput{AccountID: "acct-1", DeviceID: id, Code1: c1, Code2: c2, Protection: workflows.Protection{Login: true}})
		must(t, err)
		seed := f.importCard(t, "SN-LEAK", mfa.Params{})
		hc := mfa.TOTP(seed, f.clock.Now(), mfa.Params{})
		_, err = f.a.ConfirmHardware(c, workflows.ConfirmHardwareInput{AccountID: "acct-1", BindingID: "bind-h", Serial: "SN-LEAK", Code: hc, StepUp: "code"})
		must(t, err)
		secrets = append(secrets, c1, c2, hc, mfa.EncodeSecret(secret), mfa.EncodeSecret(seed), string(secret), string(seed))

		es, err := f.st.ListAudit(c, store.AuditFilter{AccountID: "acct-1", Limit: 1000})
		must(t, err)
		if len(es) == 0 {
			t.Fatal("no audit entries")
		}
		for _, e := range es {
			text := e.Subject + " " + e.Outcome
			for k, v := range e.Details {
				text += " " + k + "=" + v
			}
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Fatalf("audit entry %s holds a code or secret", e.Action)
				}
			}
		}
		smsSeen := 0
		for _, m := range f.outbox(t, "") {
			text := m.Body
			for k, v := range m.Data {
				text += " " + k + "=" + v
			}
			for i, s := range secrets {
				if !strings.Contains(text, s) {
					continue
				}
				if m.Kind == activities.KindSMSCode && i < 2 {
					smsSeen++
					continue
				}
				t.Fatalf("outbox message %s holds a code or secret", m.Kind)
			}
		}
		if smsSeen != 2 {
			t.Fatalf("SMS code messages with their code = %d, want 2", smsSeen)
		}
	})
}

// TestFactorSetRuleAtConfirm: a binding started without a proof (the
// account had no device) is refused at confirm once the account has one,
// and no binding confirms while an unbind appeal is open (SPEC §6a).
func TestFactorSetRuleAtConfirm(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		f.account(t, "acct-r", "+86-9", "")
		first := f.pendingVirtual(t, "acct-r", "bind-r1")
		second := f.pendingVirtual(t, "acct-r", "bind-r2")
		c1, c2 := f.codes(f.secret(t, first), mfa.Params{})
		_, err := f.a.ConfirmVirtual(c, workflows.ConfirmVirtualInput{AccountID: "acct-r", DeviceID: first, Code1: c1, Code2: c2, StepUp: "none"})
		must(t, err)
		c1, c2 = f.codes(f.secret(t, second), mfa.Params{})
		in := workflows.ConfirmVirtualInput{AccountID: "acct-r", DeviceID: second, Code1: c1, Code2: c2, StepUp: "none"}
		if _, err := f.a.ConfirmVirtual(c, in); !isAppErr(err, workflows.ErrTypeStepUpRequired) {
			t.Fatalf("second device without a proof = %v, want StepUpRequired", err)
		}
		if _, err := f.st.CreateAppeal(c, store.Appeal{ID: "apl-r", AccountID: "acct-r", ApplicantType: "personal",
			TokenHash: store.TokenHash("tok-r"), Status: workflows.AppealCollecting}); err != nil {
			t.Fatal(err)
		}
		in.StepUp = "code"
		if _, err := f.a.ConfirmVirtual(c, in); !isAppErr(err, workflows.ErrTypeAppealOpen) {
			t.Fatalf("a binding during an open appeal = %v, want AppealOpen", err)
		}
		must(t, f.st.SetAppealStatus(c, "apl-r", workflows.AppealCancelled, true, time.Time{}))
		if _, err := f.a.ConfirmVirtual(c, in); err != nil {
			t.Fatalf("with a proof and the appeal closed: %v", err)
		}
	})
}

func isAppErr(err error, typ string) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == typ
}
