package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.temporal.io/sdk/client"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/internal/config"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/internal/webauthntest"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store/pgstore"
	"github.com/mfaflow/mfaflow/worker"
)

// lockedBuffer is an io.Writer the dev stack writes to while a test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// inProcessDev is runDev running in the test process.
type inProcessDev struct {
	api, dataDir string
	stdout       *lockedBuffer
	stop         func()
}

// runDevInProcess runs runDev with env (nothing else of the process's
// environment) and args, and returns once the banner is out and /readyz
// answers 200. The dev stack stops when the test ends.
func runDevInProcess(t *testing.T, env map[string]string, args ...string) *inProcessDev {
	t.Helper()
	d := &inProcessDev{dataDir: filepath.Join(t.TempDir(), "data"), stdout: &lockedBuffer{}}
	stderr := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args = append([]string{"dev", "-data-dir", d.dataDir, "-http-addr", "127.0.0.1:0", "-temporal-port", "0", "-s3-port", "0"}, args...)
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, d.stdout, stderr) }()
	var once sync.Once
	d.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("mfaflow dev: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Error("mfaflow dev still running 60s after its context ended")
			}
		})
	}
	t.Cleanup(d.stop)
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(d.stdout.String(), "Ctrl-C") {
		select {
		case err := <-done:
			t.Fatalf("mfaflow dev ended before its banner: %v\n%s\n%s", err, d.stdout, stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner within 3 minutes:\n%s\n%s", d.stdout, stderr)
		}
	}
	m := apiLine.FindStringSubmatch(d.stdout.String())
	if m == nil {
		t.Fatalf("the banner names no API:\n%s", d.stdout)
	}
	d.api = m[1]
	waitReady(t, d.api, time.Minute)
	return d
}

// secrets returns the keys and tokens the dev stack generated.
func (d *inProcessDev) secrets(t *testing.T) devSecrets {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dataDir, "dev-secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s devSecrets
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// hook is a webhook receiver that checks each message's HMAC signature.
type hook struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	msgs   []notify.Message
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !notify.Verify(h.secret, r.Header.Get("X-Mfaflow-Timestamp"), r.Header.Get("X-Mfaflow-Signature"), body, time.Now(), 5*time.Minute) {
		h.t.Errorf("%s: a message with a bad signature: %s", r.URL.Path, body)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m notify.Message
	if err := json.Unmarshal(body, &m); err != nil {
		h.t.Errorf("%s: not a message: %s", r.URL.Path, body)
	}
	h.mu.Lock()
	h.msgs = append(h.msgs, m)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// count returns how many messages came so far.
func (h *hook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.msgs)
}

// wait returns the first message of kind to to (any recipient when empty),
// from the after-th message on, for which ok (when given) holds, waiting
// for it.
func (h *hook) wait(t *testing.T, after int, kind, to string, ok ...func(notify.Message) bool) notify.Message {
	t.Helper()
	var m notify.Message
	eventually(t, 2*time.Minute, "a "+kind+" message to "+to, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, msg := range h.msgs[min(after, len(h.msgs)):] {
			if msg.Kind == kind && (to == "" || msg.To == to) && (len(ok) == 0 || ok[0](msg)) {
				m = msg
				return true
			}
		}
		return false
	})
	return m
}

