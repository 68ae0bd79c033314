package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	// DefaultNamespace is the namespace StartTemporal creates when
	// TemporalConfig.Namespace is empty.
	DefaultNamespace = "default"
	// DefaultRetention is how long closed workflows are kept in a namespace
	// that StartTemporal creates when TemporalConfig.Retention is zero.
	DefaultRetention = 7 * 24 * time.Hour
	// TemporalDBFile is the name of the SQLite file inside TemporalConfig.DataDir.
	TemporalDBFile = "temporal.db"

	clusterName     = "active"
	loopback        = "127.0.0.1"
	defaultStartMax = 2 * time.Minute
)

// TemporalConfig configures StartTemporal. The zero value of every field
// except DataDir means its default.
type TemporalConfig struct {
	// DataDir holds the SQLite file (TemporalDBFile). It is created when
	// missing and made absolute. Required.
	DataDir string
	// IP is the address the frontend and the Web UI listen on; default
	// 127.0.0.1. The internal services always listen on 127.0.0.1.
	IP string
	// FrontendPort is the frontend gRPC port; 0 picks a free port.
	FrontendPort int
	// UIPort is the Web UI port; 0 picks a free port and -1 runs no UI.
	UIPort int
	// Namespace is created on first start; default "default".
	Namespace string
	// Retention applies when the namespace is created; default DefaultRetention.
	Retention time.Duration
	// SearchAttributes are custom search attributes registered in Namespace
	// on every start; ones that already exist are left alone.
	SearchAttributes map[string]enumspb.IndexedValueType
	// Logger receives start-up messages and the server's warnings and
	// errors (its own info logging is dropped); nil discards everything.
	Logger *slog.Logger
}

// Temporal is a running embedded Temporal server (frontend, history,
// matching and worker services in this process) with an optional Web UI.
type Temporal struct {
	server    temporal.Server
	stopping  *atomic.Bool
	ui        *uiServer
	frontend  string
	httpAddr  string
	uiAddr    string
	namespace string
	logger    *slog.Logger

	stopOnce sync.Once
	stopErr  error
}

// StartTemporal starts an embedded Temporal server persisting to a SQLite
// file in cfg.DataDir and returns once the frontend answers and the namespace
// and search attributes are in place. The schema is created on first start
// only, so a later start on the same DataDir keeps workflows, the namespace
// and its search attributes. ctx bounds the start-up only; call Stop to end
// the server. It returns an error when the configuration is invalid, a port
// is taken, the database cannot be prepared, the server does not become
// ready, or a search attribute exists with another type.
func StartTemporal(ctx context.Context, cfg TemporalConfig) (*Temporal, error) {
	started := time.Now()
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	ports, err := cfg.ports()
	if err != nil {
		return nil, err
	}
	dbPath := filepath.Join(cfg.DataDir, TemporalDBFile)
	created, err := prepareSQLite(dbPath)
	if err != nil {
		return nil, err
	}
	sqlCfg := sqliteConfig(dbPath)
	if err := createNamespace(sqlCfg, cfg); err != nil {
		return nil, err
	}
	conf := serverConfig(cfg, ports, sqlCfg)
	stopping := new(atomic.Bool)
	serverLog := serverLogger{l: quiet(logger.With("component", "temporal"), slog.LevelWarn), stopping: stopping}
	server, err := temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: static.SingleLocalHost(net.JoinHostPort(connectHost(cfg.IP), strconv.Itoa(ports.frontend))),
			primitives.HistoryService:  static.SingleLocalHost(net.JoinHostPort(loopback, strconv.Itoa(ports.history))),
			primitives.MatchingService: static.SingleLocalHost(net.JoinHostPort(loopback, strconv.Itoa(ports.matching))),
			primitives.WorkerService:   static.SingleLocalHost(net.JoinHostPort(loopback, strconv.Itoa(ports.worker))),
		}),
		temporal.WithLogger(serverLog),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			// The Web UI and the reviewer queue list workflows often; the
			// default of 10 visibility requests per second is too tight.
			dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("devstack: create temporal server: %w", err)
	}
	if err := server.Start(); err != nil {
		stopping.Store(true)
		_ = server.Stop()
		return nil, fmt.Errorf("devstack: start temporal server: %w", err)
	}
	t := &Temporal{
		server:    server,
		stopping:  stopping,
		frontend:  net.JoinHostPort(connectHost(cfg.IP), strconv.Itoa(ports.frontend)),
		httpAddr:  net.JoinHostPort(connectHost(cfg.IP), strconv.Itoa(ports.frontendHTTP)),
		namespace: cfg.Namespace,
		logger:    logger,
	}

	readyCtx, cancel := withDefaultTimeout(ctx, defaultStartMax)
	defer cancel()
	if err := t.ensureNamespace(readyCtx, cfg.SearchAttributes); err != nil {
		_ = t.Stop()
		return nil, err
	}
	frontendReady := time.Since(started)

	if cfg.UIPort >= 0 {
		ui, err := startUI(readyCtx, uiOptions{
			ip:        cfg.IP,
			port:      ports.ui,
			frontend:  t.frontend,
			namespace: cfg.Namespace,
			logger:    logger,
		})
		if err != nil {
			_ = t.Stop()
			return nil, err
		}
		t.ui = ui
		t.uiAddr = net.JoinHostPort(connectHost(cfg.IP), strconv.Itoa(ports.ui))
	}
	logger.Info("temporal started",
		"frontend", t.frontend, "ui", t.uiAddr, "namespace", t.namespace,
		"db", dbPath, "new_db", created,
		"frontend_ready", frontendReady.Round(time.Millisecond),
		"took", time.Since(started).Round(time.Millisecond))
	return t, nil
}

