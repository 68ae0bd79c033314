package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/pgstore"
	"github.com/mfaflow/mfaflow/store/sqlitestore"
)

func TestMain(m *testing.M) { harness.Main(m) }

// Test credentials. The JWT secret signs admin and reviewer tokens; the
// console key is valid for console routes only.
var (
	jwtSecret  = []byte("api-test-hs256-secret-0123456789abcdef")
	consoleKey = "console-test-key-0123456789"
)

// Valid identity numbers (checksums per GB 11643 and GB 32100).
const (
	validIDNumber  = "11010519491231002X"
	maskedIDNumber = "1101**********002X"
	validUSCC      = "91350100M000100Y43"
)

// openSQLite returns a migrated SQLite store in a file under t.TempDir(),
// closed when t ends.
func openSQLite(t *testing.T) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "mfaflow.db"))
	if err != nil {
		t.Fatalf("sqlitestore.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("sqlitestore.Migrate: %v", err)
	}
	return db
}

// openPostgres returns a migrated PostgreSQL store on the database at url,
// closed when t ends.
func openPostgres(t *testing.T, url string) *pgstore.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := pgstore.Open(ctx, url)
	if err != nil {
		t.Fatalf("pgstore.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("pgstore.Migrate: %v", err)
	}
	return db
}

// forEachStore runs fn, in parallel, against a fresh SQLite store (a temp
// file) and a fresh PostgreSQL database from the shared harness cluster.
func forEachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, openSQLite(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, openPostgres(t, harness.PostgresURL(t)))
	})
}

// testDeps returns the dependencies every test server gets: st, the test
// console key and an HS256 verifier with the production leeway.
func testDeps(st store.Store) api.Deps {
	return api.Deps{
		Store:   st,
		Console: auth.NewConsoleKeys([]string{consoleKey}),
		JWT:     &auth.Verifier{Keys: auth.HS256(jwtSecret), Leeway: 30 * time.Second},
	}
}

// serve serves api.NewServer(deps) over real HTTP until t ends and returns
// its base URL.
func serve(t *testing.T, deps api.Deps) string {
	t.Helper()
	srv := httptest.NewServer(api.NewServer(deps))
	t.Cleanup(srv.Close)
	return srv.URL
}

// token signs a JWT for sub with roles, valid for ttl from now.
func token(t *testing.T, secret []byte, sub string, roles []string, ttl time.Duration, now time.Time) string {
	t.Helper()
	tok, err := auth.SignHS256(secret, sub, roles, "", ttl, now)
	if err != nil {
		t.Fatalf("SignHS256: %v", err)
	}
	return tok
}

func adminToken(t *testing.T) string {
	t.Helper()
	return token(t, jwtSecret, "alice", []string{auth.RoleAdmin}, time.Hour, time.Now())
}

func reviewerToken(t *testing.T) string {
	t.Helper()
	return token(t, jwtSecret, "bob", []string{auth.RoleReviewer}, time.Hour, time.Now())
}

// request is one HTTP request of a test.
type request struct {
	method      string
	path        string
	token       string // bearer token; "" sends none
	contentType string // "" sends none
	body        io.Reader
}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends r to the server at base and reads the whole answer.
func do(t *testing.T, base string, r request) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, base+r.path, r.body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// jsonBody encodes v for a request body.
func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return bytes.NewReader(b)
}

// decode unmarshals a JSON response body into v.
func decode(t *testing.T, r response, v any) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want application/json; body %s", ct, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// apiError is the error body of SPEC §5.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

// internalWords must never reach a client in an error body.
var internalWords = []string{"sql", "pgx", "postgres", "sqlite", "dial", "connection", "panic", "goroutine", "store:", "auth:", "blob:", "json:", "\n"}

// wantError checks r is an error answer with status and code: exactly
// {"error":{"code","message"[,"field"]}}, JSON, with no internal text.
func wantError(t *testing.T, r response, status int, code string) apiError {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	var outer map[string]json.RawMessage
	decode(t, r, &outer)
	if len(outer) != 1 || outer["error"] == nil {
		t.Fatalf("body %s: want exactly one key \"error\"", r.body)
	}
	var inner map[string]any
	if err := json.Unmarshal(outer["error"], &inner); err != nil {
		t.Fatalf("error body %s: %v", outer["error"], err)
	}
	for k, v := range inner {
		if k != "code" && k != "message" && k != "field" {
			t.Errorf("error body has unexpected key %q", k)
		}
		if _, ok := v.(string); !ok {
			t.Errorf("error body key %q is %T, want a string", k, v)
		}
	}
	var e apiError
	_ = json.Unmarshal(outer["error"], &e)
	if e.Code != code {
		t.Fatalf("code = %q, want %q; body %s", e.Code, code, r.body)
	}
	if e.Message == "" {
		t.Errorf("empty message; body %s", r.body)
	}
	low := strings.ToLower(e.Message)
	for _, w := range internalWords {
		if strings.Contains(low, w) {
			t.Errorf("message %q leaks internal text (%q)", e.Message, w)
		}
	}
	return e
}

// auditLog lists the audit entries through GET /v1/admin/audit, newest
// first; accountID "" lists every account's.
func auditLog(t *testing.T, base, accountID string) []store.AuditEntry {
	t.Helper()
	path := "/v1/admin/audit"
	if accountID != "" {
		path += "?account_id=" + accountID
	}
	r := do(t, base, request{method: http.MethodGet, path: path, token: adminToken(t)})
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: status %d; body %s", path, r.status, r.body)
	}
	var out struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	decode(t, r, &out)
	return out.Entries
}

// wantNoAccount checks GET /v1/admin/accounts/{id} answers 404.
func wantNoAccount(t *testing.T, base, id string) {
	t.Helper()
	r := do(t, base, request{method: http.MethodGet, path: "/v1/admin/accounts/" + id, token: adminToken(t)})
	wantError(t, r, http.StatusNotFound, "not_found")
}

// personal returns a valid PUT body for a verified personal account whose
// QQ login is qq.
func personal(qq string) map[string]any {
	return map[string]any{
		"type":        "personal",
		"bound_phone": "13800138000",
		"email":       "owner@example.com",
		"logins":      []map[string]string{{"kind": "qq", "id": qq}},
		"real_name":   map[string]any{"verified": true, "name": "张三", "id_number": validIDNumber},
	}
}

// with returns a copy of m with key set to v (or removed when v is nil).
func with(m map[string]any, key string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, x := range m {
		out[k] = x
	}
	if v == nil {
		delete(out, key)
	} else {
		out[key] = v
	}
	return out
}
