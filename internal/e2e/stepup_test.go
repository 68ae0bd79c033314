package e2e

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

var recoveryCodeShape = regexp.MustCompile(`^[23456789ABCDEFGHJKMNPQRSTVWXYZ]{5}-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{5}$`)

// bindVirtual binds an authenticator app through the API with the given
// step-up proof (nil for none) and returns its secret, the time its two
// binding codes were read at, and the confirm answer.
func (s *stack) bindVirtual(acct, phone string, proof map[string]string) (mfa.Secret, time.Time, map[string]any) {
	s.t.Helper()
	base := "/v1/accounts/" + acct + "/mfa"
	body := map[string]any{"device_type": "virtual"}
	if proof != nil {
		body["proof"] = proof
	}
	code, out := s.console(http.MethodPost, base+"/bindings", body)
	if code != http.StatusCreated {
		s.t.Fatalf("create binding = %d %v", code, out)
	}
	bid := out["binding_id"].(string)
	code, out = s.console(http.MethodPost, base+"/bindings/"+bid+"/sms-code", map[string]any{"code": s.smsCode(phone)})
	if code != http.StatusOK {
		s.t.Fatalf("SMS code = %d %v", code, out)
	}
	secret, err := mfa.DecodeSecret(out["secret"].(string))
	if err != nil {
		s.t.Fatal(err)
	}
	now := time.Now()
	code, out = s.console(http.MethodPost, base+"/bindings/"+bid+"/confirm", map[string]any{
		"code1": mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{}), "code2": mfa.TOTP(secret, now, mfa.Params{}),
		"protection": map[string]bool{"login": true, "operation": true}})
	if code != http.StatusOK || out["status"] != workflows.BindingBound {
		s.t.Fatalf("confirm = %d %v", code, out)
	}
	return secret, now, out
}

