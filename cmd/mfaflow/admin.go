package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mfaflow/mfaflow/internal/config"
	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/sqlitestore"
)

// openAdminStore opens the store an operator command works on: PostgreSQL
// when DATABASE_URL is set, else the dev stack's SQLite file in the data dir
// (whose key ring is the dev stack's, unless MFAFLOW_SECRET_KEYS is set).
func openAdminStore(ctx context.Context, cfg config.Config) (store.Store, *mfa.Keyring, error) {
	if cfg.DatabaseURL != "" {
		if cfg.SecretKeys == "" {
			return nil, nil, errors.New("MFAFLOW_SECRET_KEYS: required")
		}
		keys, err := parseKeyring(cfg)
		if err != nil {
			return nil, nil, err
		}
		db, err := openPostgres(ctx, cfg, false)
		if err != nil {
			return nil, nil, err
		}
		return db, keys, nil
	}
	dir := cfg.DataDir
	if dir == "" {
		dir = ".mfaflow-dev"
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "mfaflow.db")); err != nil {
		return nil, nil, fmt.Errorf("DATABASE_URL: not set, and no dev stack data in %s (MFAFLOW_DATA_DIR)", dir)
	}
	if cfg.SecretKeys == "" {
		sec, _, err := loadDevSecrets(filepath.Join(dir, "dev-secrets.json"))
		if err != nil {
			return nil, nil, err
		}
		cfg.SecretKeys = sec.SecretKeys
	}
	keys, err := parseKeyring(cfg)
	if err != nil {
		return nil, nil, err
	}
	db, err := sqlitestore.Open(ctx, filepath.Join(dir, "mfaflow.db"))
	if err != nil {
		return nil, nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, keys, nil
}

// runTokens: "mfaflow tokens import [flags] FILE".
func runTokens(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		return errors.New(`usage: mfaflow tokens import [-format csv|pskc] [-pskc-key HEX] [-pskc-password-env VAR] FILE`)
	}
	var format, pskcKey, passwordEnv, batch string
	cfg, rest, err := config.LoadWith("tokens import", args[1:], getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "", "csv or pskc (default: from the file name)")
		fs.StringVar(&pskcKey, "pskc-key", "", "pre-shared key of an encrypted PSKC file (hex)")
		fs.StringVar(&passwordEnv, "pskc-password-env", "", "name of the environment variable holding the PSKC password")
		fs.StringVar(&batch, "batch", "", "batch id (default: generated)")
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("tokens import: give exactly one FILE")
	}
	file := rest[0]
	if format == "" {
		switch strings.ToLower(filepath.Ext(file)) {
		case ".csv":
			format = string(inventory.CSV)
		case ".xml", ".pskc":
			format = string(inventory.PSKC)
		default:
			return errors.New("-format: required when the file is not .csv, .xml or .pskc")
		}
	}
	opts := inventory.Options{Format: inventory.Format(format), BatchID: batch, Actor: "cli"}
	if pskcKey != "" {
		if opts.PreSharedKey, err = hexKey(pskcKey); err != nil {
			return errors.New("-pskc-key: want 16, 24 or 32 bytes in hex")
		}
	}
	if passwordEnv != "" {
		opts.Password = getenv(passwordEnv)
		if opts.Password == "" {
			return fmt.Errorf("-pskc-password-env: %s is empty", passwordEnv)
		}
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, keys, err := openAdminStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	im := inventory.Importer{Store: st, Keys: keys}
	res, err := im.Import(ctx, f, opts)
	for _, r := range res.Skipped {
		fmt.Fprintf(stderr, "row %d %s: %s\n", r.Row, r.Serial, r.Reason)
	}
	if errors.Is(err, inventory.ErrRejected) {
		for _, r := range res.Rejected {
			fmt.Fprintf(stderr, "row %d %s: %s\n", r.Row, r.Serial, r.Reason)
		}
		return fmt.Errorf("tokens import: %d entries refused; nothing was imported", len(res.Rejected))
	}
	if err != nil {
		return fmt.Errorf("tokens import: %w", err)
	}
	fmt.Fprintf(stdout, "imported %d tokens as batch %s\n", res.Imported, res.BatchID)
	return nil
}
