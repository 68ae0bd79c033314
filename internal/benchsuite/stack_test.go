package benchsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	sdkclient "go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/internal/doccheck/doctest"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

var jwtSecret = []byte("benchsuite-jwt-secret-0123456789abcdef")

// stack is the product on real servers, wired as internal/e2e wires it: the
// Temporal test server with the production worker registration and
// encrypting converters, PostgreSQL, MinIO with server-side encryption, and
// api.NewServer on httptest.
type stack struct {
	tb       testing.TB
	st       store.Store
	keys     *mfa.Keyring
	ts       *temporaltest.TestServer
	tc       sdkclient.Client
	minio    *harness.MinIO
	bucket   string
	blobs    *blob.Store
	url      string
	client   *http.Client
	reviewer string // a reviewer's bearer token
	// statusReads counts the applicant's status reads (status): each is a
	// query of the appeal's workflow.
	statusReads atomic.Int64
}

// newStack starts the whole product on PostgreSQL and the harness's plain
// MinIO. Appeals have no cool-down and no filing rate limit. opts go to
// the Temporal test server.
func newStack(tb testing.TB, opts ...temporaltest.TestServerOption) *stack {
	tb.Helper()
	return newStackOn(tb, harness.MinIOServer(tb), opts...)
}

// newStackOn is newStack on the MinIO server m: over TLS, trusting the
// harness CA, when m serves TLS (harness.MinIOTLSServer).
func newStackOn(tb testing.TB, m *harness.MinIO, opts ...temporaltest.TestServerOption) *stack {
	tb.Helper()
	st := storetest.Postgres(tb)
	keys, err := mfa.GenerateKeyring()
	if err != nil {
		tb.Fatal(err)
	}
	ts := startTemporal(tb, keys, opts...)
	outbox := notify.Outbox{Store: st}
	acts := &activities.Activities{Store: st, Notifier: outbox, Keys: keys}
	bucket := m.Bucket(tb)
	blobs, err := blob.Open(context.Background(), blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: bucket,
		UseTLS: m.Secure, RootCAs: m.RootCAs(), Encrypt: true})
	if err != nil {
		tb.Fatal(err)
	}
	acts.Blobs = blobs
	ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) { worker.Register(r, acts) }, workerOptions())
	tc := ts.GetDefaultClient()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv := api.NewServer(api.Deps{
		Store:    st,
		Temporal: tc,
		ConsoleService: &console.Service{Store: st, Keys: keys, Notifier: outbox, Log: logger,
			OnFactorUsed: api.FactorUsedHook(st, tc, logger)},
		Documents: blobs,
		Appeals: api.AppealConfig{Cooldown: 0, DocumentDeadline: time.Hour, ReviewSLA: time.Hour, Retention: time.Hour,
			PerIPPerHour: 1 << 30, PerAccountPerDay: 1 << 30},
		OwnerCancelToken: func(id string) string { return activities.OwnerCancelToken(keys, id) },
		Notifier:         outbox,
		Keys:             keys,
		Console:          auth.NewConsoleKeys([]string{consoleKey}),
		JWT:              &auth.Verifier{Keys: auth.HS256(jwtSecret)},
		Logger:           logger,
	})
	hs := httptest.NewServer(srv)
	tb.Cleanup(hs.Close)
	rev, err := auth.SignHS256(jwtSecret, "rev-bench", []string{auth.RoleReviewer}, "", 24*time.Hour, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	tb.Cleanup(tr.CloseIdleConnections)
	return &stack{tb: tb, st: st, keys: keys, ts: ts, tc: tc, minio: m, bucket: bucket, blobs: blobs, url: hs.URL,
		client: &http.Client{Timeout: 2 * time.Minute, Transport: tr}, reviewer: rev}
}

// workerOptions are the options of the stack's workers: the SDK's
// defaults, as production's worker.Options, unless -benchsuite.pollers
// asks for N workflow and activity task pollers each, or for the SDK's
// poller autoscaling ("auto"). It is an experiment's knob: how much of
// the appeals' throughput the two pollers of each kind hold back.
func workerOptions() sdkworker.Options {
	switch p := *flagPollers; p {
	case "":
		return sdkworker.Options{}
	case "auto":
		auto := sdkworker.NewPollerBehaviorAutoscaling(sdkworker.PollerBehaviorAutoscalingOptions{})
		return sdkworker.Options{WorkflowTaskPollerBehavior: auto, ActivityTaskPollerBehavior: auto}
	default:
		n, err := strconv.Atoi(p)
		if err != nil || n < 2 {
			panic("benchsuite: -benchsuite.pollers takes a number from 2 up, or auto")
		}
		return sdkworker.Options{MaxConcurrentWorkflowTaskPollers: n, MaxConcurrentActivityTaskPollers: n}
	}
}

var flagPollers = flag.String("benchsuite.pollers", "",
	"workflow and activity task pollers of each worker of the stacks: a number from 2 up, or auto (poller autoscaling); empty: the SDK's default, 2, as in production")

