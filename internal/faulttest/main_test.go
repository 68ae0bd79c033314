package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/internal/doccheck/doctest"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

func TestMain(m *testing.M) { harness.Main(m) }

const consoleKey = "faulttest-console-key-0123456789abcdef"

var jwtSecret = []byte("faulttest-jwt-secret-0123456789abcdef-01")

// The real-name record every test account carries.
const (
	realName = "张三"
	idNumber = "11010519491231002X"
)

// apiDeps are what an in-process API server needs; nil fields are left out.
type apiDeps struct {
	st    store.Store
	tc    client.Client
	docs  api.DocumentStore
	keys  *mfa.Keyring
	ready map[string]api.Pinger
}

// startAPI serves the product's HTTP API in-process, like the e2e stack:
// the appeal cool-down is 0, four-eyes is off and the filing rate limits
// are lifted so one test may file many appeals.
func startAPI(t *testing.T, d apiDeps) *apiClient {
	t.Helper()
	outbox := notify.Outbox{Store: d.st}
	svc := &console.Service{Store: d.st, Keys: d.keys, Notifier: outbox}
	if d.tc != nil {
		svc.OnFactorUsed = api.FactorUsedHook(d.st, d.tc, nil)
	}
	srv := api.NewServer(api.Deps{
		Store:            d.st,
		Temporal:         d.tc,
		ConsoleService:   svc,
		Documents:        d.docs,
		Appeals:          api.AppealConfig{DocumentDeadline: time.Hour, ReviewSLA: time.Hour, Retention: time.Hour, FourEyes: "none", PerIPPerHour: 10000, PerAccountPerDay: 100},
		OwnerCancelToken: func(id string) string { return activities.OwnerCancelToken(d.keys, id) },
		Notifier:         outbox,
		Ready:            d.ready,
		Keys:             d.keys,
		Console:          auth.NewConsoleKeys([]string{consoleKey}),
		JWT:              &auth.Verifier{Keys: auth.HS256(jwtSecret)},
		Dev:              true,
		Logger:           quietLogger(),
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &apiClient{base: hs.URL, http: &http.Client{Timeout: 2 * time.Minute}}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// sdkQuiet is a Temporal SDK logger for errors only.
func sdkQuiet() sdklog.Logger { return sdklog.NewStructuredLogger(quietLogger()) }

// apiClient calls the HTTP API. Its methods never fail the test, so
// goroutines may use them: a transport error is status 0 with the error
// under "transport_error".
type apiClient struct {
	base string
	http *http.Client
}

// call sends a JSON request and decodes the JSON answer.
func (c *apiClient) call(method, path, token string, body any) (int, map[string]any) {
	var rd io.Reader
	ct := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			panic(err)
		}
		rd, ct = bytes.NewReader(b), "application/json"
	}
	return c.raw(method, path, token, ct, rd, -1)
}

// raw sends a request with a raw body (length -1: unknown, or 0 with a nil
// body) and decodes the JSON answer.
func (c *apiClient) raw(method, path, token, contentType string, body io.Reader, length int64) (int, map[string]any) {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return 0, map[string]any{"transport_error": err.Error()}
	}
	if body == nil {
		length = 0
	}
	if length >= 0 {
		req.ContentLength = length
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, map[string]any{"transport_error": err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		out["_raw"] = string(raw)
	}
	return resp.StatusCode, out
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// appealStatus returns the applicant's view of the appeal's status ("" when
// the call failed).
func (c *apiClient) appealStatus(id, token string) (string, map[string]any) {
	code, out := c.call(http.MethodGet, "/v1/appeals/"+id, token, nil)
	if code != http.StatusOK {
		return "", out
	}
	s, _ := out["status"].(string)
	return s, out
}

// staffToken signs a JWT for a reviewer or admin.
func staffToken(t *testing.T, sub string, roles ...string) string {
	t.Helper()
	tok, err := auth.SignHS256(jwtSecret, sub, roles, "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// putAccount writes a verified personal account with MFA login to the
// directory.
func putAccount(t *testing.T, st store.Store, id, phone, qq string) {
	t.Helper()
	if _, err := st.PutAccount(context.Background(), store.Account{
		ID: id, Type: store.Personal, BoundPhone: phone, Email: id + "@example.com",
		Logins:      []store.Login{{Kind: store.LoginQQ, ID: qq}},
		RealName:    store.RealName{Verified: true, Name: realName, IDNumber: idNumber},
		LoginMethod: store.LoginMFA,
	}); err != nil {
		t.Fatal(err)
	}
}

// bindDevice stores an active virtual device for the account and returns
// its id and secret.
func bindDevice(t *testing.T, st store.Store, keys *mfa.Keyring, accountID string) (string, mfa.Secret) {
	t.Helper()
	secret, err := mfa.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	id := "dev-" + accountID
	sealed, err := keys.Seal(secret, mfa.AAD(string(store.SealedDevices), id))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateDevice(context.Background(), store.Device{ID: id, AccountID: accountID, Type: store.Virtual, Secret: sealed,
		Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive}); err != nil {
		t.Fatal(err)
	}
	return id, secret
}

// personalAppeal is the body of POST /v1/appeals for an account made by putAccount.
func personalAppeal(accountID, phone, qq string) map[string]any {
	return map[string]any{
		"account_id": accountID, "applicant_type": "personal",
		"account_login": map[string]string{"kind": "qq", "id": qq},
		"bound_phone":   phone, "name": realName, "id_number": idNumber, "contact_phone": "13911112222",
	}
}

// jpeg returns a real JPEG followed by random bytes, n bytes in all:
// uploads must pass doccheck.
func jpeg(n int) []byte { return doctest.JPEG(n) }

// buildBinary builds the mfaflow command into a temporary directory of t.
func buildBinary(t *testing.T) string {
	t.Helper()
	start := time.Now()
	bin := filepath.Join(t.TempDir(), "mfaflow")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/mfaflow/mfaflow/cmd/mfaflow")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built the mfaflow binary in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

// environ returns the process environment without the variables the
// binary reads, then kv.
func environ(kv ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		name, _, _ := strings.Cut(e, "=")
		if strings.HasPrefix(name, "MFAFLOW_") || strings.HasPrefix(name, "S3_") || strings.HasPrefix(name, "TEMPORAL_") || name == "DATABASE_URL" {
			continue
		}
		env = append(env, e)
	}
	return append(env, kv...)
}

// logTail returns the last n bytes of the file at path.
func logTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// within polls f every interval until it reports true or d passes; it
// reports whether f did.
func within(d, interval time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// autoReviewer claims and approves, through c as reviewer token rev, every
// appeal the review queue shows pending or in review, every 200 ms until ctx
// ends, tallying each answer in reviewed. The returned wait blocks until it
// has stopped.
func autoReviewer(ctx context.Context, c *apiClient, rev string, reviewed *counter) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, status := range []string{workflows.AppealPending, workflows.AppealInReview} {
				code, q := c.call(http.MethodGet, "/v1/review/appeals?status="+status, rev, nil)
				if code != http.StatusOK {
					reviewed.add(fmt.Sprintf("queue %d", code))
					continue
				}
				items, _ := q["appeals"].([]any)
				for _, it := range items {
					item, _ := it.(map[string]any)
					id, _ := item["appeal_id"].(string)
					if status == workflows.AppealPending {
						code, out := c.call(http.MethodPost, "/v1/review/appeals/"+id+"/claim", rev, nil)
						reviewed.add(fmt.Sprintf("claim %d %s", code, errCode(out)))
						if code != http.StatusOK {
							continue
						}
					}
					code, out := c.call(http.MethodPost, "/v1/review/appeals/"+id+"/decision", rev, map[string]any{"decision": "approve", "reason": "documents match"})
					reviewed.add(fmt.Sprintf("approve %d %s", code, errCode(out)))
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	return wg.Wait
}

// counter is a concurrency-safe tally by key.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
}

// matching returns the tally of the keys that contain sub.
func (c *counter) matching(sub string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.m {
		if strings.Contains(k+" ", sub) {
			n += v
		}
	}
	return n
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.m)
}
