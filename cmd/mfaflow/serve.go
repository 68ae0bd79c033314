package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/web"
)

// runServe runs the HTTP API against the production servers.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, help, err := loadConfig("serve", args, getenv, stdout, nil)
	if err != nil || help {
		return err
	}
	if err := cfg.RequireProduction(true); err != nil {
		return err
	}
	keys, err := parseKeyring(cfg)
	if err != nil {
		return err
	}
	log := newLogger(stderr)
	db, err := openPostgres(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer db.Close()
	tc, err := dialTemporal(cfg, keys, log)
	if err != nil {
		return err
	}
	defer tc.Close()
	blobs := &blobRef{cfg: blob.Config{Endpoint: cfg.S3Endpoint, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, Bucket: cfg.S3Bucket, UseTLS: cfg.S3UseTLS, Encrypt: true}}
	notifier := productionNotifier(cfg)
	wa, err := webAuthn(cfg)
	if err != nil {
		return err
	}
	deps := api.Deps{
		Store:            db,
		Temporal:         tc,
		ConsoleService:   consoleService(db, keys, notifier, tc, log, wa),
		Documents:        blobs,
		Appeals:          appealConfig(cfg, cfg.PublicURL),
		OwnerCancelToken: ownerCancelToken(keys),
		Notifier:         notifier,
		Ready:            readyChecks(db, blobs, tc),
		Keys:             keys,
		Console:          auth.NewConsoleKeys(cfg.ConsoleAPIKeys),
		JWT:              jwtVerifier(cfg),
		Logger:           log,
		Pages:            web.NewPages(web.PagesConfig{MaxDocument: appealConfig(cfg, cfg.PublicURL).MaxDocument, Logger: log.With("component", "web")}),
		TrustedProxies:   cfg.TrustedProxies,
	}
	metricsSetup(cfg, &deps, false)
	if cfg.MetricsAddr == "" && cfg.MetricsToken == "" {
		log.Info("metrics are off: set MFAFLOW_METRICS_ADDR or MFAFLOW_METRICS_TOKEN to serve /metrics")
	}
	srv := api.NewServer(deps)
	return withMetrics(ctx, cfg, deps, "serve", stdout, func(ctx context.Context) error {
		return serveHTTP(ctx, cfg.HTTPAddr, srv, func(a net.Addr) {
			fmt.Fprintf(stdout, "mfaflow serve: listening on %s\n", hostURL(a))
		})
	})
}