// FrontendAddr returns the frontend's gRPC address as host:port, the value
// for client.Options.HostPort.
func (t *Temporal) FrontendAddr() string { return t.frontend }

// FrontendHTTPAddr returns the address of the frontend's HTTP API (for
// example GET /api/v1/namespaces) as host:port.
func (t *Temporal) FrontendHTTPAddr() string { return t.httpAddr }

// UIAddr returns the Web UI's address as host:port, or "" when no UI runs.
func (t *Temporal) UIAddr() string { return t.uiAddr }

// Namespace returns the namespace StartTemporal prepared.
func (t *Temporal) Namespace() string { return t.namespace }

// Stop shuts the Web UI and the server down and waits for them. Calling it
// again returns the first result. It returns an error when the server
// reports one while stopping.
func (t *Temporal) Stop() error {
	t.stopOnce.Do(func() {
		t.stopping.Store(true)
		if t.ui != nil {
			t.ui.stop()
		}
		if err := t.server.Stop(); err != nil {
			t.stopErr = fmt.Errorf("devstack: stop temporal server: %w", err)
		}
	})
	return t.stopErr
}

func (cfg *TemporalConfig) normalize() error {
	if cfg.DataDir == "" {
		return errors.New("devstack: temporal data dir is required")
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("devstack: temporal data dir: %w", err)
	}
	// The SQLite driver takes the path inside a file: URI without escaping.
	if strings.ContainsAny(dir, "?#%") {
		return fmt.Errorf("devstack: temporal data dir %q must not contain '?', '#' or '%%'", dir)
	}
	cfg.DataDir = dir
	if cfg.IP == "" {
		cfg.IP = loopback
	}
	if net.ParseIP(cfg.IP) == nil {
		return fmt.Errorf("devstack: temporal IP %q is not an IP address", cfg.IP)
	}
	if err := validPort(cfg.FrontendPort); err != nil {
		return fmt.Errorf("devstack: temporal frontend port: %w", err)
	}
	if cfg.UIPort != -1 {
		if err := validPort(cfg.UIPort); err != nil {
			return fmt.Errorf("devstack: temporal UI port (-1 disables the UI): %w", err)
		}
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Retention < 0 {
		return fmt.Errorf("devstack: temporal retention %v is negative", cfg.Retention)
	}
	for name, typ := range cfg.SearchAttributes {
		if name == "" || typ == enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED {
			return fmt.Errorf("devstack: search attribute %q needs a name and a type", name)
		}
	}
	return nil
}

type temporalPorts struct {
	frontend, frontendHTTP, history, matching, worker, ui int
}

// ports picks the listening ports: the configured frontend and UI ports, or
// free ones, and free loopback ports for the internal services. Configured
// ports are checked first because the server aborts on a failed listen.
func (cfg *TemporalConfig) ports() (temporalPorts, error) {
	if cfg.FrontendPort != 0 {
		if err := checkBindable(ServerTemporal, cfg.IP, cfg.FrontendPort); err != nil {
			return temporalPorts{}, err
		}
	}
	if cfg.UIPort > 0 {
		if err := checkBindable(ServerUI, cfg.IP, cfg.UIPort); err != nil {
			return temporalPorts{}, err
		}
	}
	var pp portPicker
	defer pp.release()
	p := temporalPorts{frontend: cfg.FrontendPort, ui: cfg.UIPort}
	picks := []struct {
		port *int
		host string
	}{
		{&p.frontend, cfg.IP},
		{&p.frontendHTTP, cfg.IP},
		{&p.ui, cfg.IP},
		{&p.history, loopback},
		{&p.matching, loopback},
		{&p.worker, loopback},
	}
	for _, pick := range picks {
		if *pick.port != 0 {
			continue // configured, or -1 for no UI
		}
		port, err := pp.pick(pick.host)
		if err != nil {
			return temporalPorts{}, err
		}
		*pick.port = port
	}
	return p, nil
}

// sqliteConfig is the server's view of the database: WAL journaling keeps
// commits cheap, and synchronous=NORMAL is durable across a crash of this
// process (a power loss may drop the last transactions, fine for dev data).
func sqliteConfig(dbPath string) *config.SQL {
	return &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbPath,
		ConnectAttributes: map[string]string{
			"mode":         "rwc",
			"journal_mode": "wal",
			"synchronous":  "normal",
			"busy_timeout": "10000",
		},
	}
}

