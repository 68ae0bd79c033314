package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/store"
)

// filing is the answer to one POST /v1/appeals.
type filing struct {
	code       int
	errCode    string
	retryAfter string
	out        map[string]any
	err        error
}

// fileFrom files an appeal from the loopback address ip (any of
// 127.0.0.0/8): the connection's source is what the server takes as the
// client IP, as it trusts no forwarding header. It reports transport and
// decoding failures in filing.err, so it may run outside the test's
// goroutine.
func (s *stack) fileFrom(ip string, body any) filing {
	b, err := json.Marshal(body)
	if err != nil {
		return filing{err: err}
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 60 * time.Second, Transport: s.contract.transport(tr)}
	resp, err := c.Post(s.apis[0].URL+"/v1/appeals", "application/json", bytes.NewReader(b))
	if err != nil {
		return filing{err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	f := filing{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), out: map[string]any{}}
	if err := json.Unmarshal(raw, &f.out); err != nil {
		f.err = fmt.Errorf("bad JSON %q", raw)
	}
	f.errCode = errCode(f.out)
	return f
}

// wrongIdentity is a well-formed personal filing for acct whose name is not
// the one on record.
func wrongIdentity(acct, phone string) map[string]any {
	a := personalAppeal(acct, phone, "11010519491231002X")
	a["name"] = "李四"
	return a
}

// attemptAlerts returns the "someone is filing appeals" messages sent to to.
func attemptAlerts(t *testing.T, st store.Store, to string) []store.OutboxMessage {
	t.Helper()
	msgs, err := st.ListOutbox(context.Background(), to, 500)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.OutboxMessage
	for _, m := range msgs {
		if m.Kind == api.KindAppealAttempts {
			out = append(out, m)
		}
	}
	return out
}

// cancelAndWait cancels the appeal with its access token and waits until
// its row is closed, so the account may file again.
func (s *stack) cancelAndWait(f filing) {
	s.t.Helper()
	id, _ := f.out["appeal_id"].(string)
	token, _ := f.out["access_token"].(string)
	if code, out, _ := s.call(0, http.MethodPost, "/v1/appeals/"+id+"/cancel", token, nil); code != http.StatusOK {
		s.t.Fatalf("cancel %s = %d %v", id, code, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if a, err := s.st.GetAppeal(context.Background(), id); err == nil && !a.ClosedAt.IsZero() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("appeal %s never closed after its cancel", id)
}

// toNextUTCDay sets the API's clock a minute into the next UTC day, so the
// rate-limit windows of a day and of an hour (aligned on the epoch) hold
// every request of the next minutes. JWTs signed before still carry the
// real time: make admin calls first.
func (s *stack) toNextUTCDay() {
	now := s.clock.Now().UTC()
	s.clock.Advance(now.Truncate(24 * time.Hour).Add(24*time.Hour + time.Minute).Sub(now))
}

// retryWithin fails unless the Retry-After header is a number of seconds in
// (0, max].
func retryWithin(t *testing.T, f filing, max time.Duration) {
	t.Helper()
	n, err := strconv.Atoi(f.retryAfter)
	if err != nil || n <= 0 || time.Duration(n)*time.Second > max {
		t.Fatalf("Retry-After %q, want 1..%v seconds", f.retryAfter, max.Seconds())
	}
}

// TestWrongIdentityFilingsDoNotBlockOwner walks attack step 4 of issue 10:
// strangers who know an account id file appeals for it with wrong identity
// details, from one address and sprayed from several at once. None gets
// further than a refusal, the address that keeps trying is stopped for
// itself alone, the owner is told once a day, and the owner, from another
// address with the right details, files at once (201).
func TestWrongIdentityFilingsDoNotBlockOwner(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		s := newStack(t, st, 1)
		const acct, phone = "e2e-filing-owner", "13800000061"
		s.putAccount(acct, phone, store.LoginMFA)
		s.bindDirect(acct)
		email := acct + "@example.com"
		s.toNextUTCDay()

		// A spray: five addresses, two wrong filings each, all at once. Each
		// is refused for its details, or, when the checks of the others took
		// longer than the server waits for them, told to come back in a few
		// seconds (409 with Retry-After); neither spends anything of the
		// owner's.
		var (
			mu      sync.Mutex
			refused = map[string]int{} // identity refusals by address
			wg      sync.WaitGroup
		)
		res := make(chan filing, 10)
		for i := range 5 {
			ip := fmt.Sprintf("127.0.0.%d", 2+i)
			wg.Go(func() {
				for range 2 {
					f := s.fileFrom(ip, wrongIdentity(acct, phone))
					if f.code == http.StatusUnprocessableEntity {
						mu.Lock()
						refused[ip]++
						mu.Unlock()
					}
					res <- f
				}
			})
		}
		wg.Wait()
		close(res)
		total := 0
		for f := range res {
			switch {
			case f.err == nil && f.code == http.StatusUnprocessableEntity && f.errCode == "identity_mismatch":
				total++
			case f.err == nil && f.code == http.StatusConflict && f.errCode == "appeal_in_progress" && f.retryAfter != "":
				t.Logf("a sprayed filing waited out the others' checks: %v", f.out)
			default:
				t.Fatalf("sprayed wrong filing = %d %v (%v), want 422 identity_mismatch", f.code, f.out, f.err)
			}
		}
		for ; total < 3; total++ { // on a slow machine, make up the alert's three refusals one by one
			if f := s.fileFrom("127.0.0.7", wrongIdentity(acct, phone)); f.code != http.StatusUnprocessableEntity {
				t.Fatalf("wrong filing = %d %v (%v)", f.code, f.out, f.err)
			}
		}
		// The owner is told exactly once, on each old channel, however the
		// refusals raced.
		for _, to := range []string{phone, email} {
			alerts := attemptAlerts(t, st, to)
			if len(alerts) != 1 {
				t.Fatalf("%d attempt alerts to %s after the spray, want 1: %+v", len(alerts), to, alerts)
			}
			if b := alerts[0].Body; strings.Contains(b, "李四") || strings.Contains(b, "11010519491231002X") || !strings.Contains(b, "申请解绑") {
				t.Fatalf("alert body %q", b)
			}
		}

		// One address keeps trying: its refusals are answered up to ten in
		// the hour, then the address is stopped for the rest of the hour,
		// even with the right details.
		for i := refused["127.0.0.2"]; i < 10; i++ {
			if f := s.fileFrom("127.0.0.2", wrongIdentity(acct, phone)); f.code != http.StatusUnprocessableEntity || f.errCode != "identity_mismatch" {
				t.Fatalf("wrong filing %d from one address = %d %v (%v)", i+1, f.code, f.out, f.err)
			}
		}
		for _, body := range []map[string]any{wrongIdentity(acct, phone), personalAppeal(acct, phone, "11010519491231002X")} {
			f := s.fileFrom("127.0.0.2", body)
			if f.code != http.StatusTooManyRequests || f.errCode != "rate_limited" {
				t.Fatalf("filing from an address past its refused filings = %d %v (%v), want 429", f.code, f.out, f.err)
			}
			retryWithin(t, f, time.Hour)
		}
		if n := len(attemptAlerts(t, st, phone)); n != 1 {
			t.Fatalf("%d attempt alerts after more refusals the same day, want 1", n)
		}

		// The owner, from another address with the right details: 201.
		f := s.fileFrom("127.0.0.9", personalAppeal(acct, phone, "11010519491231002X"))
		if f.code != http.StatusCreated {
			t.Fatalf("owner's filing after the strangers' = %d %v (%v), want 201", f.code, f.out, f.err)
		}
		s.cancelAndWait(f)

		// A new day: three more refusals tell the owner again, once, with
		// a message id of its own.
		s.clock.Advance(24 * time.Hour)
		for i := range 4 {
			if f := s.fileFrom("127.0.0.10", wrongIdentity(acct, phone)); f.code != http.StatusUnprocessableEntity {
				t.Fatalf("next day's wrong filing %d = %d %v (%v)", i+1, f.code, f.out, f.err)
			}
		}
		for _, to := range []string{phone, email} {
			alerts := attemptAlerts(t, st, to)
			if len(alerts) != 2 || alerts[0].Data["message_id"] == alerts[1].Data["message_id"] {
				t.Fatalf("attempt alerts to %s over two days = %+v, want 2 with distinct ids", to, alerts)
			}
		}
		if f := s.fileFrom("127.0.0.9", personalAppeal(acct, phone, "11010519491231002X")); f.code != http.StatusCreated {
			t.Fatalf("owner's filing on the second day = %d %v (%v), want 201", f.code, f.out, f.err)
		}

		es, err := st.ListAudit(context.Background(), store.AuditFilter{AccountID: acct, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		var audited int
		for _, e := range es {
			if e.Action == "appeal.attempts_alert" {
				audited++
				if e.Outcome != "ok" || e.Details["messages"] != "2" {
					t.Fatalf("alert audit = %+v", e)
				}
			}
		}
		if audited != 2 {
			t.Fatalf("%d alert audit entries, want 2", audited)
		}
	})
}
