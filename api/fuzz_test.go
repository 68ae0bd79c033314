package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/sqlitestore"
)

// fuzzRoutes are the JSON routes that answer without Temporal; the
// Temporal-backed ones validate their bodies with the same decoder and
// validators, which FuzzAppealRequest covers for the largest of them.
var fuzzRoutes = []struct{ method, path, seed string }{
	{http.MethodPut, "/v1/admin/accounts/fz-1", `{"type":"personal","bound_phone":"13800138000","logins":[{"kind":"qq","id":"10001"}],"real_name":{"verified":true,"name":"张三","id_number":"11010519491231002X"}}`},
	{http.MethodPost, "/v1/accounts/fz-1/mfa/verify", `{"code":"123456","purpose":"operation","operation":{"action":"a","resource":"r"}}`},
	{http.MethodPut, "/v1/accounts/fz-1/mfa/protection", `{"login":true,"operation":false,"code":"123456"}`},
	{http.MethodPost, "/v1/accounts/fz-1/mfa/grants/consume", `{"grant":"grt_x","operation":{"action":"a","resource":"r"}}`},
	{http.MethodPost, "/v1/accounts/fz-1/mfa/resync", `{"code1":"123456","code2":"654321"}`},
	{http.MethodDelete, "/v1/accounts/fz-1/mfa/devices/dev-1", `{"code":"123456"}`},
	{http.MethodPost, "/v1/accounts/fz-1/login-protection/verify", `{"code":"12345678"}`},
}

var fuzzServer struct {
	once  sync.Once
	h     http.Handler
	admin string
}

func fuzzHandler(t testing.TB) (http.Handler, string) {
	fuzzServer.once.Do(func() {
		// One store for the whole fuzzing process: the fuzzer's sub-tests
		// end long before it does, so no t.Cleanup may close it.
		dir, err := os.MkdirTemp("", "mfaflow-fuzz-")
		if err != nil {
			t.Fatal(err)
		}
		st, err := sqlitestore.Open(context.Background(), filepath.Join(dir, "fuzz.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		keys, _ := mfa.GenerateKeyring()
		secret := []byte(strings.Repeat("k", 32))
		fuzzServer.h = NewServer(Deps{
			Store: st, Keys: keys, Console: auth.NewConsoleKeys([]string{"fuzz-console-key-0123456789"}),
			JWT:            &auth.Verifier{Keys: auth.HS256(secret)},
			ConsoleService: &console.Service{Store: st, Keys: keys, Notifier: notify.Outbox{Store: st}},
		})
		fuzzServer.admin, _ = auth.SignHS256(secret, "fuzz-admin", []string{auth.RoleAdmin}, "", 24*time.Hour, time.Now())
		_, _ = st.PutAccount(context.Background(), store.Account{ID: "fz-1", Type: store.Personal, BoundPhone: "13800138000",
			Logins: []store.Login{{Kind: store.LoginQQ, ID: "10001"}}, LoginMethod: store.LoginMFA})
	})
	return fuzzServer.h, fuzzServer.admin
}

// FuzzJSONBodies sends arbitrary bodies to every JSON route that answers
// without Temporal: nothing may panic or answer 500, and every refusal has
// the error shape.
func FuzzJSONBodies(f *testing.F) {
	for i, r := range fuzzRoutes {
		f.Add(uint8(i), []byte(r.seed))
		f.Add(uint8(i), []byte(`{"code":`))
		f.Add(uint8(i), []byte(`[]`))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		h, admin := fuzzHandler(t)
		r := fuzzRoutes[int(which)%len(fuzzRoutes)]
		req := httptest.NewRequest(r.method, r.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if strings.HasPrefix(r.path, "/v1/admin/") {
			req.Header.Set("Authorization", "Bearer "+admin)
		} else {
			req.Header.Set("Authorization", "Bearer fuzz-console-key-0123456789")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s with %q = %d %s", r.method, r.path, body, w.Code, w.Body.String())
		}
		if w.Code >= 400 {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("refusal without the error shape: %d %s", w.Code, w.Body.String())
			}
		}
	})
}

// FuzzAppealRequest checks the appeal body's validation never panics and
// accepts only well-formed identities.
func FuzzAppealRequest(f *testing.F) {
	f.Add([]byte(`{"account_id":"a1","applicant_type":"personal","account_login":{"kind":"qq","id":"10001"},"bound_phone":"13800138000","name":"张三","id_number":"11010519491231002X","contact_phone":"13911112222"}`))
	f.Add([]byte(`{"account_id":"a1","applicant_type":"enterprise","account_login":{"kind":"email","id":"a@b.cn"},"bound_phone":"13800138000","name":"李四","id_number":"110101199003071233","contact_phone":"13911112222","company_name":"示例","company_reg_number":"91350100M000100Y43"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r appealRequest
		if json.Unmarshal(body, &r) != nil {
			return
		}
		a, err := r.applicant()
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Field == "" || e.Status != http.StatusUnprocessableEntity {
				t.Fatalf("applicant() error %v lacks a field", err)
			}
			return
		}
		if len(a.IDNumber) != 18 || len(a.BoundPhone) != 11 || len(a.ContactPhone) != 11 {
			t.Fatalf("accepted malformed identity %+v", a)
		}
	})
}
