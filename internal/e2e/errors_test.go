package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mfaflow/mfaflow/store"
)

// contractCase is one request of the error-contract table and the JSON
// error it must get.
type contractCase struct {
	name        string
	method      string
	path        string // with the query, if any
	token       string
	contentType string
	body        []byte
	status      int
	code        string
	allow       bool // the answer carries Allow (405)
}

// errorContractCases derives, from every row of the access matrix, the
// requests that must be refused with the error body: a wrong method, an
// unknown path below the route, its trailing slash, and for routes that read
// a body a malformed one, an unknown field, an over-size one and one of the
// wrong content type. Each request is sent by the row's first caller that
// the matrix lets through, so that the refusal is the body's, not the
// credentials'.
func errorContractCases(f *accessFixtures) []contractCase {
	var out []contractCase
	// One row per route: of a route's rows, the one whose first allowed
	// caller needs the fewest credentials (the owner's cancel, which reads
	// its body, rather than the applicant's, which does not).
	firstAllowed := func(r accessRow) caller {
		for i, w := range r.want {
			if w < 300 {
				return caller(i)
			}
		}
		return numCallers
	}
	var order []string
	pick := map[string]accessRow{}
	for _, r := range accessRows() {
		old, seen := pick[r.route]
		if !seen {
			order = append(order, r.route)
		}
		if !seen || firstAllowed(r) < firstAllowed(old) {
			pick[r.route] = r
		}
	}
	for _, route := range order {
		r := pick[route]
		method, pattern, _ := strings.Cut(r.route, " ")
		if method == http.MethodHead {
			continue // a HEAD answer has no body to hold the error; the GET row covers the path
		}
		c := firstAllowed(r)
		if c == numCallers {
			continue
		}
		// A fresh fixture for rows that give one to succeeding callers (an
		// appeal collecting documents for the upload's over-size body).
		rq := r.req(f, c, true)
		path, err := expandRoute(pattern, rq.params)
		if err != nil {
			f.t.Fatalf("%s: %v", r.name(), err)
		}
		token := f.tokens[c]
		if c == applicant {
			a := f.this
			if rq.appeal != nil {
				a = rq.appeal
			}
			token = a.token
		}
		query := ""
		if rq.query != "" {
			query = "?" + rq.query
		}
		base := contractCase{method: method, path: path + query, token: token}
		add := func(name string, mod func(*contractCase)) {
			cc := base
			cc.name = r.route + ": " + name
			mod(&cc)
			out = append(out, cc)
		}
		add("wrong method", func(cc *contractCase) {
			cc.method, cc.status, cc.code, cc.allow = http.MethodPatch, http.StatusMethodNotAllowed, "method_not_allowed", true
		})
		add("unknown path", func(cc *contractCase) {
			// Two segments: one could name a resource of another method
			// (POST /v1/appeals/zz is a GET route's path: 405).
			cc.path, cc.status, cc.code = path+"/zz-unknown/zz"+query, http.StatusNotFound, "not_found"
		})
		if path != "/" {
			add("trailing slash", func(cc *contractCase) {
				cc.path, cc.status, cc.code = path+"/"+query, http.StatusNotFound, "not_found"
			})
		}
		switch {
		case rq.json != nil:
			m, ok := rq.json.(map[string]any)
			if !ok {
				f.t.Fatalf("%s: the JSON body is %T, want an object", r.name(), rq.json)
			}
			add("malformed JSON", func(cc *contractCase) {
				cc.contentType, cc.body, cc.status, cc.code = "application/json", []byte(`{"code":`), http.StatusBadRequest, "invalid_json"
			})
			add("unknown field", func(cc *contractCase) {
				withUnknown := map[string]any{"zz_unknown": true}
				for k, v := range m {
					withUnknown[k] = v
				}
				b, _ := json.Marshal(withUnknown)
				cc.contentType, cc.body, cc.status, cc.code = "application/json", b, http.StatusBadRequest, "unknown_field"
			})
			add("over-size body", func(cc *contractCase) {
				cc.contentType, cc.body = "application/json", []byte(`{"zz_padding":"`+strings.Repeat("x", 1<<20)+`"}`)
				cc.status, cc.code = http.StatusRequestEntityTooLarge, "too_large"
			})
			add("wrong content type", func(cc *contractCase) {
				b, _ := json.Marshal(m)
				cc.contentType, cc.body, cc.status, cc.code = "application/x-www-form-urlencoded", b, http.StatusUnsupportedMediaType, "unsupported_media_type"
			})
		case rq.body != nil:
			malformed := map[string]contractCase{
				"image/jpeg": {status: http.StatusUnsupportedMediaType, code: "unsupported_media_type"}, // not the declared JPEG
				"text/csv":   {status: http.StatusBadRequest, code: "invalid_file"},
			}[rq.contentType]
			if malformed.code == "" {
				f.t.Fatalf("%s: no malformed case for %s bodies", r.name(), rq.contentType)
			}
			add("malformed body", func(cc *contractCase) {
				cc.contentType, cc.body, cc.status, cc.code = rq.contentType, []byte("serial;secret\n\x00\x01 not a file"), malformed.status, malformed.code
			})
			add("over-size body", func(cc *contractCase) {
				cc.contentType, cc.body = rq.contentType, append(bytes.Clone(rq.body), make([]byte, 10<<20)...)
				cc.status, cc.code = http.StatusRequestEntityTooLarge, "too_large"
			})
			add("wrong content type", func(cc *contractCase) {
				cc.contentType, cc.body, cc.status, cc.code = "application/x-www-form-urlencoded", rq.body, http.StatusUnsupportedMediaType, "unsupported_media_type"
			})
		}
	}
	return out
}

