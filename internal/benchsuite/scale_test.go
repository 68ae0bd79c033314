package benchsuite

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
)

// Verify's cost against the size of the database (issue 15, item 4): the
// same verifications, driven as BenchmarkHTTPVerify drives them, on a
// database of 10,000 accounts and on one of 1,000,000 accounts with
// 1,000,000 audit entries; the plans of the statements a verification
// runs, at 1,000,000 accounts; and (TestVerifyPlans, in every test run) the
// assertion that they read every table through an index.
//
// Both databases hold the same driven accounts, seeded through the store
// as BenchmarkHTTPVerify seeds them (sv-00000 … sv-09999, each with its
// account, a sealed virtual device and login protection). The large one
// then grows by bulk SQL (fillerAccounts): after each driven account, 99
// filler accounts sv-00000-001 … sv-00000-099 in key order, each with an
// active device (one sealed blob, copied from a driven device and never
// opened: filler accounts are never verified), login protection and a
// failure budget; a closed appeal for one filler account in a hundred;
// and 1,000,000 audit entries of earlier verifications. Then each table is
// rewritten in primary-key order (CLUSTER), so the driven accounts' rows
// lie one to a page among the filler's, as old accounts' rows would, and
// vacuumed and analysed.

var (
	flagScaleDriven = flag.Int("benchsuite.scale-driven", 10000,
		"accounts seeded through the store and driven in BenchmarkVerifyScale (3 verifications each), and the small database's size")
	flagScalePer = flag.Int("benchsuite.scale-per", 100,
		"BenchmarkVerifyScale's large database holds this many accounts per driven account (2–1000)")
	flagScaleAudit = flag.Int("benchsuite.scale-audit", 1_000_000, "audit entries in BenchmarkVerifyScale's large database")
)

// scaleDB is one database of the scale runs with its driven accounts.
type scaleDB struct {
	url      string
	st       store.Store
	accounts []verifyAccount
}

// newScaleDB seeds driven accounts sv-00000… through the store of a fresh
// database, then, when per > 1, per-1 filler accounts after each of them
// and audit entries (fillerAccounts). It logs the time each part took.
func newScaleDB(tb testing.TB, keys *mfa.Keyring, driven, per, audit int) scaleDB {
	tb.Helper()
	u := harness.PostgresURL(tb)
	st := storetest.OpenPostgres(tb, u)
	t0 := time.Now()
	accounts := seedVerifyDevices(tb, st, keys, "sv", driven, true)
	tb.Logf("seeded %d accounts through the store in %v", driven, time.Since(t0).Round(time.Millisecond))
	if per > 1 {
		fillerAccounts(tb, u, "sv", driven, per, audit)
	} else {
		vacuumAnalyze(tb, u)
	}
	return scaleDB{url: u, st: st, accounts: accounts}
}

