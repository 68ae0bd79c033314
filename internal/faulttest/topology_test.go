package faulttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	sdkclient "go.temporal.io/sdk/client"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/workflows"
)

// proc is one real mfaflow process (serve or worker) that the test kills
// with SIGKILL and starts again with the same environment.
type proc struct {
	bin, sub, log string
	env           []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "---- start at %s\n", time.Now().Format(time.StampMilli))
	cmd := exec.Command(p.bin, p.sub)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	p.cmd, p.done = cmd, done
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// exited reports whether the running process exited by itself.
func (p *proc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// balancer is the load balancer in front of the API processes, as a
// console's HTTP client meets it: requests go round-robin to the APIs (one
// rotation per kind of request, so filings and decisions alternate between
// the APIs whatever else is sent), and one whose connection is refused
// (that process is down) goes to the next, which is safe since nothing was
// sent. It counts the answers per API.
type balancer struct {
	hosts []string

	mu      sync.Mutex
	next    map[string]int // kind: requests sent
	answers map[string]int // "host kind status"
}

func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	if b.next == nil {
		b.next = map[string]int{}
	}
	kind := requestKind(req)
	first := b.next[kind]
	b.next[kind]++
	b.mu.Unlock()
	var err error
	for i := range b.hosts {
		host := b.hosts[(first+i)%len(b.hosts)]
		r := req.Clone(req.Context())
		r.URL.Host, r.Host = host, host
		if i > 0 && req.Body != nil {
			if req.GetBody == nil {
				return nil, err
			}
			if r.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		var resp *http.Response
		resp, err = http.DefaultTransport.RoundTrip(r)
		if err == nil {
			b.count(host, kind, resp.StatusCode)
			return resp, nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, err
		}
	}
	return nil, err
}

// requestKind names the kind of an API request for the balancer's tallies.
func requestKind(req *http.Request) string {
	switch p := req.URL.Path; {
	case req.Method == http.MethodPost && p == "/v1/appeals":
		return "file"
	case strings.HasSuffix(p, "/decision"):
		return "decision"
	case strings.HasSuffix(p, "/submit"):
		return "submit"
	case strings.Contains(p, "/documents/"):
		return "upload"
	}
	return "other"
}

func (b *balancer) count(host, kind string, status int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.answers == nil {
		b.answers = map[string]int{}
	}
	b.answers[fmt.Sprintf("%s %s %d", host, kind, status)]++
}

// answered returns how many answers host gave to requests of kind with status.
func (b *balancer) answered(host, kind string, status int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.answers[fmt.Sprintf("%s %s %d", host, kind, status)]
}

// forwardedFor sets the client address a trusted proxy would forward, so
// each applicant has the per-IP filing budget of its own.
type forwardedFor struct {
	ip   string
	next http.RoundTripper
}

func (f forwardedFor) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("X-Forwarded-For", f.ip)
	return f.next.RoundTrip(r)
}

