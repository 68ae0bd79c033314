package faulttest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

// TestTemporalStopped stops the Temporal server under a running API: a new
// binding and a new appeal answer a clear 503 "unavailable", promptly, and
// the refused appeal leaves no open row behind, so the account can file
// again once Temporal is back.
func TestTemporalStopped(t *testing.T) {
	const answerBound = 70 * time.Second
	testStart := time.Now()
	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.SQLite(t)
	ts := temporalharness.StartEncrypted(t, keys)
	ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) {
		worker.Register(r, &activities.Activities{Store: st, Notifier: notify.Outbox{Store: st}, Keys: keys})
	}, sdkworker.Options{})
	// The API's own client, as in production (a lazy client that outlives
	// the server); the test server closes only the clients it made.
	tc, err := client.NewLazyClient(codec.ClientOptions(keys, client.Options{
		HostPort: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace(), Logger: sdkQuiet(),
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	c := startAPI(t, apiDeps{st: st, tc: tc, keys: keys})

	putAccount(t, st, "ft-tmp-bind-ok", "13800200001", "880001")
	putAccount(t, st, "ft-tmp-bind", "13800200002", "880002")
	const acct, phone, qq = "ft-tmp-appeal", "13800200003", "880003"
	putAccount(t, st, acct, phone, qq)
	bindDevice(t, st, keys, acct)

	// While Temporal runs, the binding path works.
	if code, out := c.call(http.MethodPost, "/v1/accounts/ft-tmp-bind-ok/mfa/bindings", consoleKey, map[string]any{"device_type": "virtual"}); code != http.StatusCreated {
		t.Fatalf("binding with Temporal up = %d %v", code, out)
	}
	t.Logf("stack up in %s", time.Since(testStart).Round(time.Millisecond))

	stopStart := time.Now()
	ts.Stop()
	t.Logf("Temporal stopped in %s", time.Since(stopStart).Round(time.Millisecond))

	// Both calls at once: each waits out the SDK's retries (a minute).
	type answer struct {
		name string
		code int
		out  map[string]any
		took time.Duration
	}
	calls := []struct {
		name, path, key string
		body            any
	}{
		{"POST bindings", "/v1/accounts/ft-tmp-bind/mfa/bindings", consoleKey, map[string]any{"device_type": "virtual"}},
		{"POST appeals", "/v1/appeals", "", personalAppeal(acct, phone, qq)},
	}
	answers := make(chan answer, len(calls))
	for _, call := range calls {
		go func() {
			start := time.Now()
			code, out := c.call(http.MethodPost, call.path, call.key, call.body)
			answers <- answer{call.name, code, out, time.Since(start)}
		}()
	}
	for range calls {
		a := <-answers
		t.Logf("%s with Temporal down: %d %s in %s", a.name, a.code, errCode(a.out), a.took.Round(time.Millisecond))
		if a.code != http.StatusServiceUnavailable || errCode(a.out) != "unavailable" {
			t.Errorf("%s with Temporal down = %d %v, want 503 unavailable", a.name, a.code, a.out)
		}
		if a.took > answerBound {
			t.Errorf("%s took %s to answer, want under %s", a.name, a.took, answerBound)
		}
	}

	// No orphan: the account has no open appeal in the store, so it may
	// file again once Temporal is back.
	appeals, err := st.ListAppeals(context.Background(), "", acct, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range appeals {
		if a.ClosedAt.IsZero() {
			t.Errorf("the failed filing left an open appeal row: %+v", a)
		}
	}
	if len(appeals) != 1 {
		t.Errorf("the failed filing left %d appeal rows, want 1 closed: %+v", len(appeals), appeals)
	}
	t.Logf("total %s", time.Since(testStart).Round(time.Millisecond))
}
