package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/internal/webauthntest"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

// bindKey binds a security key through the API: SMS code, creation
// options, the key's answer, confirm. It returns the confirm answer.
func (s *stack) bindKey(acct, phone, name string, key *webauthntest.Authenticator, proof map[string]any) map[string]any {
	s.t.Helper()
	base := "/v1/accounts/" + acct + "/mfa"
	body := map[string]any{"device_type": "webauthn"}
	if proof != nil {
		body["proof"] = proof
	}
	code, out := s.console(http.MethodPost, base+"/bindings", body)
	if code != http.StatusCreated {
		s.t.Fatalf("create webauthn binding = %d %v", code, out)
	}
	bid := out["binding_id"].(string)
	code, out = s.console(http.MethodPost, base+"/bindings/"+bid+"/sms-code", map[string]any{"code": s.smsCode(phone)})
	if code != http.StatusOK || out["status"] != workflows.BindingAwaitingWebAuthn {
		s.t.Fatalf("SMS code = %d %v", code, out)
	}
	opts, _ := json.Marshal(out["creation_options"])
	if pk, _ := out["creation_options"].(map[string]any)["publicKey"].(map[string]any); pk["challenge"] == nil || pk["rp"].(map[string]any)["id"] != "localhost" {
		s.t.Fatalf("creation_options = %s", opts)
	}
	cred, err := key.Create(opts)
	if err != nil {
		s.t.Fatal(err)
	}
	code, out = s.console(http.MethodPost, base+"/bindings/"+bid+"/confirm", map[string]any{
		"credential": json.RawMessage(cred), "name": name, "protection": map[string]bool{"login": true, "operation": true}})
	if code != http.StatusOK || out["status"] != workflows.BindingBound {
		s.t.Fatalf("confirm = %d %v", code, out)
	}
	return out
}

// assert asks for a challenge and answers it with key; it returns the
// challenge id and the assertion.
func (s *stack) assert(acct string, key *webauthntest.Authenticator, purpose string, op map[string]string) (string, json.RawMessage) {
	s.t.Helper()
	body := map[string]any{"purpose": purpose}
	if op != nil {
		body["operation"] = op
	}
	code, out := s.console(http.MethodPost, "/v1/accounts/"+acct+"/mfa/webauthn/challenge", body)
	if code != http.StatusCreated {
		s.t.Fatalf("challenge = %d %v", code, out)
	}
	opts, _ := json.Marshal(out["request_options"])
	a, err := key.Get(opts)
	if err != nil {
		s.t.Fatal(err)
	}
	return out["challenge_id"].(string), a
}

func webauthnBody(id string, a json.RawMessage, purpose string, op map[string]string) map[string]any {
	b := map[string]any{"webauthn": map[string]any{"challenge_id": id, "credential": a}, "purpose": purpose}
	if op != nil {
		b["operation"] = op
	}
	return b
}

