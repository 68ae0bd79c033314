package main

import (
	"context"
	"fmt"
	"io"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

// runWorker polls the task queue against the production servers.
func runWorker(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, help, err := loadConfig("worker", args, getenv, stdout, nil)
	if err != nil || help {
		return err
	}
	if err := cfg.RequireProduction(false); err != nil {
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
	wa, err := webAuthn(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "mfaflow worker: polling task queue %q on %s\n", workflows.TaskQueue, cfg.TemporalAddress)
	return worker.Run(ctx, tc, newActivities(db, keys, productionNotifier(cfg), blobs, wa), sdkworker.Options{})
}
