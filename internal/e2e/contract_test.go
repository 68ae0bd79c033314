package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/mfaflow/mfaflow/api"
)

// The contract test (issue 14, build item 2): every request the e2e suites
// send through the stack's client, and every answer, is validated against
// the OpenAPI document the server serves at /openapi.yaml, with
// kin-openapi's openapi3filter:
//
//   - the operation must be in the document: an answer other than the JSON
//     404 not_found or 405 method_not_allowed to a path or method the
//     document does not have fails ("a route without a document entry");
//   - the request is validated (parameters, content type, body schema,
//     credentials present); one the document forbids must be refused (4xx);
//   - the answer's status must be documented for the operation, its content
//     type listed, its body valid against the schema (required fields,
//     enums such as the error codes included), its documented headers
//     present; a body where the document names none fails too.
//
// Failures are recorded and fail the test at its cleanup; the counts of
// operations and answers checked are logged per test and for the package.

// contractBase is the server URL the document is matched under; requests
// are rewritten to it, as each test's servers listen on their own ports.
const contractBase = "http://mfaflow.test"

// The media types the document gives for files and pages are read as
// strings: their schema says what they are, the content type is checked.
func init() {
	for _, ct := range []string{"image/jpeg", "image/png", "application/pdf", "text/html", "text/css", "text/javascript", "application/pskc+xml", "text/csv"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
}

// contract holds the document and what was checked.
type contract struct {
	tb testing.TB

	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error

	mu        sync.Mutex
	failures  []string
	responses int
	ops       map[string]int // "METHOD /path" of the document → answers checked
	pairs     map[string]bool
	refused   int // requests the document does not allow, refused by the server
	// loadReported: the document's failure to load is reported once.
	loadReported bool
}

// contractTotals adds up every contract of the package run.
var contractTotals = struct {
	sync.Mutex
	responses, refused int
	ops                map[string]int
	pairs              map[string]bool
}{ops: map[string]int{}, pairs: map[string]bool{}}

// newContract returns a contract that fails tb at cleanup for every
// violation it recorded, and logs what it checked.
func newContract(tb testing.TB) *contract {
	c := &contract{tb: tb, ops: map[string]int{}, pairs: map[string]bool{}}
	tb.Cleanup(c.finish)
	return c
}

// transport returns a RoundTripper that sends through next (nil: the
// default transport) and checks each exchange.
func (c *contract) transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &contractTransport{c: c, next: next}
}

type contractTransport struct {
	c    *contract
	next http.RoundTripper
}

func (t *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	t.c.load(t.next, req.URL)
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil // the caller sees the short body; a transport failure is not the contract's
	}
	t.c.check(req, reqBody, resp, body)
	return resp, nil
}

// load fetches and validates the served document once, from the server
// the first request goes to.
func (c *contract) load(rt http.RoundTripper, u *url.URL) {
	c.once.Do(func() {
		c.doc, c.router, c.err = loadContract(rt, u.Scheme+"://"+u.Host+"/openapi.yaml")
	})
}

// loadContract loads the document at docURL, validates it, and makes a
// router over it under contractBase.
func loadContract(rt http.RoundTripper, docURL string) (*openapi3.T, routers.Router, error) {
	req, err := http.NewRequest(http.MethodGet, docURL, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET /openapi.yaml = %d, %v", resp.StatusCode, err)
	}
	return contractRouter(raw)
}

// contractRouter loads raw, validates it and routes it under contractBase.
func contractRouter(raw []byte) (*openapi3.T, routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("load the document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, nil, fmt.Errorf("the document is not valid: %w", err)
	}
	doc.Servers = openapi3.Servers{{URL: contractBase}}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, nil, err
	}
	return doc, r, nil
}

func (c *contract) failf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
}

