package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

// TestVirtualBinding follows the seed's virtual flow through the HTTP API:
// SMS code, QR and key, two consecutive codes, scopes; then the binding
// codes are refused at login as reused, a fresh code logs in, and an
// operation grant works once and only for its operation.
func TestVirtualBinding(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		s := newStack(t, st, 1)
		const acct, phone = "e2e-virtual", "13800000001"
		s.putAccount(acct, phone, store.LoginMFA)
		base := "/v1/accounts/" + acct + "/mfa"

		code, out := s.console(http.MethodPost, base+"/bindings", map[string]any{"device_type": "virtual"})
		if code != http.StatusCreated || out["status"] != workflows.BindingAwaitingSMSCode {
			t.Fatalf("create binding = %d %v", code, out)
		}
		bid := out["binding_id"].(string)
		if code, out := s.console(http.MethodPost, base+"/bindings", map[string]any{"device_type": "virtual"}); code != http.StatusConflict || errCode(out) != "binding_in_progress" {
			t.Fatalf("second binding = %d %v, want 409 binding_in_progress", code, out)
		}
		sms := s.smsCode(phone)
		wrong := fmt.Sprintf("%06d", (atoi(sms)+1)%1000000)
		if code, out := s.console(http.MethodPost, base+"/bindings/"+bid+"/sms-code", map[string]any{"code": wrong}); code != http.StatusUnauthorized || errCode(out) != "invalid_code" {
			t.Fatalf("wrong SMS code = %d %v", code, out)
		}
		if code, out := s.console(http.MethodPost, base+"/bindings/"+bid+"/sms-code", map[string]any{"code": "12ab56"}); code != http.StatusBadRequest {
			t.Fatalf("malformed SMS code = %d %v", code, out)
		}
		code, out = s.console(http.MethodPost, base+"/bindings/"+bid+"/sms-code", map[string]any{"code": sms})
		if code != http.StatusOK || out["status"] != workflows.BindingAwaitingDeviceCodes {
			t.Fatalf("SMS code = %d %v", code, out)
		}
		secretText := out["secret"].(string)
		secret, err := mfa.DecodeSecret(secretText)
		if err != nil {
			t.Fatal(err)
		}
		if uri := out["otpauth_uri"].(string); !strings.HasPrefix(uri, "otpauth://totp/") || !strings.Contains(uri, "secret="+out["secret"].(string)) {
			t.Fatalf("otpauth_uri = %q", uri)
		}
		qrCode, qr, hdr := s.call(0, http.MethodGet, base+"/bindings/"+bid+"/qr.png", consoleKey, nil)
		if qrCode != http.StatusOK || hdr.Get("Content-Type") != "image/png" || !strings.HasPrefix(qr["_raw"].(string), "\x89PNG") {
			t.Fatalf("qr.png = %d %s", qrCode, hdr.Get("Content-Type"))
		}

		now := time.Now()
		c1 := mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{})
		c2 := mfa.TOTP(secret, now, mfa.Params{})
		c0 := mfa.TOTP(secret, now.Add(-90*time.Second), mfa.Params{})
		if code, out := s.console(http.MethodPost, base+"/bindings/"+bid+"/confirm", map[string]any{"code1": c0, "code2": c2, "protection": map[string]bool{"login": true, "operation": true}}); code/100 != 4 {
			t.Fatalf("non-consecutive codes = %d %v, want a 4xx", code, out)
		}
		code, out = s.console(http.MethodPost, base+"/bindings/"+bid+"/confirm", map[string]any{"code1": c1, "code2": c2, "protection": map[string]bool{"login": true, "operation": true}})
		if code != http.StatusOK || out["status"] != workflows.BindingBound {
			t.Fatalf("confirm = %d %v", code, out)
		}
		dev := out["device"].(map[string]any)
		if dev["type"] != "virtual" {
			t.Fatalf("device = %v", dev)
		}
		// The key is shown only while binding.
		if code, _, _ := s.call(0, http.MethodGet, base+"/bindings/"+bid+"/qr.png", consoleKey, nil); code == http.StatusOK {
			t.Fatal("qr.png still served after the device was bound")
		}
		code, out = s.console(http.MethodGet, base, nil)
		if code != http.StatusOK || len(out["devices"].([]any)) != 1 || out["protection"].(map[string]any)["login"] != true {
			t.Fatalf("GET mfa = %d %v", code, out)
		}

		// The codes used to bind cannot log in.
		for _, c := range []string{c1, c2} {
			if code, out := s.console(http.MethodPost, base+"/verify", map[string]any{"code": c, "purpose": "login"}); code != http.StatusUnauthorized || errCode(out) != "code_reused" {
				t.Fatalf("binding code at login = %d %v, want 401 code_reused", code, out)
			}
		}
		// A fresh code logs in; the next step's code (skew +1) earns a grant.
		waitNextStep(t, now)
		now = time.Now()
		if code, out := s.console(http.MethodPost, base+"/verify", map[string]any{"code": mfa.TOTP(secret, now, mfa.Params{}), "purpose": "login"}); code != http.StatusOK || out["verified"] != true || out["grant"] != nil {
			t.Fatalf("fresh login code = %d %v", code, out)
		}
		op := map[string]string{"action": "cvm:DeleteInstance", "resource": "vm-123"}
		code, out = s.console(http.MethodPost, base+"/verify", map[string]any{"code": mfa.TOTP(secret, now.Add(30*time.Second), mfa.Params{}), "purpose": "operation", "operation": op})
		if code != http.StatusOK || out["grant"] == nil {
			t.Fatalf("operation verify = %d %v", code, out)
		}
		grant := out["grant"].(string)
		other := map[string]string{"action": "cvm:DeleteInstance", "resource": "vm-999"}
		if code, out := s.console(http.MethodPost, base+"/grants/consume", map[string]any{"grant": grant, "operation": other}); code != http.StatusForbidden || errCode(out) != "grant_mismatch" {
			t.Fatalf("grant for another VM = %d %v", code, out)
		}
		if code, out := s.console(http.MethodPost, "/v1/accounts/someone-else/mfa/grants/consume", map[string]any{"grant": grant, "operation": op}); code != http.StatusNotFound {
			t.Fatalf("grant on another account = %d %v", code, out)
		}
		if code, out := s.console(http.MethodPost, base+"/grants/consume", map[string]any{"grant": grant, "operation": op}); code != http.StatusOK || out["consumed"] != true {
			t.Fatalf("consume = %d %v", code, out)
		}
		if code, out := s.console(http.MethodPost, base+"/grants/consume", map[string]any{"grant": grant, "operation": op}); code != http.StatusConflict || errCode(out) != "grant_used" {
			t.Fatalf("second consume = %d %v", code, out)
		}

		// Audit and notifications.
		es, err := st.ListAudit(context.Background(), store.AuditFilter{AccountID: acct, Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		actions := map[string]int{}
		for _, e := range es {
			actions[e.Action+"/"+e.Outcome]++
			for k, v := range e.Details {
				if strings.Contains(v, secretText) || v == c1 || v == c2 || v == sms {
					t.Fatalf("audit detail %s leaks a code or secret", k)
				}
			}
		}
		for _, want := range []string{"device.bind/ok", "mfa.verify.login/replayed", "mfa.verify.login/ok", "mfa.verify.operation/ok", "grant.consume/ok", "grant.consume/denied"} {
			if actions[want] == 0 {
				t.Errorf("no audit entry %s (have %v)", want, actions)
			}
		}
		msgs, _ := st.ListOutbox(context.Background(), phone, 50)
		kinds := map[string]bool{}
		for _, m := range msgs {
			kinds[m.Kind] = true
		}
		for _, want := range []string{"sms_code", "device_bound", "code_reused"} {
			if !kinds[want] {
				t.Errorf("owner not notified: %s (have %v)", want, kinds)
			}
		}

		// The workflow history holds no code, key or phone in plain text.
		hist := historyJSON(t, s, workflows.BindWorkflowID(acct))
		for name, v := range map[string]string{"sms code": sms, "code1": c1, "code2": c2, "key": secretText, "phone": phone} {
			if bytes.Contains(hist, []byte(v)) {
				t.Errorf("workflow history contains the %s in plain text", name)
			}
		}
	})
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// historyJSON fetches a workflow's whole history as JSON from the server.
func historyJSON(t *testing.T, s *stack, workflowID string) []byte {
	t.Helper()
	it := s.ts.GetDefaultClient().GetWorkflowHistory(context.Background(), workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var buf bytes.Buffer
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		b, err := protojson.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// TestHardwareBinding follows the seed's hardware flow: SMS code, serial and
// the card's current code, no scopes ticked (bound but unprotected).
func TestHardwareBinding(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		s := newStack(t, st, 1)
		seed, _ := mfa.NewSecret(nil)
		im := inventory.Importer{Store: st, Keys: s.keys}
		csv := "serial,secret,algorithm,digits,period\nCARD-7001," + mfa.EncodeSecret(seed) + ",SHA1,6,30\n"
		if _, err := im.Import(context.Background(), strings.NewReader(csv), inventory.Options{Format: inventory.CSV}); err != nil {
			t.Fatal(err)
		}
		const acct, phone = "e2e-hardware", "13800000002"
		s.putAccount(acct, phone, store.LoginMFA)
		s.putAccount("e2e-other", "13800000003", store.LoginMFA)
		base := "/v1/accounts/" + acct + "/mfa"

		_, out := s.console(http.MethodPost, base+"/bindings", map[string]any{"device_type": "hardware"})
		bid, _ := out["binding_id"].(string)
		code, out := s.console(http.MethodPost, base+"/bindings/"+bid+"/sms-code", map[string]any{"code": s.smsCode(phone)})
		if code != http.StatusOK || out["status"] != workflows.BindingAwaitingHardwareToken || out["secret"] != nil {
			t.Fatalf("SMS code = %d %v", code, out)
		}
		now := time.Now()
		if code, out := s.console(http.MethodPost, base+"/bindings/"+bid+"/confirm", map[string]any{"serial": "CARD-0000", "code": mfa.TOTP(seed, now, mfa.Params{})}); code != http.StatusUnprocessableEntity || errCode(out) != "serial_unknown" {
			t.Fatalf("unknown serial = %d %v", code, out)
		}
		code, out = s.console(http.MethodPost, base+"/bindings/"+bid+"/confirm", map[string]any{"serial": "CARD-7001", "code": mfa.TOTP(seed, now, mfa.Params{})})
		if code != http.StatusOK || out["device"].(map[string]any)["serial"] != "CARD-7001" {
			t.Fatalf("confirm = %d %v", code, out)
		}
		// No scope ticked: bound, but the account is not protected.
		if p := out["protection"].(map[string]any); p["login"] != false || p["operation"] != false {
			t.Fatalf("protection = %v, want both off", p)
		}
		if code, out := s.console(http.MethodPost, base+"/verify", map[string]any{"code": mfa.TOTP(seed, now.Add(30*time.Second), mfa.Params{}), "purpose": "login"}); code != http.StatusConflict || errCode(out) != "protection_off" {
			t.Fatalf("verify with protection off = %d %v", code, out)
		}
		tok, _ := st.GetToken(context.Background(), "CARD-7001")
		if tok.State != store.TokenBound || tok.AccountID != acct {
			t.Fatalf("token = %+v", tok)
		}

		// The card cannot be bound to a second account.
		_, out = s.console(http.MethodPost, "/v1/accounts/e2e-other/mfa/bindings", map[string]any{"device_type": "hardware"})
		bid2, _ := out["binding_id"].(string)
		s.console(http.MethodPost, "/v1/accounts/e2e-other/mfa/bindings/"+bid2+"/sms-code", map[string]any{"code": s.smsCode("13800000003")})
		if code, out := s.console(http.MethodPost, "/v1/accounts/e2e-other/mfa/bindings/"+bid2+"/confirm", map[string]any{"serial": "CARD-7001", "code": mfa.TOTP(seed, time.Now(), mfa.Params{})}); code != http.StatusConflict || errCode(out) != "serial_unavailable" {
			t.Fatalf("serial bound elsewhere = %d %v", code, out)
		}
	})
}
