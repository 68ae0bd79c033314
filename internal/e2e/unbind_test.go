package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

// TestUnbindWithConsoleRefusing: with the console's session webhook
// refusing for good (as a 400 does), an approved appeal still ends
// unbound, with exactly one unbind audit entry, the owner is told, and the
// refusal is recorded as an alert; the unbind is never undone or held.
func TestUnbindWithConsoleRefusing(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		s := newStackWith(t, st, 1, api.AppealConfig{Cooldown: 0})
		s.workerNotifier.refuseConsole.Store(true)
		const acct, phone, idNum = "e2e-unbind-refused", "13800000091", "11010519491231002X"
		s.putAccount(acct, phone, store.LoginMFA)
		s.bindDirect(acct)
		code, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, idNum))
		if code != http.StatusCreated {
			t.Fatalf("file = %d %v", code, out)
		}
		id, token := out["appeal_id"].(string), out["access_token"].(string)
		uploadOK(t, s, "/v1/appeals/"+id+"/documents/id_holding_photo", token, jpeg(10_000))
		if code, out := s.raw(http.MethodPost, "/v1/appeals/"+id+"/submit", token, "application/json", nil, 0); code != http.StatusAccepted {
			t.Fatalf("submit = %d %v", code, out)
		}
		rev := staff(t, "rev-unbind", "", auth.RoleReviewer)
		s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/claim", rev, nil)
		if code, _, _ := s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/decision", rev, map[string]any{"decision": "approve"}); code != http.StatusOK {
			t.Fatalf("approve = %d", code)
		}
		s.waitStatus(id, token, workflows.AppealUnbound)
		if d, _ := st.GetDevice(t.Context(), "dev-direct-"+acct); d.Status != store.DeviceRevoked {
			t.Fatalf("device = %s after the unbind", d.Status)
		}
		// The alert and the owner's notice come as effects after the unbind.
		deadline := time.Now().Add(60 * time.Second)
		for {
			alerts, _ := st.ListAudit(t.Context(), store.AuditFilter{AccountID: acct, Subject: id})
			unbinds, failed := 0, 0
			for _, e := range alerts {
				switch {
				case e.Action == workflows.AuditAppealUnbind && e.Outcome == "ok":
					unbinds++
				case e.Action == "appeal.revoke_sessions" && e.Outcome == "failed":
					failed++
				}
			}
			if unbinds > 1 || failed > 1 {
				t.Fatalf("%d unbind entries and %d alerts, want one each", unbinds, failed)
			}
			if unbinds == 1 && failed == 1 && s.outboxKinds(phone)["appeal_unbound"] > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after a minute: %d unbind entries, %d alerts, owner told %d times", unbinds, failed, s.outboxKinds(phone)["appeal_unbound"])
			}
			time.Sleep(200 * time.Millisecond)
		}
		// Unbound is final: the owner binds a new device at once.
		if code, out := s.console(http.MethodPost, "/v1/accounts/"+acct+"/mfa/bindings", map[string]any{"device_type": "virtual"}); code != http.StatusCreated {
			t.Fatalf("a new binding after the unbind = %d %v", code, out)
		}
	})
}
