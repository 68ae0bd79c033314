package api_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/store"
)

// send makes one request to base with extra headers and returns the status.
func send(t *testing.T, base, method, path, body string, header map[string]string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// audits returns the store's audit entries of action, oldest first.
func audits(t *testing.T, st store.Store, action string) []store.AuditEntry {
	t.Helper()
	all, err := st.ListAudit(context.Background(), store.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditEntry
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Action == action {
			out = append(out, all[i])
		}
	}
	return out
}

// fileFrom files an empty (invalid) appeal as if from the headers' client:
// the per-IP filing limit counts it before the form is read.
func fileFrom(t *testing.T, base string, header map[string]string) int {
	t.Helper()
	return send(t, base, http.MethodPost, "/v1/appeals", "{}", merge(header, map[string]string{"Content-Type": "application/json"}))
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestTrustedProxies: behind a trusted proxy the per-IP filing limit and
// the audit use the client named by X-Forwarded-For; from any other peer
// (or with no proxy configured) every forwarded header is ignored and the
// peer's address counts.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }
	const limited = http.StatusTooManyRequests

	t.Run("trusted proxy", func(t *testing.T) {
		t.Parallel()
		st := openSQLite(t)
		deps := testDeps(st)
		deps.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
		deps.Appeals.PerIPPerHour = 2
		base := serve(t, deps)

		for i := range 2 {
			if got := fileFrom(t, base, xff("203.0.113.7")); got == limited {
				t.Fatalf("filing %d from 203.0.113.7: 429 within the limit", i+1)
			}
		}
		if got := fileFrom(t, base, xff("203.0.113.7")); got != limited {
			t.Fatalf("third filing from 203.0.113.7: status %d, want 429", got)
		}
		// The client may put anything first; the proxy appends what it saw,
		// and the rightmost address that is not a trusted proxy counts.
		if got := fileFrom(t, base, xff("198.51.100.1, 203.0.113.7")); got != limited {
			t.Fatalf("filing with a spoofed first X-Forwarded-For entry: status %d, want 429 (203.0.113.7 counts)", got)
		}
		if got := fileFrom(t, base, xff("203.0.113.8")); got == limited {
			t.Fatalf("first filing from 203.0.113.8: 429, want its own limit")
		}
		// A chain of trusted proxies: the first untrusted hop from the right.
		if got := fileFrom(t, base, xff("203.0.113.8, 127.0.0.1")); got == limited {
			t.Fatalf("second filing from 203.0.113.8 through two proxies: 429")
		}
		if got := fileFrom(t, base, xff("203.0.113.8, 127.0.0.1")); got != limited {
			t.Fatalf("third filing from 203.0.113.8 through two proxies: status %d, want 429", got)
		}

		send(t, base, http.MethodGet, "/v1/accounts/acct-1/mfa", "", map[string]string{"Authorization": "Bearer wrong-console-key-0123456789", "X-Forwarded-For": "203.0.113.9"})
		got := audits(t, st, "auth.console")
		if len(got) != 1 || got[0].RemoteIP != "203.0.113.9" {
			t.Fatalf("audit of a bad console key = %+v, want one entry with remote_ip 203.0.113.9", got)
		}
	})

	for _, tt := range []struct {
		name    string
		proxies []string
	}{
		{"untrusted peer", []string{"10.0.0.0/8", "fd00::/8"}},
		{"no proxy configured", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openSQLite(t)
			deps := testDeps(st)
			deps.TrustedProxies = tt.proxies
			deps.Appeals.PerIPPerHour = 2
			base := serve(t, deps)
			spoofs := []map[string]string{
				xff("203.0.113.1"),
				{"X-Real-IP": "203.0.113.2"},
				{"X-Forwarded-For": "203.0.113.3", "X-Appengine-Remote-Addr": "203.0.113.4", "CF-Connecting-IP": "203.0.113.5", "True-Client-IP": "203.0.113.6"},
			}
			for i, h := range spoofs[:2] {
				if got := fileFrom(t, base, h); got == limited {
					t.Fatalf("filing %d: 429 within the limit", i+1)
				}
			}
			if got := fileFrom(t, base, spoofs[2]); got != limited {
				t.Fatalf("third filing with yet another spoofed address: status %d, want 429 (the peer's limit)", got)
			}
			send(t, base, http.MethodGet, "/v1/accounts/acct-1/mfa", "", merge(spoofs[2], map[string]string{"Authorization": "Bearer wrong-console-key-0123456789"}))
			got := audits(t, st, "auth.console")
			if len(got) != 1 || got[0].RemoteIP != "127.0.0.1" {
				t.Fatalf("audit of a bad console key = %+v, want one entry with the peer's remote_ip 127.0.0.1", got)
			}
		})
	}
}

