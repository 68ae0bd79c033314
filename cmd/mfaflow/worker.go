package main

import (
	"context"
	"fmt"
	"io"

	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/internal/config"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

// buildID is the worker's build id: MFAFLOW_BUILD_ID, or the binary's.
func buildID(cfg config.Config) string {
	if cfg.BuildID != "" {
		return cfg.BuildID
	}
	return worker.DefaultBuildID()
}

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
	build := buildID(cfg)
	fmt.Fprintf(stdout, "mfaflow worker: polling task queue %q on %s as build %s of worker deployment %s\n", workflows.TaskQueue, cfg.TemporalAddress, build, worker.DeploymentName)
	return worker.Run(ctx, tc, newActivities(db, keys, productionNotifier(cfg), blobs, wa), worker.Options(build))
}