// prepareSQLite makes sure dbPath holds the Temporal schema. A missing file
// gets the schema in a temporary file that is then renamed into place, so an
// interrupted first start never leaves a half-built database behind. It
// reports whether the database was created.
func prepareSQLite(dbPath string) (bool, error) {
	dir := filepath.Dir(dbPath)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false, fmt.Errorf("devstack: create temporal data dir: %w", err)
	}
	if _, err := os.Stat(dbPath); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("devstack: check temporal database: %w", err)
	}

	tmp := dbPath + ".init"
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(tmp + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("devstack: remove stale %s: %w", tmp+suffix, err)
		}
	}
	setup := &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		DatabaseName:      tmp,
		ConnectAttributes: map[string]string{"mode": "rwc"},
	}
	if err := sqliteschema.SetupSchema(setup); err != nil {
		return false, fmt.Errorf("devstack: create temporal schema: %w", err)
	}
	if err := os.Rename(tmp, dbPath); err != nil {
		return false, fmt.Errorf("devstack: move temporal database into place: %w", err)
	}
	return true, nil
}

// createNamespace writes the namespace with its search attributes straight
// into the database before the server starts, so it is usable at once. It
// does nothing when the namespace exists already.
func createNamespace(sqlCfg *config.SQL, cfg TemporalConfig) error {
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, cfg.Namespace, false, cfg.SearchAttributes)
	if err != nil {
		return fmt.Errorf("devstack: namespace %q: %w", cfg.Namespace, err)
	}
	ns.Detail.Config.Retention = durationpb.New(cfg.Retention)
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return fmt.Errorf("devstack: create namespace %q: %w", cfg.Namespace, err)
	}
	return nil
}

