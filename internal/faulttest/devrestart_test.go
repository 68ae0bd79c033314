package faulttest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/workflows"
)

// devProc is a running `mfaflow dev` child process.
type devProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	api  string
	log  string
}

var bannerAPI = regexp.MustCompile(`^\s+API\s+(http://[^\s/]+)`)

// startDev runs `mfaflow dev` on dataDir with every port picked freely and
// returns once the banner named the API.
func startDev(t *testing.T, bin, dataDir string) *devProc {
	t.Helper()
	cmd := exec.Command(bin, "dev", "-data-dir", dataDir, "-http-addr", "127.0.0.1:0",
		"-temporal-port", "0", "-ui-port", "0", "-s3-port", "0")
	cmd.Env = environ("MFAFLOW_APPEAL_COOLDOWN=0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &devProc{cmd: cmd, done: make(chan struct{}), log: filepath.Join(t.TempDir(), "dev.log")}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	apiURL := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := bannerAPI.FindStringSubmatch(sc.Text()); m != nil && len(apiURL) == 0 {
				apiURL <- m[1]
			}
		}
	}()
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(p.kill)
	select {
	case p.api = <-apiURL:
	case <-p.done:
		t.Fatalf("mfaflow dev exited before its banner:\n%s", logTail(p.log, 4000))
	case <-time.After(90 * time.Second):
		t.Fatalf("no banner from mfaflow dev after 90s:\n%s", logTail(p.log, 4000))
	}
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *devProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitReady polls /readyz until it answers 200.
func (p *devProc) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.api + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("/readyz not 200 within %s:\n%s", within, logTail(p.log, 4000))
}

// devSecrets are the keys and tokens `mfaflow dev` keeps in its data dir.
type devSecrets struct {
	ConsoleKey    string `json:"console_key"`
	ReviewerToken string `json:"reviewer_token"`
}

// mustCall is apiClient.call that retries a 503 or a transport error for
// up to a minute (the dev stack's worker catching up after a restart) and
// fails the test unless the answer has status want.
func mustCall(t *testing.T, c *apiClient, want int, method, path, token string, body any) map[string]any {
	t.Helper()
	var code int
	var out map[string]any
	within(time.Minute, 500*time.Millisecond, func() bool {
		code, out = c.call(method, path, token, body)
		return code != 0 && code != http.StatusServiceUnavailable
	})
	if code != want {
		t.Fatalf("%s %s = %d %v, want %d", method, path, code, out, want)
	}
	return out
}