// TestRefusalAuditBound: a flood of bad console keys adds a bounded number
// of audit entries a minute: the first few per address, one summary per
// address past that, and one for the kind once its own bound is reached;
// a new minute starts over. Other kinds have bounds of their own.
func TestRefusalAuditBound(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	var mu sync.Mutex
	now := time.Date(2026, 12, 2, 10, 0, 5, 0, time.UTC)
	deps := testDeps(st)
	deps.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	deps.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
	deps.RefusalAuditPerIP, deps.RefusalAuditPerKind = 3, 5
	base := serve(t, deps)

	badKey := func(ip string, n int) {
		t.Helper()
		for range n {
			if got := send(t, base, http.MethodGet, "/v1/accounts/acct-1/mfa", "", map[string]string{
				"Authorization": "Bearer wrong-console-key-0123456789", "X-Forwarded-For": ip}); got != http.StatusUnauthorized {
				t.Fatalf("bad console key: status %d, want 401", got)
			}
		}
	}
	bounds := func(es []store.AuditEntry) (plain, ip, kind int) {
		for _, e := range es {
			switch e.Details["audit_bound"] {
			case "":
				plain++
			case "ip":
				ip++
			case "kind":
				kind++
			}
		}
		return
	}

	badKey("203.0.113.1", 20)
	es := audits(t, st, "auth.console")
	if p, i, k := bounds(es); p != 3 || i != 1 || k != 0 {
		t.Fatalf("after 20 refusals from one address: %d entries, %d address summaries, %d kind summaries; want 3, 1, 0", p, i, k)
	}
	for _, e := range es {
		if e.RemoteIP != "203.0.113.1" || e.Outcome != "denied" || e.Details["reason"] != "invalid_credentials" {
			t.Errorf("entry %+v: want a denied invalid_credentials refusal from 203.0.113.1", e)
		}
	}
	if until := es[len(es)-1].Details["until"]; until != "2026-12-02T10:01:00Z" {
		t.Errorf("summary until = %q, want the window's end 2026-12-02T10:01:00Z", until)
	}

	// Other addresses share the kind's bound of 5: one more entry, then
	// one summary for the kind, then nothing.
	badKey("203.0.113.2", 10)
	badKey("203.0.113.3", 10)
	for i := range 30 {
		badKey(fmt.Sprintf("198.51.100.%d", i), 1)
	}
	es = audits(t, st, "auth.console")
	if len(es) != deps.RefusalAuditPerKind+1 {
		t.Fatalf("after 70 refusals from 33 addresses: %d entries, want %d (the kind's bound and one summary)", len(es), deps.RefusalAuditPerKind+1)
	}
	if _, _, k := bounds(es); k != 1 {
		t.Errorf("kind summaries = %d, want 1", k)
	}

	// Bad JWTs are a kind of their own.
	send(t, base, http.MethodGet, "/v1/review/appeals", "", map[string]string{"Authorization": "Bearer not.a.jwt", "X-Forwarded-For": "203.0.113.1"})
	if got := audits(t, st, "auth.reviewer"); len(got) != 1 {
		t.Errorf("bad JWT refusals audited = %d, want 1", len(got))
	}

	// The unaudited ones are counted.
	r := do(t, base, request{method: http.MethodGet, path: "/metrics"})
	if !strings.Contains(string(r.body), `mfaflow_audit_refusals_unaudited_total{action="auth.console"} 64`) {
		t.Errorf("/metrics lacks 64 unaudited auth.console refusals:\n%s", grepLines(string(r.body), "unaudited"))
	}

	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	badKey("203.0.113.1", 5)
	if got := audits(t, st, "auth.console"); len(got) != deps.RefusalAuditPerKind+1+4 {
		t.Fatalf("in the next minute: %d entries, want %d", len(got), deps.RefusalAuditPerKind+1+4)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestMetricsAccess: /metrics is open by default (the dev stack), asks for
// the metrics token when one is set (refusals audited), and is absent from
// the API when served on a listener of its own.
func TestMetricsAccess(t *testing.T) {
	t.Parallel()
	const tok = "metrics-token-0123456789abcdef0123456789"

	t.Run("token", func(t *testing.T) {
		t.Parallel()
		st := openSQLite(t)
		deps := testDeps(st)
		deps.MetricsToken = tok
		base := serve(t, deps)
		if got := send(t, base, http.MethodGet, "/metrics", "", nil); got != http.StatusUnauthorized {
			t.Errorf("no token: status %d, want 401", got)
		}
		if got := send(t, base, http.MethodGet, "/metrics", "", map[string]string{"Authorization": "Bearer " + consoleKey}); got != http.StatusUnauthorized {
			t.Errorf("a console key: status %d, want 401", got)
		}
		if got := send(t, base, http.MethodGet, "/metrics", "", map[string]string{"Authorization": "Bearer " + tok}); got != http.StatusOK {
			t.Errorf("the token: status %d, want 200", got)
		}
		if got := audits(t, st, "auth.metrics"); len(got) != 2 {
			t.Errorf("metrics refusals audited = %d, want 2", len(got))
		}
	})

	t.Run("elsewhere", func(t *testing.T) {
		t.Parallel()
		deps := testDeps(openSQLite(t))
		deps.NoMetrics = true
		base := serve(t, deps)
		if got := send(t, base, http.MethodGet, "/metrics", "", nil); got != http.StatusNotFound {
			t.Errorf("status %d, want 404", got)
		}
	})

	t.Run("handler of its own", func(t *testing.T) {
		t.Parallel()
		deps := testDeps(openSQLite(t))
		deps.NoMetrics = true
		deps.Registry = prometheus.NewRegistry()
		api.NewServer(deps) // registers the HTTP metrics
		for _, tt := range []struct {
			token, auth string
			want        int
		}{
			{"", "", http.StatusOK},
			{tok, "", http.StatusUnauthorized},
			{tok, "Bearer wrong", http.StatusUnauthorized},
			{tok, "Bearer " + tok, http.StatusOK},
		} {
			srv := api.NewHTTPServer(api.MetricsHandler(deps.Registry, tt.token))
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.Serve(ln) }()
			got := send(t, "http://"+ln.Addr().String(), http.MethodGet, "/metrics", "", map[string]string{"Authorization": tt.auth})
			_ = srv.Close()
			if got != tt.want {
				t.Errorf("token %t, Authorization %q: status %d, want %d", tt.token != "", tt.auth, got, tt.want)
			}
		}
	})
}

// TestUploadDeadline: a client trickling a document upload is cut off by
// the deadline sized to the upload cap, over a real listener with the
// production server's settings, and gets an answer.
func TestUploadDeadline(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	const token = "apt_upload-deadline-test-token-0123456789"
	if _, err := st.CreateAppeal(context.Background(), store.Appeal{ID: "apl_deadline", AccountID: "acct-deadline", ApplicantType: "personal",
		TokenHash: store.TokenHash(token), Status: "collecting_documents"}); err != nil {
		t.Fatal(err)
	}
	deps := testDeps(st)
	deps.Appeals.MaxDocument = 64 << 10
	deps.UploadRate, deps.UploadGrace = 64<<10, time.Second // 64 KiB: 2 s
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewHTTPServer(api.NewServer(deps))
	go func() { _ = srv.Serve(api.Listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "PUT /v1/appeals/apl_deadline/documents/id_holding_photo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", token, 64<<10)
	_, _ = conn.Write([]byte("\x89PNG\r\n\x1a\n"))
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 50 ms: 20 B/s
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := conn.Write([]byte{0}); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a trickled upload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	took := time.Since(start)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "incomplete_upload") {
		t.Errorf("trickled upload: status %d, body %s; want 400 incomplete_upload", resp.StatusCode, body)
	}
	if took < 1500*time.Millisecond || took > 10*time.Second {
		t.Errorf("trickled upload answered after %v, want about the 2 s deadline", took)
	}
	// The connection is closed rather than left to the client.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Errorf("the connection stays open after the deadline")
	}
}

