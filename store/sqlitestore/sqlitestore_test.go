package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/sqlitestore"
	"github.com/mfaflow/mfaflow/store/storetest"
)

func TestContract(t *testing.T) {
	start := time.Now()
	storetest.Run(t, func(t *testing.T) store.Store {
		return storetest.SQLite(t)
	})
	t.Cleanup(func() { t.Logf("contract suite on SQLite: %v", time.Since(start)) })
}

// TestTwoHandlesOneFile stands in for two processes on one file: both
// migrate at once, then write concurrently, and nothing is lost.
func TestTwoHandlesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	ctx := context.Background()
	dbs := make([]*sqlitestore.DB, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := range dbs {
		db, err := sqlitestore.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
		wg.Go(func() { errs <- db.Migrate(ctx) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	const each = 100
	failures := make(chan error, 2*each)
	for i, db := range dbs {
		wg.Go(func() {
			for j := range each {
				if _, _, err := db.SpendAttempt(ctx, "acc", time.Now(), func(int, time.Time) (time.Time, bool) {
					return time.Time{}, false
				}); err != nil {
					failures <- fmt.Errorf("handle %d attempt %d: %w", i, j, err)
				}
			}
		})
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	st, _, err := dbs[0].SpendAttempt(ctx, "acc", time.Now(), func(int, time.Time) (time.Time, bool) { return time.Time{}, false })
	if err != nil || st.Failures != 2*each+1 {
		t.Fatalf("failures = %d, %v; want %d", st.Failures, err, 2*each+1)
	}
}

func TestUnopenableFileIsUnavailable(t *testing.T) {
	_, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "missing-dir", "x.db"))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open error = %v, want ErrUnavailable", err)
	}
}

func TestRefusesNonFilePaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=memory"} {
		if _, err := sqlitestore.Open(context.Background(), p); err == nil {
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}

func TestUpgrade(t *testing.T) {
	storetest.RunUpgrade(t, func(t *testing.T) storetest.Upgrader {
		return storetest.OpenSQLiteUnmigrated(t, filepath.Join(t.TempDir(), "upgrade.db"))
	})
}

// TestUpgradeSchema checks that the rebuild of devices in 0003 keeps its
// indexes, triggers and strict typing, widens only the type check, adds one
// index and leaves nothing behind.
func TestUpgradeSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "upgrade.db")
	db := storetest.OpenSQLiteUnmigrated(t, path)
	if err := db.MigrateTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	schema := func() map[string]string {
		t.Helper()
		rows, err := raw.QueryContext(ctx, `SELECT type || ' ' || name, coalesce(sql, '') FROM sqlite_schema
			WHERE tbl_name IN ('devices', 'devices_new') OR name = 'devices_new'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			out[k] = v
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := schema()
	if err := db.MigrateTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	after := schema()
	for k, v := range before {
		if k == "table devices" {
			continue
		}
		if after[k] != v {
			t.Errorf("%s after the upgrade = %q, want %q", k, after[k], v)
		}
	}
	wantTable := strings.Replace(before["table devices"], "CHECK (type IN ('virtual', 'hardware'))",
		"CHECK (type IN ('virtual', 'hardware', 'security_center'))", 1)
	gotTable := strings.Replace(after["table devices"], `CREATE TABLE "devices"`, "CREATE TABLE devices", 1)
	gotTable = strings.Replace(gotTable, "CREATE TABLE devices_new", "CREATE TABLE devices", 1)
	if gotTable != wantTable {
		t.Errorf("devices after the upgrade =\n%s\nwant\n%s", after["table devices"], wantTable)
	}
	if !strings.Contains(after["index devices_live_security_center"], "UNIQUE") {
		t.Errorf("devices_live_security_center = %q, want a unique index", after["index devices_live_security_center"])
	}
	if len(after) != len(before)+1 {
		t.Errorf("devices schema after the upgrade = %v, want %v plus one index", after, before)
	}
	for _, pragma := range []string{"integrity_check", "foreign_key_check"} {
		var got []string
		rows, err := raw.QueryContext(ctx, "PRAGMA "+pragma)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprint(vals...))
		}
		rows.Close()
		if pragma == "integrity_check" && (len(got) != 1 || got[0] != "ok") || pragma == "foreign_key_check" && len(got) != 0 {
			t.Errorf("PRAGMA %s = %v", pragma, got)
		}
	}
}

func TestUpgradeFrom5(t *testing.T) {
	storetest.RunUpgradeFrom5(t, func(t *testing.T) storetest.Upgrader {
		return storetest.OpenSQLiteUnmigrated(t, filepath.Join(t.TempDir(), "upgrade5.db"))
	})
}

func TestUpgradeFrom3(t *testing.T) {
	storetest.RunUpgradeFrom3(t, func(t *testing.T) storetest.Upgrader {
		return storetest.OpenSQLiteUnmigrated(t, filepath.Join(t.TempDir(), "upgrade.db"))
	})
}

// TestUpgradeSchemaFrom3 checks that 0004 only adds: every table, index and
// trigger of 0003 stays as it was, and the new objects are the appeals and
// rate-limit tables and their indexes.
func TestUpgradeSchemaFrom3(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "upgrade.db")
	db := storetest.OpenSQLiteUnmigrated(t, path)
	if err := db.MigrateTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	schema := func() map[string]string {
		t.Helper()
		rows, err := raw.QueryContext(ctx, `SELECT type || ' ' || name, coalesce(sql, '') FROM sqlite_schema
			WHERE name <> 'schema_migrations'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			out[k] = v
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := schema()
	if len(before) < 20 {
		t.Fatalf("schema at version 3 = %v", before)
	}
	if err := db.MigrateTo(ctx, 4); err != nil {
		t.Fatal(err)
	}
	after := schema()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s after the upgrade = %q, want %q", k, after[k], v)
		}
	}
	var added []string
	for k := range after {
		if _, ok := before[k]; !ok {
			added = append(added, k)
		}
	}
	sort.Strings(added)
	want := []string{"index appeals_account", "index appeals_created", "index appeals_open_account", "index appeals_status",
		"index rate_limits_end", "index sqlite_autoindex_appeals_1", "index sqlite_autoindex_appeals_2",
		"table appeals", "table rate_limits"}
	if !reflect.DeepEqual(added, want) {
		t.Errorf("0004 added %v, want %v", added, want)
	}
	if !strings.Contains(after["index appeals_open_account"], "UNIQUE") || !strings.Contains(after["index appeals_open_account"], "WHERE closed_at IS NULL") {
		t.Errorf("appeals_open_account = %q", after["index appeals_open_account"])
	}
}
