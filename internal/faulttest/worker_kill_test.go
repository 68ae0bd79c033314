package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/workflows"
)

// receiver is the platform notifier and the console's session-revocation
// hook: it checks each webhook's HMAC signature and records the messages.
type receiver struct {
	secrets map[string][]byte // by path

	mu       sync.Mutex
	badSig   int
	total    int
	messages map[string][]notify.Message // by X-Mfaflow-Id, every delivery
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	secret, ok := r.secrets[req.URL.Path]
	body, err := io.ReadAll(req.Body)
	if !ok || err != nil {
		http.Error(w, "no", http.StatusNotFound)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if !notify.Verify(secret, req.Header.Get("X-Mfaflow-Timestamp"), req.Header.Get("X-Mfaflow-Signature"), body, time.Now(), 5*time.Minute) {
		r.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m notify.Message
	if err := json.Unmarshal(body, &m); err != nil || m.ID == "" || m.ID != req.Header.Get("X-Mfaflow-Id") {
		r.badSig++
		http.Error(w, "bad message", http.StatusBadRequest)
		return
	}
	if r.messages == nil {
		r.messages = map[string][]notify.Message{}
	}
	r.messages[m.ID] = append(r.messages[m.ID], m)
	w.WriteHeader(http.StatusAccepted)
}

// revokes returns, per appeal id, the distinct message ids of the
// revoke_sessions messages received, and the number of deliveries.
func (r *receiver) revokes() (ids map[string][]string, deliveries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids = map[string][]string{}
	for id, ms := range r.messages {
		if ms[0].Kind != activities.KindRevokeSessions || ms[0].Channel != notify.Console {
			continue
		}
		deliveries += len(ms)
		ids[ms[0].Data["appeal_id"]] = append(ids[ms[0].Data["appeal_id"]], id)
	}
	return ids, deliveries
}

// workerProc is the real `mfaflow worker` as a child process.
type workerProc struct {
	bin, log string
	env      []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
	kills  int
}

func (w *workerProc) start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(w.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "---- start %d at %s\n", w.starts+1, time.Now().Format(time.StampMilli))
	cmd := exec.Command(w.bin, "worker")
	cmd.Env = w.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	w.cmd, w.done = cmd, done
	w.starts++
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (w *workerProc) kill() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd == nil {
		return
	}
	_ = w.cmd.Process.Kill()
	<-w.done
	w.cmd = nil
	w.kills++
}

// exited reports whether the running worker exited by itself.
func (w *workerProc) exited() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd == nil {
		return false
	}
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// appealRun is one appeal driven by the test.
type appealRun struct {
	account, phone, qq, device string
	id, token                  string
	err                        error
}

// TestWorkerSIGKILL drives 30 appeals from filing to unbind while the real
// worker binary is killed with SIGKILL every 0.5–3 s and restarted. No
// appeal is lost, each unbinds exactly once: every device revoked, one
// "appeal.unbind" audit entry per appeal, one revoke_sessions message id
// per appeal at the console hook.
func TestWorkerSIGKILL(t *testing.T) {
	const (
		appeals     = 30
		chaosFor    = 25 * time.Second
		settleBound = 150 * time.Second
		testBound   = 5 * time.Minute
	)
	// The build is not counted: on a cold machine it alone takes minutes.
	bin := buildBinary(t)
	testStart := time.Now()
	// Every wait below ends by then.
	testDeadline := testStart.Add(testBound - 5*time.Second)

	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	ts := temporalharness.StartEncrypted(t, keys)
	dbURL := harness.PostgresURL(t)
	st := storetest.OpenPostgres(t, dbURL)
	m := harness.MinIOServer(t)
	bucket := m.Bucket(t)
	blobs, err := blob.Open(context.Background(), blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: bucket, Encrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	notifierSecret, consoleSecret := strings.Repeat("n", 40), strings.Repeat("c", 40)
	rcv := &receiver{secrets: map[string][]byte{"/notify": []byte(notifierSecret), "/console": []byte(consoleSecret)}}
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)
	c := startAPI(t, apiDeps{st: st, tc: ts.GetDefaultClient(), docs: blobs, keys: keys})
	t.Logf("servers up in %s", time.Since(testStart).Round(time.Millisecond))

	w := &workerProc{bin: bin, log: filepath.Join(t.TempDir(), "worker.log"), env: environ(
		"TEMPORAL_ADDRESS="+ts.GetFrontendHostPort(),
		"TEMPORAL_NAMESPACE="+ts.GetDefaultNamespace(),
		"DATABASE_URL="+dbURL,
		"S3_ENDPOINT="+m.Endpoint, "S3_ACCESS_KEY="+m.AccessKey, "S3_SECRET_KEY="+m.SecretKey, "S3_BUCKET="+bucket,
		"MFAFLOW_SECRET_KEYS="+keys.Encode(),
		"MFAFLOW_NOTIFIER_URL="+hook.URL+"/notify", "MFAFLOW_NOTIFIER_SECRET="+notifierSecret,
		"MFAFLOW_CONSOLE_URL="+hook.URL+"/console", "MFAFLOW_CONSOLE_SECRET="+consoleSecret,
		"MFAFLOW_PUBLIC_URL=https://mfa.example.com",
	)}
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.kill)
	defer func() {
		if t.Failed() {
			t.Logf("worker log (tail):\n%s", logTail(w.log, 6000))
		}
	}()

	runs := make([]*appealRun, appeals)
	for i := range runs {
		r := &appealRun{account: fmt.Sprintf("ft-kill-%02d", i), phone: fmt.Sprintf("138001%05d", i), qq: fmt.Sprintf("77%04d", i)}
		putAccount(t, st, r.account, r.phone, r.qq)
		r.device, _ = bindDevice(t, st, keys, r.account)
		runs[i] = r
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The chaos monkey: SIGKILL the worker at random points and restart it.
	chaosStart := time.Now()
	chaosDone := make(chan time.Time, 1)
	go func() {
		defer func() { chaosDone <- time.Now() }()
		for time.Since(chaosStart) < chaosFor && ctx.Err() == nil {
			time.Sleep(500*time.Millisecond + rand.N(2500*time.Millisecond))
			w.kill()
			time.Sleep(rand.N(300 * time.Millisecond))
			if err := w.start(); err != nil {
				t.Errorf("restart worker: %v", err)
				return
			}
		}
	}()

	// The automated reviewer claims and approves whatever waits.
	rev := staffToken(t, "auto-reviewer", auth.RoleReviewer)
	reviewed := &counter{}
	revWait := autoReviewer(ctx, c, rev, reviewed)

	// The applicants: staggered over the first half of the chaos so unbinds
	// happen while the worker is being killed.
	steps := &counter{}
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 400 * time.Millisecond)
			r.err = driveAppeal(c, r, steps, testDeadline)
		}()
	}
	wg.Wait()
	t.Logf("all %d appeals filed and submitted %s after the chaos began (step answers: %s)", appeals, time.Since(chaosStart).Round(time.Millisecond), steps)
	for _, r := range runs {
		if r.err != nil {
			t.Errorf("%s: %v", r.account, r.err)
		}
	}
	chaosEnd := <-chaosDone
	if t.Failed() {
		t.FailNow()
	}
	// The last restart: make sure a worker runs.
	if w.exited() {
		t.Errorf("the worker exited by itself:\n%s", logTail(w.log, 3000))
	}
	w.kill()
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	w.kills-- // that one was not chaos
	lastRestart := time.Now()
	t.Logf("chaos lasted %s: %d SIGKILLs, %d worker starts", chaosEnd.Sub(chaosStart).Round(time.Millisecond), w.kills, w.starts)

	pending := map[string]string{}
	ok := within(min(settleBound, time.Until(testDeadline)), 500*time.Millisecond, func() bool {
		for _, r := range runs {
			s, _ := c.appealStatus(r.id, r.token)
			pending[r.id] = s
			if s == workflows.AppealUnbound {
				delete(pending, r.id)
			}
		}
		return len(pending) == 0
	})
	cancel()
	revWait()
	if !ok {
		t.Fatalf("%d appeals not unbound %s after the last restart: %v (reviewer answers: %s)", len(pending), time.Since(lastRestart).Round(time.Second), pending, reviewed)
	}
	t.Logf("all unbound %s after the last restart (reviewer answers: %s)", time.Since(lastRestart).Round(time.Millisecond), reviewed)

	// Exactly once, from the store, the audit log and the console hook.
	bg := context.Background()
	revokeIDs, deliveries := rcv.revokes()
	for _, r := range runs {
		d, err := st.GetDevice(bg, r.device)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != store.DeviceRevoked || d.RevokedAt.IsZero() {
			t.Errorf("%s: device %s is %s (revoked at %v)", r.account, d.ID, d.Status, d.RevokedAt)
		}
		es, err := st.ListAudit(bg, store.AuditFilter{Subject: r.id, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var unbinds []store.AuditEntry
		for _, e := range es {
			if e.Action == workflows.AuditAppealUnbind {
				unbinds = append(unbinds, e)
			}
		}
		if len(unbinds) != 1 {
			t.Errorf("%s: %d %q audit entries, want exactly 1: %+v", r.id, len(unbinds), workflows.AuditAppealUnbind, unbinds)
		} else if got := unbinds[0].Details["devices"]; got != r.device {
			t.Errorf("%s: the unbind audit names devices %q, want %q", r.id, got, r.device)
		} else if d.RevokedAt.After(unbinds[0].At) {
			t.Errorf("%s: device revoked at %v, after the unbind was audited at %v", r.id, d.RevokedAt, unbinds[0].At)
		}
		if ids := revokeIDs[r.id]; len(ids) != 1 {
			t.Errorf("%s: revoke_sessions message ids %v, want exactly one", r.id, ids)
		}
		a, err := st.GetAppeal(bg, r.id)
		if err != nil || a.Status != workflows.AppealUnbound || a.ClosedAt.IsZero() {
			t.Errorf("%s: store row %+v, %v; want unbound and closed", r.id, a, err)
		}
	}
	for _, c := range []*counter{steps, reviewed} {
		if n := c.matching(" 500 "); n > 0 {
			t.Errorf("%d answers were 500 internal errors, want a clear 503 while the worker is down: %s", n, c)
		}
	}
	rcv.mu.Lock()
	t.Logf("console hook: %d revoke_sessions deliveries for %d appeals; webhook posts %d, bad signatures %d", deliveries, len(revokeIDs), rcv.total, rcv.badSig)
	if rcv.badSig != 0 {
		t.Errorf("%d webhook posts failed the HMAC check", rcv.badSig)
	}
	rcv.mu.Unlock()
	t.Logf("total %s", time.Since(testStart).Round(time.Millisecond))
}

// driveAppeal files r's appeal, uploads its document and submits it,
// retrying what a killed worker made fail. It returns why it gave up.
func driveAppeal(c *apiClient, r *appealRun, steps *counter, testDeadline time.Time) error {
	deadline := time.Now().Add(2 * time.Minute)
	if testDeadline.Before(deadline) {
		deadline = testDeadline
	}
	retry := func(step string, f func() (bool, error)) error {
		for {
			done, err := f()
			if err != nil {
				return fmt.Errorf("%s: %w", step, err)
			}
			if done {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: still failing at the deadline", step)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	err := retry("file", func() (bool, error) {
		code, out := c.call(http.MethodPost, "/v1/appeals", "", personalAppeal(r.account, r.phone, r.qq))
		steps.add(fmt.Sprintf("file %d %s", code, errCode(out)))
		switch {
		case code == http.StatusCreated:
			r.id, _ = out["appeal_id"].(string)
			r.token, _ = out["access_token"].(string)
			return true, nil
		case code == 0 || code >= 500:
			return false, nil
		}
		return false, fmt.Errorf("%d %v", code, out)
	})
	if err != nil {
		return err
	}
	doc := jpeg(20_000)
	err = retry("upload", func() (bool, error) {
		code, out := c.raw(http.MethodPut, "/v1/appeals/"+r.id+"/documents/id_holding_photo", r.token, "image/jpeg", strings.NewReader(string(doc)), int64(len(doc)))
		steps.add(fmt.Sprintf("upload %d %s", code, errCode(out)))
		switch {
		case code == http.StatusCreated:
			return true, nil
		case code == 0 || code >= 500:
			return false, nil
		}
		return false, fmt.Errorf("%d %v", code, out)
	})
	if err != nil {
		return err
	}
	return retry("submit", func() (bool, error) {
		code, out := c.raw(http.MethodPost, "/v1/appeals/"+r.id+"/submit", r.token, "application/json", nil, 0)
		steps.add(fmt.Sprintf("submit %d %s", code, errCode(out)))
		switch {
		case code == http.StatusAccepted:
			return true, nil
		case code == 0 || code >= 500:
			return false, nil
		case code == http.StatusConflict && errCode(out) == "wrong_state":
			// An earlier attempt went through after all.
			s, _ := c.appealStatus(r.id, r.token)
			return s != "" && s != workflows.AppealCollecting, nil
		}
		return false, fmt.Errorf("%d %v", code, out)
	})
}
