package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

func TestAdminAccountPutGet(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		base := serve(t, testDeps(st))
		admin := adminToken(t)
		put := func(body any) response {
			t.Helper()
			return do(t, base, request{method: http.MethodPut, path: "/v1/admin/accounts/acct-1", token: admin,
				contentType: "application/json", body: jsonBody(t, body)})
		}

		r := put(personal("10001"))
		if r.status != http.StatusCreated {
			t.Fatalf("first PUT: status %d, want 201; body %s", r.status, r.body)
		}
		var created store.Account
		decode(t, r, &created)
		if created.ID != "acct-1" || created.Type != store.Personal || created.BoundPhone != "13800138000" ||
			created.LoginMethod != store.LoginSecurityCenter || !created.RealName.Verified {
			t.Fatalf("first PUT answered %+v", created)
		}
		if created.RealName.IDNumber != maskedIDNumber {
			t.Errorf("first PUT id_number = %q, want %q", created.RealName.IDNumber, maskedIDNumber)
		}
		if created.CreatedAt.IsZero() {
			t.Fatalf("first PUT: created_at is zero")
		}
		if created.Locale != "zh-CN" || created.TimeZone != "Asia/Shanghai" {
			t.Errorf("first PUT locale, time_zone = %q, %q; want the defaults zh-CN, Asia/Shanghai", created.Locale, created.TimeZone)
		}
		if bytes.Contains(r.body, []byte(validIDNumber)) {
			t.Errorf("PUT answer holds the full ID number: %s", r.body)
		}

		time.Sleep(10 * time.Millisecond) // let updated_at move on
		replacement := with(personal("10001"), "email", "new@example.com")
		replacement["login_method"] = "mfa"
		replacement["locale"], replacement["time_zone"] = "en", "Europe/London"
		r = put(replacement)
		if r.status != http.StatusOK {
			t.Fatalf("second PUT: status %d, want 200; body %s", r.status, r.body)
		}
		var replaced store.Account
		decode(t, r, &replaced)
		if replaced.Locale != "en" || replaced.TimeZone != "Europe/London" {
			t.Errorf("second PUT locale, time_zone = %q, %q; want en, Europe/London", replaced.Locale, replaced.TimeZone)
		}
		if !replaced.CreatedAt.Equal(created.CreatedAt) {
			t.Errorf("replace changed created_at: %v → %v", created.CreatedAt, replaced.CreatedAt)
		}
		if replaced.UpdatedAt.Before(created.UpdatedAt) {
			t.Errorf("updated_at went back: %v → %v", created.UpdatedAt, replaced.UpdatedAt)
		}
		if replaced.Email != "new@example.com" || replaced.LoginMethod != store.LoginMFA {
			t.Errorf("replace not applied: %+v", replaced)
		}

		r = do(t, base, request{method: http.MethodGet, path: "/v1/admin/accounts/acct-1", token: admin})
		if r.status != http.StatusOK {
			t.Fatalf("GET: status %d; body %s", r.status, r.body)
		}
		var got store.Account
		decode(t, r, &got)
		if got.RealName.IDNumber != maskedIDNumber || got.Email != "new@example.com" || !got.CreatedAt.Equal(created.CreatedAt) {
			t.Errorf("GET = %+v", got)
		}
		if len(got.Logins) != 1 || got.Logins[0] != (store.Login{Kind: store.LoginQQ, ID: "10001"}) {
			t.Errorf("GET logins = %+v", got.Logins)
		}
		if bytes.Contains(r.body, []byte(validIDNumber)) {
			t.Errorf("GET answer holds the full ID number: %s", r.body)
		}

		// The store keeps the full number; only the API masks it.
		stored, err := st.GetAccount(t.Context(), "acct-1")
		if err != nil || stored.RealName.IDNumber != validIDNumber {
			t.Errorf("stored id_number = %q, %v", stored.RealName.IDNumber, err)
		}

		entries := auditLog(t, base, "acct-1")
		var oks []string
		for _, e := range entries {
			if e.Action == "account.put" && e.Outcome == "ok" {
				if e.Actor != "admin:alice" {
					t.Errorf("audit actor = %q, want admin:alice", e.Actor)
				}
				oks = append(oks, e.Details["created"])
				if strings.Contains(fmt.Sprint(e.Details), validIDNumber) {
					t.Errorf("audit details hold the ID number: %v", e.Details)
				}
			}
		}
		if strings.Join(oks, ",") != "false,true" {
			t.Errorf("audited puts (newest first, created=) %v, want [false true]", oks)
		}

		t.Run("enterprise", func(t *testing.T) {
			body := map[string]any{
				"type":        "enterprise",
				"bound_phone": "+8613900139000",
				"logins":      []map[string]string{{"kind": "wechat_official", "id": "gh_company1"}},
				"real_name":   map[string]any{"verified": true, "name": "李四", "id_number": validIDNumber},
				"company":     map[string]any{"name": "示例科技有限公司", "reg_number": strings.ToLower(validUSCC)},
			}
			r := do(t, base, request{method: http.MethodPut, path: "/v1/admin/accounts/corp_2.x", token: admin,
				contentType: "application/json; charset=utf-8", body: jsonBody(t, body)})
			if r.status != http.StatusCreated {
				t.Fatalf("status %d; body %s", r.status, r.body)
			}
			var a store.Account
			decode(t, r, &a)
			if a.BoundPhone != "13900139000" || a.Company.RegNumber != validUSCC {
				t.Errorf("not normalised: %+v", a)
			}
		})

		t.Run("unknown", func(t *testing.T) {
			wantNoAccount(t, base, "nobody-here")
		})

		t.Run("login of another account", func(t *testing.T) {
			r := do(t, base, request{method: http.MethodPut, path: "/v1/admin/accounts/acct-3", token: admin,
				contentType: "application/json", body: jsonBody(t, personal("10001"))})
			wantError(t, r, http.StatusConflict, "conflict")
			wantNoAccount(t, base, "acct-3")
			if e := auditLog(t, base, "acct-3"); len(e) == 0 || e[0].Outcome != "invalid" || e[0].Details["code"] != "conflict" {
				t.Errorf("conflict audited as %+v", e)
			}
		})
	})
}

