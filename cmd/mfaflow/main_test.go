package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/internal/harness"
)

func TestRunErrorsNameTheSetting(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no command", nil, nil, "no command"},
		{"unknown command", []string{"frobnicate"}, nil, `unknown command "frobnicate"`},
		{"serve without temporal", []string{"serve"}, nil, "TEMPORAL_ADDRESS: required"},
		{"serve bad duration", []string{"serve"}, map[string]string{"MFAFLOW_REVIEW_SLA": "soon"}, "MFAFLOW_REVIEW_SLA:"},
		{"serve bad flag value", []string{"serve", "-four-eyes", "three"}, nil, "-four-eyes:"},
		{"worker without database", []string{"worker"}, map[string]string{"TEMPORAL_ADDRESS": "127.0.0.1:7233"}, "DATABASE_URL: required"},
		{"migrate without database", []string{"migrate"}, nil, "DATABASE_URL: required"},
		{"serve bad key ring", []string{"serve"}, map[string]string{
			"TEMPORAL_ADDRESS": "127.0.0.1:7233", "DATABASE_URL": "postgres://x@127.0.0.1:1/x", "S3_ENDPOINT": "127.0.0.1:9000",
			"S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b", "MFAFLOW_SECRET_KEYS": "k1:not-base64-key-material",
			"MFAFLOW_CONSOLE_API_KEYS": "console-key-0123456789abcdef", "MFAFLOW_JWT_HS256_SECRET": strings.Repeat("s", 32),
			"MFAFLOW_NOTIFIER_URL": "http://127.0.0.1:1/notify", "MFAFLOW_NOTIFIER_SECRET": strings.Repeat("n", 32),
			"MFAFLOW_PUBLIC_URL": "https://mfa.example.com", "MFAFLOW_CONSOLE_URL": "none",
		}, "MFAFLOW_SECRET_KEYS:"},
		{"serve with JWKS but no issuer", []string{"serve"}, withProd(map[string]string{"MFAFLOW_JWKS_URL": "https://idp.example.com/jwks", "MFAFLOW_JWT_AUDIENCE": "mfaflow"}), "MFAFLOW_JWT_ISSUER: required"},
		{"serve with JWKS but no audience", []string{"serve"}, withProd(map[string]string{"MFAFLOW_JWKS_URL": "https://idp.example.com/jwks", "MFAFLOW_JWT_ISSUER": "https://idp.example.com/"}), "MFAFLOW_JWT_AUDIENCE: required"},
		{"serve without public URL", []string{"serve"}, withProd(map[string]string{"MFAFLOW_PUBLIC_URL": ""}), "MFAFLOW_PUBLIC_URL: required"},
		{"worker without public URL", []string{"worker"}, withProd(map[string]string{"MFAFLOW_PUBLIC_URL": ""}), "MFAFLOW_PUBLIC_URL: required"},
		{"worker without a session-revocation webhook", []string{"worker"}, withProd(map[string]string{"MFAFLOW_CONSOLE_URL": ""}), "MFAFLOW_CONSOLE_URL: required"},
		{"worker with a console URL and no secret", []string{"worker"}, withProd(map[string]string{"MFAFLOW_CONSOLE_URL": "https://console.example.com/revoke"}), "MFAFLOW_CONSOLE_SECRET: required"},
		{"serve trusting every address", []string{"serve"}, withProd(map[string]string{"MFAFLOW_TRUSTED_PROXIES": "0.0.0.0/0"}), "MFAFLOW_TRUSTED_PROXIES:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			err := run(context.Background(), tt.args, env(tt.env), &out, &errw)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run(%v) error = %v, want it to contain %q", tt.args, err, tt.want)
			}
			if strings.Contains(err.Error(), "not-base64-key-material") {
				t.Fatalf("error echoes key material: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

// withProd returns a complete production environment (values only; nothing
// is reached before the check) changed by m; an empty value unsets.
func withProd(m map[string]string) map[string]string {
	env := map[string]string{
		"TEMPORAL_ADDRESS": "127.0.0.1:7233", "DATABASE_URL": "postgres://x@127.0.0.1:1/x", "S3_ENDPOINT": "127.0.0.1:9000",
		"S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b", "MFAFLOW_SECRET_KEYS": "k1:not-base64-key-material",
		"MFAFLOW_CONSOLE_API_KEYS": "console-key-0123456789abcdef", "MFAFLOW_JWT_HS256_SECRET": strings.Repeat("s", 32),
		"MFAFLOW_NOTIFIER_URL": "http://127.0.0.1:1/notify", "MFAFLOW_NOTIFIER_SECRET": strings.Repeat("n", 32),
		"MFAFLOW_PUBLIC_URL": "https://mfa.example.com", "MFAFLOW_CONSOLE_URL": "none",
	}
	for k, v := range m {
		env[k] = v
	}
	return env
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"serve", "-h"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"TEMPORAL_ADDRESS", "DATABASE_URL", "MFAFLOW_FOUR_EYES"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("serve -h does not list %s", v)
		}
	}
}

// devProcess is a running "mfaflow dev" child process.
type devProcess struct {
	cmd    *exec.Cmd
	api    string
	banner string
}

// built is the mfaflow binary the tests of this process share.
var built struct {
	sync.Once
	bin string
	err error
	out []byte
}