// TestErrorContract holds every route to SPEC §5's error contract (issue
// 14): each refusal of each route group (console, applicant, reviewer,
// admin, codec, ops, dev, web pages and their static files) is JSON
// {"error":{"code","message"}} with the expected status and code, and a
// code the OpenAPI document names for that answer (the stack's client
// validates every answer against the served document). It also covers the
// answers net/http gives before routing (a bad %-escape), HEAD on the health
// routes, WWW-Authenticate only for bad credentials, and audit reasons that
// are codes.
func TestErrorContract(t *testing.T) {
	f := newAccessFixtures(t)
	cases := errorContractCases(f)
	verify := f.devices["verify"]
	cases = append(cases,
		contractCase{name: "unknown path", method: http.MethodGet, path: "/nope", status: 404, code: "not_found"},
		contractCase{name: "unknown API path", method: http.MethodGet, path: "/v1/nope", status: 404, code: "not_found"},
		contractCase{name: "unknown static file", method: http.MethodGet, path: "/static/nope.js", status: 404, code: "not_found"},
		contractCase{name: "static directory", method: http.MethodGet, path: "/static/", status: 404, code: "not_found"},
		contractCase{name: "health with a trailing slash", method: http.MethodGet, path: "/healthz/", status: 404, code: "not_found"},
		contractCase{name: "audit with a trailing slash", method: http.MethodGet, path: "/v1/admin/audit/", token: f.tokens[admin], status: 404, code: "not_found"},
		contractCase{name: "unknown route under an account", method: http.MethodGet, path: "/v1/accounts/acm-001/mfa/nope", token: consoleKey, status: 404, code: "not_found"},
		contractCase{name: "an escaped slash in an id", method: http.MethodGet, path: "/v1/accounts/a%2Fb/mfa", token: consoleKey, status: 404, code: "not_found"},
		contractCase{name: "wrong MFA code", method: http.MethodPost, path: "/v1/accounts/" + verify.account + "/mfa/verify", token: consoleKey,
			contentType: "application/json", body: []byte(`{"code":"000000","purpose":"login"}`), status: 401, code: "invalid_code"},
		contractCase{name: "no console key", method: http.MethodGet, path: "/v1/accounts/" + verify.account + "/mfa", status: 401, code: "unauthorized"},
	)
	groups := map[string]int{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := f.sendRaw(tc.method, tc.path, tc.token, tc.contentType, tc.body)
			if code != tc.status {
				t.Fatalf("%s %s = %d, want %d: %s", tc.method, tc.path, code, tc.status, clip(body))
			}
			if err := checkRefusal(hdr, body); err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.Unmarshal(body, &e)
			if e.Error.Code != tc.code {
				t.Errorf("%s %s: code %q, want %q", tc.method, tc.path, e.Error.Code, tc.code)
			}
			if tc.allow && hdr.Get("Allow") == "" {
				t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
			}
			if got, want := hdr.Get("WWW-Authenticate") != "", tc.code == "unauthorized"; got != want {
				t.Errorf("%s %s: WWW-Authenticate %q with code %s", tc.method, tc.path, hdr.Get("WWW-Authenticate"), tc.code)
			}
		})
		groups[routeGroup(tc.path)]++
	}
	t.Logf("error contract: %d refusals over route groups %v", len(cases), groups)

	t.Run("bad escape in the path", func(t *testing.T) {
		// Go's client will not send it; net/http answers it before routing.
		u, _ := url.Parse(f.s.apis[0].URL)
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /v1/accounts/%%zz/mfa HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", u.Host, consoleKey)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if err := checkRefusal(resp.Header, body); err != nil || !bytes.Contains(body, []byte(`"invalid_request"`)) {
			t.Fatalf("bad escape: %v %s", err, body)
		}
	})

	t.Run("HEAD on the health routes", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			code, hdr, body := f.sendRaw(http.MethodHead, p, "", "", nil)
			if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || len(body) != 0 {
				t.Errorf("HEAD %s = %d %q %q", p, code, hdr.Get("Content-Type"), body)
			}
		}
	})

	t.Run("audit reasons are codes", func(t *testing.T) {
		g := f.devices["grant"]
		code, _, _ := f.sendRaw(http.MethodPost, "/v1/accounts/"+g.account+"/mfa/grants/consume", consoleKey, "application/json",
			[]byte(`{"grant":"grt_nope","operation":{"action":"cvm:DeleteInstance","resource":"vm-acm"}}`))
		if code != http.StatusNotFound {
			t.Fatalf("consume an unknown grant = %d", code)
		}
		es, err := f.s.st.ListAudit(context.Background(), store.AuditFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		reasons := 0
		for _, e := range es {
			r, ok := e.Details["reason"]
			if !ok {
				continue
			}
			reasons++
			if !auditCode.MatchString(r) {
				t.Errorf("audit %s %s: reason %q is no code", e.Action, e.Outcome, r)
			}
		}
		if reasons == 0 {
			t.Error("no audit entry with a reason")
		}
	})
}

