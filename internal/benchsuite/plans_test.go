package benchsuite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store/pgstore"
)

// The query plans of a verification, as PostgreSQL executed them. A store
// of its own (pgstore.Open, so with the check connections' settings of
// checkPool, whatever they are) connects through planProxy, a loopback
// relay of the PostgreSQL wire protocol, and asks the server, in its
// connection parameters, to load auto_explain for the session and send the
// plan of every statement it runs (EXPLAIN ANALYZE, BUFFERS, JSON) to the
// client as a notice. The relay keeps those notices and which connection
// sent them: the check connections are the ones that start with
// plan_cache_mode=force_generic_plan. So the plans are those of the
// statements the verify path really runs, the generic plans that the check
// connections keep, with no copy of the store's SQL here.

// autoExplainParams are the connection parameters that make PostgreSQL
// send each statement's plan to the client (superuser only, as the
// harness's user is).
var autoExplainParams = map[string]string{
	"session_preload_libraries":          "auto_explain",
	"auto_explain.log_min_duration":      "0",
	"auto_explain.log_analyze":           "on",
	"auto_explain.log_buffers":           "on",
	"auto_explain.log_timing":            "on",
	"auto_explain.log_format":            "json",
	"auto_explain.log_level":             "notice",
	"auto_explain.log_nested_statements": "off",
}

// executedPlan is one statement's plan as auto_explain sent it.
type executedPlan struct {
	hot   bool // run on a check connection (plan_cache_mode=force_generic_plan)
	query string
	plan  planNode
}

// planNode is a node of EXPLAIN's JSON format, the fields shown here.
type planNode struct {
	NodeType     string     `json:"Node Type"`
	Operation    string     `json:"Operation"`
	Relation     string     `json:"Relation Name"`
	Alias        string     `json:"Alias"`
	Index        string     `json:"Index Name"`
	CTE          string     `json:"CTE Name"`
	Function     string     `json:"Function Name"`
	Parent       string     `json:"Parent Relationship"`
	SubplanName  string     `json:"Subplan Name"`
	IndexCond    string     `json:"Index Cond"`
	Filter       string     `json:"Filter"`
	ActualRows   float64    `json:"Actual Rows"`
	ActualLoops  float64    `json:"Actual Loops"`
	ActualTime   float64    `json:"Actual Total Time"`
	SharedHit    int64      `json:"Shared Hit Blocks"`
	SharedRead   int64      `json:"Shared Read Blocks"`
	SharedDirty  int64      `json:"Shared Dirtied Blocks"`
	SharedWrites int64      `json:"Shared Written Blocks"`
	Plans        []planNode `json:"Plans"`
}

// seqScans returns the tables the plan reads by a sequential scan.
func (n planNode) seqScans() []string {
	var out []string
	if strings.HasSuffix(n.NodeType, "Seq Scan") && n.Relation != "" {
		out = append(out, n.Relation)
	}
	for _, c := range n.Plans {
		out = append(out, c.seqScans()...)
	}
	return out
}

// relations returns the tables the plan touches, sorted, each once.
func (n planNode) relations() []string {
	var out []string
	var walk func(planNode)
	walk = func(n planNode) {
		if n.Relation != "" && !slices.Contains(out, n.Relation) {
			out = append(out, n.Relation)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(n)
	slices.Sort(out)
	return out
}

// write prints the node and its children as an indented tree, one line a
// node: what it does, on what, with the rows, loops, time and buffers it
// took.
func (n planNode) write(w io.Writer, depth int) {
	var b strings.Builder
	b.WriteString(strings.Repeat("  ", depth))
	if depth > 0 {
		b.WriteString("-> ")
	}
	if n.SubplanName != "" {
		fmt.Fprintf(&b, "[%s] ", n.SubplanName)
	}
	b.WriteString(n.NodeType)
	if n.Operation != "" && n.NodeType == "ModifyTable" {
		b.WriteString(" " + n.Operation)
	}
	if n.Index != "" {
		fmt.Fprintf(&b, " using %s", n.Index)
	}
	switch {
	case n.Relation != "":
		fmt.Fprintf(&b, " on %s", n.Relation)
		if n.Alias != "" && n.Alias != n.Relation {
			fmt.Fprintf(&b, " %s", n.Alias)
		}
	case n.CTE != "":
		fmt.Fprintf(&b, " on %s", n.CTE)
	case n.Function != "":
		fmt.Fprintf(&b, " on %s", n.Function)
	}
	if n.IndexCond != "" {
		fmt.Fprintf(&b, "  cond %s", n.IndexCond)
	}
	fmt.Fprintf(&b, "  (rows=%g loops=%g time=%.3fms", n.ActualRows, n.ActualLoops, n.ActualTime)
	if n.SharedHit+n.SharedRead+n.SharedDirty+n.SharedWrites > 0 {
		fmt.Fprintf(&b, " buffers hit=%d read=%d dirtied=%d written=%d", n.SharedHit, n.SharedRead, n.SharedDirty, n.SharedWrites)
	}
	b.WriteString(")\n")
	io.WriteString(w, b.String())
	for _, c := range n.Plans {
		c.write(w, depth+1)
	}
}

// text is the plan as write prints it.
func (p executedPlan) text() string {
	var b bytes.Buffer
	p.plan.write(&b, 0)
	return b.String()
}

// planProxy relays PostgreSQL connections from a loopback port to the
// server and keeps the auto_explain plans the server sends.
type planProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	plans  []executedPlan
	bad    []error
	conns  []net.Conn
	closed bool
}

// startPlanProxy relays to the server at target (host:port) until tb ends.
func startPlanProxy(tb testing.TB, target string) *planProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &planProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

func (p *planProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.relay(c)
		}()
	}
}

