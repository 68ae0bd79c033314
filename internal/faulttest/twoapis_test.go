package faulttest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
)

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// startServe runs the real `mfaflow serve` binary and returns its base URL.
func startServe(t *testing.T, bin string, env []string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	select {
	case u := <-urls:
		return u
	case <-time.After(60 * time.Second):
		t.Fatal("mfaflow serve did not listen within 60 s")
		return ""
	}
}

// TestLockAcrossTwoAPIProcesses sends 1,000 wrong codes for one account,
// alternating between two real `mfaflow serve` processes that share one
// PostgreSQL: exactly the threshold of failures is evaluated, then both
// processes refuse with 429 and Retry-After, even a valid code.
func TestLockAcrossTwoAPIProcesses(t *testing.T) {
	bin := buildBinary(t)
	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	ts := temporalharness.StartEncrypted(t, keys)
	dbURL := harness.PostgresURL(t)
	st := storetest.OpenPostgres(t, dbURL)
	m := harness.MinIOServer(t)
	const consoleKey = "two-process-console-key-0123456789"
	env := environ(
		"MFAFLOW_HTTP_ADDR=127.0.0.1:0",
		"TEMPORAL_ADDRESS="+ts.GetFrontendHostPort(), "TEMPORAL_NAMESPACE="+ts.GetDefaultNamespace(),
		"DATABASE_URL="+dbURL,
		"S3_ENDPOINT="+m.Endpoint, "S3_ACCESS_KEY="+m.AccessKey, "S3_SECRET_KEY="+m.SecretKey, "S3_BUCKET="+m.Bucket(t),
		"MFAFLOW_SECRET_KEYS="+keys.Encode(),
		"MFAFLOW_CONSOLE_API_KEYS="+consoleKey,
		"MFAFLOW_JWT_HS256_SECRET="+strings.Repeat("j", 32),
		"MFAFLOW_NOTIFIER_URL=http://127.0.0.1:1/notify", "MFAFLOW_NOTIFIER_SECRET="+strings.Repeat("n", 32),
		"MFAFLOW_PUBLIC_URL=https://mfa.example.com", "MFAFLOW_CONSOLE_URL=none",
	)
	apis := []*apiClient{
		{base: startServe(t, bin, env), http: &http.Client{Timeout: 30 * time.Second}},
		{base: startServe(t, bin, env), http: &http.Client{Timeout: 30 * time.Second}},
	}

	const acct = "two-proc"
	putAccount(t, st, acct, "13800000061", "100061")
	_, secret := bindDevice(t, st, keys, acct)
	if _, err := st.SetProtection(context.Background(), acct, store.Protection{Login: true}); err != nil {
		t.Fatal(err)
	}
	path := "/v1/accounts/" + acct + "/mfa/verify"
	evaluated, locked := 0, 0
	maxRetry := 0
	for i := 0; i < 1000; i++ {
		good := mfa.TOTP(secret, time.Now(), mfa.Params{})
		n, _ := strconv.Atoi(good)
		wrong := fmt.Sprintf("%06d", (n+500000)%1000000)
		req, _ := http.NewRequest(http.MethodPost, apis[i%2].base+path, strings.NewReader(`{"code":"`+wrong+`","purpose":"login"}`))
		req.Header.Set("Authorization", "Bearer "+consoleKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := apis[i%2].http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			evaluated++
		case http.StatusTooManyRequests:
			locked++
			ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 60 {
				t.Fatalf("429 with Retry-After %q, want 1-60 s", resp.Header.Get("Retry-After"))
			}
			maxRetry = max(maxRetry, ra)
		default:
			t.Fatalf("attempt %d on process %d: %d", i, i%2, resp.StatusCode)
		}
	}
	t.Logf("1,000 wrong codes over two processes: %d evaluated, %d refused while locked (Retry-After up to %d s)", evaluated, locked, maxRetry)
	if evaluated != mfa.DefaultLockThreshold {
		t.Fatalf("%d failures evaluated, want exactly the threshold %d: the lock must hold across processes", evaluated, mfa.DefaultLockThreshold)
	}
	for i, a := range apis {
		code, out := a.call(http.MethodPost, path, consoleKey, map[string]any{"code": mfa.TOTP(secret, time.Now(), mfa.Params{}), "purpose": "login"})
		if code != http.StatusTooManyRequests {
			t.Fatalf("a valid code on process %d during the lock = %d %v", i, code, out)
		}
	}
}
