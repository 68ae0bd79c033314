// Package pgstore is the PostgreSQL implementation of store.Store, through a
// pgx connection pool. Its schema comes from the migrations embedded in the
// binary (Migrate).
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the pg_advisory_xact_lock key that serialises Migrate
// across processes ("mfaflow" in ASCII).
const migrationLock int64 = 0x6d6661666c6f77

// DB is a PostgreSQL app store. It is safe for concurrent use.
type DB struct {
	pool           *pgxpool.Pool
	hot            *pgxpool.Pool // the code checks' connections (checkPool)
	prune          dbutil.Pruner // when Hit prunes old rate-limit windows
	challengePrune dbutil.Pruner // when CreateWebAuthnChallenge prunes expired challenges
	begin          *dbutil.Batcher[beginReq, beginResult]
	finish         *dbutil.Batcher[store.CheckFinish, finishResult]
	checks         *dbutil.Batcher[dbutil.CheckCall, dbutil.CheckResult]
}

var (
	_ store.Store     = (*DB)(nil)
	_ store.Migrator  = (*DB)(nil)
	_ mfa.StepStore   = (*DB)(nil)
	_ mfa.BudgetStore = (*DB)(nil)
)

// Open returns a store on the database at databaseURL (a postgres:// URL or
// keyword/value string; pool_max_conns and the other pgxpool settings are
// honoured). It does not connect: a database that is down makes the calls
// fail with store.ErrUnavailable until it is back, rather than Open. It
// returns an error for a malformed URL, without echoing the URL.
func Open(ctx context.Context, databaseURL string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("pgstore: invalid database URL")
	}
	if !strings.Contains(databaseURL, "pool_max_conns") && cfg.MaxConns < 16 {
		cfg.MaxConns = 16
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", classify(err))
	}
	hot, err := pgxpool.NewWithConfig(ctx, checkPool(cfg))
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: open: %w", classify(err))
	}
	db := &DB{pool: pool, hot: hot}
	db.newBatchers()
	return db, nil
}

// Close closes the pool's connections. It always returns nil.
func (db *DB) Close() error {
	db.begin.Close()
	db.finish.Close()
	db.checks.Close()
	db.hot.Close()
	db.pool.Close()
	return nil
}

// Ping checks that the database answers. It returns store.ErrUnavailable
// otherwise.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgstore: ping: %w", unavailable(err))
	}
	return nil
}

// Migrate applies the embedded migrations the database has not applied yet,
// in one transaction under an advisory lock, so concurrent Migrate calls
// from several processes apply each migration once. It returns
// store.ErrUnavailable when the database cannot be reached.
func (db *DB) Migrate(ctx context.Context) error {
	return db.MigrateTo(ctx, 0)
}

// MigrateTo is Migrate stopping after the migration numbered version (0:
// the latest). Tests use it to build a database as an older release left
// it, then upgrade it with Migrate.
func (db *DB) MigrateTo(ctx context.Context, version int) error {
	migs, err := dbutil.ReadMigrations(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	err = db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, "SELECT version FROM schema_migrations")
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return err
		}
		done := map[int]bool{}
		for _, v := range applied {
			done[int(v)] = true
		}
		for _, m := range migs {
			if done[m.Version] || (version > 0 && m.Version > version) {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}

// ExecRaw runs sql with args outside the store's API. It exists for tests
// (for example to show that the database itself refuses to change the audit
// log); the application never calls it.
func (db *DB) ExecRaw(ctx context.Context, sql string, args ...any) error {
	_, err := db.pool.Exec(ctx, sql, args...)
	return classify(err)
}

// tx runs fn in a read-committed transaction and commits it, or rolls it
// back when fn fails. Errors are classified.
func (db *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return classify(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return classify(err)
	}
	return classify(tx.Commit(ctx))
}

// classify maps err to the store's errors: connection failures to
// ErrUnavailable, unique violations to ErrConflict, no rows to ErrNotFound.
// Errors that already carry a store error pass unchanged. The PostgreSQL
// message is kept only for other errors, and never its detail, which can
// quote values.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range []error{store.ErrNotFound, store.ErrConflict, store.ErrUnavailable,
		store.ErrChallengeExpired, store.ErrChallengeUsed, store.ErrChallengeExhausted,
		store.ErrGrantMismatch, store.ErrGrantUsed, store.ErrGrantExpired} {
		if errors.Is(err, e) {
			return err
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505" || pgErr.Code == "23P01": // unique, exclusion
			return store.ErrConflict
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"),                                 // insufficient resources
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutdown, starting up
			pgErr.Code == "3D000": // database does not exist
			return fmt.Errorf("%w: postgres %s", store.ErrUnavailable, pgErr.Code)
		}
		return fmt.Errorf("postgres %s: %s", pgErr.Code, pgErr.Message)
	}
	if isConnectionError(err) {
		return unavailable(err)
	}
	return err
}

// unavailable wraps err, which says the database cannot be used, as
// ErrUnavailable; a context cancelled by the caller stays what it is.
func unavailable(err error) error {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("%w: postgres %s", store.ErrUnavailable, pgErr.Code)
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		// Its text names host, user and database; keep only the cause.
		return fmt.Errorf("%w: connect: %w", store.ErrUnavailable, errors.Unwrap(connErr))
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// isConnectionError reports whether err comes from the connection rather
// than the statement.
func isConnectionError(err error) bool {
	var connErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded),
		pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "closed pool")
}
