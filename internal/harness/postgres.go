package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// installHint tells the reader how to get the PostgreSQL server binaries.
const installHint = "install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; " +
	"the harness looks for initdb in PATH and /usr/lib/postgresql/*/bin) or set DATABASE_URL to a server " +
	"where the user may CREATE DATABASE"

var shared struct {
	once  sync.Once
	admin string // URL of a maintenance database on the shared server
	err   error
	took  time.Duration
	pg    *Postgres // the throwaway cluster; nil with DATABASE_URL
}

// PostgresURL returns the URL of a fresh, empty database that only the calling
// test uses; the database is dropped (WITH (FORCE)) when the test ends.
//
// When DATABASE_URL is set the databases are created on that server. Otherwise
// the first call starts a throwaway cluster for the whole test process (run as
// the postgres system user when the tests run as root) and Main stops it. The
// test fails, not skips, when no PostgreSQL server binaries are installed.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	shared.once.Do(func() {
		if u := os.Getenv("DATABASE_URL"); u != "" {
			shared.admin = u
			return
		}
		start := time.Now()
		p, err := newCluster()
		if err != nil {
			shared.err = err
			return
		}
		atExit(p.destroy)
		shared.pg = p
		shared.admin = p.adminURL()
		shared.took = time.Since(start)
	})
	if shared.err != nil {
		tb.Fatalf("harness: postgres: %v", shared.err)
	}
	return createDatabase(tb, shared.admin)
}

// PostgresStartup reports how long the shared throwaway cluster took to
// initialise and start; zero when DATABASE_URL is used or before the first
// PostgresURL call.
func PostgresStartup() time.Duration { return shared.took }

// Postgres is a throwaway PostgreSQL cluster that belongs to one test, for
// fault tests that stop and restart the server. Its methods are safe for
// concurrent use.
type Postgres struct {
	mu      sync.Mutex
	bin     string // directory holding initdb and postgres
	dir     string // temp dir: data/, sock/, postgres.log
	port    int
	cred    *syscall.Credential // nil: run as ourselves
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	logFile *os.File
}

// NewPostgres starts a private cluster for tb and stops and removes it when tb
// ends. Unlike PostgresURL it always starts its own server, even when
// DATABASE_URL is set, because the test is going to stop it. It fails the test
// when the server cannot be started.
func NewPostgres(tb testing.TB) *Postgres {
	tb.Helper()
	p, err := newCluster()
	if err != nil {
		tb.Fatalf("harness: postgres: %v", err)
	}
	tb.Cleanup(p.destroy)
	return p
}

// URL returns the URL of a fresh, empty database on p, dropped when tb ends
// if the server is running then.
func (p *Postgres) URL(tb testing.TB) string {
	tb.Helper()
	return createDatabase(tb, p.adminURL())
}

// Addr returns the server's host:port.
func (p *Postgres) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// Stop shuts the server down (fast shutdown: open connections are cut) and
// waits for it to exit. Stopping a stopped server does nothing.
func (p *Postgres) Stop(tb testing.TB) {
	tb.Helper()
	if err := p.stop(); err != nil {
		tb.Fatalf("harness: stop postgres: %v", err)
	}
}

// Start starts the stopped server again on the same port and data, and waits
// until it accepts connections. Starting a running server does nothing.
func (p *Postgres) Start(tb testing.TB) {
	tb.Helper()
	if err := p.start(); err != nil {
		tb.Fatalf("harness: start postgres: %v", err)
	}
}

