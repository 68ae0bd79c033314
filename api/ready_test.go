package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
)

// readyWait bounds every wait for /readyz to change.
const readyWait = 20 * time.Second

// readyz is the body of GET /readyz.
type readyz struct {
	Status string            `json:"status"`
	Down   []string          `json:"down"`
	Checks map[string]string `json:"checks"`
}

// waitReadyz polls /readyz until it answers status with exactly down (nil:
// nothing down) and fails the test when it does not within readyWait.
func waitReadyz(t *testing.T, base string, status int, down []string) {
	t.Helper()
	var last response
	var body readyz
	ok := pollUntil(readyWait, func() bool {
		last = do(t, base, request{method: http.MethodGet, path: "/readyz"})
		body = readyz{}
		decode(t, last, &body)
		return last.status == status && slices.Equal(body.Down, down)
	})
	if !ok {
		t.Fatalf("/readyz after %v: status %d, body %s; want %d with down %v", readyWait, last.status, last.body, status, down)
	}
	for _, name := range []string{"database", "object_storage", "temporal"} {
		want := "ok"
		if slices.Contains(down, name) {
			want = "down"
		}
		if body.Checks[name] != want {
			t.Errorf("check %s = %q, want %q; body %s", name, body.Checks[name], want, last.body)
		}
	}
	if len(body.Checks) != 3 {
		t.Errorf("checks = %v, want exactly database, object_storage and temporal", body.Checks)
	}
	switch {
	case status == http.StatusOK && body.Status != "ok":
		t.Errorf("status field %q on 200", body.Status)
	case status == http.StatusServiceUnavailable && (body.Status != "unavailable" || last.header.Get("Retry-After") == ""):
		t.Errorf("503 with status field %q and Retry-After %q", body.Status, last.header.Get("Retry-After"))
	}
}

// TestReadyz wires /readyz like cmd/mfaflow does (the store, the object
// store's Ping, Temporal's CheckHealth through a lazy client) against real
// servers, stops each in turn and expects a 503 naming it, then recovery
// without restarting the API.
//
// It is not parallel: it stops the process's MinIO server, which no other
// test of this package uses.
func TestReadyz(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	pg := harness.NewPostgres(t) // private: this test stops it
	db := openPostgres(t, pg.URL(t))

	minio := harness.MinIOServer(t)
	blobs, err := blob.Open(ctx, blob.Config{Endpoint: minio.Endpoint, AccessKey: minio.AccessKey,
		SecretKey: minio.SecretKey, Bucket: minio.Bucket(t), Encrypt: true})
	if err != nil {
		t.Fatalf("blob.Open: %v", err)
	}

	ts := temporalharness.Start(t)
	tc, err := client.NewLazyClient(client.Options{
		HostPort:  ts.GetFrontendHostPort(),
		Namespace: ts.GetDefaultNamespace(),
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatalf("temporal client: %v", err)
	}
	t.Cleanup(tc.Close)
	t.Logf("dependencies up in %v", time.Since(start).Round(time.Millisecond))

	deps := testDeps(db)
	deps.Ready = map[string]api.Pinger{
		"database":       db,
		"object_storage": api.PingFunc(blobs.Ping),
		"temporal": api.PingFunc(func(ctx context.Context) error {
			_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}),
	}
	base := serve(t, deps)

	t.Run("all up", func(t *testing.T) {
		waitReadyz(t, base, http.StatusOK, nil)
	})

	t.Run("database", func(t *testing.T) {
		t.Cleanup(func() { pg.Start(t) })
		pg.Stop(t)
		began := time.Now()
		waitReadyz(t, base, http.StatusServiceUnavailable, []string{"database"})
		t.Logf("503 after %v", time.Since(began).Round(time.Millisecond))

		// Requests that need the database fail closed with a clear 503.
		for _, req := range []request{
			{method: http.MethodGet, path: "/v1/admin/accounts/ready-1", token: adminToken(t)},
			{method: http.MethodPut, path: "/v1/admin/accounts/ready-1", token: adminToken(t),
				contentType: "application/json", body: jsonBody(t, personal("50001"))},
		} {
			r := do(t, base, req)
			wantError(t, r, http.StatusServiceUnavailable, "unavailable")
			if r.header.Get("Retry-After") == "" {
				t.Errorf("%s %s: 503 without Retry-After", req.method, req.path)
			}
		}

		pg.Start(t)
		began = time.Now()
		waitReadyz(t, base, http.StatusOK, nil)
		t.Logf("recovered %v after restart", time.Since(began).Round(time.Millisecond))
		wantNoAccount(t, base, "ready-1")
	})

	t.Run("object_storage", func(t *testing.T) {
		t.Cleanup(func() { minio.Start(t) })
		minio.Stop(t)
		waitReadyz(t, base, http.StatusServiceUnavailable, []string{"object_storage"})
		minio.Start(t)
		began := time.Now()
		waitReadyz(t, base, http.StatusOK, nil)
		t.Logf("recovered %v after restart", time.Since(began).Round(time.Millisecond))
	})

	t.Run("temporal", func(t *testing.T) {
		// temporaltest cannot restart a stopped server: only the outage is checked.
		ts.Stop()
		waitReadyz(t, base, http.StatusServiceUnavailable, []string{"temporal"})
	})
}
