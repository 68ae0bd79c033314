package benchsuite

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/server/temporaltest"

	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/workflows"
)

func TestMain(m *testing.M) { harness.Main(m) }

var (
	flagClients  = flag.Int("benchsuite.clients", 16, "concurrent keep-alive clients of the HTTP load driver")
	flagDuration = flag.Duration("benchsuite.duration", 5*time.Second, "measured duration of each HTTP load run")
	flagWarmup   = flag.Duration("benchsuite.warmup", time.Second, "unmeasured warm-up before each HTTP load run")
	flagAppeals  = flag.Int("benchsuite.appeals", 1000, "appeals driven concurrently by BenchmarkAppeals1000")
	flagInFlight = flag.Int("benchsuite.inflight", 50, "appeals in flight at once in BenchmarkAppeals1000")
	// cpuprofile profiles only each benchmark's measured phase (go test's
	// own -cpuprofile would also cover seeding and server start-up).
	flagCPUProfile = flag.String("benchsuite.cpuprofile", "", "write a CPU profile of each benchmark's measured phase to `dir`/<benchmark>.prof")
)

// profileMeasured starts the measured-phase CPU profile when asked, named
// after the benchmark and the optional part (a profile summary merges every
// part of one name: <benchmark>_<part>.<n>.prof); the returned function
// stops it.
func profileMeasured(tb testing.TB, part ...string) func() {
	tb.Helper()
	if *flagCPUProfile == "" {
		return func() {}
	}
	name := strings.Join(append([]string{tb.Name()}, part...), "_")
	f, err := os.Create(filepath.Join(*flagCPUProfile, strings.ReplaceAll(name, "/", "_")+".prof"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		tb.Fatalf("cpu profile: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}
	tb.Cleanup(stop)
	return stop
}

// errDone tells the load driver a client has no more work.
var errDone = errors.New("benchsuite: no more work")

// loadResult is one closed-loop load run.
type loadResult struct {
	requests  int
	errors    int
	firstErr  error
	elapsed   time.Duration
	latencies []time.Duration // sorted
	// CPU time spent over the measured phase by this process (server,
	// client, in-process databases), by the harness's PostgreSQL cluster
	// (postmaster and backends, from /proc; pgOK says it was read) and by
	// the whole machine.
	procCPU, pgCPU, hostCPU time.Duration
	pgOK                    bool
}

func (r loadResult) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// percentile returns the p-th percentile (0 < p ≤ 100) by nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// report writes r as the benchmark's figures: ns/op is the inverse of the
// throughput (wall time per request across all clients), with req/s, p50
// and p99 latency beside it.
func (r loadResult) report(b *testing.B) {
	b.ReportMetric(float64(r.elapsed.Nanoseconds())/float64(max(r.requests, 1)), "ns/op")
	b.ReportMetric(r.rps(), "req/s")
	b.ReportMetric(float64(percentile(r.latencies, 50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(r.latencies, 99).Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(r.procCPU.Nanoseconds())/float64(max(r.requests, 1)), "go-cpu-ns")
	if r.pgOK {
		b.ReportMetric(float64(r.pgCPU.Nanoseconds())/float64(max(r.requests, 1)), "pg-cpu-ns")
	}
	b.ReportMetric(float64(r.hostCPU.Nanoseconds())/float64(max(r.requests, 1)), "host-cpu-ns")
	b.ReportMetric(float64(r.requests), "requests")
	b.ReportMetric(float64(r.errors), "errors")
	b.Logf("%d requests in %v: %.0f req/s, p50 %v, p99 %v, %d errors (first: %v)",
		r.requests, r.elapsed.Round(time.Millisecond), r.rps(), percentile(r.latencies, 50), percentile(r.latencies, 99), r.errors, r.firstErr)
}

// keepAliveClient is one client of the load driver: one keep-alive
// connection, no compression.
func keepAliveClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true, ForceAttemptHTTP2: false,
	}}
}

// drive runs n closed-loop clients: each calls its do function again as soon
// as the last call returned, for warmup (not counted) and then for
// duration. do returns errDone when the client has no more work; the run
// then ends for every client, so the throughput is not diluted by idle ones.
func drive(n int, warmup, duration time.Duration, newClient func(i int) func(c *http.Client) error) loadResult {
	type clientResult struct {
		lat      []time.Duration
		errs     int
		firstErr error
	}
	results := make([]clientResult, n)
	var (
		wg       sync.WaitGroup
		stopOnce sync.Once
		stop     = make(chan struct{})
	)
	start := time.Now()
	measureFrom := start.Add(warmup)
	deadline := measureFrom.Add(duration)
	var ended time.Time
	var endMu sync.Mutex
	end := func(at time.Time) {
		stopOnce.Do(func() {
			endMu.Lock()
			ended = at
			endMu.Unlock()
			close(stop)
		})
	}
	timer := time.AfterFunc(time.Until(deadline), func() { end(deadline) })
	defer timer.Stop()
	// The CPU reading at the start of the measured phase; a run whose work
	// ran out during the warm-up has none, and no measured CPU.
	var (
		cpuMu      sync.Mutex
		cpu0       cpuSample
		cpuSampled bool
	)
	cpuTimer := time.AfterFunc(warmup, func() {
		c := sampleCPU()
		cpuMu.Lock()
		if !cpuSampled {
			cpu0, cpuSampled = c, true
		}
		cpuMu.Unlock()
	})
	for i := range n {
		do := newClient(i)
		c := keepAliveClient()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.CloseIdleConnections()
			res := &results[i]
			res.lat = make([]time.Duration, 0, 4096)
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				err := do(c)
				t1 := time.Now()
				if errors.Is(err, errDone) {
					end(t0)
					return
				}
				if t0.Before(measureFrom) || t1.After(deadline) {
					continue
				}
				select {
				case <-stop: // ended early: count what finished before the end
					endMu.Lock()
					late := t1.After(ended)
					endMu.Unlock()
					if late {
						return
					}
				default:
				}
				if err != nil {
					res.errs++
					if res.firstErr == nil {
						res.firstErr = err
					}
					continue
				}
				res.lat = append(res.lat, t1.Sub(t0))
			}
		}()
	}
	wg.Wait()
	cpuTimer.Stop()
	cpu1 := sampleCPU()
	cpuMu.Lock()
	if !cpuSampled {
		cpu0, cpuSampled = cpu1, true // a late timer leaves it alone
	}
	c0 := cpu0
	cpuMu.Unlock()
	endMu.Lock()
	elapsed := max(0, ended.Sub(measureFrom))
	endMu.Unlock()
	var out loadResult
	out.procCPU, out.hostCPU = cpu1.proc-c0.proc, cpu1.host-c0.host
	out.pgCPU, out.pgOK = cpu1.pg-c0.pg, c0.pgOK && cpu1.pgOK
	for _, r := range results {
		out.latencies = append(out.latencies, r.lat...)
		out.errors += r.errs
		if out.firstErr == nil {
			out.firstErr = r.firstErr
		}
	}
	out.requests = len(out.latencies)
	out.elapsed = elapsed
	slices.Sort(out.latencies)
	return out
}

