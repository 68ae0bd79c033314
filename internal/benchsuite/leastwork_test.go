package benchsuite

import (
	"bytes"
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // the driver sqlitestore uses

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

// The least correct work (SPEC §9): the minimum a replay-proof TOTP
// verification must do on a database. A Gin handler checks the caller's
// bearer key, decodes the body, reads the account's TOTP devices with one
// SELECT, opens each sealed secret with the same key ring (AES-256-GCM, the
// same additional data), checks the code ±1 step with mfa.Verify, and
// records the step with one compare-and-set UPDATE … WHERE last_step < $n;
// only the request whose UPDATE changed the row is answered
// {"verified":true}. No failure budget, no audit entry, no grant: what
// mfaflow's verify does beyond this is what the figure prices.
//
// It reads and writes mfaflow's own devices table, in the same PostgreSQL
// database and the same SQLite file as the mfaflow run, on devices seeded
// for it through the store as mfaflow's are (other accounts, so neither
// server consumes the other's steps). Reading the table directly rather
// than a narrow table of its own keeps the rows, indexes and pages the
// same, so the SELECT and the UPDATE cost what mfaflow's would; a table with
// only (id, secret, last_step) would flatter the baseline.

// leastDevice is one TOTP device as the minimal handler reads it.
type leastDevice struct {
	id, keyID     string
	sealed        []byte
	algorithm     string
	digits        int
	periodSeconds int
	lastStep      int64
	drift         int64
}

// leastDB is the minimal handler's database: one SELECT, one compare-and-set.
type leastDB interface {
	devices(ctx context.Context, accountID string) ([]leastDevice, error)
	// advance moves the device's last step to step if it is below step
	// and reports whether it did.
	advance(ctx context.Context, deviceID string, step int64) (bool, error)
}

const (
	leastSelect = `SELECT id, secret_key_id, sealed_secret, algorithm, digits, period_seconds, last_step, drift
		FROM devices WHERE account_id = $1 AND status = 'active' AND type IN ('virtual', 'hardware')`
	leastAdvance = `UPDATE devices SET last_step = $2 WHERE id = $1 AND last_step < $2`
)

// pgLeast is leastDB on a pgx pool (statements cached by pgx).
type pgLeast struct{ pool *pgxpool.Pool }

func (p pgLeast) devices(ctx context.Context, accountID string) ([]leastDevice, error) {
	rows, err := p.pool.Query(ctx, leastSelect, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []leastDevice
	for rows.Next() {
		var d leastDevice
		if err := rows.Scan(&d.id, &d.keyID, &d.sealed, &d.algorithm, &d.digits, &d.periodSeconds, &d.lastStep, &d.drift); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (p pgLeast) advance(ctx context.Context, deviceID string, step int64) (bool, error) {
	tag, err := p.pool.Exec(ctx, leastAdvance, deviceID, step)
	return tag.RowsAffected() == 1, err
}

// sqliteLeast is leastDB on the SQLite file, connected as sqlitestore
// connects (WAL, busy timeout, one writer connection, four read-only
// readers), with both statements prepared once.
type sqliteLeast struct {
	r, w          *sql.DB
	sel, advanceS *sql.Stmt
}

func openSQLiteLeast(ctx context.Context, path string) (*sqliteLeast, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	w, err := sql.Open("sqlite", path+"?"+q.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	q.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s := &sqliteLeast{r: r, w: w}
	if s.sel, err = r.PrepareContext(ctx, leastSelect); err == nil {
		s.advanceS, err = w.PrepareContext(ctx, leastAdvance)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *sqliteLeast) close() {
	for _, st := range []*sql.Stmt{s.sel, s.advanceS} {
		if st != nil {
			st.Close()
		}
	}
	s.r.Close()
	s.w.Close()
}

func (s *sqliteLeast) devices(ctx context.Context, accountID string) ([]leastDevice, error) {
	rows, err := s.sel.QueryContext(ctx, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []leastDevice
	for rows.Next() {
		var d leastDevice
		if err := rows.Scan(&d.id, &d.keyID, &d.sealed, &d.algorithm, &d.digits, &d.periodSeconds, &d.lastStep, &d.drift); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *sqliteLeast) advance(ctx context.Context, deviceID string, step int64) (bool, error) {
	res, err := s.advanceS.ExecContext(ctx, deviceID, step)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// leastHandler is the minimal correct verify endpoint on db, with the
// clock now.
func leastHandler(db leastDB, keys *mfa.Keyring, now func() time.Time) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	want := []byte("Bearer " + consoleKey)
	r.POST("/v1/accounts/:account_id/mfa/verify", func(c *gin.Context) {
		if subtle.ConstantTimeCompare([]byte(c.GetHeader("Authorization")), want) != 1 {
			c.JSON(http.StatusUnauthorized, gin.H{"error": "unauthorized"})
			return
		}
		var req verifyRequest
		if err := json.NewDecoder(c.Request.Body).Decode(&req); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": "invalid_json"})
			return
		}
		ctx := c.Request.Context()
		devs, err := db.devices(ctx, c.Param("account_id"))
		if err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "unavailable"})
			return
		}
		for _, d := range devs {
			step, ok := leastCheck(keys, d, req.Code, now())
			if !ok || step <= d.lastStep {
				continue // wrong code, or a step already used
			}
			advanced, err := db.advance(ctx, d.id, step)
			if err != nil {
				c.JSON(http.StatusServiceUnavailable, gin.H{"error": "unavailable"})
				return
			}
			if advanced {
				c.JSON(http.StatusOK, gin.H{"verified": true})
				return
			}
		}
		c.JSON(http.StatusUnauthorized, gin.H{"verified": false, "error": "invalid_code"})
	})
	return r
}

// leastCheck opens d's secret and checks code ±1 step at now, returning
// the matched step.
func leastCheck(keys *mfa.Keyring, d leastDevice, code string, now time.Time) (int64, bool) {
	alg, err := mfa.ParseAlgorithm(d.algorithm)
	if err != nil {
		return 0, false
	}
	secret, err := keys.Open(mfa.Sealed{KeyID: d.keyID, Ciphertext: d.sealed}, mfa.AAD(string(store.SealedDevices), d.id))
	if err != nil {
		return 0, false
	}
	defer clear(secret)
	step, err := mfa.Verify(secret, code, mfa.VerifyOpts{
		Params: mfa.Params{Algorithm: alg, Digits: d.digits, Period: time.Duration(d.periodSeconds) * time.Second},
		Now:    now, Drift: d.drift,
	})
	return step, err == nil
}

// TestLeastWorkHandler: the baseline is honest. On both databases it
// accepts a fresh code once, refuses the same code again, an older step's
// code and a wrong code, and gives exactly one success to 20 concurrent
// uses of one code, because its UPDATE is a real compare-and-set; the
// device's last step in the store is the one it accepted.
func TestLeastWorkHandler(t *testing.T) {
	for _, open := range []func(testing.TB) verifyDB{postgresVerifyDB, sqliteVerifyDB} {
		db := open(t)
		t.Run(db.name, func(t *testing.T) {
			ctx := context.Background()
			secret, err := mfa.NewSecret(nil)
			if err != nil {
				t.Fatal(err)
			}
			const account = "lw-test"
			if err := createDevice(ctx, db.st, db.keys, account, secret); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			now := verifyNow
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			hs := httptest.NewServer(leastHandler(db.least, db.keys, clock))
			defer hs.Close()
			verify := func(code, key string) (int, string) {
				body, _ := json.Marshal(verifyRequest{Code: code, Purpose: "login"})
				req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/accounts/"+account+"/mfa/verify", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				out, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(out)
			}
			code := func(d time.Duration) string { return mfa.TOTP(secret, verifyNow.Add(d), mfa.Params{}) }
			wrong := code(0)[:5] + string('0'+(code(0)[5]-'0'+1)%10)
			for _, c := range []struct {
				name, code, key string
				want            int
			}{
				{"wrong key", code(0), "not-the-key", http.StatusUnauthorized},
				{"wrong code", wrong, consoleKey, http.StatusUnauthorized},
				{"fresh code", code(0), consoleKey, http.StatusOK},
				{"replayed code", code(0), consoleKey, http.StatusUnauthorized},
				{"older step", code(-30 * time.Second), consoleKey, http.StatusUnauthorized},
				{"next step", code(30 * time.Second), consoleKey, http.StatusOK},
				{"next step replayed", code(30 * time.Second), consoleKey, http.StatusUnauthorized},
				{"two steps ahead", code(60 * time.Second), consoleKey, http.StatusUnauthorized},
			} {
				status, body := verify(c.code, c.key)
				if status != c.want {
					t.Errorf("%s: %d %s; want %d", c.name, status, body, c.want)
				}
				if status == http.StatusOK && body != `{"verified":true}` {
					t.Errorf("%s: body %s", c.name, body)
				}
			}

			// 20 concurrent uses of one fresh code: one success.
			mu.Lock()
			now = verifyNow.Add(5 * time.Minute)
			mu.Unlock()
			fresh := code(5 * time.Minute)
			var ok atomic.Int32
			var wg sync.WaitGroup
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if status, _ := verify(fresh, consoleKey); status == http.StatusOK {
						ok.Add(1)
					}
				}()
			}
			wg.Wait()
			if got := ok.Load(); got != 1 {
				t.Errorf("20 concurrent uses of one code: %d successes, want 1", got)
			}
			d, err := db.st.GetDevice(ctx, "dev-"+account)
			if err != nil {
				t.Fatal(err)
			}
			if want := mfa.StepAt(verifyNow.Add(5*time.Minute), mfa.Params{}); d.LastStep != want {
				t.Errorf("stored last step %d, want %d", d.LastStep, want)
			}
		})
	}
}
