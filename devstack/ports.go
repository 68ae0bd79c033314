package devstack

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// FreePort asks the kernel for a TCP port that is free on host (for example
// "127.0.0.1") and returns it. The port is released before FreePort returns,
// so another process may take it in the meantime; callers bind it soon after.
// It returns an error when host cannot be listened on.
func FreePort(host string) (int, error) {
	var pp portPicker
	defer pp.release()
	return pp.pick(host)
}

// portPicker hands out free ports and keeps each one listened on until
// release, so the ports it picks all differ from each other.
type portPicker struct {
	listeners []net.Listener
}

func (pp *portPicker) pick(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("devstack: find a free port on %s: %w", host, err)
	}
	pp.listeners = append(pp.listeners, l)
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("devstack: find a free port on %s: unexpected address %v", host, l.Addr())
	}
	return addr.Port, nil
}

func (pp *portPicker) release() {
	for _, l := range pp.listeners {
		_ = l.Close()
	}
	pp.listeners = nil
}

// Servers of the dev stack, as a PortError names them.
const (
	ServerTemporal = "temporal" // the Temporal frontend (gRPC)
	ServerUI       = "ui"       // the Temporal Web UI
	ServerS3       = "s3"       // the embedded S3 server
)

// PortError is a configured port a dev-stack server cannot listen on,
// typically because something else uses it. Server (ServerTemporal,
// ServerUI or ServerS3) says which, so that the caller can name its setting.
type PortError struct {
	Server string
	Addr   string
	Err    error
}

func (e *PortError) Error() string {
	return fmt.Sprintf("devstack: %s address %s is not available: %v", e.Server, e.Addr, e.Err)
}

func (e *PortError) Unwrap() error { return e.Err }

// checkBindable reports a *PortError when host:port cannot be listened on
// right now, typically because something else already uses the port. The
// embedded servers treat a failed listen as fatal for the whole process, so
// the check runs before they start.
func checkBindable(server, host string, port int) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return &PortError{Server: server, Addr: addr, Err: err}
	}
	return l.Close()
}

// connectHost returns the host a local client dials to reach a server bound
// on host: the loopback address when the server listens on every interface.
func connectHost(host string) string {
	ip := net.ParseIP(host)
	if host == "" || (ip != nil && ip.IsUnspecified()) {
		return "127.0.0.1"
	}
	return host
}

var errBadPort = errors.New("port out of range")

// validPort checks that p is a usable TCP port number or zero.
func validPort(p int) error {
	if p < 0 || p > 65535 {
		return fmt.Errorf("%w: %d", errBadPort, p)
	}
	return nil
}
