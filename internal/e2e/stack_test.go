package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

func TestMain(m *testing.M) {
	harness.AtExit(reportContract)
	harness.Main(m)
}

const consoleKey = "e2e-console-key-0123456789abcdef"

// webauthnOrigin is the console origin the e2e relying party allows and
// the software authenticator reports.
const webauthnOrigin = "http://localhost:8080"

var jwtSecret = []byte("e2e-jwt-secret-0123456789abcdef-0123")

// clock is a settable clock shared by the API replicas of one test.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// stack is the product on real servers.
type stack struct {
	blobs  *blob.Store
	bucket string
	t      *testing.T
	st     store.Store
	keys   *mfa.Keyring
	wa     *mfa.WebAuthn
	// workerNotifier is the worker's notifier: the outbox, with switches.
	workerNotifier *switchNotifier
	ts             *temporalharness.Server
	clock          *clock
	apis           []*httptest.Server
	admin          string
	// client validates every request and answer against the served
	// OpenAPI document (contract_test.go); contract fails the test at
	// cleanup for each violation.
	client   *http.Client
	contract *contract
}

// newStack starts Temporal, a worker with the production registration and
// replicas API servers sharing st.
func newStack(t *testing.T, st store.Store, replicas int) *stack {
	t.Helper()
	return newStackWith(t, st, replicas, api.AppealConfig{})
}

// newStackWith is newStack with appeal settings; documents go to the
// harness's MinIO with server-side encryption.
func newStackWith(t *testing.T, st store.Store, replicas int, appeals api.AppealConfig) *stack {
	t.Helper()
	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	ts := temporalharness.StartEncrypted(t, keys)
	outbox := notify.Outbox{Store: st}
	wa, err := mfa.NewWebAuthn(mfa.WebAuthnConfig{RPID: "localhost", RPName: "mfaflow e2e", Origins: []string{webauthnOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	workerNotifier := &switchNotifier{inner: outbox}
	acts := &activities.Activities{Store: st, Notifier: workerNotifier, Keys: keys, WebAuthn: wa}
	w := ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) { worker.Register(r, acts) }, sdkworker.Options{})
	_ = w
	m := harness.MinIOServer(t)
	bucket := m.Bucket(t)
	blobs, err := blob.Open(context.Background(), blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: bucket, Encrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	acts.Blobs = blobs
	ct := newContract(t)
	s := &stack{t: t, st: st, keys: keys, wa: wa, workerNotifier: workerNotifier, ts: ts, clock: &clock{}, client: &http.Client{Timeout: 60 * time.Second, Transport: ct.transport(nil)},
		contract: ct, blobs: blobs, bucket: bucket}
	if appeals.DocumentDeadline == 0 {
		appeals.DocumentDeadline = time.Hour
	}
	if appeals.ReviewSLA == 0 {
		appeals.ReviewSLA = time.Hour
	}
	if appeals.Retention == 0 {
		appeals.Retention = time.Hour
	}
	s.admin, err = auth.SignHS256(jwtSecret, "admin-e2e", []string{auth.RoleAdmin}, "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for range replicas {
		srv := api.NewServer(api.Deps{
			Store:    st,
			Temporal: ts.GetDefaultClient(),
			ConsoleService: &console.Service{Store: st, Keys: keys, Notifier: outbox, Now: s.clock.Now, WebAuthn: wa,
				OnFactorUsed: api.FactorUsedHook(st, ts.GetDefaultClient(), nil)},
			Documents:        blobs,
			Appeals:          appeals,
			OwnerCancelToken: func(id string) string { return activities.OwnerCancelToken(keys, id) },
			Notifier:         outbox,
			Keys:             keys,
			Console:          auth.NewConsoleKeys([]string{consoleKey}),
			JWT:              &auth.Verifier{Keys: auth.HS256(jwtSecret)},
			Dev:              true,
			Now:              s.clock.Now,
			Logger:           slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		hs := httptest.NewUnstartedServer(srv)
		hs.Listener = api.Listener(hs.Listener) // as serve and dev run it
		hs.Start()
		t.Cleanup(hs.Close)
		s.apis = append(s.apis, hs)
	}
	return s
}

// call sends a JSON request to replica i and decodes the JSON answer.
func (s *stack) call(i int, method, path, token string, body any) (int, map[string]any, http.Header) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.apis[i].URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			s.t.Fatalf("%s %s: bad JSON %q", method, path, raw)
		}
	} else {
		out["_raw"] = string(raw)
	}
	return resp.StatusCode, out, resp.Header
}

// console calls the console API on replica 0.
func (s *stack) console(method, path string, body any) (int, map[string]any) {
	s.t.Helper()
	code, out, _ := s.call(0, method, path, consoleKey, body)
	return code, out
}

// putAccount writes a directory entry through the admin API.
func (s *stack) putAccount(id, phone string, loginMethod store.LoginMethod) {
	s.t.Helper()
	code, out, _ := s.call(0, http.MethodPut, "/v1/admin/accounts/"+id, s.admin, map[string]any{
		"type": "personal", "bound_phone": phone, "email": id + "@example.com",
		"logins":       []map[string]string{{"kind": "qq", "id": "10" + phone[len(phone)-6:]}},
		"real_name":    map[string]any{"verified": true, "name": "张三", "id_number": "11010519491231002X"},
		"login_method": string(loginMethod),
	})
	if code != http.StatusCreated {
		s.t.Fatalf("put account %s = %d %v", id, code, out)
	}
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// smsCode reads the newest SMS code sent to phone from the outbox.
func (s *stack) smsCode(phone string) string {
	s.t.Helper()
	msgs, err := s.st.ListOutbox(context.Background(), phone, 20)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Kind == "sms_code" {
			if c := sixDigits.FindString(m.Body); c != "" {
				return c
			}
		}
	}
	s.t.Fatalf("no SMS code sent to %s", phone)
	return ""
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// forEachStore runs f on SQLite and on PostgreSQL.
func forEachStore(t *testing.T, f func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) { f(t, storetest.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, storetest.Postgres(t)) })
}

// waitNextStep sleeps until the next 30-second step begins (at most 31 s),
// so a code newer than the ones just used exists.
func waitNextStep(t *testing.T, now time.Time) {
	t.Helper()
	next := now.Truncate(30 * time.Second).Add(30*time.Second + 200*time.Millisecond)
	time.Sleep(time.Until(next))
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// switchNotifier is the worker's notifier in the e2e stack: the outbox,
// and a switch that makes the console refuse its webhook for good, as a
// console answering 400 does.
type switchNotifier struct {
	inner         notify.Notifier
	refuseConsole atomic.Bool
}

func (n *switchNotifier) Notify(ctx context.Context, m notify.Message) error {
	if m.Channel == notify.Console && n.refuseConsole.Load() {
		return notify.ErrRejected
	}
	return n.inner.Notify(ctx, m)
}
