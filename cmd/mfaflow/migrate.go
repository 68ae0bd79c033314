package main

import (
	"context"
	"fmt"
	"io"
)

// runMigrate applies the embedded migrations to DATABASE_URL.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, help, err := loadConfig("migrate", args, getenv, stdout, nil)
	if err != nil || help {
		return err
	}
	if cfg.DatabaseURL == "" {
		return fmt.Errorf("DATABASE_URL: required (the dev stack migrates its SQLite file itself)")
	}
	db, err := openPostgres(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintln(stdout, "mfaflow migrate: database is up to date")
	return nil
}