// TestAdminAccountRejects sends bad PUTs: each is refused with 400 (or 413,
// 415) naming the field, leaves no account and is audited as invalid.
func TestAdminAccountRejects(t *testing.T) {
	valid := personal("20001")
	big := `{"type":"personal","email":"` + strings.Repeat("a", 1<<20) + `"}`
	tests := []struct {
		name        string
		id          string // path account id
		contentType string
		body        string
		chunked     bool // send without Content-Length
		status      int
		code        string
		field       string
	}{
		{name: "malformed JSON", body: `{"type":"personal",`, code: "invalid_json"},
		{name: "not JSON", body: `type=personal`, code: "invalid_json"},
		{name: "empty body", body: ``, code: "invalid_json"},
		{name: "two objects", body: mustJSON(valid) + `{}`, code: "invalid_json"},
		{name: "array", body: `[]`, code: "invalid_json"},
		{name: "unknown field", body: mustJSON(with(valid, "password", "x")), code: "unknown_field", field: "password"},
		{name: "wrong JSON type", body: mustJSON(with(valid, "bound_phone", 13800138000)), code: "invalid_field", field: "bound_phone"},
		{name: "bad phone", body: mustJSON(with(valid, "bound_phone", "12800138000")), code: "invalid_field", field: "bound_phone"},
		{name: "missing phone", body: mustJSON(with(valid, "bound_phone", nil)), code: "invalid_field", field: "bound_phone"},
		{name: "bad email", body: mustJSON(with(valid, "email", "not-an-address")), code: "invalid_field", field: "email"},
		{name: "bad ID number checksum", body: mustJSON(with(valid, "real_name",
			map[string]any{"verified": true, "name": "张三", "id_number": "110105194912310021"})), code: "invalid_field", field: "real_name.id_number"},
		{name: "verified without ID number", body: mustJSON(with(valid, "real_name",
			map[string]any{"verified": true, "name": "张三"})), code: "invalid_field", field: "real_name.id_number"},
		{name: "bad USCC", body: mustJSON(map[string]any{
			"type": "enterprise", "bound_phone": "13800138000",
			"logins":  []map[string]string{{"kind": "qq", "id": "20002"}},
			"company": map[string]any{"name": "示例", "reg_number": "911100008021004331"}}),
			code: "invalid_field", field: "company.reg_number"},
		{name: "personal with company", body: mustJSON(with(valid, "company", map[string]any{"name": "示例"})), code: "invalid_field", field: "company"},
		{name: "bad login kind", body: mustJSON(with(valid, "logins", []map[string]string{{"kind": "weibo", "id": "abcdefg"}})), code: "invalid_field", field: "logins[0]"},
		{name: "bad qq id", body: mustJSON(with(valid, "logins", []map[string]string{{"kind": "qq", "id": "0123"}})), code: "invalid_field", field: "logins[0]"},
		{name: "duplicate login", body: mustJSON(with(valid, "logins", []map[string]string{{"kind": "qq", "id": "20003"}, {"kind": "qq", "id": "20003"}})), code: "invalid_field", field: "logins[1]"},
		{name: "no logins", body: mustJSON(with(valid, "logins", []map[string]string{})), code: "invalid_field", field: "logins"},
		{name: "bad type", body: mustJSON(with(valid, "type", "robot")), code: "invalid_field", field: "type"},
		{name: "bad login_method", body: mustJSON(with(valid, "login_method", "password")), code: "invalid_field", field: "login_method"},
		{name: "bad locale", body: mustJSON(with(valid, "locale", "fr")), code: "invalid_field", field: "locale"},
		{name: "bad time_zone", body: mustJSON(with(valid, "time_zone", "Mars/Olympus")), code: "invalid_field", field: "time_zone"},
		{name: "local time_zone", body: mustJSON(with(valid, "time_zone", "Local")), code: "invalid_field", field: "time_zone"},
		{name: "bad account_id", id: "-bad*id", body: mustJSON(valid), code: "invalid_field", field: "account_id"},
		{name: "account_id too long", id: strings.Repeat("a", 65), body: mustJSON(valid), code: "invalid_field", field: "account_id"},
		{name: "body over 1 MiB", body: big, status: http.StatusRequestEntityTooLarge, code: "too_large"},
		{name: "body over 1 MiB chunked", body: big, chunked: true, status: http.StatusRequestEntityTooLarge, code: "too_large"},
		{name: "wrong content type", contentType: "text/plain", body: mustJSON(valid), status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"},
	}
	forEachStore(t, func(t *testing.T, st store.Store) {
		base := serve(t, testDeps(st))
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := tt.id
				if id == "" {
					id = fmt.Sprintf("reject-%02d", i)
				}
				ct := tt.contentType
				if ct == "" {
					ct = "application/json"
				}
				var body io.Reader = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // hides the length: sent chunked
				}
				status := tt.status
				if status == 0 {
					status = http.StatusBadRequest
				}
				r := do(t, base, request{method: http.MethodPut, path: "/v1/admin/accounts/" + id,
					token: adminToken(t), contentType: ct, body: body})
				e := wantError(t, r, status, tt.code)
				if e.Field != tt.field {
					t.Errorf("field = %q, want %q", e.Field, tt.field)
				}

				// Nothing was stored, and the refusal is in the audit log.
				var entries []store.AuditEntry
				if tt.field == "account_id" {
					entries = auditLog(t, base, "")
				} else {
					wantNoAccount(t, base, id)
					entries = auditLog(t, base, id)
				}
				if len(entries) == 0 {
					t.Fatalf("no audit entry")
				}
				got := entries[0]
				if got.Action != "account.put" || got.Outcome != "invalid" || got.Actor != "admin:alice" ||
					got.Details["code"] != tt.code || got.Details["field"] != tt.field {
					t.Errorf("newest audit entry = %+v, want account.put invalid by admin:alice with code %q field %q",
						got, tt.code, tt.field)
				}
				if tt.field != "account_id" && got.AccountID != id {
					t.Errorf("audit account_id = %q, want %q", got.AccountID, id)
				}
			})
		}
	})
}