// close stops the relay and every connection through it.
func (p *planProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track remembers c to close it with the relay; false when the relay is
// already closed.
func (p *planProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns = append(p.conns, c)
	return true
}

// relay serves one client connection: it reads the client's startup
// message (refusing SSL and GSS encryption, so the rest is readable),
// connects to the server, and copies both ways, reading the server's
// messages to keep its plan notices.
func (p *planProxy) relay(client net.Conn) {
	defer client.Close()
	if !p.track(client) {
		return
	}
	startup, params, err := readStartup(client)
	if err != nil {
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(server) {
		return
	}
	if _, err := server.Write(startup); err != nil {
		return
	}
	hot := params["plan_cache_mode"] == "force_generic_plan"
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(server, client)
		server.Close()
	}()
	p.readServer(client, server, hot)
	client.Close()
	<-done
}

// PostgreSQL's request codes that come in place of a startup message.
const (
	sslRequestCode = 80877103
	gssRequestCode = 80877104
)

// readStartup reads the client's startup message and returns it whole with
// its parameters; it answers an SSL or GSS encryption request with 'N'
// (not supported) and reads on.
func readStartup(c net.Conn) ([]byte, map[string]string, error) {
	for {
		var head [8]byte
		if _, err := io.ReadFull(c, head[:]); err != nil {
			return nil, nil, err
		}
		n := int(binary.BigEndian.Uint32(head[:4]))
		if n < 8 || n > 1<<16 {
			return nil, nil, fmt.Errorf("startup message of %d bytes", n)
		}
		msg := make([]byte, n)
		copy(msg, head[:])
		if _, err := io.ReadFull(c, msg[8:]); err != nil {
			return nil, nil, err
		}
		if code := binary.BigEndian.Uint32(head[4:]); code == sslRequestCode || code == gssRequestCode {
			if _, err := c.Write([]byte{'N'}); err != nil {
				return nil, nil, err
			}
			continue
		}
		params := map[string]string{}
		f := bytes.Split(msg[8:], []byte{0})
		for i := 0; i+1 < len(f) && len(f[i]) > 0; i += 2 {
			params[string(f[i])] = string(f[i+1])
		}
		return msg, params, nil
	}
}

// readServer copies the server's messages to the client, keeping the
// plans among the notices.
func (p *planProxy) readServer(client io.Writer, server io.Reader, hot bool) {
	r := bufio.NewReaderSize(server, 64<<10)
	for {
		var head [5]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(head[1:]))
		if n < 4 {
			return
		}
		msg := make([]byte, 5+n-4)
		copy(msg, head[:])
		if _, err := io.ReadFull(r, msg[5:]); err != nil {
			return
		}
		if head[0] == 'N' {
			p.notice(msg[5:], hot)
		}
		if _, err := client.Write(msg); err != nil {
			return
		}
	}
}

// notice keeps the plan in a NoticeResponse, if it is one.
func (p *planProxy) notice(body []byte, hot bool) {
	var text string
	for len(body) > 1 {
		code := body[0]
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			break
		}
		if code == 'M' {
			text = string(body[1 : 1+end])
		}
		body = body[2+end:]
	}
	_, js, ok := strings.Cut(text, "plan:\n")
	if !ok || !strings.HasPrefix(text, "duration:") {
		return
	}
	var out struct {
		Query string   `json:"Query Text"`
		Plan  planNode `json:"Plan"`
	}
	err := json.Unmarshal([]byte(js), &out)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.bad = append(p.bad, fmt.Errorf("auto_explain notice: %w", err))
		return
	}
	p.plans = append(p.plans, executedPlan{hot: hot, query: out.Query, plan: out.Plan})
}

