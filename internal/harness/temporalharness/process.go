package temporalharness

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/workflows"
)

// The binaries StartProcess runs, built from the server module mfaflow
// already depends on (go.mod lists both as tools) into the module's bin
// folder, as the Makefile's deps target does; the environment variables
// name other paths.
const (
	ServerPackage  = "go.temporal.io/server/cmd/server"
	SQLToolPackage = "go.temporal.io/server/cmd/tools/sql"
	serverBinEnv   = "MFAFLOW_TEMPORAL_SERVER_BIN"
	sqlToolBinEnv  = "MFAFLOW_TEMPORAL_SQL_TOOL_BIN"
	processNS      = "default"
)

// Process is a real Temporal server running as its own process, the way
// production runs one: the server module's own main (cmd/server) on two
// databases of the harness's PostgreSQL (persistence and visibility) whose
// schema the module's own SQL schema tool (temporal-sql-tool) set up, with
// Worker Deployment versioning on in its dynamic config file, and the
// namespace and mfaflow's custom search attributes registered through its
// API. Stop and Start kill and restart it on the same ports and databases.
type Process struct {
	// Frontend is the frontend's gRPC host:port (TEMPORAL_ADDRESS).
	Frontend string
	// Namespace is the registered namespace (TEMPORAL_NAMESPACE).
	Namespace string
	// Log is the server's log file (warnings and errors).
	Log string

	bin, config string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
}