// fillerAccounts grows the database at databaseURL by bulk SQL: per-1
// accounts after each driven account <prefix>-%05d (<prefix>-%05d-%03d),
// each with an active virtual device (the sealed secret of the first
// driven device, reused), login protection and a failure budget; a closed
// appeal for one filler account in a hundred; audit audit entries of
// verifications of filler accounts. It then rewrites the tables in key
// order, vacuums and analyses them, and logs each step's time.
func fillerAccounts(tb testing.TB, databaseURL, prefix string, driven, per, audit int) {
	tb.Helper()
	if per < 2 || per > 1000 {
		tb.Fatalf("filler: %d accounts per driven account is out of range", per)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer pool.Close()
	at := "'" + verifyNow.Add(-24*time.Hour).UTC().Format(time.RFC3339) + "'::timestamptz"
	// Every value is this function's own, written into the SQL.
	steps := []struct{ what, sql string }{
		{"filler ids", fmt.Sprintf(`CREATE TABLE filler AS
			SELECT format('%%s-%%s-%%s', '%s', lpad(i::text, 5, '0'), lpad(j::text, 3, '0')) AS id,
				i * %d + j AS n, i * %d + j - 1 AS k
			FROM generate_series(0, %d) i, generate_series(1, %d) j`, prefix, per, per-1, driven-1, per-1)},
		{"accounts", `INSERT INTO accounts (id, type, bound_phone, email, real_name_verified, real_name, id_number,
				login_method, created_at, updated_at)
			SELECT f.id, 'personal', '139' || lpad(f.n::text, 8, '0'), f.id || '@example.com', true, '` + seedName + `',
				'` + seedIDNumber + `', 'mfa', ` + at + `, ` + at + `
			FROM filler f ORDER BY f.k`},
		{"devices", `INSERT INTO devices (id, account_id, type, name, serial, secret_key_id, sealed_secret, algorithm, digits,
				period_seconds, last_step, drift, status, created_at, bound_at)
			SELECT 'dev-' || f.id, f.id, 'virtual', '', NULL, t.secret_key_id, t.sealed_secret, 'SHA1', 6, 30, 0, 0, 'active', ` + at + `, ` + at + `
			FROM filler f, (SELECT secret_key_id, sealed_secret FROM devices ORDER BY id LIMIT 1) t ORDER BY f.k`},
		{"protection", `INSERT INTO protection (account_id, login, operation, updated_at)
			SELECT f.id, true, false, ` + at + ` FROM filler f ORDER BY f.k`},
		{"failure budgets", `INSERT INTO failure_budgets (account_id, failures, locked_until, hard, updated_at)
			SELECT f.id, f.k % 3, NULL, false, ` + at + ` FROM filler f ORDER BY f.k`},
		{"closed appeals", `INSERT INTO appeals (id, account_id, applicant_type, token_hash, status, created_at, updated_at, closed_at)
			SELECT 'ap-' || f.id, f.id, 'personal', md5(f.id), 'rejected', ` + at + `, ` + at + `, ` + at + `
			FROM filler f WHERE f.k % 100 = 0`},
		{"audit entries", fmt.Sprintf(`INSERT INTO audit_log (at, actor, action, outcome, account_id, subject, remote_ip, details)
			SELECT %s + g * interval '1 millisecond', 'console', 'mfa.verify.login', 'ok', f.id, 'dev-' || f.id, '127.0.0.1',
				jsonb_build_object('device_id', 'dev-' || f.id)
			FROM generate_series(0, %d) g JOIN filler f ON f.k = g %% %d ORDER BY g`, at, audit-1, driven*(per-1))},
		{"drop filler ids", `DROP TABLE filler`},
	}
	total := time.Now()
	for _, s := range steps {
		t0 := time.Now()
		tag, err := pool.Exec(ctx, s.sql)
		if err != nil {
			tb.Fatalf("filler: %s: %v", s.what, err)
		}
		tb.Logf("filler: %s: %d rows in %v", s.what, tag.RowsAffected(), time.Since(t0).Round(time.Millisecond))
	}
	t0 := time.Now()
	for _, t := range []string{"accounts", "devices", "protection", "failure_budgets"} {
		if _, err := pool.Exec(ctx, "CLUSTER "+t+" USING "+t+"_pkey"); err != nil {
			tb.Fatalf("filler: cluster %s: %v", t, err)
		}
	}
	tb.Logf("filler: tables rewritten in key order in %v", time.Since(t0).Round(time.Millisecond))
	vacuumAnalyze(tb, databaseURL)
	tb.Logf("filler: seeded in %v", time.Since(total).Round(time.Millisecond))
}

// vacuumAnalyze vacuums and analyses the database at databaseURL, as
// autovacuum would in time, and logs how long it took.
func vacuumAnalyze(tb testing.TB, databaseURL string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer pool.Close()
	t0 := time.Now()
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		tb.Fatalf("vacuum analyze: %v", err)
	}
	tb.Logf("vacuum analyze in %v", time.Since(t0).Round(time.Millisecond))
}

