package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

// TestCancelBinding cancels a pending binding through DELETE …/bindings/{id}:
// the page can read it back first (GET), another account's binding id is
// 404, the cancel leaves no pending device, is audited once, answers the
// same when repeated, and the account can start a new binding at once; a
// bound binding cannot be cancelled.
func TestCancelBinding(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		s := newStack(t, st, 1)
		const a, phoneA, b, phoneB = "e2e-cancel-a", "13800000071", "e2e-cancel-b", "13800000072"
		s.putAccount(a, phoneA, store.LoginMFA)
		s.putAccount(b, phoneB, store.LoginMFA)
		start := func(acct, phone string) (string, string) {
			t.Helper()
			base := "/v1/accounts/" + acct + "/mfa/bindings"
			code, out := s.console(http.MethodPost, base, map[string]any{"device_type": "virtual"})
			if code != http.StatusCreated {
				t.Fatalf("create binding for %s = %d %v", acct, code, out)
			}
			bid := out["binding_id"].(string)
			code, out = s.console(http.MethodPost, base+"/"+bid+"/sms-code", map[string]any{"code": s.smsCode(phone)})
			if code != http.StatusOK || out["status"] != workflows.BindingAwaitingDeviceCodes {
				t.Fatalf("SMS code for %s = %d %v", acct, code, out)
			}
			return bid, out["secret"].(string)
		}
		bidA, secretA := start(a, phoneA)
		bidB, secretB := start(b, phoneB)
		pathA := "/v1/accounts/" + a + "/mfa/bindings/" + bidA

		// The page resumes a binding it started: its state, and the key again.
		code, out := s.console(http.MethodGet, pathA, nil)
		if code != http.StatusOK || out["status"] != workflows.BindingAwaitingDeviceCodes || out["secret"] != secretA || out["device_type"] != "virtual" {
			t.Fatalf("GET binding = %d %v", code, out)
		}
		// Another account's binding is not found, either way round.
		for _, p := range []string{"/v1/accounts/" + a + "/mfa/bindings/" + bidB, "/v1/accounts/" + b + "/mfa/bindings/" + bidA} {
			for _, m := range []string{http.MethodGet, http.MethodDelete} {
				if code, out := s.console(m, p, nil); code != http.StatusNotFound || errCode(out) != "binding_not_found" {
					t.Fatalf("%s %s = %d %v, want 404 binding_not_found", m, p, code, out)
				}
			}
		}

		for i := 0; i < 2; i++ { // idempotent
			code, out = s.console(http.MethodDelete, pathA, nil)
			if code != http.StatusOK || out["status"] != workflows.BindingCancelled || out["binding_id"] != bidA {
				t.Fatalf("cancel #%d = %d %v", i+1, code, out)
			}
		}
		if code, out := s.console(http.MethodGet, pathA, nil); code != http.StatusOK || out["status"] != workflows.BindingCancelled || out["secret"] != nil {
			t.Fatalf("GET after cancel = %d %v", code, out)
		}
		// Nothing half-bound: the pending device is revoked, no code binds.
		ds, err := st.ListDevices(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Status != store.DeviceRevoked {
				t.Fatalf("device %s is %s after the cancel", d.ID, d.Status)
			}
		}
		secret, err := mfa.DecodeSecret(secretA)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if code, out := s.console(http.MethodPost, pathA+"/confirm", map[string]any{
			"code1": mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{}), "code2": mfa.TOTP(secret, now, mfa.Params{}),
			"protection": map[string]bool{"login": true, "operation": false},
		}); code/100 != 4 {
			t.Fatalf("confirm after cancel = %d %v, want a 4xx", code, out)
		}
		entries, err := st.ListAudit(context.Background(), store.AuditFilter{AccountID: a, Subject: bidA, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			if e.Action == activities.AuditDeviceBind && e.Outcome == workflows.BindingCancelled {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d audit entries of the cancel, want 1: %+v", n, entries)
		}
		// A new binding starts at once.
		if code, out := s.console(http.MethodPost, "/v1/accounts/"+a+"/mfa/bindings", map[string]any{"device_type": "virtual"}); code != http.StatusCreated {
			t.Fatalf("new binding after cancel = %d %v", code, out)
		}

		// A bound binding is not cancelled.
		sb, err := mfa.DecodeSecret(secretB)
		if err != nil {
			t.Fatal(err)
		}
		now = time.Now()
		pathB := "/v1/accounts/" + b + "/mfa/bindings/" + bidB
		if code, out := s.console(http.MethodPost, pathB+"/confirm", map[string]any{
			"code1": mfa.TOTP(sb, now.Add(-30*time.Second), mfa.Params{}), "code2": mfa.TOTP(sb, now, mfa.Params{}),
			"protection": map[string]bool{"login": true, "operation": false},
		}); code != http.StatusOK {
			t.Fatalf("confirm B = %d %v", code, out)
		}
		if code, out := s.console(http.MethodDelete, pathB, nil); code != http.StatusConflict || errCode(out) != "wrong_state" {
			t.Fatalf("cancel a bound binding = %d %v, want 409 wrong_state", code, out)
		}
	})
}
