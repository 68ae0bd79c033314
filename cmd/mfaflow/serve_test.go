package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/mfa"
)

func TestMain(m *testing.M) { harness.Main(m) }

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
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

// productionEnv is a complete production configuration on the harness's servers.
func productionEnv(t *testing.T) map[string]string {
	t.Helper()
	ts := temporalharness.Start(t)
	m := harness.MinIOServer(t)
	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"MFAFLOW_HTTP_ADDR":        "127.0.0.1:0",
		"TEMPORAL_ADDRESS":         ts.GetFrontendHostPort(),
		"TEMPORAL_NAMESPACE":       ts.GetDefaultNamespace(),
		"DATABASE_URL":             harness.PostgresURL(t),
		"S3_ENDPOINT":              m.Endpoint,
		"S3_ACCESS_KEY":            m.AccessKey,
		"S3_SECRET_KEY":            m.SecretKey,
		"S3_BUCKET":                m.Bucket(t),
		"MFAFLOW_SECRET_KEYS":      keys.Encode(),
		"MFAFLOW_CONSOLE_API_KEYS": "console-key-" + base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef")),
		"MFAFLOW_JWT_HS256_SECRET": strings.Repeat("j", 32),
		"MFAFLOW_NOTIFIER_URL":     "http://127.0.0.1:1/notify",
		"MFAFLOW_NOTIFIER_SECRET":  strings.Repeat("n", 32),
		"MFAFLOW_PUBLIC_URL":       "https://mfa.example.com",
		"MFAFLOW_CONSOLE_URL":      "none",
	}
}

var (
	listenLine  = regexp.MustCompile(`listening on (http://\S+)`)
	metricsLine = regexp.MustCompile(`metrics on (http://\S+/metrics)`)
)

// TestProductionCommands runs migrate, then serve and worker together, as
// the compose file does, against real PostgreSQL, MinIO and Temporal.
func TestProductionCommands(t *testing.T) {
	env := productionEnv(t)
	env["MFAFLOW_METRICS_ADDR"] = "127.0.0.1:0"
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()

	var out bytes.Buffer
	if err := run(ctx, []string{"migrate"}, getenv, &out, &out); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	if err := run(ctx, []string{"migrate"}, getenv, &out, &out); err != nil {
		t.Fatalf("second migrate: %v", err)
	}

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var serveOut, workerOut syncBuffer
	serveErr := make(chan error, 1)
	workerErr := make(chan error, 1)
	go func() { serveErr <- run(sctx, []string{"serve"}, getenv, &serveOut, &serveOut) }()
	go func() { workerErr <- run(sctx, []string{"worker"}, getenv, &workerOut, &workerOut) }()

	var api string
	deadline := time.Now().Add(30 * time.Second)
	for api == "" && time.Now().Before(deadline) {
		if m := listenLine.FindStringSubmatch(serveOut.String()); m != nil {
			api = m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if api == "" {
		t.Fatalf("serve did not listen:\n%s", serveOut.String())
	}
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(api + "/readyz")
		if err == nil {
			buf := new(bytes.Buffer)
			_, _ = buf.ReadFrom(resp.Body)
			_ = resp.Body.Close()
			last = buf.String()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(last, `"status":"ok"`) {
		t.Fatalf("/readyz never ok: %s\n%s", last, serveOut.String())
	}
	// The worker dials Temporal on its own; wait for its line too.
	for !strings.Contains(workerOut.String(), "polling task queue") {
		select {
		case err := <-workerErr:
			t.Fatalf("worker stopped: %v\n%s", err, workerOut.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline.Add(time.Minute)) {
			t.Fatalf("worker did not start:\n%s", workerOut.String())
		}
	}
	// /metrics lives on the metrics listener only.
	m := metricsLine.FindStringSubmatch(serveOut.String())
	if m == nil {
		t.Fatalf("serve did not print its metrics listener:\n%s", serveOut.String())
	}
	for _, c := range []struct {
		url  string
		want int
	}{{api + "/metrics", http.StatusNotFound}, {m[1], http.StatusOK}} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatalf("GET %s: %v", c.url, err)
		}
		body := new(bytes.Buffer)
		_, _ = body.ReadFrom(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s: status %d, want %d", c.url, resp.StatusCode, c.want)
		}
		if c.want == http.StatusOK && !strings.Contains(body.String(), "mfaflow_http_requests_total") {
			t.Errorf("GET %s: no HTTP metrics in\n%s", c.url, body.String())
		}
	}
	stop()
	for name, ch := range map[string]chan error{"serve": serveErr, "worker": workerErr} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("%s returned %v", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not stop on cancel", name)
		}
	}
}

// TestTokensImportAndKeysRotate runs the operator commands on PostgreSQL.
func TestTokensImportAndKeysRotate(t *testing.T) {
	keys, _ := mfa.GenerateKeyring()
	env := map[string]string{"DATABASE_URL": harness.PostgresURL(t), "MFAFLOW_SECRET_KEYS": keys.Encode()}
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"migrate"}, getenv, &out, &out); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := dir + "/cards.csv"
	bad := dir + "/bad.csv"
	s1, _ := mfa.NewSecret(nil)
	s2, _ := mfa.NewSecret(nil)
	writeFile(t, good, "serial,secret,algorithm,digits,period\nCLI-0001,"+mfa.EncodeSecret(s1)+",SHA1,6,30\nCLI-0002,"+mfa.EncodeSecret(s2)+",SHA256,6,60\n")
	writeFile(t, bad, "serial,secret,algorithm,digits,period\nCLI-0003,"+mfa.EncodeSecret(s1)+",SHA1,6,30\nCLI-0004,!!,SHA1,6,30\n")

	out.Reset()
	if err := run(ctx, []string{"tokens", "import", good}, getenv, &out, &out); err != nil || !strings.Contains(out.String(), "imported 2 tokens") {
		t.Fatalf("import: %v\n%s", err, out.String())
	}
	var stderr bytes.Buffer
	err := run(ctx, []string{"tokens", "import", bad}, getenv, &out, &stderr)
	if err == nil || !strings.Contains(err.Error(), "nothing was imported") || !strings.Contains(stderr.String(), "row 3 CLI-0004") {
		t.Fatalf("bad import: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), mfa.EncodeSecret(s1)) {
		t.Fatal("rejection report echoes a secret")
	}

	// Rotate to a new key: both tokens are re-sealed, a second run finds nothing to do.
	fresh, _ := mfa.GenerateKeyring()
	env["MFAFLOW_SECRET_KEYS"] = fresh.Encode() + "," + keys.Encode()
	out.Reset()
	if err := run(ctx, []string{"keys", "rotate"}, getenv, &out, &out); err != nil || !strings.Contains(out.String(), `"table":"hardware_tokens","scanned":2,"resealed":2`) {
		t.Fatalf("rotate: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"keys", "rotate"}, getenv, &out, &out); err != nil || !strings.Contains(out.String(), `"resealed":0`) {
		t.Fatalf("second rotate: %v\n%s", err, out.String())
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