// StartProcess sets up the schema, starts the server, registers the
// namespace and search attributes and returns once the namespace answers.
// The server is killed when t ends. It fails the test, never skips, when
// the binaries cannot be built or the server does not come up.
func StartProcess(t *testing.T) *Process {
	t.Helper()
	serverBin, sqlTool := ProcessBinaries(t)
	dir := t.TempDir()
	stores := map[string]string{}
	for _, s := range []struct{ name, schema string }{
		{"default", "postgresql/v12/temporal"},
		{"visibility", "postgresql/v12/visibility"},
	} {
		u := harness.PostgresURL(t)
		db, err := parsePG(u)
		if err != nil {
			t.Fatalf("temporalharness: %v", err)
		}
		base := []string{"--plugin", "postgres12", "--ep", db.host, "-p", db.port, "-u", db.user, "--db", db.name}
		if db.password != "" {
			base = append(base, "--pw", db.password)
		}
		for _, args := range [][]string{{"setup-schema", "-v", "0.0"}, {"update-schema", "--schema-name", s.schema}} {
			out, err := exec.Command(sqlTool, append(base, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("temporalharness: temporal-sql-tool %s on %s: %v\n%s", args[0], s.schema, err, out)
			}
		}
		stores[s.name] = db.yaml(s.name)
	}
	// The frontend's gRPC and HTTP ports, then membership and gRPC ports
	// in turn, all below the kernel's ephemeral range (32768 up): the
	// membership ports go to a smallint column of the cluster membership
	// table, and a restarted server gets its ports back, which no outgoing
	// connection (an API's or worker's, to the dead frontend) can hold as
	// its local port in the meantime.
	ports := make([]int, 9)
	for i := range ports {
		for {
			p, err := smallPort()
			if err != nil {
				t.Fatalf("temporalharness: %v", err)
			}
			if !slices.Contains(ports, p) {
				ports[i] = p
				break
			}
		}
	}
	dynamic := filepath.Join(dir, "dynamicconfig.yaml")
	if err := os.WriteFile(dynamic, []byte(processDynamicConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Process{
		Frontend:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		Namespace: processNS,
		Log:       filepath.Join(dir, "temporal.log"),
		bin:       serverBin,
		config:    filepath.Join(dir, "temporal.yaml"),
	}
	cfg := fmt.Sprintf(processConfig, stores["default"], stores["visibility"],
		ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6], ports[7], ports[8], p.Frontend, dynamic)
	if err := os.WriteFile(p.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.start(); err != nil {
		t.Fatalf("temporalharness: %v", err)
	}
	t.Cleanup(p.kill)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := p.register(ctx); err != nil {
		t.Fatalf("temporalharness: %v\n%s", err, p.LogTail(4000))
	}
	return p
}

// Stop kills the server with SIGKILL, like a crash, and waits for it to exit.
func (p *Process) Stop(t *testing.T) {
	t.Helper()
	p.kill()
}

// Start starts a stopped server again on the same ports and databases and
// waits until its namespace answers.
func (p *Process) Start(t *testing.T) {
	t.Helper()
	if err := p.start(); err != nil {
		t.Fatalf("temporalharness: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := p.waitNamespace(ctx); err != nil {
		t.Fatalf("temporalharness: restart: %v\n%s", err, p.LogTail(4000))
	}
}

// LogTail returns the last n bytes of the server's log.
func (p *Process) LogTail(n int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "---- start %d at %s\n", p.starts+1, time.Now().Format(time.StampMilli))
	cmd := exec.Command(p.bin, "--config-file", p.config, "--allow-no-auth", "start")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	p.cmd, p.done = cmd, done
	p.starts++
	return nil
}

func (p *Process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// exited reports whether the running server has exited by itself.
func (p *Process) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// retry calls f every half second until it succeeds, the server exits or
// ctx ends.
func (p *Process) retry(ctx context.Context, what string, f func(context.Context) error) error {
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("the server exited during %s", what)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		last = f(cctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %v)", what, ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// register creates the namespace and mfaflow's search attributes.
func (p *Process) register(ctx context.Context) error {
	c, err := client.NewLazyClient(client.Options{HostPort: p.Frontend, Namespace: p.Namespace, Logger: quiet()})
	if err != nil {
		return err
	}
	defer c.Close()
	err = p.retry(ctx, "register the namespace", func(ctx context.Context) error {
		_, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        p.Namespace,
			WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
		})
		if errors.As(err, new(*serviceerror.NamespaceAlreadyExists)) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	err = p.retry(ctx, "add the search attributes", func(ctx context.Context) error {
		_, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: p.Namespace, SearchAttributes: workflows.SearchAttributes,
		})
		return err
	})
	if err != nil {
		return err
	}
	return p.waitNamespace(ctx)
}

// waitNamespace returns once a visibility query on the namespace answers:
// the frontend is up, knows the namespace and reaches both databases.
func (p *Process) waitNamespace(ctx context.Context) error {
	c, err := client.NewLazyClient(client.Options{HostPort: p.Frontend, Namespace: p.Namespace, Logger: quiet()})
	if err != nil {
		return err
	}
	defer c.Close()
	return p.retry(ctx, "wait for the namespace", func(ctx context.Context) error {
		_, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: p.Namespace})
		return err
	})
}

// smallPort returns a free loopback port below 32768 (a signed 16-bit
// number), tried at random from 20000 up.
func smallPort() (int, error) {
	for range 200 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free loopback port below 32768")
}

var buildOnce struct {
	sync.Once
	server, sqlTool string
	err             error
}

// ProcessBinaries returns the Temporal server and SQL schema tool binaries,
// built from the server module at the version this test binary links (the
// one go.mod requires):
//   - MFAFLOW_TEMPORAL_SERVER_BIN and MFAFLOW_TEMPORAL_SQL_TOOL_BIN when set,
//     as make test-go sets them to what make deps built; one that is
//     missing or of another server version fails the test;
//   - else bin/temporal-server and bin/temporal-sql-tool under the module
//     root, built with go build when missing or stale (minutes cold: the
//     server is large), as the harness builds MinIO. With CI=true a missing
//     binary fails the test instead, naming make deps: CI runs it first.
//
// It never skips, so the topology test cannot pass by not running.
func ProcessBinaries(t *testing.T) (server, sqlTool string) {
	t.Helper()
	buildOnce.Do(func() {
		root, err := harness.ModuleRoot()
		if err != nil {
			buildOnce.err = err
			return
		}
		want := linkedServerVersion()
		get := func(env, name, pkg string) (string, error) {
			if p := os.Getenv(env); p != "" {
				if _, err := os.Stat(p); err != nil {
					return "", fmt.Errorf("%s=%s: %w (make deps builds it)", env, p, err)
				}
				if got := binaryServerVersion(p); want != "" && got != want {
					return "", fmt.Errorf("%s=%s is built from go.temporal.io/server %q, go.mod requires %s (make deps rebuilds it)", env, p, got, want)
				}
				return p, nil
			}
			bin := filepath.Join(root, "bin", name)
			_, err := os.Stat(bin)
			switch {
			case err == nil && (want == "" || binaryServerVersion(bin) == want):
				return bin, nil
			case err != nil && os.Getenv("CI") == "true":
				return "", fmt.Errorf("%s is missing and %s is not set: CI runs make deps, which builds it", bin, env)
			}
			start := time.Now()
			t.Logf("temporalharness: building %s@%s into %s (minutes cold)", pkg, want, bin)
			cmd := exec.Command("go", "build", "-o", bin, pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
			}
			t.Logf("temporalharness: built %s in %s", name, time.Since(start).Round(time.Second))
			return bin, nil
		}
		if buildOnce.server, buildOnce.err = get(serverBinEnv, "temporal-server", ServerPackage); buildOnce.err != nil {
			return
		}
		buildOnce.sqlTool, buildOnce.err = get(sqlToolBinEnv, "temporal-sql-tool", SQLToolPackage)
	})
	if buildOnce.err != nil {
		t.Fatalf("temporalharness: %v", buildOnce.err)
	}
	return buildOnce.server, buildOnce.sqlTool
}

const serverModule = "go.temporal.io/server"

// linkedServerVersion is the server module's version in this binary (the
// in-process test server links it), "" when unknown.
func linkedServerVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	return moduleVersion(bi)
}

