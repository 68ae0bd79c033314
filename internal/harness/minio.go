package harness

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MinIOVersion is the pinned MinIO server module version the harness builds.
// The Makefile pins the same one.
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIO is a real MinIO server on loopback, shared by the tests of one process.
type MinIO struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	// Secure is set on a server that serves only TLS (MinIOTLSServer), with
	// a certificate issued by CACert (PEM), a throwaway CA of the harness.
	Secure bool
	CACert []byte

	mu   sync.Mutex
	bin  string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

var minioOnce struct {
	sync.Once
	m   *MinIO
	err error
}

// MinIOServer returns the process's MinIO server, starting it on first use.
// It builds the pinned server with go install into the module's bin folder
// when no binary is found (MFAFLOW_MINIO_BIN overrides the path). It fails
// the test, never skips, when the server cannot be had.
func MinIOServer(tb testing.TB) *MinIO {
	tb.Helper()
	minioOnce.Do(func() {
		minioOnce.m, minioOnce.err = startMinIO(tb, false)
		if minioOnce.err == nil {
			atExit(func() { minioOnce.m.kill() })
		}
	})
	if minioOnce.err != nil {
		tb.Fatalf("harness: minio: %v", minioOnce.err)
	}
	return minioOnce.m
}

// Bucket returns a fresh bucket name for one test. The bucket itself is not
// created, so the code under test creates it as it would in production.
func (m *MinIO) Bucket(tb testing.TB) string {
	tb.Helper()
	return "t-" + randHex(8)
}

// Stop kills the server (SIGKILL, like a crash) and waits for it to exit.
func (m *MinIO) Stop(tb testing.TB) {
	tb.Helper()
	m.kill()
}

// Start restarts a stopped server on the same address and data.
func (m *MinIO) Start(tb testing.TB) {
	tb.Helper()
	if err := m.start(); err != nil {
		tb.Fatalf("harness: minio restart: %v", err)
	}
}

func startMinIO(tb testing.TB, secure bool) (*MinIO, error) {
	bin, err := minioBinary(tb)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mfaflow-minio-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &MinIO{
		Endpoint:  fmt.Sprintf("127.0.0.1:%d", port),
		AccessKey: "harness" + randHex(4),
		SecretKey: randHex(20),
		Secure:    secure,
		bin:       bin,
		dir:       dir,
	}
	// MinIO serves TLS when its certs dir holds public.crt and private.key;
	// a plain server gets an empty one, so certificates in the default
	// ~/.minio/certs cannot turn it into a TLS server.
	if err := os.MkdirAll(m.certsDir(), 0o700); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if secure {
		ca, err := writeTLSCerts(m.certsDir(), "127.0.0.1")
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("minio tls certificates: %w", err)
		}
		m.CACert = ca
	}
	if err := m.start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	atExit(func() { _ = os.RemoveAll(dir) })
	return m, nil
}

func (m *MinIO) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return nil
	}
	consolePort, err := freePort()
	if err != nil {
		return err
	}
	kms := make([]byte, 32)
	_, _ = rand.Read(kms)
	cmd := exec.Command(m.bin, "server", filepath.Join(m.dir, "data"),
		"--address", m.Endpoint, "--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort),
		"--certs-dir", m.certsDir(), "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		// A static KMS key lets the server encrypt objects at rest (SSE-S3).
		"MINIO_KMS_SECRET_KEY=harness-key:"+base64.StdEncoding.EncodeToString(kmsKey(m.dir, kms)),
	)
	logf, err := os.OpenFile(filepath.Join(m.dir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", m.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(done) }()
	m.cmd, m.done = cmd, done
	hc := &http.Client{Transport: m.Transport(), Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := hc.Get(m.URL() + "/minio/health/cluster")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			m.cmd = nil
			log, _ := os.ReadFile(filepath.Join(m.dir, "minio.log"))
			return fmt.Errorf("minio exited early: %s", logTail(log))
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("minio not ready at %s after 60s", m.Endpoint)
}

func (m *MinIO) kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

// kmsKey keeps one KMS key per data dir so a restarted server opens its objects.
func kmsKey(dir string, fresh []byte) []byte {
	p := filepath.Join(dir, "kms.key")
	if b, err := os.ReadFile(p); err == nil && len(b) == 32 {
		return b
	}
	_ = os.WriteFile(p, fresh, 0o600)
	return fresh
}

// minioBinary finds or builds the pinned MinIO server.
func minioBinary(tb testing.TB) (string, error) {
	if p := os.Getenv("MFAFLOW_MINIO_BIN"); p != "" {
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "minio")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	tb.Logf("harness: building MinIO %s into %s (about 5 minutes cold)", MinIOVersion, filepath.Dir(bin))
	cmd := exec.Command("go", "install", "github.com/minio/minio@"+MinIOVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Dir(bin), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install minio: %v: %s", err, logTail(out))
	}
	return bin, nil
}

// startDir is the working directory when the test binary started (the
// package's directory). Some servers under test change the working directory.
var startDir, startDirErr = os.Getwd()

// moduleRoot finds the directory holding go.mod from the start directory up.
func moduleRoot() (string, error) {
	dir, err := startDir, startDirErr
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
