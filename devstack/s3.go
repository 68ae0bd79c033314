package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/versity/versitygw/backend/meta"
	"github.com/versity/versitygw/backend/posix"
	"github.com/versity/versitygw/embedgw"
)

const (
	// S3BucketsDir is the directory under S3Config.Dir holding one
	// directory per bucket and one file per object.
	S3BucketsDir = "buckets"
	// S3MetaDir is the directory under S3Config.Dir holding the sidecar
	// metadata (content types, user metadata, ETags, ACLs).
	S3MetaDir = "meta"

	s3HealthPath  = "/_devstack_health"
	s3StopTimeout = 30 * time.Second
)

// ErrS3Running is returned by StartS3 while another gateway started by this
// package is still running in the process: versitygw supports only one.
var ErrS3Running = errors.New("devstack: an S3 gateway is already running in this process")

// s3Running guards the single gateway per process.
var s3Running sync.Mutex

// S3Config configures StartS3.
type S3Config struct {
	// Dir is the root of the stored data; it is created when missing and
	// made absolute. Objects live under Dir/buckets, metadata under Dir/meta.
	// Required.
	Dir string
	// Addr is the listening address; a port of 0 picks a free one and an
	// empty host means 127.0.0.1. Default "127.0.0.1:0".
	Addr string
	// AccessKey and SecretKey are the root credentials clients sign
	// requests with (AWS Signature Version 4). Required.
	AccessKey, SecretKey string
	// Logger receives start and stop messages; nil discards them.
	Logger *slog.Logger
}

// S3 is a running embedded S3-compatible server (versitygw with its POSIX
// backend and sidecar metadata).
//
// It does not encrypt at rest: the POSIX backend accepts an SSE-S3 header
// and stores the bytes as it is sent them. Encrypt objects before they
// reach it (mfaflow dev seals documents with blob.Config.Seal).
//
// While it runs, the process's working directory is S3Config.Dir/buckets:
// the POSIX backend changes into its root and resolves every bucket and
// object path relative to it, so the directory cannot be restored until
// Stop. Every other path the process uses must therefore be absolute while
// the gateway runs. Stop changes back to the directory that was current when
// StartS3 was called.
type S3 struct {
	endpoint string
	prevWD   string
	cancel   context.CancelFunc
	done     chan error
	logger   *slog.Logger

	stopOnce sync.Once
	stopErr  error
}

// StartS3 starts the embedded S3 server and returns once it answers HTTP.
// ctx bounds the start-up only; call Stop to end the server. Only one may
// run per process: a second call before Stop returns ErrS3Running. It also
// returns an error when the configuration is invalid, the directories cannot
// be created, the address is taken, or the server does not become ready.
func StartS3(ctx context.Context, cfg S3Config) (*S3, error) {
	started := time.Now()
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("devstack: s3 access key and secret key are required")
	}
	if cfg.Dir == "" {
		return nil, errors.New("devstack: s3 dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("devstack: s3 dir: %w", err)
	}
	host, port, err := s3ListenAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	if !s3Running.TryLock() {
		return nil, ErrS3Running
	}
	s, err := startS3(ctx, dir, host, port, cfg)
	if err != nil {
		s3Running.Unlock()
		return nil, err
	}
	s.logger = logger
	logger.Info("s3 started", "endpoint", s.endpoint, "dir", dir,
		"took", time.Since(started).Round(time.Millisecond))
	return s, nil
}

// s3ListenAddr splits and completes the configured listening address.
func s3ListenAddr(addr string) (string, int, error) {
	if addr == "" {
		addr = net.JoinHostPort(loopback, "0")
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("devstack: s3 address %q: %w", addr, err)
	}
	if host == "" {
		host = loopback
	}
	port, err := strconv.Atoi(portStr)
	if err == nil {
		err = validPort(port)
	}
	if err != nil {
		return "", 0, fmt.Errorf("devstack: s3 address %q: %w", addr, err)
	}
	if port == 0 {
		if port, err = FreePort(host); err != nil {
			return "", 0, err
		}
	} else if err := checkBindable(ServerS3, host, port); err != nil {
		return "", 0, err
	}
	return host, port, nil
}

