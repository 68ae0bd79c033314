package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
)

type uiOptions struct {
	ip        string
	port      int
	frontend  string
	namespace string
	logger    *slog.Logger
}

// uiServer is the Temporal Web UI (github.com/temporalio/ui-server) serving
// its embedded assets and proxying API calls to the frontend over gRPC.
type uiServer struct {
	srv  *uiserver.Server
	done chan struct{}
}

// startUI starts the Web UI and waits until it answers HTTP. The ui-server
// ends the process when its listen fails, so the port was checked free just
// before; a port grabbed by someone else in between remains a (small) risk.
func startUI(ctx context.Context, o uiOptions) (*uiServer, error) {
	srv, err := newUIServer(o)
	if err != nil {
		return nil, err
	}
	u := &uiServer{srv: srv, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		if err := srv.Start(); err != nil {
			o.logger.Error("temporal ui stopped", "err", err)
		}
	}()

	addr := net.JoinHostPort(connectHost(o.ip), strconv.Itoa(o.port))
	hc := &http.Client{Timeout: 2 * time.Second}
	err = retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
		if err != nil {
			return permanent{err}
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health check answered %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		u.stop()
		return nil, fmt.Errorf("devstack: temporal ui on %s not ready: %w", addr, err)
	}
	return u, nil
}

// newUIServer builds the UI server, turning the panics its constructor uses
// for configuration errors into an error.
func newUIServer(o uiOptions) (srv *uiserver.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("devstack: create temporal ui: %v", r)
		}
	}()
	host := o.ip
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "[" + host + "]"
	}
	srv = uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                host,
		Port:                o.port,
		TemporalGRPCAddress: o.frontend,
		EnableUI:            true,
		DefaultNamespace:    o.namespace,
		// The dev UI is plain HTTP on loopback: the CSRF cookie must not
		// require TLS or the browser drops it.
		CORS:             uiconfig.CORS{CookieInsecure: true},
		HideLogs:         true,
		DisableNewsFetch: true,
	}))
	return srv, nil
}

// UIConfig configures StartUI.
type UIConfig struct {
	IP        string // default 127.0.0.1
	Port      int    // 0 picks a free port
	Frontend  string // the Temporal frontend's host:port
	Namespace string
	Logger    *slog.Logger // nil discards
}

// UI is a running Temporal Web UI.
type UI struct {
	u    *uiServer
	addr string
}

// StartUI starts the Temporal Web UI for the frontend cfg.Frontend (one that
// StartTemporal did not start, such as TEMPORAL_ADDRESS) and returns once it
// answers. It returns a *PortError when cfg.Port is taken, or an error when
// the UI does not start.
func StartUI(ctx context.Context, cfg UIConfig) (*UI, error) {
	if cfg.IP == "" {
		cfg.IP = loopback
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := validPort(cfg.Port); err != nil {
		return nil, fmt.Errorf("devstack: temporal UI port: %w", err)
	}
	port := cfg.Port
	if port == 0 {
		p, err := FreePort(cfg.IP)
		if err != nil {
			return nil, err
		}
		port = p
	} else if err := checkBindable(ServerUI, cfg.IP, port); err != nil {
		return nil, err
	}
	rctx, cancel := withDefaultTimeout(ctx, defaultStartMax)
	defer cancel()
	u, err := startUI(rctx, uiOptions{ip: cfg.IP, port: port, frontend: cfg.Frontend, namespace: cfg.Namespace, logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &UI{u: u, addr: net.JoinHostPort(connectHost(cfg.IP), strconv.Itoa(port))}, nil
}

// Addr returns the UI's address as host:port.
func (u *UI) Addr() string { return u.addr }

// Stop stops the UI.
func (u *UI) Stop() { u.u.stop() }

// stop closes the UI's listener and waits briefly for its serve loop to end.
func (u *uiServer) stop() {
	u.srv.Stop()
	select {
	case <-u.done:
	case <-time.After(5 * time.Second):
	}
}
