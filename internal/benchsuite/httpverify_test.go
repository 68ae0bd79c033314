package benchsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
)

// The HTTP verify figures (SPEC §9): POST /v1/accounts/{id}/mfa/verify on
// api.NewServer with a real store, against the least correct work
// (leastwork_test.go: one SELECT, the TOTP check, one compare-and-set
// UPDATE) on the same database, PostgreSQL and SQLite; and, reported only,
// against a gin.New() engine whose one route decodes the same JSON body and
// answers {"verified":true}. All are served by httptest over loopback and
// driven by the same closed-loop driver (drive) in the same process.
//
// Every measured verification succeeds with a fresh code, so the replay
// guard does a real compare-and-set write each time: the clock of the API
// (console.Service.Now, api.Deps.Now) is frozen at verifyNow, every account
// has one device, and each account is verified three times, with the codes
// of the steps before, at and after verifyNow (skew ±1), in that order, by
// the one client that owns it. Accounts are seeded through the store before
// the run; -benchsuite.accounts of them allow 3× as many requests. The
// least-work handler gets as many devices of its own, seeded the same way
// in the same database, with the same key ring and the same frozen clock.

var flagAccounts = flag.Int("benchsuite.accounts", 20000, "accounts seeded for the HTTP verify runs (3 verifications each)")

const consoleKey = "benchsuite-console-key-0123456789abcdef"

// verifyNow is the API's frozen clock in the verify runs.
var verifyNow = time.Unix(1_700_000_000, 0)

// verifyRequest is the body of POST /v1/accounts/{id}/mfa/verify.
type verifyRequest struct {
	Code      string `json:"code"`
	Purpose   string `json:"purpose"`
	Operation *struct {
		Action   string `json:"action"`
		Resource string `json:"resource"`
	} `json:"operation,omitempty"`
}

// httpTarget is one server of the HTTP runs with the per-client request
// queues it still has.
type httpTarget struct {
	name   string
	url    string
	work   [][]*preparedRequest // per client; nil: fixed, forever
	fixed  *preparedRequest
	pos    []int
	total  loadResult
	merged int  // slices merged into total
	onPG   bool // PostgreSQL's CPU is part of its cost
}

// verifyDB is one database of the verify runs, with the key ring both
// handlers on it use.
type verifyDB struct {
	name  string
	st    store.Store
	keys  *mfa.Keyring
	least leastDB
}

// client returns client i's request loop for drive.
func (t *httpTarget) client(i int) func(*http.Client) error {
	return func(c *http.Client) error {
		var p *preparedRequest
		switch {
		case t.work == nil:
			p = t.fixed
		case t.pos[i] < len(t.work[i]):
			p = t.work[i][t.pos[i]]
			t.pos[i]++
		default:
			return errDone
		}
		req, _ := http.NewRequest(http.MethodPost, p.url, bytes.NewReader(p.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+consoleKey)
		return expectOK(c, req)
	}
}

// merge adds one slice of a run to the target's total.
func (t *httpTarget) merge(r loadResult) {
	t.total.requests += r.requests
	t.total.errors += r.errors
	if t.total.firstErr == nil {
		t.total.firstErr = r.firstErr
	}
	t.total.elapsed += r.elapsed
	t.total.latencies = append(t.total.latencies, r.latencies...)
	t.total.procCPU += r.procCPU
	t.total.pgCPU += r.pgCPU
	t.total.pgOK = r.pgOK && (t.merged == 0 || t.total.pgOK)
	t.merged++
	t.total.hostCPU += r.hostCPU
}

// BenchmarkHTTPVerify drives the no-op Gin handler, and the verify
// endpoint and the least-work handler on PostgreSQL and on SQLite, in turn,
// in five rounds of a fifth of -benchsuite.duration each (alternate), so
// load from outside the process weighs on all five alike; then it reports
// each one's totals.
func BenchmarkHTTPVerify(b *testing.B) {
	pg, lite := postgresVerifyDB(b), sqliteVerifyDB(b)
	targets := []*httpTarget{
		noopTarget(b),
		verifyTarget(b, pg),
		leastTarget(b, pg),
		verifyTarget(b, lite),
		leastTarget(b, lite),
	}
	alternate(b, targets)
	for _, t := range targets {
		b.Run(t.name, func(b *testing.B) { t.report(b) })
	}
}

// alternate drives the targets in turn, in five rounds of a fifth of
// -benchsuite.duration each (the first after a -benchsuite.warmup warm-up,
// the others after 200 ms), profiling each measured phase, and adds each
// round to its target's total.
func alternate(b *testing.B, targets []*httpTarget) {
	const rounds = 5
	slice := *flagDuration / rounds
	for r := range rounds {
		warmup := 200 * time.Millisecond
		if r == 0 {
			warmup = *flagWarmup
		}
		for _, t := range targets {
			stop := profileMeasured(b, fmt.Sprintf("%s.%d", t.name, r))
			res := drive(*flagClients, warmup, slice, t.client)
			stop()
			t.merge(res)
		}
	}
}

// report writes the target's totals as the benchmark's figures; it fails
// the benchmark when nothing was measured or a request failed.
func (t *httpTarget) report(b *testing.B) {
	slices.Sort(t.total.latencies)
	if t.total.requests == 0 {
		b.Fatalf("no measured requests (first error %v)", t.total.firstErr)
	}
	t.total.pgOK = t.total.pgOK && t.onPG
	t.total.report(b)
	if t.total.errors > 0 {
		b.Errorf("%d requests failed; first: %v", t.total.errors, t.total.firstErr)
	}
}

// noopTarget serves a gin.New() engine with one route that decodes the
// verify body and answers {"verified":true}.
func noopTarget(tb testing.TB) *httpTarget {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/v1/accounts/:account_id/mfa/verify", func(c *gin.Context) {
		var req verifyRequest
		if err := json.NewDecoder(c.Request.Body).Decode(&req); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": "invalid_json"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"verified": true})
	})
	hs := httptest.NewServer(r)
	tb.Cleanup(hs.Close)
	body, _ := json.Marshal(verifyRequest{Code: "123456", Purpose: console.PurposeLogin})
	return &httpTarget{name: "NoopGin", url: hs.URL, fixed: &preparedRequest{url: hs.URL + "/v1/accounts/acct-noop/mfa/verify", body: body}}
}

