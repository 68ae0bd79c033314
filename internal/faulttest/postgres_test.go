package faulttest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
)

// TestPostgresStopped stops the store's PostgreSQL under a running API: a
// valid code for an account with login protection answers 503 and never
// "verified"; once PostgreSQL is back the same API, not restarted, verifies
// a fresh valid code.
func TestPostgresStopped(t *testing.T) {
	const (
		answerBound  = 15 * time.Second
		recoverBound = 60 * time.Second
	)
	testStart := time.Now()
	pg := harness.NewPostgres(t)
	st := storetest.OpenPostgres(t, pg.URL(t))
	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	c := startAPI(t, apiDeps{st: st, keys: keys})
	const acct = "ft-pg"
	putAccount(t, st, acct, "13800300001", "990001")
	_, secret := bindDevice(t, st, keys, acct)
	if _, err := st.SetProtection(context.Background(), acct, store.Protection{Login: true, Operation: true}); err != nil {
		t.Fatal(err)
	}
	verify := "/v1/accounts/" + acct + "/mfa/verify"
	codeAt := func(step int64) string { return mfa.TOTP(secret, time.Unix(step*30, 0), mfa.Params{}) }
	stepNow := func() int64 { return time.Now().Unix() / 30 }

	// Before the fault: a valid code verifies.
	base := stepNow()
	if code, out := c.call(http.MethodPost, verify, consoleKey, map[string]any{"code": codeAt(base), "purpose": "login"}); code != http.StatusOK || out["verified"] != true {
		t.Fatalf("verify before the fault = %d %v", code, out)
	}
	t.Logf("stack up in %s", time.Since(testStart).Round(time.Millisecond))

	stop := time.Now()
	pg.Stop(t)
	t.Logf("PostgreSQL stopped in %s", time.Since(stop).Round(time.Millisecond))

	// The next step's code is valid (skew +1) and unused.
	outage := codeAt(base + 1)
	attempts := []map[string]any{
		{"code": outage, "purpose": "login"},
		{"code": outage, "purpose": "login"},
		{"code": outage, "purpose": "operation", "operation": map[string]string{"action": "cvm:DeleteInstance", "resource": "vm-1"}},
		{"code": outage, "purpose": "login"},
	}
	for i, body := range attempts {
		start := time.Now()
		code, out := c.call(http.MethodPost, verify, consoleKey, body)
		took := time.Since(start)
		t.Logf("verify %d (%s) with PostgreSQL down: %d %s in %s", i+1, body["purpose"], code, errCode(out), took.Round(time.Millisecond))
		if out["verified"] != nil || out["grant"] != nil {
			t.Fatalf("verify with PostgreSQL down answered %d %v: a false verified", code, out)
		}
		if code != http.StatusServiceUnavailable || errCode(out) != "unavailable" {
			t.Errorf("verify with PostgreSQL down = %d %v, want 503 unavailable", code, out)
		}
		if took > answerBound {
			t.Errorf("verify with PostgreSQL down took %s, want under %s", took, answerBound)
		}
	}
	// The login-protection route fails closed too.
	if code, out := c.call(http.MethodPost, "/v1/accounts/"+acct+"/login-protection/verify", consoleKey, map[string]any{"code": outage}); code != http.StatusServiceUnavailable || out["verified"] != nil {
		t.Errorf("login-protection verify with PostgreSQL down = %d %v, want 503", code, out)
	}

	restart := time.Now()
	pg.Start(t)
	t.Logf("PostgreSQL started again in %s", time.Since(restart).Round(time.Millisecond))

	// A fresh valid code: newer than the one verified before the fault and
	// within the skew of now. Retried only while the API still answers 503.
	var code int
	var out map[string]any
	ok := within(recoverBound, 250*time.Millisecond, func() bool {
		step := max(stepNow(), base+1)
		code, out = c.call(http.MethodPost, verify, consoleKey, map[string]any{"code": codeAt(step), "purpose": "login"})
		return code != http.StatusServiceUnavailable
	})
	t.Logf("after the restart: %d %v, %s after PostgreSQL accepted connections", code, out, time.Since(restart).Round(time.Millisecond))
	if !ok || code != http.StatusOK || out["verified"] != true {
		t.Fatalf("verify after PostgreSQL came back = %d %v, want 200 verified", code, out)
	}
	// The failures during the outage did not count against the account.
	es, err := st.ListAudit(context.Background(), store.AuditFilter{AccountID: acct, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if strings.HasPrefix(e.Action, "mfa.lock") || e.Outcome == "locked" {
			t.Errorf("the outage locked the account: %+v", e)
		}
	}
	t.Logf("total %s", time.Since(testStart).Round(time.Millisecond))
}