// check validates one exchange.
func (c *contract) check(req *http.Request, reqBody []byte, resp *http.Response, body []byte) {
	if c.err != nil {
		c.mu.Lock()
		reported := c.loadReported
		c.loadReported = true
		c.mu.Unlock()
		if !reported {
			c.failf("the served document: %v", c.err)
		}
		return
	}
	ctx := context.Background()
	name := req.Method + " " + req.URL.Path
	vreq := req.Clone(ctx)
	base, _ := url.Parse(contractBase)
	vreq.URL.Scheme, vreq.URL.Host, vreq.Host = base.Scheme, base.Host, base.Host
	vreq.RequestURI = ""
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))

	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		// Not an operation of the document: the only allowed answers are
		// the JSON 404 and 405.
		want := map[int]string{http.StatusNotFound: "not_found", http.StatusMethodNotAllowed: "method_not_allowed"}[resp.StatusCode]
		if want == "" {
			c.failf("%s: answered %d, but the document has no such operation (%v)", name, resp.StatusCode, err)
			return
		}
		if req.Method == http.MethodHead {
			return
		}
		if code, err := c.errorCode(body); err != nil || code != want {
			c.failf("%s: an undocumented route's %d is not the JSON %s error: %v %s", name, resp.StatusCode, want, err, clip(body))
		}
		c.count("(undocumented route)", resp.StatusCode, false)
		return
	}
	op := route.Method + " " + route.Path
	opts := &openapi3filter.Options{AuthenticationFunc: bearerPresent, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	if reqErr != nil && resp.StatusCode < 400 {
		c.failf("%s (%s): the server answered %d to a request the document does not allow: %v", name, op, resp.StatusCode, oneLine(reqErr))
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}
	rin.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, rin); err != nil {
		c.failf("%s (%s) → %d: %v; body %s", name, op, resp.StatusCode, oneLine(err), clip(body))
	} else if r := route.Operation.Responses.Status(resp.StatusCode); r != nil && r.Value != nil && len(r.Value.Content) == 0 && len(body) > 0 && req.Method != http.MethodHead {
		c.failf("%s (%s) → %d: the document gives this answer no content, but it has a body: %s", name, op, resp.StatusCode, clip(body))
	}
	c.count(op, resp.StatusCode, reqErr != nil)
}

func (c *contract) count(op string, status int, refused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.responses++
	c.ops[op]++
	c.pairs[fmt.Sprintf("%s %d", op, status)] = true
	if refused {
		c.refused++
	}
}

// errorCode reads the code of the document's Error body.
func (c *contract) errorCode(body []byte) (string, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "", err
	}
	s := c.doc.Components.Schemas["Error"]
	if s == nil {
		return "", errors.New("the document has no Error schema")
	}
	if err := s.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return "", err
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error.Code, nil
}

// bearerPresent is the requests' check of their security: a bearer scheme
// needs an Authorization: Bearer header, an API key its parameter. Whether
// the credential is good is the server's to say (the access matrix tests
// that); here it only decides whether the document allows the request.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	s := in.SecurityScheme
	switch {
	case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"):
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			return errors.New("no bearer token")
		}
	case s.Type == "apiKey" && s.In == "query":
		if r.URL.Query().Get(s.Name) == "" {
			return fmt.Errorf("no %s parameter", s.Name)
		}
	case s.Type == "apiKey" && s.In == "header":
		if r.Header.Get(s.Name) == "" {
			return fmt.Errorf("no %s header", s.Name)
		}
	}
	return nil
}

// finish fails the test for every violation and logs the counts.
func (c *contract) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	const most = 40
	for i, f := range c.failures {
		if i == most {
			c.tb.Errorf("contract: %d more violations", len(c.failures)-most)
			break
		}
		c.tb.Errorf("contract: %s", f)
	}
	documented := 0
	for op := range c.ops {
		if op != "(undocumented route)" {
			documented++
		}
	}
	if c.responses > 0 {
		c.tb.Logf("contract: %d answers checked against /openapi.yaml over %d operations (%d operation×status pairs); %d requests the document does not allow (each must be refused); %d violations",
			c.responses, documented, len(c.pairs), c.refused, len(c.failures))
	}
	contractTotals.Lock()
	defer contractTotals.Unlock()
	contractTotals.responses += c.responses
	contractTotals.refused += c.refused
	for op, n := range c.ops {
		contractTotals.ops[op] += n
	}
	for p := range c.pairs {
		contractTotals.pairs[p] = true
	}
}

// reportContract prints what the package's contract checks covered and the
// document's operations no e2e request reached.
func reportContract() {
	contractTotals.Lock()
	defer contractTotals.Unlock()
	if contractTotals.responses == 0 {
		return
	}
	doc, _, err := contractRouter(apiDocument())
	if err != nil {
		fmt.Printf("contract: %v\n", err)
		return
	}
	var missed []string
	total := 0
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			total++
			if contractTotals.ops[method+" "+path] == 0 {
				missed = append(missed, method+" "+path)
			}
		}
	}
	sort.Strings(missed)
	fmt.Printf("contract: %d answers checked over %d of the document's %d operations (%d operation×status pairs); %d requests the document does not allow were refused\n",
		contractTotals.responses, total-len(missed), total, len(contractTotals.pairs), contractTotals.refused)
	if len(missed) > 0 {
		fmt.Printf("contract: operations no e2e request reached in this run: %s\n", strings.Join(missed, ", "))
	}
}

