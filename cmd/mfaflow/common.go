package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/internal/config"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/pgstore"
)

// loadConfig parses a subcommand's settings; -h prints them.
func loadConfig(name string, args []string, getenv func(string) string, stdout io.Writer, extra func(*flag.FlagSet)) (config.Config, bool, error) {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprintf(stdout, "mfaflow %s settings (environment variable or flag):\n%s", name, config.Usage())
			return config.Config{}, true, nil
		}
	}
	cfg, rest, err := config.LoadWith(name, args, getenv, extra)
	if err != nil {
		return cfg, false, err
	}
	if len(rest) > 0 {
		return cfg, false, fmt.Errorf("unexpected argument %q", rest[0])
	}
	return cfg, false, nil
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// openPostgres opens and migrates the production store.
func openPostgres(ctx context.Context, cfg config.Config, migrate bool) (*pgstore.DB, error) {
	db, err := pgstore.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if migrate {
		if err := db.Migrate(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	return db, nil
}

// dialTemporal returns a lazy client: the API starts while Temporal is down
// and answers 503 until it is back.
// Every payload is encrypted with the key ring (codec).
func dialTemporal(cfg config.Config, keys *mfa.Keyring, log *slog.Logger) (client.Client, error) {
	c, err := client.NewLazyClient(codec.ClientOptions(keys, client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    sdklog.NewStructuredLogger(log.With("component", "temporal-client")),
	}))
	if err != nil {
		return nil, fmt.Errorf("TEMPORAL_ADDRESS: %w", err)
	}
	return c, nil
}

func temporalPinger(c client.Client) api.Pinger {
	return api.PingFunc(func(ctx context.Context) error {
		_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	})
}

// productionNotifier sends SMS and e-mail through the platform notifier and
// session revocations through the console's hook.
func productionNotifier(cfg config.Config) notify.Notifier {
	n := notify.Router{Default: notify.Webhook{URL: cfg.NotifierURL, Secret: []byte(cfg.NotifierSecret)}}
	switch cfg.ConsoleURL {
	case config.ConsoleURLNone:
		n.Channels = map[string]notify.Notifier{notify.Console: noSessionRevocation{}}
	case "":
	default:
		n.Channels = map[string]notify.Notifier{notify.Console: notify.Webhook{URL: cfg.ConsoleURL, Secret: []byte(cfg.ConsoleSecret)}}
	}
	return n
}

// noSessionRevocation stands for the console's webhook when the operator
// set MFAFLOW_CONSOLE_URL=none: the sessions of an unbound account are not
// revoked by mfaflow, which the operator chose; the message is dropped.
type noSessionRevocation struct{}

func (noSessionRevocation) Notify(context.Context, notify.Message) error { return nil }

// jwtVerifier builds the reviewer/admin token check: JWKS when set, else HS256.
func jwtVerifier(cfg config.Config) *auth.Verifier {
	v := &auth.Verifier{Leeway: 30 * time.Second}
	if cfg.JWKSURL != "" {
		// RequireJWKS has checked both are set: every token must be the
		// IdP's (iss) and meant for mfaflow (aud).
		v.Keys = &auth.JWKS{URL: cfg.JWKSURL}
		v.Issuer, v.Audience = cfg.JWTIssuer, cfg.JWTAudience
	} else {
		v.Keys = auth.HS256(cfg.JWTSecret)
	}
	return v
}

// hexKey decodes a hex AES key of 16, 24 or 32 bytes.
func hexKey(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || (len(b) != 16 && len(b) != 24 && len(b) != 32) {
		return nil, errors.New("bad key")
	}
	return b, nil
}

func parseKeyring(cfg config.Config) (*mfa.Keyring, error) {
	k, err := mfa.ParseKeyring(cfg.SecretKeys)
	if err != nil {
		return nil, fmt.Errorf("MFAFLOW_SECRET_KEYS: %w", err)
	}
	return k, nil
}

// consoleService builds the console's verification service. A successful
// use of a device tells the account's appeal in cool-down (it cancels).
func consoleService(st store.Store, keys *mfa.Keyring, n notify.Notifier, tc client.Client, log *slog.Logger, wa *mfa.WebAuthn) *console.Service {
	return &console.Service{Store: st, Keys: keys, Notifier: n, Log: log, OnFactorUsed: api.FactorUsedHook(st, tc, log), WebAuthn: wa}
}

// newActivities builds the workflows' activities.
func newActivities(st store.Store, keys *mfa.Keyring, n notify.Notifier, blobs activities.DocumentStore, wa *mfa.WebAuthn) *activities.Activities {
	return &activities.Activities{Store: st, Notifier: n, Keys: keys, Blobs: blobs, WebAuthn: wa}
}

// webAuthn builds the WebAuthn relying party from the configuration; nil
// (security keys off) when no RP ID is set.
func webAuthn(cfg config.Config) (*mfa.WebAuthn, error) {
	if cfg.WebAuthnRPID == "" {
		return nil, nil
	}
	w, err := mfa.NewWebAuthn(mfa.WebAuthnConfig{RPID: cfg.WebAuthnRPID, RPName: cfg.WebAuthnRPName, Origins: cfg.WebAuthnOrigins, AAGUIDs: cfg.WebAuthnAAGUIDs})
	if err != nil {
		return nil, fmt.Errorf("MFAFLOW_WEBAUTHN_RP_ID: %w", err)
	}
	return w, nil
}

// appealConfig carries the appeal settings to the API.
func appealConfig(cfg config.Config, publicURL string) api.AppealConfig {
	return api.AppealConfig{
		DocumentDeadline: cfg.DocumentDeadline, ReviewSLA: cfg.ReviewSLA, Cooldown: cfg.AppealCooldown,
		Retention: cfg.Retention, FourEyes: cfg.FourEyes, PublicURL: publicURL,
	}
}

// ownerCancelToken computes the owner's cancel token of an appeal.
func ownerCancelToken(keys *mfa.Keyring) func(string) string {
	return func(id string) string { return activities.OwnerCancelToken(keys, id) }
}

// readyChecks names what /readyz checks.
func readyChecks(st store.Store, b *blobRef, tc client.Client) map[string]api.Pinger {
	return map[string]api.Pinger{
		"database":       st,
		"object_storage": b,
		"temporal":       temporalPinger(tc),
	}
}

// blobRef holds the object store once it could be opened; until then Ping
// retries the opening, so an API that started while S3 was down recovers.
type blobRef struct {
	cfg blob.Config
	mu  sync.Mutex
	s   *blob.Store
}

// Get returns the object store, opening it on first success.
func (r *blobRef) Get(ctx context.Context) (*blob.Store, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s == nil {
		s, err := blob.Open(ctx, r.cfg)
		if err != nil {
			return nil, err
		}
		r.s = s
	}
	return r.s, nil
}

// Put stores a document (see blob.Store.Put).
func (r *blobRef) Put(ctx context.Context, key string, rd io.Reader, size, max int64, contentType string) (blob.Object, error) {
	s, err := r.Get(ctx)
	if err != nil {
		return blob.Object{}, err
	}
	return s.Put(ctx, key, rd, size, max, contentType)
}

// Open reads a document.
func (r *blobRef) Open(ctx context.Context, key string) (io.ReadCloser, blob.Object, error) {
	s, err := r.Get(ctx)
	if err != nil {
		return nil, blob.Object{}, err
	}
	return s.Open(ctx, key)
}

// Delete removes a document.
func (r *blobRef) Delete(ctx context.Context, key string) error {
	s, err := r.Get(ctx)
	if err != nil {
		return err
	}
	return s.Delete(ctx, key)
}

// Ping checks the object store.
func (r *blobRef) Ping(ctx context.Context) error {
	s, err := r.Get(ctx)
	if err != nil {
		return err
	}
	return s.Ping(ctx)
}

// serveHTTP listens on addr and serves h until ctx ends, then shuts down
// gracefully. onListen receives the bound address (useful with port 0).
func serveHTTP(ctx context.Context, addr string, h http.Handler, onListen func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("MFAFLOW_HTTP_ADDR: %w", err)
	}
	if onListen != nil {
		onListen(ln.Addr())
	}
	return serveListener(ctx, ln, h)
}

