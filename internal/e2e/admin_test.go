package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
)

// TestTokenImportThroughAPI imports token cards through the admin API:
// all or nothing, every refused row reported, hostile XML refused.
func TestTokenImportThroughAPI(t *testing.T) {
	st := storetest.SQLite(t)
	s := newStack(t, st, 1)
	imp := func(ct, token string, body []byte) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.apis[0].URL+"/v1/admin/hardware-tokens/import", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out := map[string]any{}
		raw := new(bytes.Buffer)
		_, _ = raw.ReadFrom(resp.Body)
		_ = jsonUnmarshal(raw.Bytes(), &out)
		return resp.StatusCode, out
	}
	s1, _ := mfa.NewSecret(nil)
	s2, _ := mfa.NewSecret(nil)
	good := "serial,secret,algorithm,digits,period\nAPI-0001," + mfa.EncodeSecret(s1) + ",SHA1,6,30\nAPI-0002," + mfa.EncodeSecret(s2) + ",SHA256,8,60\n"
	if code, _ := imp("text/csv", "", []byte(good)); code != http.StatusUnauthorized {
		t.Fatalf("anonymous import = %d", code)
	}
	if code, _ := imp("text/csv", staff(t, "rev", "", "reviewer"), []byte(good)); code != http.StatusForbidden {
		t.Fatalf("reviewer import = %d", code)
	}
	if code, out := imp("application/json", s.admin, []byte(good)); code != http.StatusUnsupportedMediaType {
		t.Fatalf("wrong type = %d %v", code, out)
	}
	code, out := imp("text/csv", s.admin, []byte(good))
	if code != http.StatusCreated || out["imported"] != float64(2) {
		t.Fatalf("import = %d %v", code, out)
	}
	s3, _ := mfa.NewSecret(nil)
	mixed := "serial,secret,algorithm,digits,period\nAPI-0003," + mfa.EncodeSecret(s3) + ",SHA1,6,30\nAPI-0001," + mfa.EncodeSecret(s3) + "X,SHA1,6,30\n"
	code, out = imp("text/csv", s.admin, []byte(mixed))
	if code != http.StatusUnprocessableEntity || errCode(out) != "import_rejected" || len(out["rejected"].([]any)) == 0 {
		t.Fatalf("mixed import = %d %v", code, out)
	}
	if _, err := st.GetToken(context.Background(), "API-0003"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("API-0003 imported from a refused file: %v", err)
	}
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><KeyContainer>&lol2;</KeyContainer>`
	if code, out := imp("application/pskc+xml", s.admin, []byte(laughs)); code != http.StatusBadRequest || errCode(out) != "hostile_xml" {
		t.Fatalf("billion laughs = %d %v", code, out)
	}
	huge := append([]byte(`<?xml version="1.0"?><KeyContainer><!--`), bytes.Repeat([]byte("A"), 11<<20)...)
	if code, out := imp("application/pskc+xml", s.admin, huge); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("11 MB PSKC = %d %v", code, out)
	}
	es, _ := st.ListAudit(context.Background(), store.AuditFilter{Limit: 100})
	var ok, invalid int
	for _, e := range es {
		if e.Action == "tokens.import" {
			switch e.Outcome {
			case "ok":
				ok++
			case "invalid":
				invalid++
			}
		}
	}
	if ok != 1 || invalid < 2 {
		t.Fatalf("import audit: %d ok, %d invalid", ok, invalid)
	}
}

// TestSecurityCenterLogin: an ordinary account's login protection uses its
// security-center app, provisioned through the admin API.
func TestSecurityCenterLogin(t *testing.T) {
	st := storetest.SQLite(t)
	s := newStack(t, st, 1)
	const acct = "e2e-ordinary"
	s.putAccount(acct, "13800000041", store.LoginSecurityCenter)
	code, out, _ := s.call(0, http.MethodPost, "/v1/admin/accounts/"+acct+"/security-center", s.admin, nil)
	if code != http.StatusCreated || !strings.HasPrefix(out["otpauth_uri"].(string), "otpauth://totp/") {
		t.Fatalf("provision = %d %v", code, out)
	}
	secret, err := mfa.DecodeSecret(out["secret"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if code, out, _ := s.call(0, http.MethodPost, "/v1/admin/accounts/"+acct+"/security-center", s.admin, nil); code != http.StatusConflict {
		t.Fatalf("second provision = %d %v", code, out)
	}
	c := mfa.TOTP(secret, time.Now(), mfa.Params{})
	if code, out := s.console(http.MethodPost, "/v1/accounts/"+acct+"/login-protection/verify", map[string]any{"code": c}); code != http.StatusOK || out["method"] != "security_center" {
		t.Fatalf("login = %d %v", code, out)
	}
	if code, out := s.console(http.MethodPost, "/v1/accounts/"+acct+"/login-protection/verify", map[string]any{"code": c}); code != http.StatusUnauthorized || errCode(out) != "code_reused" {
		t.Fatalf("same code again = %d %v", code, out)
	}
	// The security-center app is not an MFA device: GET mfa lists none.
	if code, out := s.console(http.MethodGet, "/v1/accounts/"+acct+"/mfa", nil); code != http.StatusOK || len(out["devices"].([]any)) != 0 {
		t.Fatalf("GET mfa = %d %v", code, out)
	}
}

// TestAppealRateLimits: filing is limited per client IP.
func TestAppealRateLimits(t *testing.T) {
	st := storetest.SQLite(t)
	s := newStackWith(t, st, 1, api.AppealConfig{PerIPPerHour: 3})
	var last int
	var hdr http.Header
	for i := range 4 {
		last, _, hdr = s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal("rl-"+string(rune('a'+i)), "13800000051", "11010519491231002X"))
	}
	if last != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("4th filing from one IP = %d (Retry-After %q), want 429", last, hdr.Get("Retry-After"))
	}
}
