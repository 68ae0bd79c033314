// Package sqlitestore is the SQLite implementation of store.Store
// (modernc.org/sqlite, no cgo), for the dev stack. The database is a file in
// WAL mode; writes go through one connection whose transactions begin
// IMMEDIATE, so read-modify-write methods never fail on a lock upgrade, and
// reads through a small pool of read-only connections. Other processes on
// the same file are waited for (busy_timeout).
package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a SQLite app store. It is safe for concurrent use.
type DB struct {
	w              *sql.DB       // the one writer connection
	r              *sql.DB       // read-only connections
	prune          dbutil.Pruner // when Hit prunes old rate-limit windows
	challengePrune dbutil.Pruner // when CreateWebAuthnChallenge prunes expired challenges
	stmts          stmtCache     // the writer's prepared statements of the hot path
	// checks groups concurrent Check calls into one transaction each
	// batch; one worker, as there is one writer.
	checks *dbutil.Batcher[dbutil.CheckCall, dbutil.CheckResult]
}

var (
	_ store.Store     = (*DB)(nil)
	_ store.Migrator  = (*DB)(nil)
	_ mfa.StepStore   = (*DB)(nil)
	_ mfa.BudgetStore = (*DB)(nil)
)

// Open opens (creating it if needed) the database file at path. It returns
// store.ErrUnavailable when the file cannot be opened.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, errors.New("sqlitestore: path must be a plain file path")
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	wq := url.Values{}
	for k, v := range q {
		wq[k] = append([]string(nil), v...)
	}
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open: %w", classify(err))
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// The writer connection switches the file to WAL before any reader opens it.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlitestore: open: %w", unavailable(err))
	}
	q.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlitestore: open: %w", classify(err))
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	db := &DB{w: w, r: r}
	db.checks = &dbutil.Batcher[dbutil.CheckCall, dbutil.CheckResult]{Run: db.checkBatch, Workers: 1}
	// Fails on a database that has not migrated yet; Migrate prepares them.
	_ = db.stmts.prepare(ctx, w)
	return db, nil
}

// Close closes the connections.
func (db *DB) Close() error {
	db.checks.Close()
	return errors.Join(db.stmts.close(), db.r.Close(), db.w.Close())
}

// Ping checks that the database file can be read. It returns
// store.ErrUnavailable otherwise.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		return fmt.Errorf("sqlitestore: ping: %w", unavailable(err))
	}
	return nil
}

// Migrate applies the embedded migrations the database has not applied yet,
// in one IMMEDIATE transaction, so concurrent Migrate calls (from this or
// other processes) apply each migration once. It returns
// store.ErrUnavailable when the database stays locked.
func (db *DB) Migrate(ctx context.Context) error {
	return db.MigrateTo(ctx, 0)
}

// MigrateTo is Migrate stopping after the migration numbered version (0:
// the latest). Tests use it to build a database as an older release left
// it, then upgrade it with Migrate.
func (db *DB) MigrateTo(ctx context.Context, version int) error {
	migs, err := dbutil.ReadMigrations(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlitestore: migrate: %w", err)
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at INTEGER NOT NULL)`); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return err
		}
		done := map[int]bool{}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			done[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, m := range migs {
			if done[m.Version] || (version > 0 && m.Version > version) {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.Version, m.Name, micros(dbutil.Now())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: migrate: %w", err)
	}
	if version == 0 {
		if err := db.stmts.prepare(ctx, db.w); err != nil {
			return fmt.Errorf("sqlitestore: migrate: prepare statements: %w", classify(err))
		}
	}
	return nil
}

// ExecRaw runs query with args on the writer connection, outside the
// store's API. It exists for tests (for example to show that the database
// itself refuses to change the audit log); the application never calls it.
func (db *DB) ExecRaw(ctx context.Context, query string, args ...any) error {
	_, err := db.w.ExecContext(ctx, query, args...)
	return classify(err)
}

// tx runs fn in an IMMEDIATE transaction on the writer and commits it, or
// rolls it back when fn fails. Errors are classified.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return classify(err)
	}
	return classify(tx.Commit())
}

// classify maps err to the store's errors: busy, I/O and open failures to
// ErrUnavailable, unique violations to ErrConflict, no rows to ErrNotFound.
// Errors that already carry a store error pass unchanged.
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
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) {
		return unavailable(err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return store.ErrConflict
		}
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CORRUPT,
			sqlite3.SQLITE_NOTADB:
			return unavailable(err)
		}
	}
	return err
}

// unavailable wraps err as ErrUnavailable; a context cancelled by the
// caller stays what it is.
func unavailable(err error) error {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// micros returns t as stored: microseconds since the epoch, nil for zero.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros returns a stored time, the zero time for NULL.
func fromMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}
