package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

func testUnbindAccount(t *testing.T, s store.Store) {
	c := ctx(t)
	const acct = "acc-unbind"
	app := device(acct)
	app.ID = "ub-app"
	_, err := s.CreateDevice(c, app)
	must(t, err)
	gone := device(acct)
	gone.ID = "ub-gone"
	_, err = s.CreateDevice(c, gone)
	must(t, err)
	_, err = s.RevokeDevice(c, "ub-gone", time.Now())
	must(t, err)
	_, err = s.ImportTokens(c, tokens("UB", 1))
	must(t, err)
	card := device(acct)
	card.ID, card.Type, card.Serial = "ub-card", store.Hardware, "UB0000"
	_, err = s.CreateDevice(c, card)
	must(t, err)
	must(t, s.AssignToken(c, "UB0000", acct, "ub-card", time.Now()))
	_, err = s.CreateWebAuthnDevice(c, store.Device{ID: "ub-key", AccountID: acct}, webauthnCred(41))
	must(t, err)
	_, err = s.CreateDevice(c, securityCenter(acct))
	must(t, err)
	other := device("acc-unbind-other")
	other.ID = "ub-other"
	_, err = s.CreateDevice(c, other)
	must(t, err)
	mustOK(t)(s.ReplaceRecoveryCodes(c, acct, recoverySet("ub", 10), false))
	_, _, err = s.SpendAttempt(c, acct, time.Now(), threshold(100))
	must(t, err)
	_, err = s.SetProtection(c, acct, store.Protection{Login: true, Operation: true})
	must(t, err)
	_, err = s.CreateAppeal(c, store.Appeal{ID: "apl-ub", AccountID: acct, ApplicantType: "personal", TokenHash: store.TokenHash("ub"), Status: "cooling_down"})
	must(t, err)

	at := time.Now()
	req := store.UnbindRequest{AccountID: acct, AppealID: "apl-ub", Status: "unbound", At: at,
		Audit: store.AuditEntry{Actor: "system", Action: "appeal.unbind", Outcome: "ok", Details: map[string]string{"by": "appeal"}}}
	ids, err := s.UnbindAccount(c, req)
	must(t, err)
	if len(ids) != 3 || ids[0] != "ub-app" || ids[1] != "ub-card" || ids[2] != "ub-key" {
		t.Fatalf("unbound devices = %v, want the app, the card and the key", ids)
	}
	ds, err := s.ListDevices(c, acct)
	must(t, err)
	for _, d := range ds {
		want := store.DeviceRevoked
		if d.Type == store.SecurityCenter {
			want = store.DeviceActive
		}
		if d.Status != want {
			t.Errorf("device %s (%s) = %s, want %s", d.ID, d.Type, d.Status, want)
		}
	}
	if d, _ := s.GetDevice(c, "ub-other"); d.Status != store.DeviceActive {
		t.Fatal("another account's device was revoked")
	}
	if tok, _ := s.GetToken(c, "UB0000"); tok.State != store.TokenUnassigned {
		t.Fatalf("card = %s, want back in the pool", tok.State)
	}
	if codes, _ := s.ListRecoveryCodes(c, acct); len(codes) != 0 {
		t.Fatalf("%d recovery codes left", len(codes))
	}
	if p, _ := s.GetProtection(c, acct); p.Login || p.Operation {
		t.Fatalf("protection = %+v, want off", p)
	}
	if b, _, err := s.SpendAttempt(c, acct, time.Now(), threshold(100)); err != nil || b.Failures != 1 {
		t.Fatalf("the next attempt counts %d failures (%v), want 1: the budget was not reset", b.Failures, err)
	}
	if a, _ := s.GetAppeal(c, "apl-ub"); a.Status != "unbound" || a.ClosedAt.IsZero() {
		t.Fatalf("appeal = %+v, want closed unbound", a)
	}
	audit := func() []store.AuditEntry {
		es, err := s.ListAudit(c, store.AuditFilter{AccountID: acct, Subject: "apl-ub"})
		must(t, err)
		return es
	}
	es := audit()
	if len(es) != 1 || es[0].Action != "appeal.unbind" || es[0].Details["devices"] != "ub-app,ub-card,ub-key" || es[0].Details["count"] != "3" || es[0].Details["by"] != "appeal" {
		t.Fatalf("audit = %+v", es)
	}

	// Done is done: a retry, or ten at once, change nothing and answer the same.
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			again, err := s.UnbindAccount(c, req)
			if err != nil || len(again) != 3 || again[2] != "ub-key" {
				t.Errorf("a repeated unbind = %v, %v", again, err)
			}
		})
	}
	wg.Wait()
	if n := len(audit()); n != 1 {
		t.Fatalf("%d unbind audit entries after retries, want 1", n)
	}
	// A device bound after the unbind is not touched by a retry.
	late := device(acct)
	late.ID = "ub-late"
	_, err = s.CreateDevice(c, late)
	must(t, err)
	_, err = s.UnbindAccount(c, req)
	must(t, err)
	if d, _ := s.GetDevice(c, "ub-late"); d.Status != store.DeviceActive {
		t.Fatal("a retried unbind revoked a device bound after it")
	}
}