func (s *stack) outboxKinds(to string) map[string]int {
	s.t.Helper()
	msgs, err := s.st.ListOutbox(context.Background(), to, 500)
	if err != nil {
		s.t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, m := range msgs {
		kinds[m.Kind]++
	}
	return kinds
}

func recoveryCodes(t *testing.T, out map[string]any) []string {
	t.Helper()
	raw, ok := out["recovery_codes"].([]any)
	if !ok || len(raw) != 10 {
		t.Fatalf("want 10 recovery codes in %v", out)
	}
	codes := make([]string, len(raw))
	seen := map[string]bool{}
	for i, r := range raw {
		codes[i] = r.(string)
		if !recoveryCodeShape.MatchString(codes[i]) || seen[codes[i]] {
			t.Fatalf("recovery code %q is malformed or repeated", codes[i])
		}
		seen[codes[i]] = true
	}
	return codes
}

// TestStepUpAttack walks the attack of the recovery-integrity issue on real
// Temporal, MinIO and each database: an attacker holding the account's SIM
// and a console session (so every SMS code) but none of its factors.
// Every change to the factor set is refused without a proof; the owner's
// recovery code binds a new phone; regenerated codes replace the old
// set; 20 concurrent uses of one code give one success; while an appeal
// is open nothing changes; and only a factor active before the filing
// cancels an approved appeal.
func TestStepUpAttack(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		s := newStackWith(t, st, 1, api.AppealConfig{Cooldown: time.Hour})
		const acct, phone, idNum = "e2e-stepup", "13800000071", "11010519491231002X"
		s.putAccount(acct, phone, store.LoginMFA)
		base := "/v1/accounts/" + acct + "/mfa"
		ctx := context.Background()

		// The owner binds the first device with the SMS check alone and
		// sees the recovery codes once.
		secretA, tA, out := s.bindVirtual(acct, phone, nil)
		first := recoveryCodes(t, out)
		devA := out["device"].(map[string]any)["id"].(string)
		if code, out := s.console(http.MethodGet, base, nil); code != http.StatusOK || out["recovery_codes_remaining"] != float64(10) {
			t.Fatalf("GET mfa = %d %v, want 10 recovery codes left", code, out)
		}

		// Attack 1: a second device with the SMS code alone.
		smsBefore := s.outboxKinds(phone)["sms_code"]
		if code, out := s.console(http.MethodPost, base+"/bindings", map[string]any{"device_type": "virtual"}); code != http.StatusForbidden || errCode(out) != "step_up_required" {
			t.Fatalf("SMS-only bind with a device active = %d %v, want 403 step_up_required", code, out)
		} else if msg := out["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "appeal") {
			t.Fatalf("the refusal does not point to the appeal: %q", msg)
		}
		if code, out := s.console(http.MethodPost, base+"/bindings", map[string]any{"device_type": "hardware", "proof": map[string]string{"code": "000000"}}); code != http.StatusUnauthorized || errCode(out) != "invalid_code" {
			t.Fatalf("bind with a wrong proof = %d %v, want 401 invalid_code", code, out)
		}
		if code, out := s.console(http.MethodPost, base+"/bindings", map[string]any{"device_type": "virtual", "proof": map[string]string{"recovery_code": "22222-22222"}}); code != http.StatusUnauthorized || errCode(out) != "invalid_code" {
			t.Fatalf("bind with a wrong recovery code = %d %v, want 401 invalid_code", code, out)
		}
		if n := s.outboxKinds(phone)["sms_code"]; n != smsBefore {
			t.Fatalf("refused bindings sent %d SMS codes", n-smsBefore)
		}
		// Attack 2: remove the owner's device, turn protection off.
		if code, out := s.console(http.MethodDelete, base+"/devices/"+devA, map[string]any{}); code != http.StatusForbidden || errCode(out) != "step_up_required" {
			t.Fatalf("delete without a proof = %d %v", code, out)
		}
		if code, out := s.console(http.MethodPut, base+"/protection", map[string]any{"login": false, "operation": false}); code != http.StatusForbidden || errCode(out) != "step_up_required" {
			t.Fatalf("protection off without a proof = %d %v", code, out)
		}
		if code, out := s.console(http.MethodPost, base+"/recovery-codes", map[string]any{}); code != http.StatusForbidden || errCode(out) != "step_up_required" {
			t.Fatalf("regenerate without a proof = %d %v", code, out)
		}

		// The owner lost the phone with the app: a recovery code is the
		// step-up to bind the new one, and it works once.
		secretB, tB, out := s.bindVirtual(acct, phone, map[string]string{"recovery_code": strings.ToLower(first[0])})
		if _, ok := out["recovery_codes"]; ok {
			t.Fatalf("a binding of an account with codes left showed new ones: %v", out)
		}
		devB := out["device"].(map[string]any)["id"].(string)
		if code, out := s.console(http.MethodPost, base+"/bindings", map[string]any{"device_type": "virtual", "proof": map[string]string{"recovery_code": first[0]}}); code != http.StatusUnauthorized {
			t.Fatalf("a used recovery code as proof again = %d %v, want 401", code, out)
		}
		if code, out := s.console(http.MethodGet, base, nil); out["recovery_codes_remaining"] != float64(9) || len(out["devices"].([]any)) != 2 {
			t.Fatalf("GET mfa after one use = %d %v", code, out)
		}

		// Regeneration with a code of A replaces the whole set.
		code, out := s.console(http.MethodPost, base+"/recovery-codes", map[string]any{"proof": map[string]string{"code": mfa.TOTP(secretA, tA.Add(30*time.Second), mfa.Params{})}})
		if code != http.StatusCreated {
			t.Fatalf("regenerate = %d %v", code, out)
		}
		second := recoveryCodes(t, out)
		if code, out := s.console(http.MethodPost, base+"/verify", map[string]any{"recovery_code": first[1], "purpose": "login"}); code != http.StatusUnauthorized || errCode(out) != "invalid_code" {
			t.Fatalf("a code of the old set after regeneration = %d %v", code, out)
		}
		if code, out := s.console(http.MethodPost, base+"/verify", map[string]any{"recovery_code": second[0], "purpose": "operation",
			"operation": map[string]string{"action": "cvm:DeleteInstance", "resource": "vm-1"}}); code != http.StatusBadRequest {
			t.Fatalf("a recovery code for an operation = %d %v, want 400", code, out)
		}
		if code, out := s.console(http.MethodPost, base+"/verify", map[string]any{"recovery_code": second[0], "purpose": "login"}); code != http.StatusOK || out["recovery_codes_remaining"] != float64(9) {
			t.Fatalf("login with a recovery code = %d %v", code, out)
		}
		// 20 concurrent uses of one code: exactly one passes.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				code, _, _ := s.call(0, http.MethodPost, base+"/verify", consoleKey, map[string]any{"recovery_code": second[1], "purpose": "login"})
				if code == http.StatusOK {
					wins.Add(1)
				} else if code != http.StatusUnauthorized && code != http.StatusTooManyRequests {
					t.Errorf("a concurrent use answered %d", code)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d of 20 concurrent uses of one recovery code passed, want exactly 1", n)
		}
		// The 19 losers spent the failure budget; support clears it.
		if code, _, _ := s.call(0, http.MethodDelete, "/v1/admin/accounts/"+acct+"/mfa/lock", s.admin, nil); code != http.StatusOK {
			t.Fatalf("unlock = %d", code)
		}
		// Removing B takes a proof too; B's own code is one.
		if code, out := s.console(http.MethodDelete, base+"/devices/"+devB, map[string]any{"proof": map[string]string{"code": mfa.TOTP(secretB, tB.Add(30*time.Second), mfa.Params{})}}); code != http.StatusOK {
			t.Fatalf("delete B with its code = %d %v", code, out)
		}
		kinds := s.outboxKinds(phone)
		for _, k := range []string{"recovery_code_used", "recovery_codes_regenerated", "device_unbound", "device_bound"} {
			if kinds[k] == 0 {
				t.Errorf("the owner was not told: %s (have %v)", k, kinds)
			}
		}
		for _, m := range mustOutbox(t, st, phone) {
			for _, c := range append(append([]string{}, first...), second...) {
				if strings.Contains(m.Body, c) {
					t.Fatalf("a %s message holds a recovery code", m.Kind)
				}
			}
		}

		// An open appeal freezes the factor set.
		code, out, _ = s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, idNum))
		if code != http.StatusCreated {
			t.Fatalf("file appeal = %d %v", code, out)
		}
		id, token := out["appeal_id"].(string), out["access_token"].(string)
		fresh := map[string]string{"code": mfa.TOTP(secretA, time.Now(), mfa.Params{})}
		for _, r := range []struct {
			method, path string
			body         map[string]any
		}{
			{http.MethodPost, base + "/bindings", map[string]any{"device_type": "virtual", "proof": fresh}},
			{http.MethodDelete, base + "/devices/" + devA, map[string]any{"proof": fresh}},
			{http.MethodPut, base + "/protection", map[string]any{"login": false, "operation": false, "proof": fresh}},
			{http.MethodPost, base + "/recovery-codes", map[string]any{"proof": fresh}},
		} {
			if code, out := s.console(r.method, r.path, r.body); code != http.StatusConflict || errCode(out) != "appeal_open" {
				t.Fatalf("%s %s during an appeal = %d %v, want 409 appeal_open", r.method, r.path, code, out)
			}
		}

		uploadOK(t, s, "/v1/appeals/"+id+"/documents/id_holding_photo", token, jpeg(10_000))
		if code, out := s.raw(http.MethodPost, "/v1/appeals/"+id+"/submit", token, "application/json", nil, 0); code != http.StatusAccepted {
			t.Fatalf("submit = %d %v", code, out)
		}
		rev := staff(t, "rev-stepup", "", auth.RoleReviewer)
		s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/claim", rev, nil)
		if code, _, _ := s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/decision", rev, map[string]any{"decision": "approve"}); code != http.StatusOK {
			t.Fatalf("approve = %d", code)
		}
		s.waitStatus(id, token, workflows.AppealCoolingDown)

		// A device that appeared after the filing (here put straight into
		// the store, as the API refuses it) logs in but cannot cancel.
		late, _ := mfa.NewSecret(nil)
		sealed, _ := s.keys.Seal(late, mfa.AAD(string(store.SealedDevices), "dev-late-"+acct))
		if _, err := st.CreateDevice(ctx, store.Device{ID: "dev-late-" + acct, AccountID: acct, Type: store.Virtual, Secret: sealed,
			Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive}); err != nil {
			t.Fatal(err)
		}
		if code, out := s.console(http.MethodPost, base+"/verify", map[string]any{"code": mfa.TOTP(late, time.Now(), mfa.Params{}), "purpose": "login"}); code != http.StatusOK {
			t.Fatalf("login with the late device = %d %v", code, out)
		}
		// A recovery code of the set made before the filing does cancel;
		// the timeline says which factor did, so the late device did not.
		if code, out := s.console(http.MethodPost, base+"/verify", map[string]any{"recovery_code": second[2], "purpose": "login"}); code != http.StatusOK {
			t.Fatalf("login with a recovery code = %d %v", code, out)
		}
		got := s.waitStatus(id, token, workflows.AppealCancelled)
		tl := got["timeline"].([]any)
		note := tl[len(tl)-1].(map[string]any)["note"].(string)
		if !strings.Contains(note, "recovery code") {
			t.Fatalf("the appeal was cancelled by %q, want the recovery code", note)
		}
		// Closed, the appeal no longer freezes the factor set, once the
		// store's mirror of its status has caught up with the workflow.
		deadline := time.Now().Add(60 * time.Second)
		for {
			a, err := st.GetAppeal(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !a.ClosedAt.IsZero() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the appeal's row is still open a minute after the cancel: %+v", a)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code, out := s.console(http.MethodPost, base+"/recovery-codes", map[string]any{"proof": map[string]string{"recovery_code": second[3]}}); code != http.StatusCreated {
			t.Fatalf("regenerate after the appeal closed = %d %v", code, out)
		}
		audit, err := st.ListAudit(ctx, store.AuditFilter{AccountID: acct, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		actions := map[string]int{}
		for _, e := range audit {
			actions[e.Action+"/"+e.Outcome]++
		}
		for _, want := range []string{"device.bind/denied", "device.unbind/denied", "protection.set/denied", "mfa.step_up/ok", "mfa.step_up/invalid",
			"recovery_codes.create/ok", "recovery_codes.regenerate/ok", "mfa.verify.login/ok"} {
			if actions[want] == 0 {
				t.Errorf("no audit entry %s (have %v)", want, actions)
			}
		}
	})
}

func mustOutbox(t *testing.T, st store.Store, to string) []store.OutboxMessage {
	t.Helper()
	msgs, err := st.ListOutbox(context.Background(), to, 500)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}