func eventually(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// call sends a request with a bearer token (none when empty) and JSON body
// (none when nil; a string is sent as it is) and returns the status and the
// decoded JSON answer.
func call(t *testing.T, method, url, token string, body any, header ...string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out
}

func str(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[p]
	}
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

var sixDigits = regexp.MustCompile(`\d{6}`)

// TestDevSettingsHonoured runs the dev stack in process with every setting
// "mfaflow dev -h" lists given, against the harness's servers, and checks
// that each changes what dev does. The JWKS settings, which replace the HS256
// secret, and the staff sign-in's OIDC settings have runs of their own
// (TestDevJWKS, TestDevOIDC); the port flags are in
// TestDevPortFlags. The test fails when devSettings lists a setting no check
// here covers.
func TestDevSettingsHonoured(t *testing.T) {
	covered := map[string]bool{
		// TestDevJWKS:
		"MFAFLOW_JWKS_URL": true, "MFAFLOW_JWT_ISSUER": true, "MFAFLOW_JWT_AUDIENCE": true,
		// TestDevOIDC:
		"MFAFLOW_OIDC_ISSUER": true, "MFAFLOW_OIDC_CLIENT_ID": true, "MFAFLOW_OIDC_CLIENT_SECRET": true, "MFAFLOW_OIDC_ROLES_CLAIM": true,
	}
	check := func(names ...string) {
		for _, n := range names {
			covered[n] = true
		}
	}
	defer func() {
		for _, s := range devSettings {
			if !covered[s] && !t.Failed() {
				t.Errorf("devSettings lists %s, which no check of TestDevSettingsHonoured covers", s)
			}
		}
	}()

	pgURL := harness.PostgresURL(t)
	mio := harness.MinIOServer(t)
	bucket := mio.Bucket(t)
	ts := temporalharness.Start(t)
	ring, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	const (
		consoleKey = "given-console-key-0123456789abcdef"
		jwtSecret  = "given-jwt-secret-0123456789abcdef0123"
		hookSecret = "given-hook-secret-0123456789abcdef01"
		metricsTok = "given-metrics-token-0123456789abcdef"
		publicURL  = "https://mfa.example.test"
		buildID    = "settings-test"
	)
	notifier := &hook{t: t, secret: []byte(hookSecret)}
	consoleHook := &hook{t: t, secret: []byte(hookSecret)}
	mux := http.NewServeMux()
	mux.Handle("/notify", notifier)
	mux.Handle("/console", consoleHook)
	hooks := httptest.NewServer(mux)
	defer hooks.Close()
	metricsPort, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", metricsPort)
	aaguid := [16]byte{0x2f, 0xc0, 0x57, 0x9f, 0x81, 0x13, 0x47, 0xea, 0xb1, 0x16, 0xbb, 0x5a, 0x8d, 0xb9, 0x20, 0x2a}
	env := map[string]string{
		"DATABASE_URL":     pgURL,
		"TEMPORAL_ADDRESS": ts.GetFrontendHostPort(), "TEMPORAL_NAMESPACE": ts.GetDefaultNamespace(), "MFAFLOW_BUILD_ID": buildID,
		"S3_ENDPOINT": mio.Endpoint, "S3_ACCESS_KEY": mio.AccessKey, "S3_SECRET_KEY": mio.SecretKey, "S3_BUCKET": bucket, "S3_USE_TLS": "false",
		"MFAFLOW_CONSOLE_API_KEYS": consoleKey, "MFAFLOW_JWT_HS256_SECRET": jwtSecret, "MFAFLOW_SECRET_KEYS": ring.Encode(),
		"MFAFLOW_NOTIFIER_URL": hooks.URL + "/notify", "MFAFLOW_NOTIFIER_SECRET": hookSecret,
		"MFAFLOW_CONSOLE_URL": hooks.URL + "/console", "MFAFLOW_CONSOLE_SECRET": hookSecret,
		"MFAFLOW_PUBLIC_URL": publicURL, "MFAFLOW_FOUR_EYES": "all", "MFAFLOW_APPEAL_COOLDOWN": "0",
		"MFAFLOW_DOCUMENT_DEADLINE": "2d", "MFAFLOW_REVIEW_SLA": "1s", "MFAFLOW_RETENTION": "1s",
		"MFAFLOW_TRUSTED_PROXIES": "127.0.0.0/8", "MFAFLOW_METRICS_ADDR": metricsAddr, "MFAFLOW_METRICS_TOKEN": metricsTok,
		"MFAFLOW_WEBAUTHN_RP_ID": "mfa.example.test", "MFAFLOW_WEBAUTHN_RP_NAME": "Example MFA",
		"MFAFLOW_WEBAUTHN_ORIGINS": publicURL, "MFAFLOW_WEBAUTHN_AAGUIDS": "2fc0579f-8113-47ea-b116-bb5a8db9202a",
	}

	// S3_USE_TLS: TLS to the plain MinIO fails, naming S3_ENDPOINT.
	t.Run("S3_USE_TLS", func(t *testing.T) {
		tlsEnv := map[string]string{}
		for k, v := range env {
			tlsEnv[k] = v
		}
		tlsEnv["S3_USE_TLS"] = "true"
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		err := run(ctx, []string{"dev", "-data-dir", t.TempDir(), "-http-addr", "127.0.0.1:0", "-ui-port", "-1"},
			func(k string) string { return tlsEnv[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "S3_ENDPOINT") {
			t.Fatalf("dev with TLS to a plain S3 server = %v, want an S3_ENDPOINT error", err)
		}
		check("S3_USE_TLS")
	})
	if t.Failed() {
		return
	}

	d := runDevInProcess(t, env)
	banner := d.stdout.String()
	check("MFAFLOW_HTTP_ADDR", "MFAFLOW_DATA_DIR") // the run's -http-addr and -data-dir: its API and dev-secrets.json are there
	for _, want := range []string{
		"PostgreSQL (DATABASE_URL)", ts.GetFrontendHostPort() + "  (namespace \"" + ts.GetDefaultNamespace() + "\", TEMPORAL_ADDRESS)",
		mio.Endpoint + "  (bucket \"" + bucket + "\", S3_ENDPOINT)", "(given by MFAFLOW_CONSOLE_API_KEYS)",
		hooks.URL + "/notify (MFAFLOW_NOTIFIER_URL)", hooks.URL + "/console (MFAFLOW_CONSOLE_URL)",
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q:\n%s", want, banner)
		}
	}
	gen := d.secrets(t)
	reviewer, _ := auth.SignHS256([]byte(jwtSecret), "reviewer-1", []string{auth.RoleReviewer}, "", time.Hour, time.Now())
	reviewer2, _ := auth.SignHS256([]byte(jwtSecret), "reviewer-2", []string{auth.RoleReviewer}, "", time.Hour, time.Now())
	admin, _ := auth.SignHS256([]byte(jwtSecret), "admin-1", []string{auth.RoleAdmin}, "", time.Hour, time.Now())
	if !strings.Contains(banner, reviewer[:20]) {
		t.Errorf("the banner's tokens are not signed with the given secret:\n%s", banner)
	}

	// A Temporal UI for the given TEMPORAL_ADDRESS only with -ui-port (at the end).
	if !strings.Contains(banner, "Temporal UI    (not started") {
		t.Errorf("a Temporal UI without -ui-port for the given TEMPORAL_ADDRESS:\n%s", banner)
	}

	// Console keys: the given one works, the generated one does not.
	acct := d.api + "/v1/accounts/demo-personal/mfa"
	if code, body := call(t, "GET", acct, gen.ConsoleKey, nil); code != http.StatusUnauthorized {
		t.Errorf("the generated console key = %d %v, want 401", code, body)
	}
	if code, body := call(t, "GET", acct, consoleKey, nil); code != http.StatusOK {
		t.Fatalf("the given console key = %d %v", code, body)
	}
	check("MFAFLOW_CONSOLE_API_KEYS")

	// Binding: the SMS code goes to the notifier, signed, not to the outbox.
	n := notifier.count()
	code, body := call(t, "POST", acct+"/bindings", consoleKey, map[string]any{"device_type": "virtual"})
	if code != http.StatusCreated {
		t.Fatalf("start binding = %d %v", code, body)
	}
	binding := str(body, "binding_id")
	sms := notifier.wait(t, n, "sms_code", "13800138000")
	check("MFAFLOW_NOTIFIER_URL", "MFAFLOW_NOTIFIER_SECRET")
	if _, out := call(t, "GET", d.api+"/dev/outbox?to=13800138000", "", nil); str(out, "messages") != "[]" {
		t.Errorf("the outbox got a message the notifier should have: %v", out)
	}
	code, body = call(t, "POST", acct+"/bindings/"+binding+"/sms-code", consoleKey, map[string]any{"code": sixDigits.FindString(sms.Body)})
	if code != http.StatusOK {
		t.Fatalf("sms-code = %d %v", code, body)
	}
	secret, err := mfa.DecodeSecret(str(body, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	code, body = call(t, "POST", acct+"/bindings/"+binding+"/confirm", consoleKey, map[string]any{
		"code1": mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{}), "code2": mfa.TOTP(secret, now, mfa.Params{}),
		"protection": map[string]bool{"login": true, "operation": true}})
	if code != http.StatusOK || str(body, "status") != "bound" {
		t.Fatalf("confirm = %d %v", code, body)
	}

	// DATABASE_URL: the device is in the harness's PostgreSQL.
	pg, err := pgstore.Open(context.Background(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	devs, err := pg.ListDevices(context.Background(), "demo-personal")
	if err != nil {
		t.Fatal(err)
	}
	var bound bool
	for _, dv := range devs {
		if dv.ID == str(body, "device", "id") {
			bound = true
			if dv.Secret.KeyID != ring.CurrentID() {
				t.Errorf("the device's secret is sealed with key %s, not the given ring's %s", dv.Secret.KeyID, ring.CurrentID())
			}
		}
	}
	if !bound {
		t.Errorf("devices of demo-personal in PostgreSQL = %d, none is the one just bound", len(devs))
	}
	if _, err := os.Stat(filepath.Join(d.dataDir, "mfaflow.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dev made its SQLite store besides DATABASE_URL: %v", err)
	}
	check("DATABASE_URL")

	// WebAuthn: the given relying party, origins and model allow-list.
	enterprise := d.api + "/v1/accounts/demo-enterprise/mfa"
	registerKey := func(origin string, model [16]byte) (int, map[string]any) {
		t.Helper()
		n := notifier.count()
		code, body := call(t, "POST", enterprise+"/bindings", consoleKey, map[string]any{"device_type": "webauthn"})
		if code != http.StatusCreated {
			t.Fatalf("start webauthn binding = %d %v", code, body)
		}
		b := str(body, "binding_id")
		sms := notifier.wait(t, n, "sms_code", "13700137000")
		code, body = call(t, "POST", enterprise+"/bindings/"+b+"/sms-code", consoleKey, map[string]any{"code": sixDigits.FindString(sms.Body)})
		if code != http.StatusOK {
			t.Fatalf("webauthn sms-code = %d %v", code, body)
		}
		if rp := str(body, "creation_options", "publicKey", "rp"); !strings.Contains(rp, `"id":"mfa.example.test"`) || !strings.Contains(rp, `"name":"Example MFA"`) {
			t.Errorf("relying party = %s, want the given id and name", rp)
		}
		opts, _ := json.Marshal(body["creation_options"])
		a := webauthntest.New(origin)
		a.AAGUID = model
		cred, err := a.Create(opts)
		if err != nil {
			t.Fatal(err)
		}
		return call(t, "POST", enterprise+"/bindings/"+b+"/confirm", consoleKey,
			fmt.Sprintf(`{"credential":%s,"name":"key","protection":{"login":true,"operation":false}}`, cred))
	}
	if code, body := registerKey(d.api, aaguid); code != http.StatusUnprocessableEntity {
		t.Errorf("a key registered from the dev URL, not a given origin = %d %v, want 422", code, body)
	}
	if code, body := registerKey(publicURL, [16]byte{1}); code != http.StatusUnprocessableEntity {
		t.Errorf("a key of a model not on the allow-list = %d %v, want 422", code, body)
	}
	if code, body := registerKey(publicURL, aaguid); code != http.StatusOK || str(body, "status") != "bound" {
		t.Errorf("a key of the given origin and model = %d %v, want bound", code, body)
	}
	check("MFAFLOW_WEBAUTHN_RP_ID", "MFAFLOW_WEBAUTHN_RP_NAME", "MFAFLOW_WEBAUTHN_ORIGINS", "MFAFLOW_WEBAUTHN_AAGUIDS")

	// An appeal, filed through a trusted proxy for 203.0.113.9.
	code, body = call(t, "POST", d.api+"/v1/appeals", "", map[string]any{
		"account_id": "demo-personal", "applicant_type": "personal", "account_login": map[string]string{"kind": "qq", "id": "10001"},
		"bound_phone": "13800138000", "name": "张三", "id_number": "11010519491231002X", "contact_phone": "13912345678",
	}, "X-Forwarded-For", "203.0.113.9")
	if code != http.StatusCreated {
		t.Fatalf("file appeal = %d %v", code, body)
	}
	appealID, token := str(body, "appeal_id"), str(body, "access_token")
	if dl, err := time.Parse(time.RFC3339Nano, str(body, "document_deadline")); err != nil || time.Until(dl) < 47*time.Hour || time.Until(dl) > 49*time.Hour {
		t.Errorf("document deadline %s, want in 2 days (MFAFLOW_DOCUMENT_DEADLINE)", str(body, "document_deadline"))
	}
	check("MFAFLOW_DOCUMENT_DEADLINE")
	photo, err := os.ReadFile(filepath.Join("..", "..", "scripts", "demo", "id-holding-photo.png"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", d.api+"/v1/appeals/"+appealID+"/documents/id_holding_photo", bytes.NewReader(photo))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "image/png")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload = %v %v", resp, err)
	}
	resp.Body.Close()

	// S3_*: the document is in the harness's MinIO, in the given bucket.
	mc, err := minio.New(mio.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(mio.AccessKey, mio.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	objects := func() int {
		n := 0
		for o := range mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatalf("list %s: %v", bucket, o.Err)
			}
			n++
		}
		return n
	}
	if n := objects(); n != 1 {
		t.Errorf("%d objects in the given bucket, want the photo", n)
	}
	check("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET")

	if code, body := call(t, "POST", d.api+"/v1/appeals/"+appealID+"/submit", token, nil); code != http.StatusAccepted {
		t.Fatalf("submit = %d %v", code, body)
	}
	// MFAFLOW_PUBLIC_URL: the owner's cancel link in the appeal notice.
	notifier.wait(t, 0, "appeal_notice", "13800138000", func(m notify.Message) bool { return strings.Contains(m.Body, publicURL+"/") })
	check("MFAFLOW_PUBLIC_URL")

	// Reviewer tokens: the given secret's work, the generated ones do not.
	if code, _ := call(t, "GET", d.api+"/v1/review/appeals", gen.ReviewerToken, nil); code != http.StatusUnauthorized {
		t.Errorf("a token of the generated secret = %d, want 401", code)
	}
	// MFAFLOW_REVIEW_SLA (1s): the appeal shows as past its SLA.
	eventually(t, 2*time.Minute, "SLA breach in the queue", func() bool {
		code, body := call(t, "GET", d.api+"/v1/review/appeals?status=pending_review", reviewer, nil)
		if code != http.StatusOK {
			t.Fatalf("queue = %d %v", code, body)
		}
		return strings.Contains(str(body, "appeals"), `"sla_breached":true`)
	})
	check("MFAFLOW_JWT_HS256_SECRET", "MFAFLOW_REVIEW_SLA")

	// MFAFLOW_FOUR_EYES=all: a personal appeal needs two reviewers.
	review := d.api + "/v1/review/appeals/" + appealID
	approve := map[string]string{"decision": "approve", "reason": "photo matches"}
	if code, body := call(t, "POST", review+"/claim", reviewer, nil); code != http.StatusOK {
		t.Fatalf("claim = %d %v", code, body)
	}
	code, body = call(t, "POST", review+"/decision", reviewer, approve)
	if code != http.StatusOK || str(body, "approvals_needed") != "2" || str(body, "status") != "in_review" {
		t.Fatalf("first approval = %d %v, want in_review needing 2", code, body)
	}
	check("MFAFLOW_FOUR_EYES")
	if code, body := call(t, "POST", review+"/claim", reviewer2, nil); code != http.StatusOK {
		t.Fatalf("second claim = %d %v", code, body)
	}
	if code, body := call(t, "POST", review+"/decision", reviewer2, approve); code != http.StatusOK {
		t.Fatalf("second approval = %d %v", code, body)
	}
	// MFAFLOW_APPEAL_COOLDOWN=0: unbound at once; the console's hook is told.
	consoleHook.wait(t, 0, "revoke_sessions", "demo-personal")
	eventually(t, 2*time.Minute, "unbound appeal", func() bool {
		_, body := call(t, "GET", d.api+"/v1/appeals/"+appealID, token, nil)
		return str(body, "status") == "unbound"
	})
	check("MFAFLOW_APPEAL_COOLDOWN", "MFAFLOW_CONSOLE_URL", "MFAFLOW_CONSOLE_SECRET")
	// MFAFLOW_RETENTION (1s): the document is deleted soon after.
	eventually(t, 2*time.Minute, "document deletion after the retention", func() bool { return objects() == 0 })
	check("MFAFLOW_RETENTION")

	// TEMPORAL_*: the appeal ran on the harness's server, in its namespace,
	// on the worker build MFAFLOW_BUILD_ID, its payloads sealed with the
	// given key ring.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := ts.GetDefaultClient()
	iter := tc.GetWorkflowHistory(ctx, appealID, "", false, 0)
	ev, err := iter.Next()
	if err != nil {
		t.Fatalf("the appeal's history on the given Temporal server: %v", err)
	}
	in := ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	if len(in) == 0 || string(in[0].Metadata[codec.MetadataKeyID]) != ring.CurrentID() {
		t.Errorf("the appeal's input is not sealed with the given ring's key %s: %v", ring.CurrentID(), in)
	}
	check("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "MFAFLOW_SECRET_KEYS")
	dep, err := tc.WorkerDeploymentClient().GetHandle(worker.DeploymentName).Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cur := dep.Info.RoutingConfig.CurrentVersion; cur == nil || cur.BuildID != buildID {
		t.Errorf("current worker version = %+v, want build %s", cur, buildID)
	}
	check("MFAFLOW_BUILD_ID")

	// MFAFLOW_TRUSTED_PROXIES: the audit names the forwarded client.
	code, body = call(t, "GET", d.api+"/v1/admin/audit?account_id=demo-personal", admin, nil)
	if code != http.StatusOK || !strings.Contains(str(body, "entries"), `"remote_ip":"203.0.113.9"`) {
		t.Errorf("audit of demo-personal = %d, no entry from 203.0.113.9 (X-Forwarded-For through a trusted proxy): %v", code, body)
	}
	check("MFAFLOW_TRUSTED_PROXIES")

	// MFAFLOW_METRICS_ADDR and _TOKEN: /metrics only there, behind the token.
	if code, _ := call(t, "GET", d.api+"/metrics", "", nil); code != http.StatusNotFound {
		t.Errorf("/metrics on the API listener = %d, want 404 with a metrics address", code)
	}
	if code, _ := call(t, "GET", "http://"+metricsAddr+"/metrics", "", nil); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the token = %d, want 401", code)
	}
	if code, _ := call(t, "GET", "http://"+metricsAddr+"/metrics", metricsTok, nil); code != http.StatusOK {
		t.Errorf("/metrics with the token = %d, want 200", code)
	}
	check("MFAFLOW_METRICS_ADDR", "MFAFLOW_METRICS_TOKEN")
	d.stop()

	// With -ui-port, a Temporal UI for the given TEMPORAL_ADDRESS (dev
	// started again on the same servers).
	d = runDevInProcess(t, env, "-ui-port", "0")
	if m := regexp.MustCompile(`Temporal UI\s+(http://\S+)`).FindStringSubmatch(d.stdout.String()); m == nil {
		t.Errorf("no Temporal UI in the banner with -ui-port:\n%s", d.stdout)
	} else if resp, err := http.Get(m[1]); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("Temporal UI at %s: %v %v", m[1], err, resp)
	} else {
		resp.Body.Close()
	}
	d.stop()
}

// TestDevJWKS runs the dev stack with the company IdP's JWKS: the IdP's
// tokens work, the HS256 ones dev generates do not, and the banner offers
// none.
func TestDevJWKS(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	jwks := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":%q,"e":%q}]}`,
		b64(key.N.Bytes()), b64(big.NewInt(int64(key.E)).Bytes()))
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, jwks)
	}))
	defer idp.Close()
	const issuer, audience = "https://idp.example.test/", "mfaflow-dev"
	sign := func(iss, aud string) string {
		c := auth.Claims{Roles: []string{auth.RoleReviewer}, RegisteredClaims: jwt.RegisteredClaims{
			Subject: "idp-reviewer", Issuer: iss, Audience: jwt.ClaimStrings{aud},
			IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
		}}
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	d := runDevInProcess(t, map[string]string{"MFAFLOW_JWKS_URL": idp.URL, "MFAFLOW_JWT_ISSUER": issuer, "MFAFLOW_JWT_AUDIENCE": audience}, "-ui-port", "-1")
	banner := d.stdout.String()
	if !strings.Contains(banner, "(from your IdP: MFAFLOW_JWKS_URL)") || strings.Contains(banner, "REVIEWER=") {
		t.Errorf("the banner offers reviewer tokens with a JWKS URL:\n%s", banner)
	}
	if !strings.Contains(banner, "Temporal UI    (off)") {
		t.Errorf("-ui-port -1 left a UI in the banner:\n%s", banner)
	}
	queue := d.api + "/v1/review/appeals"
	if code, body := call(t, "GET", queue, sign(issuer, audience), nil); code != http.StatusOK {
		t.Errorf("the IdP's token = %d %v, want 200", code, body)
	}
	if code, _ := call(t, "GET", queue, sign("https://other.example.test/", audience), nil); code != http.StatusUnauthorized {
		t.Errorf("a token of another issuer = %d, want 401 (MFAFLOW_JWT_ISSUER)", code)
	}
	if code, _ := call(t, "GET", queue, sign(issuer, "other-app"), nil); code != http.StatusUnauthorized {
		t.Errorf("a token for another audience = %d, want 401 (MFAFLOW_JWT_AUDIENCE)", code)
	}
	if code, _ := call(t, "GET", queue, d.secrets(t).ReviewerToken, nil); code != http.StatusUnauthorized {
		t.Errorf("the generated HS256 token = %d, want 401", code)
	}
	d.stop()
}

