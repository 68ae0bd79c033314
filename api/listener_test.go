package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestListenerAnswersJSON: requests net/http refuses before any handler
// get the JSON error through Listener; handler answers pass untouched.
func TestListenerAnswersJSON(t *testing.T) {
	srv := httptest.NewUnstartedServer(NewServer(Deps{}))
	srv.Listener = Listener(srv.Listener)
	srv.Start()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	tests := []struct {
		name, request string
		status        int
		code          string
	}{
		{"bad escape", "GET /v1/accounts/%zz/mfa HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_request"},
		{"malformed request line", "GET\r\nHost: x\r\n\r\n", 400, "invalid_request"},
		{"unknown HTTP version", "GET /healthz HTTP/2.7\r\nHost: x\r\n\r\n", 505, "unsupported_http_version"},
		{"unknown transfer coding", "POST /v1/appeals HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: zstd\r\n\r\n", 501, "unsupported_transfer_encoding"},
		{"a handler's answer", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprint(conn, tt.request)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("%d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if e.Error.Code != tt.code {
				t.Fatalf("code %q, want %q: %s", e.Error.Code, tt.code, body)
			}
		})
	}
}
