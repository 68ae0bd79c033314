package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
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
	// Refused rows are reported in snake_case, like the rest of the API.
	if r := out["rejected"].([]any)[0].(map[string]any); r["row"] != float64(3) || r["serial"] != "API-0001" || r["reason"] == "" || len(r) != 3 {
		t.Fatalf("rejected row = %v", r)
	}
	// A vendor's file: a UTF-8 byte-order mark, and a local-PIN KeyPackage
	// beside each card. The cards are imported, the PINs reported as skipped.
	vendor, err := os.ReadFile("../../mfa/testdata/vendor-totp-pin-bom.xml")
	if err != nil {
		t.Fatal(err)
	}
	code, out = imp("application/pskc+xml", s.admin, vendor)
	if code != http.StatusCreated || out["imported"] != float64(2) {
		t.Fatalf("vendor PSKC import = %d %v", code, out)
	}
	skipped, _ := out["skipped"].([]any)
	if len(skipped) != 2 {
		t.Fatalf("skipped = %v", out["skipped"])
	}
	if r := skipped[0].(map[string]any); r["row"] != float64(2) || r["serial"] != "TV-10000001" || !strings.Contains(r["reason"].(string), "PIN") {
		t.Fatalf("skipped row = %v", r)
	}
	if _, err := st.GetToken(context.Background(), "TV-10000002"); err != nil {
		t.Fatalf("TV-10000002 from the vendor file: %v", err)
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
	if ok != 2 || invalid < 2 {
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

// TestAppealRateLimits: filings are limited per client IP, refused filings
// per client IP, and filings that passed eligibility per account; refused
// and malformed filings never spend the account's quota.
func TestAppealRateLimits(t *testing.T) {
	st := storetest.SQLite(t)
	s := newStackWith(t, st, 1, api.AppealConfig{PerIPPerHour: 8, RefusedPerIPPerHour: 3, PerAccountPerDay: 2})
	const acct, phone, id = "e2e-rl", "13800000051", "11010519491231002X"
	s.putAccount(acct, phone, store.LoginMFA)
	s.bindDirect(acct)
	// A minute into a UTC day, so every window below holds all its filings.
	s.toNextUTCDay()

	// Malformed filings count only for the address: eight answered, then 429.
	bad := personalAppeal(acct, phone, id)
	bad["id_number"] = "110105194912310021" // wrong checksum
	for i := range 8 {
		if f := s.fileFrom("127.0.0.20", bad); f.code != http.StatusUnprocessableEntity || f.errCode != "invalid_field" {
			t.Fatalf("malformed filing %d = %d %v (%v)", i+1, f.code, f.out, f.err)
		}
	}
	f := s.fileFrom("127.0.0.20", bad)
	if f.code != http.StatusTooManyRequests {
		t.Fatalf("9th filing from one address = %d %v, want 429", f.code, f.out)
	}
	retryWithin(t, f, time.Hour)

	// Refused filings (accounts that do not exist or are not verified, and
	// wrong details): three from one address are answered, then 429.
	for i, body := range []map[string]any{
		personalAppeal("rl-nobody-1", "13800000052", id), personalAppeal("rl-nobody-2", "13800000053", id), wrongIdentity(acct, phone),
	} {
		if f := s.fileFrom("127.0.0.21", body); f.code != http.StatusUnprocessableEntity {
			t.Fatalf("refused filing %d = %d %v (%v)", i+1, f.code, f.out, f.err)
		}
	}
	f = s.fileFrom("127.0.0.21", personalAppeal(acct, phone, id))
	if f.code != http.StatusTooManyRequests || f.errCode != "rate_limited" {
		t.Fatalf("filing from an address past its refused filings = %d %v, want 429", f.code, f.out)
	}
	retryWithin(t, f, time.Hour)

	// The owner's quota: two filings that pass eligibility a day (each
	// cancelled here before the next), then 429 until the day ends. The
	// refusals and malformed filings above spent none of it.
	for i := range 2 {
		f := s.fileFrom("127.0.0.22", personalAppeal(acct, phone, id))
		if f.code != http.StatusCreated {
			t.Fatalf("owner's filing %d = %d %v (%v)", i+1, f.code, f.out, f.err)
		}
		s.cancelAndWait(f)
	}
	f = s.fileFrom("127.0.0.23", personalAppeal(acct, phone, id))
	if f.code != http.StatusTooManyRequests || f.errCode != "rate_limited" {
		t.Fatalf("owner's third filing of the day = %d %v, want 429", f.code, f.out)
	}
	retryWithin(t, f, 24*time.Hour)
	// Once it is spent, no filing for the account is checked, a stranger's
	// included.
	if f := s.fileFrom("127.0.0.24", wrongIdentity(acct, phone)); f.code != http.StatusTooManyRequests {
		t.Fatalf("wrong filing once the quota is spent = %d %v, want 429", f.code, f.out)
	}
	// The next day the owner files again.
	s.clock.Advance(24 * time.Hour)
	if f := s.fileFrom("127.0.0.23", personalAppeal(acct, phone, id)); f.code != http.StatusCreated {
		t.Fatalf("owner's filing the next day = %d %v (%v)", f.code, f.out, f.err)
	}
}