// TestAdminAuth checks who may use the admin routes: only an admin JWT.
// Every refusal answers 401 or 403, is audited as denied and changes nothing.
func TestAdminAuth(t *testing.T) {
	now := time.Now()
	otherSecret := []byte("some-other-secret-0123456789abcdef")
	tests := []struct {
		name   string
		token  func(t *testing.T) string
		status int
		code   string
		actor  string
	}{
		{"no token", func(*testing.T) string { return "" }, http.StatusUnauthorized, "unauthorized", "anonymous"},
		{"garbage token", func(*testing.T) string { return "not-a-jwt" }, http.StatusUnauthorized, "unauthorized", "anonymous"},
		{"three garbage parts", func(*testing.T) string { return "eyJhbGciOiJub25lIn0.e30.x" }, http.StatusUnauthorized, "unauthorized", "anonymous"},
		{"other secret", func(t *testing.T) string {
			return token(t, otherSecret, "mallory", []string{"admin"}, time.Hour, now)
		}, http.StatusUnauthorized, "unauthorized", "anonymous"},
		{"expired", func(t *testing.T) string {
			return token(t, jwtSecret, "alice", []string{"admin"}, time.Hour, now.Add(-2*time.Hour))
		}, http.StatusUnauthorized, "unauthorized", "anonymous"},
		{"no known role", func(t *testing.T) string {
			return token(t, jwtSecret, "carol", []string{"auditor"}, time.Hour, now)
		}, http.StatusUnauthorized, "unauthorized", "anonymous"},
		{"console key", func(*testing.T) string { return consoleKey }, http.StatusUnauthorized, "unauthorized", "anonymous"},
		{"reviewer", reviewerToken, http.StatusForbidden, "forbidden", "user:bob"},
	}
	routes := []struct {
		method, path string
		body         bool
	}{
		{http.MethodPut, "/v1/admin/accounts/auth-1", true},
		{http.MethodGet, "/v1/admin/accounts/auth-1", false},
		{http.MethodGet, "/v1/admin/audit", false},
	}
	forEachStore(t, func(t *testing.T, st store.Store) {
		deps := testDeps(st)
		// Every refusal is audited here; TestRefusalAuditBound tests the bound.
		deps.RefusalAuditPerIP, deps.RefusalAuditPerKind = 1000, 1000
		base := serve(t, deps)
		for _, tt := range tests {
			for _, rt := range routes {
				t.Run(tt.name+"/"+rt.method+" "+rt.path, func(t *testing.T) {
					req := request{method: rt.method, path: rt.path, token: tt.token(t)}
					if rt.body {
						req.contentType, req.body = "application/json", jsonBody(t, personal("30001"))
					}
					r := do(t, base, req)
					wantError(t, r, tt.status, tt.code)
					if r.status == http.StatusUnauthorized {
						if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
							t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
						}
					}
					wantNoAccount(t, base, "auth-1")
					// Reads are not audited, so the newest entry is the refusal.
					entries := auditLog(t, base, "")
					if len(entries) == 0 {
						t.Fatalf("no audit entry")
					}
					got := entries[0]
					if got.Action != "auth.admin" || got.Outcome != "denied" || got.Actor != tt.actor ||
						got.Details["method"] != rt.method || got.Details["route"] == "" {
						t.Errorf("newest audit entry = %+v, want auth.admin denied for %s", got, tt.actor)
					}
					if strings.Contains(fmt.Sprint(got.Details), req.token) && req.token != "" {
						t.Errorf("audit details hold the token: %v", got.Details)
					}
				})
			}
		}
	})
}

// mustJSON encodes v; the test tables use it for request bodies.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
