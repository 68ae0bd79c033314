// Command mfaflow is the one binary of mfaflow: the HTTP API (serve), the
// Temporal worker (worker), everything embedded for development (dev) and
// the database migrations (migrate).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mfaflow:", err)
		stop()
		os.Exit(1)
	}
}

const usage = `mfaflow — MFA binding, verification and the lost-phone unbind appeal

usage:
  mfaflow serve     run the HTTP API (production: Temporal, PostgreSQL, S3)
  mfaflow worker    run the Temporal worker
  mfaflow dev       run everything embedded in one process (no outside servers)
  mfaflow migrate   apply the database migrations to DATABASE_URL
  mfaflow tokens import FILE   import hardware token cards (CSV or PSKC), all or nothing
  mfaflow keys rotate          re-seal device and token secrets with the current key of MFAFLOW_SECRET_KEYS
  mfaflow keys status          what still uses each key of the ring, and when a key can be retired
  mfaflow totp [-pair|-next] SECRET   an authenticator app's code for a demo secret (dev)
  mfaflow help      this text; "mfaflow <command> -h" lists the settings

Settings come from environment variables, each also a flag.
`

// run executes one subcommand. It owns nothing global: the caller passes the
// arguments, the environment and the output streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "worker":
		return runWorker(ctx, rest, getenv, stdout, stderr)
	case "dev":
		return runDev(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, stderr)
	case "tokens":
		return runTokens(ctx, rest, getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, getenv, stdout, stderr)
	case "totp":
		return runTOTP(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