// take returns the plans kept since the last take, and forgets them.
func (p *planProxy) take() ([]executedPlan, []error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	plans, bad := p.plans, p.bad
	p.plans, p.bad = nil, nil
	return plans, bad
}

// explainedURL is databaseURL through the relay, with the auto_explain
// parameters.
func (p *planProxy) explainedURL(tb testing.TB, databaseURL string) string {
	tb.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		tb.Fatal("database URL does not parse")
	}
	u.Host = p.ln.Addr().String()
	q := u.Query()
	for k, v := range autoExplainParams {
		q.Set(k, v)
	}
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// verifyPlans runs verifications of accounts (fresh codes at now; every
// account's device must not have used a step at or after now's) and one
// with a wrong code, on api.NewServer over a store of its own that
// connects to the database at databaseURL through a planProxy, and returns
// the plans of the statements the verifications ran, each distinct
// statement once (its last run, when the connection's plan cache is warm).
func verifyPlans(tb testing.TB, databaseURL string, keys *mfa.Keyring, accounts []verifyAccount, now time.Time) []executedPlan {
	tb.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		tb.Fatal("database URL does not parse")
	}
	proxy := startPlanProxy(tb, u.Host)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	explained := proxy.explainedURL(tb, databaseURL)
	conn, err := pgx.Connect(ctx, explained)
	if err != nil {
		tb.Fatalf("connect with auto_explain loaded (the server's auto_explain and a superuser are needed): %v", err)
	}
	conn.Close(ctx)
	st, err := pgstore.Open(ctx, explained)
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	hs := httptest.NewServer(verifyServer(st, keys, now))
	defer hs.Close()
	c := keepAliveClient()
	defer c.CloseIdleConnections()
	send := func(acct, code string) (string, error) {
		body, _ := json.Marshal(verifyRequest{Code: code, Purpose: console.PurposeLogin})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/v1/accounts/"+acct+"/mfa/verify", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+consoleKey)
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b)), nil
	}
	if len(accounts) < 2 {
		tb.Fatal("verifyPlans needs two accounts or more")
	}
	for _, a := range accounts[1:] {
		got, err := send(a.id, mfa.TOTP(a.secret, now, mfa.Params{}))
		if err != nil || !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"verified":true`) {
			tb.Fatalf("verify %s: %s %v", a.id, got, err)
		}
	}
	wrong := mfa.TOTP(accounts[0].secret, now.Add(-time.Hour), mfa.Params{})
	if got, err := send(accounts[0].id, wrong); err != nil || strings.HasPrefix(got, "5") {
		tb.Fatalf("verify %s with a wrong code: %s %v", accounts[0].id, got, err)
	}
	plans, bad := proxy.take()
	for _, err := range bad {
		tb.Error(err)
	}
	var out []executedPlan
	seen := map[string]int{}
	for _, p := range plans {
		key := fmt.Sprint(p.hot, p.query)
		if i, ok := seen[key]; ok {
			out[i] = p
			continue
		}
		seen[key] = len(out)
		out = append(out, p)
	}
	if len(out) == 0 {
		tb.Fatal("no plans came back: is auto_explain installed with the server?")
	}
	return out
}

// planReport prints plans for the benchmark output, each between
// "benchplan: begin <title>" and "benchplan: end", which benchreport puts
// into BENCHMARKS.md.
func planReport(w io.Writer, title string, plans []executedPlan) {
	for i, p := range plans {
		where := "main pool"
		if p.hot {
			where = "check connections (generic plan)"
		}
		fmt.Fprintf(w, "benchplan: begin %s — statement %d of %d, %s, tables %s\n", title, i+1, len(plans), where,
			strings.Join(p.plan.relations(), ", "))
		fmt.Fprintf(w, "-- %s\n", oneLine(p.query, 160))
		io.WriteString(w, p.text())
		fmt.Fprintln(w, "benchplan: end")
	}
}

var spaces = regexp.MustCompile(`\s+`)

// oneLine collapses s's white space and cuts it to n runes.
func oneLine(s string, n int) string {
	s = strings.TrimSpace(spaces.ReplaceAllString(s, " "))
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// seqScanned lists, one line each, the plans that read a table by a
// sequential scan.
func seqScanned(plans []executedPlan) []string {
	var out []string
	for _, p := range plans {
		if s := p.plan.seqScans(); len(s) > 0 {
			out = append(out, fmt.Sprintf("Seq Scan on %s in %s\n%s", strings.Join(s, ", "), oneLine(p.query, 120), p.text()))
		}
	}
	return out
}
