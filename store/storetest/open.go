package storetest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/store/pgstore"
	"github.com/mfaflow/mfaflow/store/sqlitestore"
)

// Postgres returns a migrated store on a fresh PostgreSQL database from the
// harness, closed when tb ends. The calling package's TestMain must call
// harness.Main. It fails the test when the store cannot be opened.
func Postgres(tb testing.TB) *pgstore.DB {
	tb.Helper()
	return OpenPostgres(tb, harness.PostgresURL(tb))
}

// OpenPostgres returns a migrated store on the database at url (its pool
// limited to 8 connections unless url says otherwise), closed when tb ends.
// It fails the test when the store cannot be opened.
func OpenPostgres(tb testing.TB, url string) *pgstore.DB {
	tb.Helper()
	return openPostgres(tb, url, true)
}

// PostgresUnmigrated is Postgres without the migrations: the database is
// empty, for tests of Migrate and MigrateTo.
func PostgresUnmigrated(tb testing.TB) *pgstore.DB {
	tb.Helper()
	return openPostgres(tb, harness.PostgresURL(tb), false)
}

func openPostgres(tb testing.TB, url string, migrate bool) *pgstore.DB {
	tb.Helper()
	if !strings.Contains(url, "pool_max_conns") {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		url += sep + "pool_max_conns=8"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := pgstore.Open(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if migrate {
		if err := db.Migrate(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

// SQLite returns a migrated store in a new file under tb.TempDir(), closed
// when tb ends. It fails the test when the store cannot be opened.
func SQLite(tb testing.TB) *sqlitestore.DB {
	tb.Helper()
	return OpenSQLite(tb, filepath.Join(tb.TempDir(), "mfaflow.db"))
}

// OpenSQLite returns a migrated store in the file at path, closed when tb
// ends. It fails the test when the store cannot be opened.
func OpenSQLite(tb testing.TB, path string) *sqlitestore.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sqlitestore.Open(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

// OpenSQLiteUnmigrated returns a store in the file at path, not migrated,
// closed when tb ends.
func OpenSQLiteUnmigrated(tb testing.TB, path string) *sqlitestore.DB {
	tb.Helper()
	db, err := sqlitestore.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