// verifyAccount is a seeded account with its device's secret.
type verifyAccount struct {
	id     string
	secret mfa.Secret
}

// seedVerifyDevices stores n active virtual devices of accounts
// <prefix>-00000…, each account (when full) in the directory with login
// protection on, as mfaflow's verify needs; the least-work handler reads
// the devices only.
func seedVerifyDevices(tb testing.TB, st store.Store, keys *mfa.Keyring, prefix string, n int, full bool) []verifyAccount {
	tb.Helper()
	out := make([]verifyAccount, n)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		firstE  error
	)
	ctx := context.Background()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				id := fmt.Sprintf("%s-%05d", prefix, i)
				secret, err := mfa.NewSecret(nil)
				if err == nil && full {
					err = putPersonalAccount(ctx, st, id, i)
				}
				if err == nil {
					err = createDevice(ctx, st, keys, id, secret)
				}
				if err == nil && full {
					_, err = st.SetProtection(ctx, id, store.Protection{Login: true})
				}
				if err != nil {
					errOnce.Do(func() { firstE = fmt.Errorf("seed %s: %w", id, err) })
					return
				}
				out[i] = verifyAccount{id: id, secret: secret}
			}
		}()
	}
	wg.Wait()
	if firstE != nil {
		tb.Fatal(firstE)
	}
	return out
}

// Every seeded person has the same real name and ID number; phone and QQ
// number are derived from the index.
const (
	seedName     = "张三"
	seedIDNumber = "11010519491231002X"
)

func seedPhone(i int) string { return fmt.Sprintf("138%08d", i) }
func seedQQ(i int) string    { return fmt.Sprintf("2%08d", i) }

func putPersonalAccount(ctx context.Context, st store.Store, id string, i int) error {
	_, err := st.PutAccount(ctx, store.Account{
		ID: id, Type: store.Personal, BoundPhone: seedPhone(i), Email: id + "@example.com",
		Logins:      []store.Login{{Kind: store.LoginQQ, ID: seedQQ(i)}},
		RealName:    store.RealName{Verified: true, Name: seedName, IDNumber: seedIDNumber},
		LoginMethod: store.LoginMFA,
	})
	return err
}

// createDevice stores an active virtual device with secret sealed as the
// binding flow seals it.
func createDevice(ctx context.Context, st store.Store, keys *mfa.Keyring, accountID string, secret mfa.Secret) error {
	id := "dev-" + accountID
	sealed, err := keys.Seal(secret, mfa.AAD(string(store.SealedDevices), id))
	if err != nil {
		return err
	}
	_, err = st.CreateDevice(ctx, store.Device{ID: id, AccountID: accountID, Type: store.Virtual, Secret: sealed,
		Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive})
	return err
}