func oneLine(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// apiDocument is the document the API serves.
func apiDocument() []byte { return api.OpenAPI() }

// TestContractCatchesViolations is the contract test's own test: a server
// that serves the real document but answers wrongly is caught, for each kind
// of violation, and right answers pass.
func TestContractCatchesViolations(t *testing.T) {
	type answer struct {
		status int
		ct     string
		body   string
	}
	cases := []struct {
		name      string
		method    string
		path      string
		auth      bool
		reqCT     string
		reqBody   string
		answer    answer
		violation string // "" when the exchange keeps the contract
	}{
		{name: "a right answer", method: "GET", path: "/healthz", answer: answer{200, "application/json", `{"status":"ok"}`}},
		{name: "a right error", method: "GET", path: "/v1/admin/audit", auth: true, answer: answer{403, "application/json", `{"error":{"code":"forbidden","message":"not allowed"}}`}},
		{name: "an unknown path's JSON 404", method: "GET", path: "/v1/nope", answer: answer{404, "application/json", `{"error":{"code":"not_found","message":"no such route"}}`}},
		{name: "a wrong content type", method: "GET", path: "/healthz", answer: answer{200, "text/plain", "ok"}, violation: "Content-Type"},
		{name: "a body against the schema", method: "GET", path: "/healthz", answer: answer{200, "application/json", `{"status":5}`}, violation: "schema"},
		{name: "a missing required field", method: "GET", path: "/healthz", answer: answer{200, "application/json", `{}`}, violation: "schema"},
		{name: "an undocumented status", method: "GET", path: "/healthz", answer: answer{418, "application/json", `{"error":{"code":"teapot","message":"no"}}`}, violation: "status is not supported"},
		{name: "an error code the document does not name", method: "GET", path: "/v1/admin/audit", auth: true,
			answer: answer{403, "application/json", `{"error":{"code":"made_up","message":"no"}}`}, violation: "schema"},
		{name: "plain text for an error", method: "GET", path: "/v1/admin/audit", auth: true, answer: answer{403, "text/plain", "forbidden"}, violation: "Content-Type"},
		{name: "a route without a document entry", method: "GET", path: "/v1/undocumented", answer: answer{200, "application/json", `{}`}, violation: "no such operation"},
		{name: "an unknown path answered in plain text", method: "GET", path: "/static-nope", answer: answer{404, "text/plain", "404 page not found"}, violation: "not the JSON"},
		{name: "a request the document forbids, accepted", method: "POST", path: "/v1/accounts/acct-1/mfa/verify", auth: true,
			reqCT: "application/json", reqBody: `{"purpose":"lunch"}`, answer: answer{200, "application/json", `{"verified":true}`}, violation: "does not allow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/openapi.yaml" {
					w.Header().Set("Content-Type", "application/yaml")
					_, _ = w.Write(apiDocument())
					return
				}
				w.Header().Set("Content-Type", tc.answer.ct)
				w.WriteHeader(tc.answer.status)
				_, _ = io.WriteString(w, tc.answer.body)
			})
			hs := httptest.NewServer(srv)
			defer hs.Close()
			c := &contract{tb: t, ops: map[string]int{}, pairs: map[string]bool{}} // no cleanup: the failures are read here
			client := &http.Client{Transport: c.transport(nil)}
			var body io.Reader
			if tc.reqBody != "" {
				body = strings.NewReader(tc.reqBody)
			}
			req, _ := http.NewRequest(tc.method, hs.URL+tc.path, body)
			if tc.reqCT != "" {
				req.Header.Set("Content-Type", tc.reqCT)
			}
			if tc.auth {
				req.Header.Set("Authorization", "Bearer x")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != tc.answer.body {
				t.Errorf("the caller got %q, want the server's %q", got, tc.answer.body)
			}
			if c.err != nil {
				t.Fatal(c.err)
			}
			switch {
			case tc.violation == "" && len(c.failures) > 0:
				t.Errorf("a right exchange failed the contract: %v", c.failures)
			case tc.violation != "" && len(c.failures) == 0:
				t.Errorf("the violation passed the contract")
			case tc.violation != "" && !strings.Contains(strings.Join(c.failures, "\n"), tc.violation):
				t.Errorf("violation %q, want one naming %q", c.failures, tc.violation)
			}
		})
	}
}