// binaryServerVersion is the server module's version in the binary at
// path, "" when it cannot be read.
func binaryServerVersion(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return ""
	}
	return moduleVersion(bi)
}

func moduleVersion(bi *debug.BuildInfo) string {
	if bi.Main.Path == serverModule {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == serverModule {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return ""
}

// pgDB is one database of the harness's PostgreSQL, as the server's
// config and the SQL tool name it.
type pgDB struct{ host, port, user, password, name string }

func parsePG(dsn string) (pgDB, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return pgDB{}, errors.New("the Temporal server process needs the harness's PostgreSQL as a postgres:// URL (set DATABASE_URL as one)")
	}
	pw, _ := u.User.Password()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	return pgDB{host: u.Hostname(), port: port, user: u.User.Username(), password: pw, name: strings.TrimPrefix(u.Path, "/")}, nil
}

// yaml is the datastore entry of the server's config.
func (d pgDB) yaml(name string) string {
	return fmt.Sprintf(`    %s:
      sql:
        pluginName: postgres12
        databaseName: %q
        connectAddr: %q
        connectProtocol: tcp
        user: %q
        password: %q
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h
`, name, d.name, net.JoinHostPort(d.host, d.port), d.user, d.password)
}

// processConfig is the server's static config: the two datastores, then
// the frontend's gRPC, HTTP and membership ports, the matching, history and
// worker services' gRPC and membership ports, the frontend address again
// and the dynamic config file.
const processConfig = `log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
%s%sglobal:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
services:
  frontend:
    rpc:
      grpcPort: %d
      httpPort: %d
      membershipPort: %d
      bindOnLocalHost: true
  matching:
    rpc:
      grpcPort: %d
      membershipPort: %d
      bindOnLocalHost: true
  history:
    rpc:
      grpcPort: %d
      membershipPort: %d
      bindOnLocalHost: true
  worker:
    rpc:
      grpcPort: %d
      membershipPort: %d
      bindOnLocalHost: true
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: %q
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: %q
  pollInterval: 10s
`

// processDynamicConfig turns Worker Deployment versioning on (the workers
// join the deployment mfaflow, worker.Options) and makes a new search
// attribute and namespace visible at once.
const processDynamicConfig = `system.enableDeploymentVersions:
  - value: true
system.enableDeployments:
  - value: true
frontend.workerVersioningWorkflowAPIs:
  - value: true
frontend.workerVersioningDataAPIs:
  - value: true
frontend.workerVersioningRuleAPIs:
  - value: true
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
system.namespaceCacheRefreshInterval:
  - value: 1s
limit.maxIDLength:
  - value: 255
`