// serverConfig builds the static server configuration: SQLite for history
// and visibility, one history shard, the frontend (gRPC and HTTP API) on
// cfg.IP, the other services on loopback, and no metrics, pprof or
// membership listeners.
func serverConfig(cfg TemporalConfig, p temporalPorts, sqlCfg *config.SQL) *config.Config {
	frontend := net.JoinHostPort(connectHost(cfg.IP), strconv.Itoa(p.frontend))
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = loopback
	conf.Persistence = config.Persistence{
		DefaultStore:     sqliteplugin.PluginName,
		VisibilityStore:  sqliteplugin.PluginName,
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
	}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontend,
				HTTPAddress:            net.JoinHostPort(connectHost(cfg.IP), strconv.Itoa(p.frontendHTTP)),
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	service := func(ip string, port int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: ip}}
	}
	front := service(cfg.IP, p.frontend)
	// The HTTP API also serves Nexus; without it the server warns on start.
	front.RPC.HTTPPort = p.frontendHTTP
	conf.Services = map[string]config.Service{
		string(primitives.FrontendService): front,
		string(primitives.HistoryService):  service(loopback, p.history),
		string(primitives.MatchingService): service(loopback, p.matching),
		string(primitives.WorkerService):   service(loopback, p.worker),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontend
	return &conf
}

// ensureNamespace waits until the frontend serves the namespace, then adds
// the search attributes it lacks and waits until all of them are listed.
func (t *Temporal) ensureNamespace(ctx context.Context, attrs map[string]enumspb.IndexedValueType) error {
	return EnsureNamespace(ctx, t.frontend, t.namespace, attrs, t.logger)
}

// EnsureNamespace waits until the Temporal frontend at addr serves
// namespace, then adds the search attributes of attrs it lacks and waits
// until all of them are listed; the dev stack uses it on a Temporal server
// given by TEMPORAL_ADDRESS too. ctx bounds the wait. It returns an error
// when the namespace is not served in time, or an attribute exists with
// another type. A nil logger discards.
func EnsureNamespace(ctx context.Context, addr, namespace string, attrs map[string]enumspb.IndexedValueType, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c, err := dialFrontend(ctx, addr, namespace, logger)
	if err != nil {
		return err
	}
	defer c.Close()

	err = retry(ctx, func() error {
		_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
		return err
	})
	if err != nil {
		return fmt.Errorf("devstack: namespace %q not served: %w", namespace, err)
	}
	if len(attrs) == 0 {
		return nil
	}

	ops := c.OperatorService()
	added := false
	return retry(ctx, func() error {
		resp, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
		if err != nil {
			return err
		}
		missing := map[string]enumspb.IndexedValueType{}
		for name, want := range attrs {
			got, ok := resp.GetCustomAttributes()[name]
			if !ok {
				got, ok = resp.GetSystemAttributes()[name]
			}
			switch {
			case !ok:
				missing[name] = want
			case got != want:
				return permanent{fmt.Errorf("devstack: search attribute %s exists as %s, want %s", name, got, want)}
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if !added {
			_, err := ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
				Namespace:        namespace,
				SearchAttributes: missing,
			})
			var invalid *serviceerror.InvalidArgument
			if errors.As(err, &invalid) {
				return permanent{fmt.Errorf("devstack: add search attributes: %w", err)}
			}
			if err != nil {
				return err
			}
			added = true
			logger.Info("temporal search attributes added", "namespace", namespace, "count", len(missing))
		}
		// The namespace cache refreshes every few seconds; poll until the
		// new attributes show.
		return fmt.Errorf("devstack: search attributes not yet visible: %d missing", len(missing))
	})
}

// dialFrontend connects an SDK client to addr, retrying while the frontend
// comes up.
func dialFrontend(ctx context.Context, addr, namespace string, logger *slog.Logger) (client.Client, error) {
	var c client.Client
	err := retry(ctx, func() error {
		var err error
		c, err = client.DialContext(ctx, client.Options{
			HostPort:  addr,
			Namespace: namespace,
			Logger:    sdklog.NewStructuredLogger(quiet(logger, slog.LevelWarn)),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("devstack: temporal frontend %s not ready: %w", addr, err)
	}
	return c, nil
}

// permanent marks an error that retry must not retry.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// retry calls f until it succeeds, returns a permanent error, or ctx ends;
// it then returns f's last error.
func retry(ctx context.Context, f func() error) error {
	delay := 20 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// withDefaultTimeout returns ctx with a deadline of d from now unless ctx
// already has one.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