// auditCode is what an audit reason looks like: a code such as grant_used
// or a workflow's error type such as IdentityMismatch, never prose or an
// error's text.
var auditCode = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// routeGroup names the group of a path for the test's report.
func routeGroup(path string) string {
	switch {
	case strings.HasPrefix(path, "/v1/accounts/"):
		return "console"
	case strings.HasPrefix(path, "/v1/appeals"):
		return "applicant"
	case strings.HasPrefix(path, "/v1/review/"):
		return "reviewer"
	case strings.HasPrefix(path, "/v1/admin/codec"):
		return "codec"
	case strings.HasPrefix(path, "/v1/admin/"):
		return "admin"
	case strings.HasPrefix(path, "/dev/"):
		return "dev"
	case strings.HasPrefix(path, "/static/"):
		return "static"
	case path == "/healthz" || path == "/readyz" || strings.HasPrefix(path, "/healthz") || strings.HasPrefix(path, "/readyz") ||
		strings.HasPrefix(path, "/metrics") || strings.HasPrefix(path, "/openapi.yaml"):
		return "ops"
	}
	return "pages"
}

// sendRaw sends one request with a raw body through the stack's client.
func (f *accessFixtures) sendRaw(method, path, token, contentType string, body []byte) (int, http.Header, []byte) {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, f.s.apis[0].URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.s.client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}