// TestDevStackKilledMidAppeal kills `mfaflow dev` with SIGKILL after an
// appeal's document was uploaded and restarts it on the same data dir: the
// appeal and its document are still there, and it goes on to the unbind.
func TestDevStackKilledMidAppeal(t *testing.T) {
	testStart := time.Now()
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	p := startDev(t, bin, dataDir)
	p.waitReady(t, 60*time.Second)
	t.Logf("dev stack ready %s after the start (build included)", time.Since(testStart).Round(time.Millisecond))
	raw, err := os.ReadFile(filepath.Join(dataDir, "dev-secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sec devSecrets
	if err := json.Unmarshal(raw, &sec); err != nil || sec.ConsoleKey == "" || sec.ReviewerToken == "" {
		t.Fatalf("dev-secrets.json: %v", err)
	}
	c := &apiClient{base: p.api, http: &http.Client{Timeout: 2 * time.Minute}}

	// demo-personal needs an MFA device: bind a virtual one through the
	// console API, reading the SMS code from the dev outbox.
	const acct, phone = "demo-personal", "13800138000"
	base := "/v1/accounts/" + acct + "/mfa"
	out := mustCall(t, c, http.StatusCreated, http.MethodPost, base+"/bindings", sec.ConsoleKey, map[string]any{"device_type": "virtual"})
	bid, _ := out["binding_id"].(string)
	var sms string
	within(10*time.Second, 100*time.Millisecond, func() bool {
		_, box := c.call(http.MethodGet, "/dev/outbox?to="+phone, "", nil)
		msgs, _ := box["messages"].([]any)
		for _, m := range msgs {
			m, _ := m.(map[string]any)
			if m["kind"] == "sms_code" {
				sms = regexp.MustCompile(`\b\d{6}\b`).FindString(m["body"].(string))
				return sms != ""
			}
		}
		return false
	})
	if sms == "" {
		t.Fatal("no SMS code in the dev outbox")
	}
	out = mustCall(t, c, http.StatusOK, http.MethodPost, base+"/bindings/"+bid+"/sms-code", sec.ConsoleKey, map[string]any{"code": sms})
	secret, err := mfa.DecodeSecret(out["secret"].(string))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mustCall(t, c, http.StatusOK, http.MethodPost, base+"/bindings/"+bid+"/confirm", sec.ConsoleKey, map[string]any{
		"code1": mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{}), "code2": mfa.TOTP(secret, now, mfa.Params{}),
		"protection": map[string]bool{"login": true, "operation": false},
	})

	// File the appeal and upload the photo.
	out = mustCall(t, c, http.StatusCreated, http.MethodPost, "/v1/appeals", "", map[string]any{
		"account_id": acct, "applicant_type": "personal", "account_login": map[string]string{"kind": "qq", "id": "10001"},
		"bound_phone": phone, "name": realName, "id_number": idNumber, "contact_phone": "13911112222",
	})
	id, token := out["appeal_id"].(string), out["access_token"].(string)
	photo := jpeg(300_000)
	sum := sha256.Sum256(photo)
	docPath := "/v1/appeals/" + id + "/documents/id_holding_photo"
	if code, out := c.raw(http.MethodPut, docPath, token, "image/jpeg", bytes.NewReader(photo), int64(len(photo))); code != http.StatusCreated || out["sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("upload = %d %v", code, out)
	}
	t.Logf("device bound, appeal filed and photo uploaded %s after the start", time.Since(testStart).Round(time.Millisecond))

	// kill -9, then the same data dir again.
	p.kill()
	restart := time.Now()
	p2 := startDev(t, bin, dataDir)
	p2.waitReady(t, 60*time.Second)
	t.Logf("restarted after SIGKILL: ready in %s", time.Since(restart).Round(time.Millisecond))
	c = &apiClient{base: p2.api, http: c.http}

	view := mustCall(t, c, http.StatusOK, http.MethodGet, "/v1/appeals/"+id, token, nil)
	if view["status"] != workflows.AppealCollecting {
		t.Fatalf("appeal after the restart: %v, want %s", view, workflows.AppealCollecting)
	}
	docs, _ := view["documents"].([]any)
	if len(docs) != 1 || docs[0].(map[string]any)["uploaded"] != true || docs[0].(map[string]any)["sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("documents after the restart: %v", docs)
	}
	out = mustCall(t, c, http.StatusAccepted, http.MethodPost, "/v1/appeals/"+id+"/submit", token, nil)
	if out["status"] != workflows.AppealPending {
		t.Fatalf("submit after the restart: %v", out)
	}

	// The reviewer sees the case and the same document bytes.
	cs := mustCall(t, c, http.StatusOK, http.MethodGet, "/v1/review/appeals/"+id, sec.ReviewerToken, nil)
	caseDocs, _ := cs["documents"].([]any)
	if len(caseDocs) != 1 {
		t.Fatalf("case documents after the restart: %v", cs["documents"])
	}
	link, _ := caseDocs[0].(map[string]any)["url"].(string)
	if !strings.HasPrefix(link, "http") {
		link = p2.api + link
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, photo) {
		t.Fatalf("the document after the restart: %d, %d bytes (want %d identical bytes)", resp.StatusCode, len(got), len(photo))
	}
	mustCall(t, c, http.StatusOK, http.MethodPost, "/v1/review/appeals/"+id+"/claim", sec.ReviewerToken, nil)
	mustCall(t, c, http.StatusOK, http.MethodPost, "/v1/review/appeals/"+id+"/decision", sec.ReviewerToken, map[string]any{"decision": "approve", "reason": "matches the record"})

	var status string
	if !within(60*time.Second, 250*time.Millisecond, func() bool {
		status, _ = c.appealStatus(id, token)
		return status == workflows.AppealUnbound
	}) {
		t.Fatalf("the appeal is %q 60s after the approval, want %s:\n%s", status, workflows.AppealUnbound, logTail(p2.log, 4000))
	}
	out = mustCall(t, c, http.StatusOK, http.MethodGet, base, sec.ConsoleKey, nil)
	if devs, _ := out["devices"].([]any); len(devs) != 0 {
		t.Errorf("devices after the unbind: %v", devs)
	}
	t.Logf("unbound; total %s", time.Since(testStart).Round(time.Millisecond))
}