// postgresVerifyDB opens a fresh PostgreSQL database for the verify runs:
// the store, and a pool of its own for the least-work handler on the same
// URL (so with the same limit, 8 connections, as the store's main pool).
func postgresVerifyDB(tb testing.TB) verifyDB {
	tb.Helper()
	u := harness.PostgresURL(tb)
	st := storetest.OpenPostgres(tb, u)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return verifyDB{name: "Postgres", st: st, keys: newKeyring(tb), least: pgLeast{pool}}
}

// sqliteVerifyDB opens a fresh SQLite file for the verify runs: the store,
// and the least-work handler's connections to the same file.
func sqliteVerifyDB(tb testing.TB) verifyDB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "mfaflow.db")
	st := storetest.OpenSQLite(tb, path)
	least, err := openSQLiteLeast(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(least.close)
	return verifyDB{name: "SQLite", st: st, keys: newKeyring(tb), least: least}
}

func newKeyring(tb testing.TB) *mfa.Keyring {
	tb.Helper()
	keys, err := mfa.GenerateKeyring()
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// leastTarget seeds db with devices of its own and serves the least-work
// handler on it with the clock frozen at verifyNow; the clients' queues
// hold three fresh codes per device, as verifyTarget's do.
func leastTarget(tb testing.TB, db verifyDB) *httpTarget {
	name := "LeastWork" + db.name
	seedStart := time.Now()
	accounts := seedVerifyDevices(tb, db.st, db.keys, "lw", *flagAccounts, false)
	tb.Logf("%s: seeded %d devices in %v", name, len(accounts), time.Since(seedStart).Round(time.Millisecond))
	hs := httptest.NewServer(leastHandler(db.least, db.keys, func() time.Time { return verifyNow }))
	tb.Cleanup(hs.Close)
	t := codeQueues(name, hs.URL, accounts)
	t.onPG = db.name == "Postgres"
	return t
}

// codeQueues spreads the codes of the steps before, at and after the
// frozen time of each account, in order, over the clients; all of an
// account's codes go to the one client that owns it.
func codeQueues(name, base string, accounts []verifyAccount) *httpTarget {
	n := *flagClients
	t := &httpTarget{name: name, url: base, work: make([][]*preparedRequest, n), pos: make([]int, n)}
	for i, a := range accounts {
		url := base + "/v1/accounts/" + a.id + "/mfa/verify"
		for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
			body, _ := json.Marshal(verifyRequest{Code: mfa.TOTP(a.secret, verifyNow.Add(d), mfa.Params{}), Purpose: console.PurposeLogin})
			t.work[i%n] = append(t.work[i%n], &preparedRequest{url: url, body: body})
		}
	}
	return t
}

// verifyTarget seeds db's store and serves api.NewServer on it with the
// API's clock frozen at verifyNow; the clients' queues hold three fresh
// codes per account.
func verifyTarget(tb testing.TB, db verifyDB) *httpTarget {
	name, st, keys := db.name, db.st, db.keys
	seedStart := time.Now()
	accounts := seedVerifyDevices(tb, st, keys, "bv", *flagAccounts, true)
	tb.Logf("%s: seeded %d accounts in %v", name, len(accounts), time.Since(seedStart).Round(time.Millisecond))

	hs := httptest.NewServer(verifyServer(st, keys, verifyNow))
	tb.Cleanup(hs.Close)
	t := codeQueues(name, hs.URL, accounts)
	t.onPG = db.name == "Postgres"
	return t
}

// verifyServer is api.NewServer on st with the API's clock frozen at now.
func verifyServer(st store.Store, keys *mfa.Keyring, now time.Time) http.Handler {
	frozen := func() time.Time { return now }
	outbox := notify.Outbox{Store: st}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	svc := &console.Service{Store: st, Keys: keys, Notifier: outbox, Log: logger, Now: frozen,
		// As production wires it (cmd/mfaflow): every successful use looks
		// for the account's open appeals. None is open here, so the
		// Temporal client it would signal is never called.
		OnFactorUsed: api.FactorUsedHook(st, nil, logger)}
	return api.NewServer(api.Deps{
		Store: st, ConsoleService: svc, Notifier: outbox, Keys: keys,
		Console: auth.NewConsoleKeys([]string{consoleKey}), Logger: logger, Now: frozen,
	})
}

type preparedRequest struct {
	url  string
	body []byte
}