// newCluster initialises a data directory in a new temp dir and starts a
// server on a free loopback port.
func newCluster() (*Postgres, error) {
	bin, err := findPostgresBin()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mfaflow-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{bin: bin, dir: dir, cred: cred}
	if err := os.Mkdir(filepath.Join(dir, "sock"), 0o700); err != nil {
		p.destroy()
		return nil, err
	}
	if err := p.chown(); err != nil {
		p.destroy()
		return nil, err
	}
	initdb := p.command(filepath.Join(bin, "initdb"),
		"-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "-N")
	var out bytes.Buffer
	initdb.Stdout, initdb.Stderr = &out, &out
	if err := initdb.Run(); err != nil {
		p.destroy()
		return nil, fmt.Errorf("initdb: %v\n%s", err, logTail(out.Bytes()))
	}
	// A port picked now could be taken by the time the server binds it; try
	// a few.
	for attempt := 0; ; attempt++ {
		if p.port, err = freePort(); err != nil {
			p.destroy()
			return nil, err
		}
		if err = p.start(); err == nil {
			return p, nil
		}
		if attempt == 2 {
			p.destroy()
			return nil, err
		}
	}
}

// adminURL is the URL of the cluster's maintenance database.
func (p *Postgres) adminURL() string {
	return "postgres://postgres@" + p.Addr() + "/postgres?sslmode=disable"
}

// command builds a command that runs as the server's user in p.dir.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = p.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	return cmd
}

func (p *Postgres) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	logPath := filepath.Join(p.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	cmd := p.command(filepath.Join(p.bin, "postgres"),
		"-D", filepath.Join(p.dir, "data"),
		"-k", filepath.Join(p.dir, "sock"),
		"-h", "127.0.0.1",
		"-p", strconv.Itoa(p.port),
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "synchronous_commit=off",
		"-c", "max_connections=200",
		"-c", "log_min_messages=warning",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Should the test binary die without running Main's cleanup (a panic,
	// a -timeout), take the server down with it.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.cmd, p.exited, p.logFile = cmd, exited, logFile

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, p.adminURL())
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			p.cmd = nil
			logFile.Close()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited during startup:\n%s", logTail(log))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			p.cmd = nil
			logFile.Close()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not accept connections within 60s: %v\n%s", err, logTail(log))
		}
	}
}

func (p *Postgres) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	defer func() {
		p.cmd = nil
		p.logFile.Close()
	}()
	_ = p.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-p.exited:
		return nil
	case <-time.After(30 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return errors.New("postgres ignored fast shutdown for 30s and was killed")
}

// destroy stops the server and removes its files.
func (p *Postgres) destroy() {
	_ = p.stop()
	_ = os.RemoveAll(p.dir)
}

// chown hands p.dir to the server's user.
func (p *Postgres) chown() error {
	if p.cred == nil {
		return nil
	}
	return filepath.WalkDir(p.dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(p.cred.Uid), int(p.cred.Gid))
	})
}

// createDatabase creates a database with a random name on the server of
// adminURL and returns its URL; the database is dropped when tb ends.
func createDatabase(tb testing.TB, adminURL string) string {
	tb.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "mfaflow_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := adminExec(ctx, adminURL, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("harness: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, adminURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			// A stopped throwaway server takes its databases with it.
			tb.Logf("harness: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(adminURL, name)
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	return u
}

// adminExec runs one statement on a fresh connection to adminURL. A fresh
// connection per statement survives servers being stopped and restarted.
func adminExec(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns dsn (URL or keyword/value form) pointing at database name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", errors.New("DATABASE_URL is not a valid URL")
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil
}

// findPostgresBin returns the directory that holds initdb and postgres.
func findPostgresBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	more, _ := filepath.Glob("/usr/pgsql-*/bin/initdb")
	matches = append(matches, more...)
	version := func(path string) int {
		// /usr/lib/postgresql/15/bin/initdb → 15
		v := filepath.Base(filepath.Dir(filepath.Dir(path)))
		v = strings.TrimPrefix(v, "pgsql-")
		n, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
		return n
	}
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("no initdb found: " + installHint)
}

// serverCredential returns the user to run the server as: nil (ourselves)
// unless we are root, which PostgreSQL refuses; then postgres, else nobody.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("running as root and neither a postgres nor a nobody user exists to run the server as")
}

// logTail returns the end of a log for an error message.
func logTail(b []byte) string {
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}