// TestProductionTopology runs mfaflow as production does: a Temporal server
// as its own process (the server module's cmd/server) on PostgreSQL with
// the schema set up by the module's temporal-sql-tool and Worker Deployment
// versioning on, two `mfaflow serve` and two `mfaflow worker` processes on
// one PostgreSQL database and a real MinIO, the APIs behind a round-robin
// balancer. Appeals are filed, submitted and approved through both APIs;
// mid-flight one worker and one API get SIGKILL and the Temporal server is
// killed and restarted. Every appeal then ends unbound exactly once: its
// device revoked, one unbind audit entry, one revoke_sessions message id at
// the console hook, and no answer was a 500. The workers' build became the
// deployment's current version by itself (nobody set it), and every appeal
// ran pinned to it.
func TestProductionTopology(t *testing.T) {
	const (
		appeals     = 10
		testBound   = 5 * time.Minute
		settleBound = 3 * time.Minute
		buildID     = "topology-1"
		// The Worker Deployment every mfaflow worker joins (issue 12
		// item 1; worker.DeploymentName).
		deploymentName = "mfaflow"
	)
	// The builds are not counted: cold, the Temporal server alone takes minutes.
	temporalharness.ProcessBinaries(t)
	bin := buildBinary(t)
	testStart := time.Now()
	testDeadline := testStart.Add(testBound - 5*time.Second)

	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	tp := temporalharness.StartProcess(t)
	defer func() {
		if t.Failed() {
			t.Logf("temporal server log (tail):\n%s", tp.LogTail(4000))
		}
	}()
	t.Logf("temporal server process on PostgreSQL up in %s (schema set up with temporal-sql-tool)", time.Since(testStart).Round(time.Millisecond))
	dbURL := harness.PostgresURL(t)
	st := storetest.OpenPostgres(t, dbURL)
	m := harness.MinIOServer(t)
	notifierSecret, consoleSecret := strings.Repeat("n", 40), strings.Repeat("c", 40)
	rcv := &receiver{secrets: map[string][]byte{"/notify": []byte(notifierSecret), "/console": []byte(consoleSecret)}}
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)
	env := environ(
		"TEMPORAL_ADDRESS="+tp.Frontend, "TEMPORAL_NAMESPACE="+tp.Namespace,
		"DATABASE_URL="+dbURL,
		"S3_ENDPOINT="+m.Endpoint, "S3_ACCESS_KEY="+m.AccessKey, "S3_SECRET_KEY="+m.SecretKey, "S3_BUCKET="+m.Bucket(t),
		"MFAFLOW_SECRET_KEYS="+keys.Encode(),
		"MFAFLOW_CONSOLE_API_KEYS="+consoleKey,
		"MFAFLOW_JWT_HS256_SECRET="+string(jwtSecret),
		"MFAFLOW_NOTIFIER_URL="+hook.URL+"/notify", "MFAFLOW_NOTIFIER_SECRET="+notifierSecret,
		"MFAFLOW_CONSOLE_URL="+hook.URL+"/console", "MFAFLOW_CONSOLE_SECRET="+consoleSecret,
		"MFAFLOW_PUBLIC_URL=https://mfa.example.com",
		"MFAFLOW_APPEAL_COOLDOWN=3s", "MFAFLOW_FOUR_EYES=none",
		"MFAFLOW_TRUSTED_PROXIES=127.0.0.1/32",
		"MFAFLOW_BUILD_ID="+buildID,
	)
	logs := t.TempDir()
	var apis, workers []*proc
	var hosts []string
	for i := range 2 {
		port, err := harness.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		host := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		hosts = append(hosts, host)
		apis = append(apis, &proc{bin: bin, sub: "serve", log: filepath.Join(logs, fmt.Sprintf("serve%d.log", i)), env: slices.Concat(env, []string{"MFAFLOW_HTTP_ADDR=" + host})})
		workers = append(workers, &proc{bin: bin, sub: "worker", log: filepath.Join(logs, fmt.Sprintf("worker%d.log", i)), env: env})
	}
	all := append(append([]*proc{}, apis...), workers...)
	for _, p := range all {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.kill)
	}
	defer func() {
		if t.Failed() {
			for _, p := range all {
				t.Logf("%s (tail):\n%s", filepath.Base(p.log), logTail(p.log, 3000))
			}
		}
	}()
	waitHealthy := func(i int) {
		t.Helper()
		c := &apiClient{base: "http://" + hosts[i], http: &http.Client{Timeout: 5 * time.Second}}
		if !within(time.Until(testDeadline), 200*time.Millisecond, func() bool { code, _ := c.call(http.MethodGet, "/healthz", "", nil); return code == http.StatusOK }) {
			t.Fatalf("mfaflow serve %d did not answer /healthz", i)
		}
	}
	for i := range apis {
		waitHealthy(i)
	}
	t.Logf("two APIs and two workers up %s after the start", time.Since(testStart).Round(time.Millisecond))

	lb := &balancer{hosts: hosts}
	client := func(ip string) *apiClient {
		return &apiClient{base: "http://balancer", http: &http.Client{Timeout: time.Minute, Transport: forwardedFor{ip: ip, next: lb}}}
	}
	runs := make([]*appealRun, appeals)
	for i := range runs {
		r := &appealRun{account: fmt.Sprintf("ft-topo-%02d", i), phone: fmt.Sprintf("138002%05d", i), qq: fmt.Sprintf("88%04d", i)}
		putAccount(t, st, r.account, r.phone, r.qq)
		r.device, _ = bindDevice(t, st, keys, r.account)
		runs[i] = r
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The reviewer claims and approves whatever waits, through the balancer.
	rev := staffToken(t, "topo-reviewer", auth.RoleReviewer)
	rc := client("10.9.0.1")
	reviewed := &counter{}
	revWait := autoReviewer(ctx, rc, rev, reviewed)

	// The applicants, staggered, each from an address of its own.
	steps := &counter{}
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 300 * time.Millisecond)
			r.err = driveAppeal(client(fmt.Sprintf("10.8.0.%d", i+1)), r, steps, testDeadline)
		}()
	}

	// The faults, once every appeal is filed (a filing cut off mid-request
	// cannot be told from a refused one, so the API dies after the filings)
	// and the first approvals are in: one worker and one API get SIGKILL,
	// then the Temporal server is killed and started again, then the two
	// killed processes come back.
	progress := func(what string, f func() bool) {
		t.Helper()
		if !within(time.Until(testDeadline), 100*time.Millisecond, f) {
			t.Fatalf("waiting for %s: step answers %s, reviewer answers %s", what, steps, reviewed)
		}
	}
	progress("every filing", func() bool { return steps.matching("file 201 ") == appeals })
	progress("an approval through each API", func() bool {
		return lb.answered(hosts[0], "decision", http.StatusOK) > 0 && lb.answered(hosts[1], "decision", http.StatusOK) > 0
	})
	faultStart := time.Now()
	workers[0].kill()
	apis[1].kill()
	before := reviewed.matching("approve 200 ")
	t.Logf("SIGKILL to worker 0 and API 1 %s after the start, with %d approvals in", faultStart.Sub(testStart).Round(time.Millisecond), before)
	progress("an approval with one API and one worker", func() bool { return reviewed.matching("approve 200 ") > before })
	// The faults must hit appeals in flight, not a finished run.
	unbound, err := st.ListAppeals(context.Background(), workflows.AppealUnbound, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	open := appeals - len(unbound)
	if open == 0 {
		t.Fatalf("every appeal was unbound before the Temporal server was killed: the faults came too late to test anything")
	}
	stopAt := time.Now()
	tp.Stop(t)
	t.Logf("temporal server killed with %d of %d appeals not yet unbound", open, appeals)
	tp.Start(t)
	t.Logf("temporal server killed and back in %s", time.Since(stopAt).Round(time.Millisecond))
	for _, p := range []*proc{workers[0], apis[1]} {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}
	waitHealthy(1)

	wg.Wait()
	for _, r := range runs {
		if r.err != nil {
			t.Errorf("%s: %v", r.account, r.err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for i, p := range all {
		if p.exited() {
			t.Errorf("process %d (%s) exited by itself", i, filepath.Base(p.log))
		}
	}

	sc := client("10.9.0.2")
	pending := map[string]string{}
	ok := within(min(settleBound, time.Until(testDeadline)), 500*time.Millisecond, func() bool {
		for _, r := range runs {
			s, _ := sc.appealStatus(r.id, r.token)
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
		t.Fatalf("%d appeals not unbound %s after the faults began: %v (reviewer answers: %s)", len(pending), time.Since(faultStart).Round(time.Second), pending, reviewed)
	}
	t.Logf("all %d appeals unbound %s after the faults began (step answers: %s; reviewer answers: %s)", appeals, time.Since(faultStart).Round(time.Millisecond), steps, reviewed)

	// Both APIs filed and decided.
	for i, h := range hosts {
		if n := lb.answered(h, "file", http.StatusCreated); n == 0 {
			t.Errorf("API %d filed no appeal", i)
		}
		if n := lb.answered(h, "decision", http.StatusOK); n == 0 {
			t.Errorf("API %d approved no appeal", i)
		}
	}
	// Versioning: the workers' build became the deployment's current
	// version by itself (worker.Bootstrap, on a deployment that never had
	// one, as the README's operations section tells), and every appeal ran
	// pinned to it.
	bg := context.Background()
	tc, err := sdkclient.Dial(sdkclient.Options{HostPort: tp.Frontend, Namespace: tp.Namespace, Logger: sdkQuiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	dep, err := tc.WorkerDeploymentClient().GetHandle(deploymentName).Describe(bg, sdkclient.WorkerDeploymentDescribeOptions{})
	if err != nil {
		t.Fatalf("describe worker deployment %s: %v", deploymentName, err)
	}
	if cur := dep.Info.RoutingConfig.CurrentVersion; cur == nil || cur.BuildID != buildID {
		t.Errorf("worker deployment %s: current version %+v, want build %s", deploymentName, cur, buildID)
	}
	for _, r := range runs {
		d, err := tc.DescribeWorkflowExecution(bg, r.id, "")
		if err != nil {
			t.Fatalf("describe %s: %v", r.id, err)
		}
		vi := d.GetWorkflowExecutionInfo().GetVersioningInfo()
		if vi.GetBehavior() != enumspb.VERSIONING_BEHAVIOR_PINNED || vi.GetDeploymentVersion().GetBuildId() != buildID ||
			vi.GetDeploymentVersion().GetDeploymentName() != deploymentName {
			t.Errorf("%s: versioning %v on %v, want pinned to %s build %s", r.id, vi.GetBehavior(), vi.GetDeploymentVersion(), deploymentName, buildID)
		}
	}
	// Exactly once, from the store, the audit log and the console hook.
	revokeIDs, deliveries := rcv.revokes()
	for _, r := range runs {
		d, err := st.GetDevice(bg, r.device)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != store.DeviceRevoked || d.RevokedAt.IsZero() {
			t.Errorf("%s: device %s is %s", r.account, d.ID, d.Status)
		}
		es, err := st.ListAudit(bg, store.AuditFilter{Subject: r.id, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		unbinds := 0
		for _, e := range es {
			if e.Action == workflows.AuditAppealUnbind {
				unbinds++
			}
		}
		if unbinds != 1 {
			t.Errorf("%s: %d %q audit entries, want exactly 1", r.id, unbinds, workflows.AuditAppealUnbind)
		}
		if ids := revokeIDs[r.id]; len(ids) != 1 {
			t.Errorf("%s: revoke_sessions message ids %v, want exactly one", r.id, ids)
		}
		a, err := st.GetAppeal(bg, r.id)
		if err != nil || a.Status != workflows.AppealUnbound || a.ClosedAt.IsZero() {
			t.Errorf("%s: store row %+v, %v; want unbound and closed", r.id, a.Status, err)
		}
	}
	for _, c := range []*counter{steps, reviewed} {
		if n := c.matching(" 500 "); n > 0 {
			t.Errorf("%d answers were 500 internal errors, want a clear 503 while a server is down: %s", n, c)
		}
	}
	rcv.mu.Lock()
	if rcv.badSig != 0 {
		t.Errorf("%d webhook posts failed the HMAC check", rcv.badSig)
	}
	rcv.mu.Unlock()
	t.Logf("console hook: %d revoke_sessions deliveries for %d appeals; total %s (bound %s)", deliveries, len(revokeIDs), time.Since(testStart).Round(time.Millisecond), testBound)
	if took := time.Since(testStart); took > testBound {
		t.Errorf("the topology test took %s, over its bound of %s", took.Round(time.Second), testBound)
	}
}