// buildBinary builds mfaflow once for the tests of the process; the binary
// is removed when they end.
func buildBinary(t *testing.T) string {
	t.Helper()
	built.Do(func() {
		dir, err := os.MkdirTemp("", "mfaflow-bin-")
		if err != nil {
			built.err = err
			return
		}
		harness.AtExit(func() { _ = os.RemoveAll(dir) })
		built.bin = filepath.Join(dir, "mfaflow")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

var apiLine = regexp.MustCompile(`(?m)^\s+API\s+(http://[^\s/]+)`)

func startDev(t *testing.T, bin, dataDir string) *devProcess {
	t.Helper()
	return startDevWith(t, bin, dataDir, []string{"MFAFLOW_APPEAL_COOLDOWN=0"})
}

// startDevWith runs "mfaflow dev" on dataDir with every port picked freely
// and env added to the environment, and returns once its banner is out.
func startDevWith(t *testing.T, bin, dataDir string, env []string) *devProcess {
	t.Helper()
	cmd := exec.Command(bin, "dev", "-data-dir", dataDir, "-http-addr", "127.0.0.1:0",
		"-temporal-port", "0", "-ui-port", "0", "-s3-port", "0")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "dev.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd}
	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		_ = logf.Close()
	})
	var banner strings.Builder
	deadline := time.After(180 * time.Second)
	for p.api == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				log, _ := os.ReadFile(logf.Name())
				t.Fatalf("mfaflow dev exited before its banner:\n%s\n%s", banner.String(), log)
			}
			banner.WriteString(line + "\n")
			if m := apiLine.FindStringSubmatch(line); m != nil {
				p.api = m[1]
			}
		case <-deadline:
			t.Fatalf("no banner after 180s:\n%s", banner.String())
		}
	}
	// Read the rest of the banner (up to the Ctrl-C line).
	for !strings.Contains(banner.String(), "Ctrl-C") {
		select {
		case line := <-lines:
			banner.WriteString(line + "\n")
		case <-time.After(5 * time.Second):
			t.Fatalf("banner incomplete:\n%s", banner.String())
		}
	}
	p.banner = banner.String()
	go func() {
		for range lines {
		}
	}()
	return p
}

// stop sends Ctrl-C and expects a clean exit.
func (p *devProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("mfaflow dev did not exit cleanly on Ctrl-C: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mfaflow dev still running 30s after Ctrl-C")
	}
}

func waitReady(t *testing.T, api string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		resp, err := http.Get(api + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("/readyz not 200 within %s", within)
	return 0
}

func adminToken(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "dev-secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s devSecrets
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s.AdminToken
}

func do(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDevStackRestartKeepsState runs the real binary twice on one data dir.
func TestDevStackRestartKeepsState(t *testing.T) {
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")

	start := time.Now()
	p := startDev(t, bin, dataDir)
	took := waitReady(t, p.api, 10*time.Second)
	t.Logf("first start: banner after %s, /readyz 200 after %s more", time.Since(start)-took, took)
	for _, want := range []string{"first start", "console API key", "reviewer JWT", "admin JWT", "Temporal UI    http://", "demo-unverified"} {
		if !strings.Contains(p.banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, p.banner)
		}
	}
	tok := adminToken(t, dataDir)
	account := `{"type":"personal","bound_phone":"13812345678","logins":[{"kind":"qq","id":"123456"}],"real_name":{"verified":true,"name":"王五","id_number":"110101199003071233"}}`
	if code, body := do(t, http.MethodPut, p.api+"/v1/admin/accounts/restart-1", tok, account); code != http.StatusCreated {
		t.Fatalf("PUT account = %d %s", code, body)
	}
	if code, body := do(t, http.MethodGet, p.api+"/v1/admin/accounts/demo-enterprise", tok, ""); code != http.StatusOK || !strings.Contains(body, "91350100M000100Y43") {
		t.Fatalf("seeded enterprise account = %d %s", code, body)
	}
	p.stop(t)

	start = time.Now()
	p2 := startDev(t, bin, dataDir)
	took = waitReady(t, p2.api, 10*time.Second)
	t.Logf("restart: /readyz 200 %s after start", time.Since(start))
	if !strings.Contains(p2.banner, "restarted") {
		t.Errorf("second banner does not say restarted:\n%s", p2.banner)
	}
	if tok2 := adminToken(t, dataDir); tok2 != tok {
		t.Error("admin token changed across restarts")
	}
	code, body := do(t, http.MethodGet, p2.api+"/v1/admin/accounts/restart-1", tok, "")
	if code != http.StatusOK || !strings.Contains(body, `"bound_phone":"13812345678"`) {
		t.Fatalf("account after restart = %d %s", code, body)
	}
	if code, _ := do(t, http.MethodGet, p2.api+"/dev/outbox", "", ""); code != http.StatusOK {
		t.Fatalf("/dev/outbox = %d", code)
	}
	// The demo token cards were imported once and can be read like a card.
	if !strings.Contains(p2.banner, "MFAD-0001") {
		t.Errorf("banner lacks the demo serials:\n%s", p2.banner)
	}
	code, body = do(t, http.MethodGet, p2.api+"/dev/hardware-tokens/MFAD-0003/code", "", "")
	if code != http.StatusOK || !regexp.MustCompile(`"code":"\d{6}"`).MatchString(body) {
		t.Fatalf("demo card code = %d %s", code, body)
	}
	if code, _ := do(t, http.MethodGet, p2.api+"/dev/hardware-tokens/NOPE-0001/code", "", ""); code != http.StatusNotFound {
		t.Fatalf("unknown card = %d, want 404", code)
	}
	_ = took
	p2.stop(t)
}

func TestTOTP(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	var out bytes.Buffer
	if err := run(context.Background(), []string{"totp", "-pair", secret}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d{6} \d{6}\n$`).MatchString(out.String()) {
		t.Fatalf("totp -pair = %q", out.String())
	}
	if err := run(context.Background(), []string{"totp", "not base32!"}, func(string) string { return "" }, io.Discard, io.Discard); err == nil || strings.Contains(err.Error(), "not base32!") {
		t.Fatalf("bad secret: %v", err)
	}
}