// TestDevPortFlags checks that "mfaflow dev -h" lists what dev honours and
// nothing else, the port flags with their defaults, and that a busy port
// stops dev with an error naming its flag.
func TestDevPortFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"dev", "-h"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	for _, v := range config.Vars {
		listed := strings.Contains(help, "$"+v.Env+" ")
		if listed != slices.Contains(devSettings, v.Env) {
			t.Errorf("dev -h lists %s: %v, but devSettings says otherwise", v.Env, listed)
		}
	}
	for _, f := range []string{`-temporal-port\s.*\(default 7233\)`, `-ui-port\s.*\(default 8233\)`, `-s3-port\s.*\(default 9000\)`} {
		if !regexp.MustCompile(f).MatchString(help) {
			t.Errorf("dev -h lacks %s:\n%s", f, help)
		}
	}
	// A variable dev does not list is not read.
	if len(devSettings) < len(config.Vars) {
		for _, v := range config.Vars {
			if !slices.Contains(devSettings, v.Env) {
				err := run(context.Background(), []string{"dev", "-" + v.Flag, "x"}, func(string) string { return "" }, io.Discard, io.Discard)
				if err == nil || !strings.Contains(err.Error(), v.Flag) {
					t.Errorf("dev -%s = %v, want it refused", v.Flag, err)
				}
			}
		}
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := fmt.Sprint(busy.Addr().(*net.TCPAddr).Port)
	mio := harness.MinIOServer(t)
	s3 := map[string]string{"S3_ENDPOINT": mio.Endpoint, "S3_ACCESS_KEY": mio.AccessKey, "S3_SECRET_KEY": mio.SecretKey}
	for _, tt := range []struct {
		flag string
		env  map[string]string
		args []string
	}{
		{"-http-addr", nil, []string{"-http-addr", "127.0.0.1:" + port}},
		{"-s3-port", nil, []string{"-s3-port", port}},
		// The embedded S3 server is not started (S3_ENDPOINT), so the Temporal ports are the first checked.
		{"-temporal-port", s3, []string{"-temporal-port", port}},
		{"-ui-port", s3, []string{"-ui-port", port}},
	} {
		t.Run(tt.flag, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			args := append([]string{"dev", "-data-dir", t.TempDir(), "-http-addr", "127.0.0.1:0", "-temporal-port", "0", "-ui-port", "0", "-s3-port", "0"}, tt.args...)
			err := run(ctx, args, func(k string) string { return tt.env[k] }, io.Discard, io.Discard)
			if err == nil || !strings.HasPrefix(err.Error(), tt.flag) || !strings.Contains(err.Error(), port) {
				t.Fatalf("dev with %s on a busy port = %v, want an error naming %s and the port", tt.flag, err, tt.flag)
			}
		})
	}
}
