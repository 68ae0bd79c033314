// Package harness is the one test harness every integration test uses: real
// PostgreSQL, real MinIO and the other servers mfaflow talks to, started once
// per test process on loopback and stopped when the process ends.
//
// A package whose tests use the harness calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
//
// Servers are started lazily by the first test that asks for one, so a test
// binary that never asks pays nothing. Each test gets its own fresh state
// (a new database, a new bucket) so tests may run in parallel.
package harness

import (
	"os"
	"sync"
	"testing"
)

var exit struct {
	mu    sync.Mutex
	funcs []func()
}

// atExit registers f to run when Main finishes, after every test. Functions run
// in reverse order of registration, like deferred calls.
func atExit(f func()) {
	exit.mu.Lock()
	defer exit.mu.Unlock()
	exit.funcs = append(exit.funcs, f)
}

// AtExit registers f to run when Main finishes, after every test and before
// the servers stop (a package's report of what its tests covered, say).
func AtExit(f func()) { atExit(f) }

// runAtExit runs and forgets the registered functions.
func runAtExit() {
	exit.mu.Lock()
	funcs := exit.funcs
	exit.funcs = nil
	exit.mu.Unlock()
	for i := len(funcs) - 1; i >= 0; i-- {
		funcs[i]()
	}
}

// Main runs the tests, stops every server this process started and exits with
// the tests' status. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	runAtExit()
	os.Exit(code)
}
