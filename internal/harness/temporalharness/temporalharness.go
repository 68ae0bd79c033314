// Package temporalharness starts a real in-process Temporal server
// (go.temporal.io/server/temporaltest) for integration tests, with mfaflow's
// custom search attributes registered. It lives apart from package harness
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
	"go.temporal.io/server/temporaltest"

	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/workflows"
)

// Server is a running test server.
type Server struct {
	*temporaltest.TestServer
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

func start(t *testing.T, opts client.Options) *Server {
	t.Helper()
	ts := temporaltest.NewServer(temporaltest.WithT(t), temporaltest.WithBaseClientOptions(opts))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := ts.GetDefaultClient().OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        ts.GetDefaultNamespace(),
		SearchAttributes: workflows.SearchAttributes,
	})
	if err != nil {
		t.Fatalf("temporalharness: add search attributes: %v", err)
	}
	return &Server{ts}
}

// quiet logs the SDK client's warnings and errors only.
func quiet() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}
