package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"

	"github.com/mfaflow/mfaflow/i18n"
)

// Listener wraps ln so that the few answers Go's HTTP server writes itself,
// before any handler runs, keep the error contract of every route: a request
// it cannot parse (a bad %-escape in the path such as /v1/accounts/%zz/mfa,
// a malformed request line), headers past the limit, an unknown transfer
// coding or HTTP version. net/http writes those as fixed plain-text
// responses straight to the connection; the wrapper recognizes exactly that
// form and writes the JSON error instead. Serve plain HTTP on the wrapped
// listener (TLS ends in front of it, as in every deployment of mfaflow).
func Listener(ln net.Listener) net.Listener { return jsonErrorListener{ln} }

type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return jsonErrorConn{c}, nil
}

type jsonErrorConn struct{ net.Conn }

// serverError matches net/http's own answer to a request it could not read:
// its header order (Content-Type before Connection, no Date) is one that a
// handler's response, whose headers are written sorted, never has.
var serverError = regexp.MustCompile(`\AHTTP/1\.1 ([0-9]{3}) [^\r\n]*\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n`)

func (c jsonErrorConn) Write(p []byte) (int, error) {
	m := serverError.FindSubmatch(p)
	if m == nil {
		return c.Conn.Write(p)
	}
	status, _ := strconv.Atoi(string(m[1]))
	if _, err := c.Conn.Write(serverErrorJSON(status)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// serverErrorJSON is the whole HTTP response for an error net/http answers
// before routing, its message in zh-CN.
func serverErrorJSON(status int) []byte {
	code, msg := "invalid_request", "the request could not be parsed: check the request line and that every % in the path starts a valid escape"
	switch status {
	case 431:
		code, msg = "too_large", "the request headers are larger than allowed"
	case 501:
		code, msg = "unsupported_transfer_encoding", "the transfer coding is not supported"
	case 505:
		code, msg = "unsupported_http_version", "use HTTP/1.1"
	}
	// The request could not be read, so neither can its Accept-Language:
	// the message is in zh-CN, the default.
	msg = (&Error{Code: code, Message: msg}).LocalMessage(i18n.ZH)
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n",
		status, http.StatusText(status), len(body))
	b.Write(body)
	return b.Bytes()
}