// TestIdPTokenAudience: with the company IdP's JWKS, a token the IdP signed
// for another application (wrong audience) or that another issuer signed
// gets 401, and the refusal is audited; mfaflow's own token is admitted.
func TestIdPTokenAudience(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	ecPub, err := ecKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "rsa-1", "use": "sig", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes())},
		{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64(ecPub[1:33]), "y": b64(ecPub[33:])},
	}})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(idp.Close)

	st := openSQLite(t)
	deps := testDeps(st)
	deps.JWT = &auth.Verifier{Keys: &auth.JWKS{URL: idp.URL, Client: idp.Client()}, Issuer: "https://idp.example.com/", Audience: "mfaflow", Leeway: 30 * time.Second}
	base := serve(t, deps)

	sign := func(method jwt.SigningMethod, key any, kid, iss string, aud ...string) string {
		now := time.Now()
		c := auth.Claims{Roles: []string{auth.RoleAdmin}, RegisteredClaims: jwt.RegisteredClaims{
			Subject: "alice", Issuer: iss, Audience: aud, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"RS256 for mfaflow", sign(jwt.SigningMethodRS256, rsaKey, "rsa-1", "https://idp.example.com/", "mfaflow"), http.StatusOK},
		{"ES256 for mfaflow among others", sign(jwt.SigningMethodES256, ecKey, "ec-1", "https://idp.example.com/", "billing", "mfaflow"), http.StatusOK},
		{"RS256 for another application", sign(jwt.SigningMethodRS256, rsaKey, "rsa-1", "https://idp.example.com/", "billing"), http.StatusUnauthorized},
		{"ES256 for another application", sign(jwt.SigningMethodES256, ecKey, "ec-1", "https://idp.example.com/", "billing"), http.StatusUnauthorized},
		{"no audience", sign(jwt.SigningMethodRS256, rsaKey, "rsa-1", "https://idp.example.com/"), http.StatusUnauthorized},
		{"another issuer", sign(jwt.SigningMethodES256, ecKey, "ec-1", "https://other-idp.example.com/", "mfaflow"), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		if got := send(t, base, http.MethodGet, "/v1/admin/audit", "", map[string]string{"Authorization": "Bearer " + tt.token}); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
	if got := audits(t, st, "auth.admin"); len(got) != 4 {
		t.Errorf("refusals audited = %d, want 4", len(got))
	}
}
