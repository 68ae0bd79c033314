package harness

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestPostgresURLGivesDistinctEmptyDatabases(t *testing.T) {
	start := time.Now()
	a := PostgresURL(t)
	b := PostgresURL(t)
	t.Logf("two databases in %v (cluster startup %v)", time.Since(start), PostgresStartup())
	if a == b {
		t.Fatalf("PostgresURL returned the same URL twice")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names := map[string]bool{}
	for _, u := range []string{a, b} {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(ctx)
		var name string
		var tables int
		if err := conn.QueryRow(ctx, `SELECT current_database(),
			(SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public')`).Scan(&name, &tables); err != nil {
			t.Fatalf("query: %v", err)
		}
		if tables != 0 {
			t.Errorf("database %s has %d tables, want an empty one", name, tables)
		}
		names[name] = true
		// Writing to one must not show in the other.
		if _, err := conn.Exec(ctx, "CREATE TABLE mine (x int)"); err != nil {
			t.Fatalf("create table: %v", err)
		}
	}
	if len(names) != 2 {
		t.Fatalf("both URLs reach database %v", names)
	}
}

func TestPostgresStopStart(t *testing.T) {
	pg := NewPostgres(t)
	u := pg.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ping := func() error {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		return conn.Ping(ctx)
	}
	if err := ping(); err != nil {
		t.Fatalf("ping running server: %v", err)
	}
	pg.Stop(t)
	if err := ping(); err == nil {
		t.Fatalf("ping stopped server succeeded")
	}
	pg.Start(t)
	if err := ping(); err != nil {
		t.Fatalf("ping restarted server: %v", err)
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:p@h:5432/db?sslmode=disable", "postgres://u:p@h:5432/x?sslmode=disable"},
		{"postgresql://h/", "postgresql://h/x"},
		{"host=h user=u dbname=db", "host=h user=u dbname=db dbname=x"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.in, "x")
		if err != nil || got != tt.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestPostgresCPU: the cluster's CPU reading grows by the work a backend
// does, and only the server's work counts (a busy loop here does not).
func TestPostgresCPU(t *testing.T) {
	url := PostgresURL(t)
	if os.Getenv("DATABASE_URL") != "" {
		if _, ok := PostgresCPU(); ok {
			t.Fatal("PostgresCPU reads a server the harness did not start")
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	before, ok := PostgresCPU()
	if !ok {
		t.Fatal("PostgresCPU: no reading of the harness's own cluster")
	}
	// 200 ms of CPU in this process: none of it is the server's.
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
	}
	idle, _ := PostgresCPU()
	var sum int64
	if err := conn.QueryRow(ctx, "SELECT sum(i) FROM generate_series(1, 5000000) i").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	after, _ := PostgresCPU()
	t.Logf("server CPU: %v while idle, %v for the query", idle-before, after-idle)
	if after-idle < 50*time.Millisecond {
		t.Errorf("server CPU grew by %v for a query of 5 million rows", after-idle)
	}
	if idle-before > after-idle/2 {
		t.Errorf("server CPU grew by %v while only this process worked (query: %v)", idle-before, after-idle)
	}
}