func startS3(ctx context.Context, dir, host string, port int, cfg S3Config) (*S3, error) {
	root := filepath.Join(dir, S3BucketsDir)
	sidecar := filepath.Join(dir, S3MetaDir)
	for _, d := range []string{root, sidecar} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("devstack: create s3 dir: %w", err)
		}
	}
	prevWD, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("devstack: s3: current directory: %w", err)
	}
	ms, err := meta.NewSideCar(sidecar)
	if err != nil {
		return nil, fmt.Errorf("devstack: s3 sidecar metadata: %w", err)
	}
	// posix.New changes the working directory to root.
	be, err := posix.New(root, ms, posix.PosixOpts{SideCarDir: sidecar})
	if err != nil {
		_ = os.Chdir(prevWD)
		return nil, fmt.Errorf("devstack: s3 posix backend: %w", err)
	}

	addr := net.JoinHostPort(host, strconv.Itoa(port))
	gwCtx, cancel := context.WithCancel(context.Background())
	s := &S3{
		endpoint: net.JoinHostPort(connectHost(host), strconv.Itoa(port)),
		prevWD:   prevWD,
		cancel:   cancel,
		done:     make(chan error, 1),
	}
	go func() {
		s.done <- embedgw.RunVersityGW(gwCtx, be, &embedgw.Config{
			RootUserAccess:    cfg.AccessKey,
			RootUserSecret:    cfg.SecretKey,
			Ports:             []string{addr},
			MaxConnections:    1024,
			MaxRequests:       512,
			MultipartMaxParts: 10000,
			HealthPath:        s3HealthPath,
			Quiet:             true,
			KeepAlive:         true,
		})
		close(s.done)
	}()

	if err := s.waitReady(ctx); err != nil {
		cancel()
		select {
		case <-s.done:
		case <-time.After(s3StopTimeout):
		}
		be.Shutdown()
		_ = os.Chdir(prevWD)
		return nil, err
	}
	return s, nil
}

// waitReady polls the health path until it answers 200 or the gateway ends.
func (s *S3) waitReady(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, 30*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + s.endpoint + s3HealthPath
	err := retry(ctx, func() error {
		select {
		case err, ok := <-s.done:
			if !ok || err == nil {
				err = errors.New("gateway exited")
			}
			return permanent{err}
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
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
		return fmt.Errorf("devstack: s3 on %s not ready: %w", s.endpoint, err)
	}
	return nil
}

// Endpoint returns the server's address as host:port, for minio.New.
func (s *S3) Endpoint() string { return s.endpoint }

// Stop shuts the server down, waits for it, restores the working directory
// that was current at StartS3 and allows another StartS3. Calling it again
// returns the first result. It returns an error when the gateway reports
// one, does not stop within 30 seconds (it then stays registered as running),
// or the working directory cannot be restored.
func (s *S3) Stop() error {
	s.stopOnce.Do(func() {
		s.cancel()
		var err error
		select {
		case err = <-s.done:
		case <-time.After(s3StopTimeout):
			s.stopErr = errors.New("devstack: s3 gateway did not stop in time")
			return
		}
		defer s3Running.Unlock()
		if err != nil && !errors.Is(err, context.Canceled) {
			s.stopErr = fmt.Errorf("devstack: s3 gateway: %w", err)
		}
		if cerr := os.Chdir(s.prevWD); cerr != nil {
			s.stopErr = errors.Join(s.stopErr, fmt.Errorf("devstack: s3: restore working directory: %w", cerr))
		}
		s.logger.Info("s3 stopped", "endpoint", s.endpoint)
	})
	return s.stopErr
}