// seedAppellant stores account i with an active device: eligible for a
// personal appeal.
func (s *stack) seedAppellant(i int) string {
	s.tb.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("ba-%05d", i)
	secret, err := mfa.NewSecret(nil)
	if err == nil {
		err = putPersonalAccount(ctx, s.st, id, i)
	}
	if err == nil {
		err = createDevice(ctx, s.st, s.keys, id, secret)
	}
	if err != nil {
		s.tb.Fatalf("seed %s: %v", id, err)
	}
	return id
}

// call sends a request and decodes a JSON answer. A non-2xx status is an
// error naming the status and the error code.
func (s *stack) call(ctx context.Context, method, path, token, contentType string, body io.Reader, length int64) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = length
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode/100 != 2 {
		return out, fmt.Errorf("%s %s: %d %.300s", method, path, resp.StatusCode, raw)
	}
	return out, nil
}

func (s *stack) callJSON(ctx context.Context, method, path, token string, v any) (map[string]any, error) {
	if v == nil {
		return s.call(ctx, method, path, token, "", nil, 0)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return s.call(ctx, method, path, token, "application/json", bytes.NewReader(b), int64(len(b)))
}

// fileAppeal files a personal appeal for seeded account i and returns its
// id and access token.
func (s *stack) fileAppeal(ctx context.Context, acct string, i int) (id, token string, err error) {
	out, err := s.callJSON(ctx, http.MethodPost, "/v1/appeals", "", map[string]any{
		"account_id": acct, "applicant_type": "personal",
		"account_login": map[string]string{"kind": "qq", "id": seedQQ(i)},
		"bound_phone":   seedPhone(i), "name": seedName, "id_number": seedIDNumber, "contact_phone": "13911112222",
	})
	if err != nil {
		return "", "", err
	}
	id, _ = out["appeal_id"].(string)
	token, _ = out["access_token"].(string)
	if id == "" || token == "" {
		return "", "", fmt.Errorf("create answered %v", out)
	}
	return id, token, nil
}

// upload sends a document of size bytes (a JPEG signature, then body) as
// the appeal's ID-holding photo.
func (s *stack) upload(ctx context.Context, id, token string, body io.Reader, size int64) error {
	_, err := s.call(ctx, http.MethodPut, "/v1/appeals/"+id+"/documents/"+workflows.DocIDHoldingPhoto, token, "image/jpeg", body, size)
	return err
}

func (s *stack) submit(ctx context.Context, id, token string) error {
	_, err := s.callJSON(ctx, http.MethodPost, "/v1/appeals/"+id+"/submit", token, nil)
	return err
}

func (s *stack) claim(ctx context.Context, id string) error {
	_, err := s.callJSON(ctx, http.MethodPost, "/v1/review/appeals/"+id+"/claim", s.reviewer, nil)
	return err
}

func (s *stack) approve(ctx context.Context, id string) error {
	_, err := s.callJSON(ctx, http.MethodPost, "/v1/review/appeals/"+id+"/decision", s.reviewer, map[string]any{"decision": workflows.DecisionApprove})
	return err
}

// status reads the appeal's status as its applicant sees it.
func (s *stack) status(ctx context.Context, id, token string) (string, error) {
	s.statusReads.Add(1)
	out, err := s.callJSON(ctx, http.MethodGet, "/v1/appeals/"+id, token, nil)
	if err != nil {
		return "", err
	}
	st, _ := out["status"].(string)
	return st, nil
}

// waitUnbound polls the applicant's view every interval until the appeal is
// unbound. Another closed status is an error.
func (s *stack) waitUnbound(ctx context.Context, id, token string, interval time.Duration) error {
	for {
		st, err := s.status(ctx, id, token)
		if err != nil {
			return err
		}
		switch {
		case st == workflows.AppealUnbound:
			return nil
		case workflows.AppealClosed(st):
			return fmt.Errorf("appeal %s closed as %s", id, st)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("appeal %s still %s: %w", id, st, ctx.Err())
		case <-time.After(interval):
		}
	}
}

var jpegHead = doctest.JPEGHeader()

// jpegReader streams size bytes that start with a real JPEG header, without
// holding them in memory.
type jpegReader struct {
	off, size int64
}

var pattern = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}()

func (r *jpegReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if rem := r.size - r.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n := 0
	for n < len(p) {
		o := (r.off + int64(n)) % int64(len(pattern))
		n += copy(p[n:], pattern[o:])
	}
	if r.off < int64(len(jpegHead)) {
		// A real header, however short the reads: uploads must pass
		// doccheck.
		copy(p[:n], jpegHead[r.off:])
	}
	r.off += int64(n)
	return n, nil
}

func jpegBytes(size int) []byte {
	b, _ := io.ReadAll(&jpegReader{size: int64(size)})
	return b
}