// cpuSample is the CPU time used so far by this process, by the harness's
// PostgreSQL cluster (when pgOK) and by the machine.
type cpuSample struct {
	proc, pg, host time.Duration
	pgOK           bool
}

// sampleCPU reads getrusage, the PostgreSQL cluster's processes in /proc
// and /proc/stat (zero where unavailable).
func sampleCPU() cpuSample {
	var s cpuSample
	s.pg, s.pgOK = harness.PostgresCPU()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.proc = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		var busy int64
		for i, v := range f[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			if i != 3 && i != 4 && i < 8 { // all but idle and iowait; guest time is inside user
				busy += n
			}
		}
		s.host = time.Duration(busy) * 10 * time.Millisecond // USER_HZ is 100 on Linux
	}
	return s
}

// expectOK sends req and fails unless the answer is 200; the body is read
// to the end so the connection is kept alive.
func expectOK(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return nil
}

// quietSDK logs the Temporal SDK's warnings and errors only.
func quietSDK() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// startTemporal starts the in-process Temporal test server with
// production's encrypting converters and mfaflow's search attributes, as
// temporalharness.StartEncrypted does; that helper takes a *testing.T and
// these are benchmarks. opts come after the client options.
func startTemporal(tb testing.TB, keys *mfa.Keyring, opts ...temporaltest.TestServerOption) *temporaltest.TestServer {
	tb.Helper()
	opts = append([]temporaltest.TestServerOption{
		temporaltest.WithBaseClientOptions(codec.ClientOptions(keys, client.Options{Logger: quietSDK()})),
	}, opts...)
	ts := temporaltest.NewServer(opts...)
	tb.Cleanup(func() {
		// Stop logs a shutdown error through its (absent) *testing.T.
		defer func() { _ = recover() }()
		ts.Stop()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ts.GetDefaultClient().OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        ts.GetDefaultNamespace(),
		SearchAttributes: workflows.SearchAttributes,
	}); err != nil {
		tb.Fatalf("temporal: add search attributes: %v", err)
	}
	return ts
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {1, 1}, {0.1, 1}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}
