// Package temporalharness starts a real in-process Temporal server
// (go.temporal.io/server/temporaltest) for integration tests, with mfaflow's
// custom search attributes registered and Worker Deployment versioning on:
// its workers are versioned as production's are. It lives apart from package harness
// so tests that need only PostgreSQL or MinIO do not link the server.
package temporalharness

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

// Server is a running test server.
type Server struct {
	*temporaltest.TestServer
	t *testing.T
}

// Start starts a fresh server for t, registers the search attributes and
// stops it when t ends. Its clients use dc when given (production encrypts
// every payload: pass codec.DataConverter(keys)).
func Start(t *testing.T, dc ...converter.DataConverter) *Server {
	t.Helper()
	opts := client.Options{Logger: quiet()}
	if len(dc) > 0 {
		opts.DataConverter = dc[0]
	}
	return start(t, opts)
}

// StartEncrypted is Start with production's converters: every payload and
// failure is encrypted with keys.
func StartEncrypted(t *testing.T, keys *mfa.Keyring) *Server {
	t.Helper()
	return start(t, codec.ClientOptions(keys, client.Options{Logger: quiet()}))
}

// Options are the settings of StartWith.
type Options struct {
	// Client is the base of every client's options (the codec's converters).
	Client client.Options
	// Dynamic sets dynamic config values of the server by key, such as
	// "limit.historyCount.suggestContinueAsNew" (the server's
	// common/dynamicconfig/constants.go names them).
	Dynamic map[string]any
}

// StartWith is Start with the server's dynamic config changed.
func StartWith(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Client.Logger == nil {
		o.Client.Logger = quiet()
	}
	return start(t, o.Client, o.Dynamic)
}

// dynamic is the test server's dynamic config: temporaltest's own, Worker
// Deployment versioning on (the default of server v1.32, said explicitly,
// as the dev stack says it), and extra.
func dynamic(extra map[string]any) dynamicconfig.StaticClient {
	dc := dynamicconfig.StaticClient{
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key():    true,
		dynamicconfig.EnableDeploymentVersions.Key():                   true,
		dynamicconfig.FrontendEnableWorkerVersioningWorkflowAPIs.Key(): true,
	}
	for k, v := range extra {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	return dc
}

// TestBuildID is the build id of the workers NewWorkerWithOptions starts
// when the options name none.
const TestBuildID = "test"

// NewWorkerWithOptions starts a worker as production does: versioned, in
// the Worker Deployment worker.DeploymentName, as build TestBuildID unless
// opts name a version, with workflows pinned unless registered otherwise.
// It returns once the deployment has a current version (the first worker's
// becomes current, worker.Bootstrap), so a workflow started next has a
// worker to go to.
func (s *Server) NewWorkerWithOptions(taskQueue string, register func(sdkworker.Registry), opts sdkworker.Options) sdkworker.Worker {
	s.t.Helper()
	if !opts.DeploymentOptions.UseVersioning {
		opts.DeploymentOptions = worker.Options(TestBuildID).DeploymentOptions
	}
	w := s.TestServer.NewWorkerWithOptions(taskQueue, register, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := worker.Bootstrap(ctx, s.GetDefaultClient(), opts.DeploymentOptions.Version.BuildID); err != nil {
		s.t.Fatalf("temporalharness: worker deployment version %s: %v", opts.DeploymentOptions.Version.BuildID, err)
	}
	return w
}

// NewWorker is NewWorkerWithOptions with the default options.
func (s *Server) NewWorker(taskQueue string, register func(sdkworker.Registry)) sdkworker.Worker {
	s.t.Helper()
	return s.NewWorkerWithOptions(taskQueue, register, sdkworker.Options{})
}

func start(t *testing.T, opts client.Options, extra ...map[string]any) *Server {
	t.Helper()
	var dyn map[string]any
	if len(extra) > 0 {
		dyn = extra[0]
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t), temporaltest.WithBaseClientOptions(opts),
		temporaltest.WithBaseServerOptions(temporal.WithDynamicConfigClient(dynamic(dyn))))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := ts.GetDefaultClient().OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        ts.GetDefaultNamespace(),
		SearchAttributes: workflows.SearchAttributes,
	})
	if err != nil {
		t.Fatalf("temporalharness: add search attributes: %v", err)
	}
	return &Server{TestServer: ts, t: t}
}

// quiet logs the SDK client's warnings and errors only.
func quiet() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}
