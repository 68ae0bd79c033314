package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/pgstore"
	"github.com/mfaflow/mfaflow/store/storetest"
)

func TestMain(m *testing.M) { harness.Main(m) }

// mustOpen opens and migrates a store on url and closes it when t ends.
func mustOpen(t *testing.T, url string) *pgstore.DB {
	t.Helper()
	return storetest.OpenPostgres(t, url)
}

func TestContract(t *testing.T) {
	start := time.Now()
	storetest.Run(t, func(t *testing.T) store.Store { return mustOpen(t, harness.PostgresURL(t)) })
	t.Cleanup(func() { t.Logf("contract suite on PostgreSQL: %v", time.Since(start)) })
}

func TestMigrateConcurrently(t *testing.T) {
	url := harness.PostgresURL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			db, err := pgstore.Open(ctx, url)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			errs <- db.Migrate(ctx)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	db := mustOpen(t, url) // and once more: nothing left to do
	if err := db.ExecRaw(ctx, `DO $$ BEGIN
		IF (SELECT count(*) FROM schema_migrations) <> (SELECT max(version) FROM schema_migrations)
			OR (SELECT max(version) FROM schema_migrations) < 6 THEN RAISE EXCEPTION 'wrong count'; END IF; END $$`); err != nil {
		t.Fatalf("schema_migrations: %v", err)
	}
}

func TestClosedPortIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	db, err := pgstore.Open(ctx, "postgres://u:s3cret-pw@127.0.0.1:1/db?sslmode=disable")
	if err != nil {
		t.Fatalf("Open must not connect: %v", err)
	}
	defer db.Close()
	checkUnavailable(t, ctx, db)
}

func checkUnavailable(t *testing.T, ctx context.Context, db *pgstore.DB) {
	t.Helper()
	_, stepErr := db.AdvanceStep(ctx, "dev", 1)
	_, _, spendErr := db.SpendAttempt(ctx, "acc", time.Now(), func(int, time.Time) (time.Time, bool) { return time.Time{}, false })
	_, getErr := db.GetAccount(ctx, "acc")
	_, auditErr := db.AppendAudit(ctx, store.AuditEntry{Actor: "system", Action: "test", Outcome: "ok"})
	for name, err := range map[string]error{"Ping": db.Ping(ctx), "AdvanceStep": stepErr, "SpendAttempt": spendErr,
		"GetAccount": getErr, "AppendAudit": auditErr} {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s error = %v, want ErrUnavailable", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s error shows the password: %v", name, err)
		}
	}
}

func TestInvalidURLHidesPassword(t *testing.T) {
	_, err := pgstore.Open(context.Background(), "postgres://u:s3cret-pw@host:notaport/db")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open error = %v, want one without the password", err)
	}
}

func TestServerStopAndRecovery(t *testing.T) {
	pg := harness.NewPostgres(t)
	db := mustOpen(t, pg.URL(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.AppendAudit(ctx, store.AuditEntry{Actor: "system", Action: "before", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	pg.Stop(t)
	checkUnavailable(t, ctx, db)
	pg.Start(t)
	deadline := time.Now().Add(15 * time.Second)
	for db.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("store did not recover within 15s of the server's restart")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := db.AppendAudit(ctx, store.AuditEntry{Actor: "system", Action: "after", Outcome: "ok"}); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	got, err := db.ListAudit(ctx, store.AuditFilter{})
	if err != nil || len(got) != 2 {
		t.Fatalf("ListAudit after recovery = %d entries, %v; want 2", len(got), err)
	}
}

func TestUpgrade(t *testing.T) {
	storetest.RunUpgrade(t, func(t *testing.T) storetest.Upgrader { return storetest.PostgresUnmigrated(t) })
}

// TestUpgradeSchema checks that 0003 changes only what it means to on
// devices: the type check admits security_center and one index is added;
// the other indexes, constraints and triggers stay as they were.
func TestUpgradeSchema(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := harness.PostgresURL(t)
	db, err := pgstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	schema := func() map[string]string {
		t.Helper()
		rows, _ := conn.Query(ctx, `
			SELECT 'index ' || indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'devices'
			UNION ALL
			SELECT 'constraint ' || conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'devices'::regclass
			UNION ALL
			SELECT 'trigger ' || tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'devices'::regclass AND NOT tgisinternal`)
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
		if k == "constraint devices_type_check" {
			continue
		}
		if after[k] != v {
			t.Errorf("%s after the upgrade = %q, want %q", k, after[k], v)
		}
	}
	if c := after["constraint devices_type_check"]; !strings.Contains(c, "'security_center'") || !strings.Contains(c, "'virtual'") ||
		!strings.Contains(c, "'hardware'") {
		t.Errorf("devices_type_check = %q", c)
	}
	if !strings.Contains(after["index devices_live_security_center"], "UNIQUE") {
		t.Errorf("devices_live_security_center = %q, want a unique index", after["index devices_live_security_center"])
	}
	if len(after) != len(before)+1 {
		t.Errorf("devices schema after the upgrade = %v, want %v plus one index", after, before)
	}
}

func TestUpgradeFrom5(t *testing.T) {
	storetest.RunUpgradeFrom5(t, func(t *testing.T) storetest.Upgrader { return storetest.PostgresUnmigrated(t) })
}

func TestUpgradeFrom3(t *testing.T) {
	storetest.RunUpgradeFrom3(t, func(t *testing.T) storetest.Upgrader { return storetest.PostgresUnmigrated(t) })
}

// TestUpgradeSchemaFrom3 checks that 0004 only adds: every table's columns,
// indexes, constraints and triggers of 0003 stay as they were, and the new
// objects belong to the appeals and rate_limits tables.
func TestUpgradeSchemaFrom3(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := harness.PostgresURL(t)
	db, err := pgstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	schema := func() map[string]string {
		t.Helper()
		rows, _ := conn.Query(ctx, `
			SELECT 'column ' || table_name || '.' || column_name, data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
			FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'
			UNION ALL
			SELECT 'index ' || indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'
			UNION ALL
			SELECT 'constraint ' || conrelid::regclass || '.' || conname, pg_get_constraintdef(oid) FROM pg_constraint
			WHERE connamespace = current_schema()::regnamespace AND conrelid <> 0 AND conrelid <> 'schema_migrations'::regclass
			UNION ALL
			SELECT 'trigger ' || tgrelid::regclass || '.' || tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
			UNION ALL
			SELECT 'function ' || p.oid::regprocedure, md5(p.prosrc) FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace`)
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
	for _, k := range added {
		if !strings.Contains(k, "appeals") && !strings.Contains(k, "rate_limits") {
			t.Errorf("0004 added %s", k)
		}
	}
	if len(added) == 0 || !strings.Contains(after["index appeals_open_account"], "UNIQUE") ||
		!strings.Contains(after["index appeals_open_account"], "WHERE (closed_at IS NULL)") {
		t.Errorf("appeals_open_account = %q; added %v", after["index appeals_open_account"], added)
	}
}