// TestWebAuthnKeys binds a security key (a software P-256 authenticator
// answering the browser's JSON) on real Temporal and each database, logs
// in and earns a grant with it, binds a second key with the first as the
// step-up, refuses replayed, tampered, cross-account, wrong-origin and
// wrong-purpose assertions and a counter set back (told to the owner as a
// possible clone), and lets an appeal on an account with only keys unbind
// them.
func TestWebAuthnKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		s := newStackWith(t, st, 1, api.AppealConfig{Cooldown: 0})
		const acct, phone, idNum = "e2e-webauthn", "13800000081", "11010519491231002X"
		s.putAccount(acct, phone, store.LoginMFA)
		base := "/v1/accounts/" + acct + "/mfa"
		key := webauthntest.New(webauthnOrigin)

		out := s.bindKey(acct, phone, "YubiKey 5", key, nil)
		if _, ok := out["recovery_codes"]; !ok {
			t.Fatalf("the first device's binding showed no recovery codes: %v", out)
		}
		code, out := s.console(http.MethodGet, base, nil)
		devs := out["devices"].([]any)
		if code != http.StatusOK || len(devs) != 1 || devs[0].(map[string]any)["type"] != "webauthn" || devs[0].(map[string]any)["name"] != "YubiKey 5" {
			t.Fatalf("GET mfa = %d %v", code, out)
		}
		keyID := devs[0].(map[string]any)["id"].(string)

		// Login, once per challenge.
		id, a := s.assert(acct, key, "login", nil)
		if code, out := s.console(http.MethodPost, base+"/verify", webauthnBody(id, a, "login", nil)); code != http.StatusOK || out["device_id"] != keyID {
			t.Fatalf("login with the key = %d %v", code, out)
		}
		if code, out := s.console(http.MethodPost, base+"/verify", webauthnBody(id, a, "login", nil)); code != http.StatusUnauthorized || errCode(out) != "invalid_code" {
			t.Fatalf("a replayed assertion = %d %v, want 401", code, out)
		}
		// An operation grant bound to its operation.
		op := map[string]string{"action": "cvm:DeleteInstance", "resource": "vm-7"}
		id, a = s.assert(acct, key, "operation", op)
		code, out = s.console(http.MethodPost, base+"/verify", webauthnBody(id, a, "operation", op))
		if code != http.StatusOK || out["grant"] == nil {
			t.Fatalf("operation with the key = %d %v", code, out)
		}
		if code, out := s.console(http.MethodPost, base+"/grants/consume", map[string]any{"grant": out["grant"], "operation": op}); code != http.StatusOK {
			t.Fatalf("consume = %d %v", code, out)
		}
		// A challenge for one purpose or operation does not serve another.
		id, a = s.assert(acct, key, "login", nil)
		if code, out := s.console(http.MethodPost, base+"/verify", webauthnBody(id, a, "operation", op)); code != http.StatusUnauthorized {
			t.Fatalf("a login challenge used for an operation = %d %v", code, out)
		}
		other := map[string]string{"action": "cvm:DeleteInstance", "resource": "vm-8"}
		id, a = s.assert(acct, key, "operation", op)
		if code, out := s.console(http.MethodPost, base+"/verify", webauthnBody(id, a, "operation", other)); code != http.StatusUnauthorized {
			t.Fatalf("an operation challenge used for another resource = %d %v", code, out)
		}
		// Tampered, wrong origin, another account.
		id, a = s.assert(acct, key, "login", nil)
		if code, out := s.console(http.MethodPost, base+"/verify", webauthnBody(id, webauthntest.Tamper(a), "login", nil)); code != http.StatusUnauthorized {
			t.Fatalf("a tampered assertion = %d %v", code, out)
		}
		evil := *key
		evil.Origin = "https://phish.example"
		id, a = s.assert(acct, &evil, "login", nil)
		if code, out := s.console(http.MethodPost, base+"/verify", webauthnBody(id, a, "login", nil)); code != http.StatusUnauthorized {
			t.Fatalf("an assertion from another origin = %d %v", code, out)
		}
		// The refusals spent the failure budget; support clears it.
		if code, _, _ := s.call(0, http.MethodDelete, "/v1/admin/accounts/"+acct+"/mfa/lock", s.admin, nil); code != http.StatusOK {
			t.Fatalf("unlock = %d", code)
		}
		const acct2, phone2 = "e2e-webauthn-2", "13800000082"
		s.putAccount(acct2, phone2, store.LoginMFA)
		key2 := webauthntest.New(webauthnOrigin)
		s.bindKey(acct2, phone2, "other key", key2, nil)
		id, a = s.assert(acct2, key2, "login", nil)
		if code, out := s.console(http.MethodPost, base+"/verify", webauthnBody(id, a, "login", nil)); code != http.StatusUnauthorized {
			t.Fatalf("another account's challenge and key = %d %v", code, out)
		}
		id, _ = s.assert(acct2, key2, "login", nil)
		_, a = s.assert(acct, key, "login", nil)
		if code, out := s.console(http.MethodPost, base+"/verify", webauthnBody(id, a, "login", nil)); code != http.StatusUnauthorized {
			t.Fatalf("another account's challenge = %d %v", code, out)
		}
		if code, _, _ := s.call(0, http.MethodDelete, "/v1/admin/accounts/"+acct+"/mfa/lock", s.admin, nil); code != http.StatusOK {
			t.Fatalf("unlock = %d", code)
		}

		// A second key: SMS alone is refused, the first key's assertion is the step-up.
		if code, out := s.console(http.MethodPost, base+"/bindings", map[string]any{"device_type": "webauthn"}); code != http.StatusForbidden || errCode(out) != "step_up_required" {
			t.Fatalf("second key without a proof = %d %v", code, out)
		}
		id, a = s.assert(acct, key, "step_up", nil)
		backup := webauthntest.New(webauthnOrigin)
		s.bindKey(acct, phone, "backup key", backup, map[string]any{"webauthn": map[string]any{"challenge_id": id, "credential": a}})
		if _, out := s.console(http.MethodGet, base, nil); len(out["devices"].([]any)) != 2 {
			t.Fatalf("devices after the second key = %v", out)
		}

		// A counter set back: refused, audited, told.
		key.Counter = 1
		id, a = s.assert(acct, key, "login", nil)
		if code, out := s.console(http.MethodPost, base+"/verify", webauthnBody(id, a, "login", nil)); code != http.StatusForbidden || errCode(out) != "possible_cloned_key" {
			t.Fatalf("a counter set back = %d %v, want 403 possible_cloned_key", code, out)
		}
		if s.outboxKinds(phone)["webauthn_clone_suspected"] == 0 {
			t.Fatal("the owner was not told of the possible clone")
		}
		entries, _ := st.ListAudit(t.Context(), store.AuditFilter{AccountID: acct, Limit: 500})
		found := false
		for _, e := range entries {
			found = found || e.Action == "webauthn.clone_suspected"
		}
		if !found {
			t.Fatal("no audit entry for the possible clone")
		}
		if code, _, _ := s.call(0, http.MethodDelete, "/v1/admin/accounts/"+acct+"/mfa/lock", s.admin, nil); code != http.StatusOK {
			t.Fatalf("unlock = %d", code)
		}

		// An account with only keys can appeal; approval unbinds them.
		code, out, _ = s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, idNum))
		if code != http.StatusCreated {
			t.Fatalf("appeal on a keys-only account = %d %v", code, out)
		}
		aid, token := out["appeal_id"].(string), out["access_token"].(string)
		uploadOK(t, s, "/v1/appeals/"+aid+"/documents/id_holding_photo", token, jpeg(10_000))
		if code, out := s.raw(http.MethodPost, "/v1/appeals/"+aid+"/submit", token, "application/json", nil, 0); code != http.StatusAccepted {
			t.Fatalf("submit = %d %v", code, out)
		}
		rev := staff(t, "rev-webauthn", "", auth.RoleReviewer)
		s.call(0, http.MethodPost, "/v1/review/appeals/"+aid+"/claim", rev, nil)
		if code, _, _ := s.call(0, http.MethodPost, "/v1/review/appeals/"+aid+"/decision", rev, map[string]any{"decision": "approve"}); code != http.StatusOK {
			t.Fatalf("approve = %d", code)
		}
		s.waitStatus(aid, token, workflows.AppealUnbound)
		if d, _ := st.GetDevice(t.Context(), keyID); d.Status != store.DeviceRevoked {
			t.Fatalf("the key after the unbind = %s", d.Status)
		}
		if _, out := s.console(http.MethodGet, base, nil); len(out["devices"].([]any)) != 0 || out["recovery_codes_remaining"] != float64(0) {
			t.Fatalf("after the unbind the account still has factors: %v", out)
		}
		if code, out := s.console(http.MethodPost, base+"/webauthn/challenge", map[string]any{"purpose": "step_up"}); code != http.StatusConflict || !strings.Contains(errCode(out), "no_device") {
			t.Fatalf("a challenge after the unbind = %d %v", code, out)
		}
	})
}