// BenchmarkVerifyScale drives verifications on the database of
// -benchsuite.scale-driven accounts and on the one of scale-per times as
// many with scale-audit audit entries, in five alternating rounds as
// BenchmarkHTTPVerify does, and reports each one's totals, with the time
// each database took to seed (seed-s). Then it prints the plans of a
// verification's statements on the large database and fails if one reads
// a table by a sequential scan.
func BenchmarkVerifyScale(b *testing.B) {
	keys := newKeyring(b)
	driven, per := *flagScaleDriven, *flagScalePer
	t0 := time.Now()
	small := newScaleDB(b, keys, driven, 1, 0)
	smallSeed := time.Since(t0)
	t0 = time.Now()
	large := newScaleDB(b, keys, driven, per, *flagScaleAudit)
	largeSeed := time.Since(t0)
	b.Logf("seeded %d accounts in %v and %d accounts with %d audit entries in %v",
		driven, smallSeed.Round(time.Millisecond), driven*per, *flagScaleAudit, largeSeed.Round(time.Millisecond))

	type side struct {
		name string
		db   scaleDB
		seed time.Duration
		t    *httpTarget
	}
	sides := []*side{
		{name: "Accounts" + countName(driven), db: small, seed: smallSeed},
		{name: "Accounts" + countName(driven*per), db: large, seed: largeSeed},
	}
	for _, s := range sides {
		hs := httptest.NewServer(verifyServer(s.db.st, keys, verifyNow))
		b.Cleanup(hs.Close)
		s.t = codeQueues(s.name, hs.URL, s.db.accounts)
		s.t.onPG = true
	}
	targets := make([]*httpTarget, len(sides))
	for i, s := range sides {
		targets[i] = s.t
	}
	alternate(b, targets)
	for _, s := range sides {
		b.Run(s.name, func(b *testing.B) {
			s.t.report(b)
			b.ReportMetric(s.seed.Seconds(), "seed-s")
		})
	}

	// The plans, with fresh codes an hour after the measured ones.
	plans := verifyPlans(b, large.url, keys, large.accounts[:4], verifyNow.Add(time.Hour))
	planReport(os.Stdout, fmt.Sprintf("Verify at %s accounts and %s audit entries",
		thousands(driven*per), thousands(*flagScaleAudit)), plans)
	for _, s := range seqScanned(plans) {
		b.Errorf("%s", s)
	}
}

// countName names a count in a benchmark name: 10k, 1M.
func countName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// thousands prints n with thousands separators.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// TestVerifyPlans checks that every statement a verification runs on
// PostgreSQL (a successful one and one with a wrong code) reads its tables
// through indexes, at 40 driven accounts among 20,000 with 20,000 audit
// entries: a Seq Scan on any table fails it. DroppedIndex shows the check
// catches a missing index: without devices_account (the only index that
// finds an account's devices) the check connections' statements must scan
// devices.
func TestVerifyPlans(t *testing.T) {
	keys := newKeyring(t)
	const driven, per = 40, 500
	db := newScaleDB(t, keys, driven, per, driven*per)
	plans := verifyPlans(t, db.url, keys, db.accounts[:4], verifyNow)
	hot := 0
	for _, p := range plans {
		if p.hot {
			hot++
		}
	}
	if hot == 0 {
		t.Error("no statement ran on the check connections")
	}
	for _, s := range seqScanned(plans) {
		t.Errorf("%s", s)
	}

	t.Run("DroppedIndex", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pool, err := pgxpool.New(ctx, db.url)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if _, err := pool.Exec(ctx, "DROP INDEX devices_account"); err != nil {
			t.Fatal(err)
		}
		plans := verifyPlans(t, db.url, keys, db.accounts[4:8], verifyNow)
		found := false
		for _, p := range plans {
			found = found || slices.Contains(p.plan.seqScans(), "devices")
		}
		if !found {
			t.Errorf("no Seq Scan on devices reported without its index; plans:\n%s", strings.Join(texts(plans), "\n"))
		}
	})
}

func texts(plans []executedPlan) []string {
	var out []string
	for _, p := range plans {
		out = append(out, oneLine(p.query, 100)+"\n"+p.text())
	}
	return out
}