// serveListener serves h on ln until ctx ends, then shuts down gracefully.
// The server bounds reading headers and bodies and writing answers
// (api.NewHTTPServer).
func serveListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := api.NewHTTPServer(h)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(api.Listener(ln)) }() // JSON errors for requests net/http refuses itself
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func hostURL(a net.Addr) string {
	s := a.String()
	if strings.HasPrefix(s, "[::]") || strings.HasPrefix(s, "0.0.0.0") {
		_, port, _ := net.SplitHostPort(s)
		s = net.JoinHostPort("127.0.0.1", port)
	}
	return "http://" + s
}

// metricsSetup applies the metrics settings to deps: /metrics on a
// listener of its own at MFAFLOW_METRICS_ADDR (withMetrics), else on the API listener behind MFAFLOW_METRICS_TOKEN when set. With
// neither, publicByDefault keeps /metrics open on the API listener (the dev
// stack on loopback); serve turns it off instead.
func metricsSetup(cfg config.Config, deps *api.Deps, publicByDefault bool) {
	deps.Registry = prometheus.NewRegistry()
	deps.MetricsToken = cfg.MetricsToken
	deps.NoMetrics = cfg.MetricsAddr != "" || (cfg.MetricsToken == "" && !publicByDefault)
}

// withMetrics serves the API (serveAPI) and, when cfg sets a metrics
// address, deps.Registry's metrics there, until ctx ends or either fails.
// The metrics listener asks for MFAFLOW_METRICS_TOKEN too when it is set.
func withMetrics(ctx context.Context, cfg config.Config, deps api.Deps, name string, stdout io.Writer, serveAPI func(ctx context.Context) error) error {
	if cfg.MetricsAddr == "" {
		return serveAPI(ctx)
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("MFAFLOW_METRICS_ADDR: %w", err)
	}
	fmt.Fprintf(stdout, "mfaflow %s: metrics on %s/metrics\n", name, hostURL(ln.Addr()))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	merr := make(chan error, 1)
	go func() {
		err := serveListener(ctx, ln, api.MetricsHandler(deps.Registry, cfg.MetricsToken))
		cancel() // a failed metrics listener stops the API too
		merr <- err
	}()
	err = serveAPI(ctx)
	cancel()
	if mErr := <-merr; err == nil && mErr != nil {
		err = fmt.Errorf("metrics listener: %w", mErr)
	}
	return err
}
