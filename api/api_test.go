package api_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/store"
)

func TestHealthOpenAPIMetrics(t *testing.T) {
	t.Parallel()
	base := serve(t, testDeps(openSQLite(t)))

	t.Run("healthz", func(t *testing.T) {
		r := do(t, base, request{method: http.MethodGet, path: "/healthz"})
		if r.status != http.StatusOK {
			t.Fatalf("status %d; body %s", r.status, r.body)
		}
		var body map[string]string
		decode(t, r, &body)
		if body["status"] != "ok" {
			t.Errorf("body %s", r.body)
		}
		if r.header.Get("X-Request-Id") == "" || r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("missing standard headers: %v", r.header)
		}
	})

	t.Run("openapi", func(t *testing.T) {
		r := do(t, base, request{method: http.MethodGet, path: "/openapi.yaml"})
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		if ct := r.header.Get("Content-Type"); !strings.Contains(ct, "yaml") {
			t.Errorf("Content-Type = %q", ct)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(r.body, &doc); err != nil {
			t.Fatalf("openapi.yaml does not parse: %v", err)
		}
		if v, ok := doc["openapi"].(string); !ok || !strings.HasPrefix(v, "3.") {
			t.Errorf("openapi key = %v, want a 3.x version", doc["openapi"])
		}
		paths, _ := doc["paths"].(map[string]any)
		for _, p := range []string{"/healthz", "/readyz", "/v1/admin/accounts/{account_id}", "/v1/admin/audit"} {
			if _, ok := paths[p]; !ok {
				t.Errorf("openapi.yaml has no path %s", p)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		do(t, base, request{method: http.MethodGet, path: "/healthz"})
		do(t, base, request{method: http.MethodGet, path: "/no/such/route"})
		r := do(t, base, request{method: http.MethodGet, path: "/metrics"})
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		for _, want := range []string{
			`mfaflow_http_requests_total{method="GET",route="/healthz",status="200"}`,
			`mfaflow_http_requests_total{method="GET",route="unmatched",status="404"}`,
			`mfaflow_http_request_duration_seconds_bucket{method="GET",route="/healthz"`,
		} {
			if !bytes.Contains(r.body, []byte(want)) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		// Unmatched paths share one label so clients cannot grow the series.
		if bytes.Contains(r.body, []byte("/no/such/route")) {
			t.Errorf("/metrics labels an unmatched path")
		}
	})
}

// TestErrorsNeverLeak checks the error body shape for routing errors and
// that a failing store yields a generic message, the cause only in the log.
func TestErrorsNeverLeak(t *testing.T) {
	t.Parallel()
	base := serve(t, testDeps(openSQLite(t)))
	tests := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{"unknown route", request{method: http.MethodGet, path: "/nope"}, http.StatusNotFound, "not_found"},
		{"unknown v1 route", request{method: http.MethodGet, path: "/v1/admin/nope", token: adminToken(t)}, http.StatusNotFound, "not_found"},
		{"wrong method on healthz", request{method: http.MethodDelete, path: "/healthz"}, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"wrong method on account", request{method: http.MethodPost, path: "/v1/admin/accounts/a1", token: adminToken(t)}, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"dev route off", request{method: http.MethodGet, path: "/dev/outbox"}, http.StatusNotFound, "not_found"},
		{"bad audit limit", request{method: http.MethodGet, path: "/v1/admin/audit?limit=0", token: adminToken(t)}, http.StatusBadRequest, "invalid_field"},
		{"bad audit account", request{method: http.MethodGet, path: "/v1/admin/audit?account_id=%27%3B--", token: adminToken(t)}, http.StatusBadRequest, "invalid_field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, do(t, base, tt.req), tt.status, tt.code)
		})
	}

	t.Run("store failure", func(t *testing.T) {
		st := openSQLite(t)
		var logs syncBuffer
		deps := testDeps(st)
		deps.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		base := serve(t, deps)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		for _, req := range []request{
			{method: http.MethodGet, path: "/v1/admin/accounts/a1", token: adminToken(t)},
			{method: http.MethodPut, path: "/v1/admin/accounts/a1", token: adminToken(t), contentType: "application/json", body: jsonBody(t, personal("40001"))},
			{method: http.MethodGet, path: "/v1/admin/audit", token: adminToken(t)},
		} {
			r := do(t, base, req)
			if r.status < 500 {
				t.Fatalf("%s %s on a closed store: status %d; body %s", req.method, req.path, r.status, r.body)
			}
			e := wantError(t, r, r.status, map[int]string{500: "internal", 503: "unavailable"}[r.status])
			if strings.Contains(e.Message, "closed") {
				t.Errorf("message %q leaks the cause", e.Message)
			}
		}
		if !strings.Contains(logs.String(), "request failed") {
			t.Errorf("the cause was not logged; log:\n%s", logs.String())
		}
	})
}

func TestDevOutbox(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		msgs := []store.OutboxMessage{
			{Channel: "sms", To: "13800138000", Kind: "sms_code", Body: "code 123456", Data: map[string]string{"code": "123456"}},
			{Channel: "email", To: "owner@example.com", Kind: "device_bound", Body: "bound"},
			{Channel: "sms", To: "13800138000", Kind: "device_bound", Body: "bound"},
		}
		for _, m := range msgs {
			if _, err := st.AddOutbox(ctx, m); err != nil {
				t.Fatalf("AddOutbox: %v", err)
			}
		}

		t.Run("off outside dev", func(t *testing.T) {
			base := serve(t, testDeps(st))
			wantError(t, do(t, base, request{method: http.MethodGet, path: "/dev/outbox"}), http.StatusNotFound, "not_found")
			wantError(t, do(t, base, request{method: http.MethodGet, path: "/dev/outbox?to=13800138000"}), http.StatusNotFound, "not_found")
		})

		deps := testDeps(st)
		deps.Dev = true
		base := serve(t, deps)
		tests := []struct {
			query     string
			wantKinds []string // newest first
		}{
			{"", []string{"device_bound", "device_bound", "sms_code"}},
			{"?to=13800138000", []string{"device_bound", "sms_code"}},
			{"?to=owner@example.com", []string{"device_bound"}},
			{"?to=13900000000", []string{}},
			{"?to=13800138000&limit=1", []string{"device_bound"}},
		}
		for _, tt := range tests {
			t.Run("list"+tt.query, func(t *testing.T) {
				r := do(t, base, request{method: http.MethodGet, path: "/dev/outbox" + tt.query})
				if r.status != http.StatusOK {
					t.Fatalf("status %d; body %s", r.status, r.body)
				}
				var out struct {
					Messages []store.OutboxMessage `json:"messages"`
				}
				decode(t, r, &out)
				if out.Messages == nil {
					t.Fatalf("messages is null, want a list; body %s", r.body)
				}
				var kinds []string
				for _, m := range out.Messages {
					kinds = append(kinds, m.Kind)
					if m.ID == 0 || m.At.IsZero() {
						t.Errorf("message without id or time: %+v", m)
					}
				}
				if strings.Join(kinds, ",") != strings.Join(tt.wantKinds, ",") {
					t.Errorf("kinds = %v, want %v", kinds, tt.wantKinds)
				}
				if tt.query == "?to=13800138000&limit=1" || tt.query == "?to=13800138000" {
					for _, m := range out.Messages {
						if m.To != "13800138000" {
							t.Errorf("message to %q in a list for 13800138000", m.To)
						}
					}
				}
			})
		}
		t.Run("sms code visible", func(t *testing.T) {
			r := do(t, base, request{method: http.MethodGet, path: "/dev/outbox?to=13800138000"})
			if !bytes.Contains(r.body, []byte("123456")) {
				t.Errorf("the dev outbox hides the SMS code: %s", r.body)
			}
		})
		t.Run("bad limit", func(t *testing.T) {
			e := wantError(t, do(t, base, request{method: http.MethodGet, path: "/dev/outbox?limit=501"}), http.StatusBadRequest, "invalid_field")
			if e.Field != "limit" {
				t.Errorf("field = %q", e.Field)
			}
		})
	})
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// pollUntil calls check every 200 ms until it reports true or timeout
// passes, and returns its last answer.
func pollUntil(timeout time.Duration, check func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if check() {
			return true
		}
		select {
		case <-ctx.Done():
			return check()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestMaskID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"110101199003071233", "1101**********1233"},
		{validIDNumber, maskedIDNumber},
		{"123456789", "1234*6789"},
		{"12345678", "********"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := api.MaskID(tt.in); got != tt.want {
				t.Errorf("MaskID(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
