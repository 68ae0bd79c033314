package benchsuite

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkclient "go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/mfaflow/mfaflow/workflows"
)

// The appeal figures (SPEC §9): an appeal's workflow path against a
// one-activity workflow on the same Temporal server, and 1,000 appeals
// driven concurrently to the unbind.

// baselineQueue is the task queue of the one-activity workflow.
const baselineQueue = "benchsuite-baseline"

// OneActivity is the baseline: one activity, started and awaited.
func OneActivity(ctx workflow.Context, in string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, Echo, in).Get(ctx, &out)
	return out, err
}

// Echo is the baseline's activity.
func Echo(_ context.Context, in string) (string, error) { return in, nil }

// appealTimes are the phases of one appeal driven through the HTTP API.
type appealTimes struct {
	create, upload, submit, claim, approve, tail time.Duration
}

// approveToUnbound is the workflow path after the last human input: from
// sending the approval to the applicant seeing "unbound".
func (t appealTimes) approveToUnbound() time.Duration { return t.approve + t.tail }

func (t appealTimes) total() time.Duration {
	return t.create + t.upload + t.submit + t.claim + t.approve + t.tail
}

// pollUnbound is how often the applicant's view is read while waiting for
// the unbind in the latency runs.
const pollUnbound = 2 * time.Millisecond

// runAppeal drives one appeal of seeded account i from filing to unbound:
// file, upload a 20 kB photo, submit, then an automated reviewer claims and
// approves at once; the cool-down is 0.
func (s *stack) runAppeal(ctx context.Context, acct string, i int) (appealTimes, error) {
	var t appealTimes
	lap := func(d *time.Duration, start time.Time) { *d = time.Since(start) }
	t0 := time.Now()
	id, token, err := s.fileAppeal(ctx, acct, i)
	if err != nil {
		return t, err
	}
	lap(&t.create, t0)
	t0 = time.Now()
	if err := s.upload(ctx, id, token, &jpegReader{size: 20_000}, 20_000); err != nil {
		return t, err
	}
	lap(&t.upload, t0)
	t0 = time.Now()
	if err := s.submit(ctx, id, token); err != nil {
		return t, err
	}
	lap(&t.submit, t0)
	t0 = time.Now()
	if err := s.claim(ctx, id); err != nil {
		return t, err
	}
	lap(&t.claim, t0)
	t0 = time.Now()
	if err := s.approve(ctx, id); err != nil {
		return t, err
	}
	lap(&t.approve, t0)
	t0 = time.Now()
	if err := s.waitUnbound(ctx, id, token, pollUnbound); err != nil {
		return t, err
	}
	lap(&t.tail, t0)
	return t, nil
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(max(len(ds), 1))
}

// BenchmarkAppealLatency runs, alternately, a one-activity workflow
// (ExecuteWorkflow and Get through the API's Temporal client) and an
// appeal through the HTTP API, warm-up runs first, and reports the means.
func BenchmarkAppealLatency(b *testing.B) {
	const warmup, runs = 2, 10
	s := newStack(b)
	s.ts.NewWorkerWithOptions(baselineQueue, func(r sdkworker.Registry) {
		r.RegisterWorkflow(OneActivity)
		r.RegisterActivity(Echo)
	}, sdkworker.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var (
		one     []time.Duration
		appeals []appealTimes
		accts   []string
	)
	for r := range warmup + runs {
		accts = append(accts, s.seedAppellant(r))
	}
	stop := profileMeasured(b)
	for r := range warmup + runs {
		t0 := time.Now()
		run, err := s.tc.ExecuteWorkflow(ctx, sdkclient.StartWorkflowOptions{ID: fmt.Sprintf("one-activity-%d", r), TaskQueue: baselineQueue}, OneActivity, "x")
		var out string
		if err == nil {
			err = run.Get(ctx, &out)
		}
		if err != nil {
			b.Fatalf("one-activity workflow: %v", err)
		}
		d := time.Since(t0)
		t, err := s.runAppeal(ctx, accts[r], r)
		if err != nil {
			b.Fatalf("appeal %d: %v", r, err)
		}
		if r >= warmup {
			one = append(one, d)
			appeals = append(appeals, t)
		}
	}
	stop()
	pick := func(f func(appealTimes) time.Duration) []time.Duration {
		var out []time.Duration
		for _, t := range appeals {
			out = append(out, f(t))
		}
		return out
	}
	reportRuns := func(name string, ds []time.Duration, extra func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			sorted := slices.Sorted(slices.Values(ds))
			b.ReportMetric(float64(mean(ds).Nanoseconds()), "ns/op")
			b.ReportMetric(float64(percentile(sorted, 50).Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(sorted[0].Nanoseconds()), "min-ns")
			b.ReportMetric(float64(sorted[len(sorted)-1].Nanoseconds()), "max-ns")
			if extra != nil {
				extra(b)
			}
		})
	}
	reportRuns("OneActivityWorkflow", one, nil)
	reportRuns("ApproveToUnbound", pick(appealTimes.approveToUnbound), func(b *testing.B) {
		b.ReportMetric(float64(mean(pick(func(t appealTimes) time.Duration { return t.approve })).Nanoseconds()), "decision-call-ns")
		b.ReportMetric(float64(mean(pick(func(t appealTimes) time.Duration { return t.tail })).Nanoseconds()), "to-unbound-ns")
	})
	reportRuns("FiledToUnbound", pick(appealTimes.total), func(b *testing.B) {
		for _, p := range []struct {
			unit string
			f    func(appealTimes) time.Duration
		}{
			{"create-ns", func(t appealTimes) time.Duration { return t.create }},
			{"upload-ns", func(t appealTimes) time.Duration { return t.upload }},
			{"submit-ns", func(t appealTimes) time.Duration { return t.submit }},
			{"claim-ns", func(t appealTimes) time.Duration { return t.claim }},
		} {
			b.ReportMetric(float64(mean(pick(p.f)).Nanoseconds()), p.unit)
		}
	})
}

// BenchmarkAppeals1000 files -benchsuite.appeals appeals (1,000) through the
// HTTP API with at most -benchsuite.inflight (50) open at once; each is
// filed, gets a 16 kB photo and is submitted, then waits (polling its view
// every 500 ms) until an automated reviewer client, which polls the review
// queue and claims and approves what it finds, has had it unbound. It
// reports the total time, the appeals completed and the failures.
func BenchmarkAppeals1000(b *testing.B) {
	n, inflight := *flagAppeals, *flagInFlight
	s := newStack(b)
	accts := make([]string, n)
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				accts[i] = s.seedAppellant(i)
			}
		}()
	}
	wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	stop := profileMeasured(b)
	start := time.Now()

	// The automated reviewer: one poller of the queue, eight deciders.
	revCtx, stopReviewer := context.WithCancel(ctx)
	var (
		seenMu    sync.Mutex
		seen      = map[string]bool{}
		toReview  = make(chan string, 1024)
		revErrs   atomic.Int64
		revWG     sync.WaitGroup
		firstErrs = &errList{max: 5}
	)
	revWG.Add(1)
	go func() {
		defer revWG.Done()
		defer close(toReview)
		for revCtx.Err() == nil {
			out, err := s.callJSON(revCtx, http.MethodGet, "/v1/review/appeals?status="+workflows.AppealPending, s.reviewer, nil)
			if err == nil {
				items, _ := out["appeals"].([]any)
				for _, it := range items {
					id, _ := it.(map[string]any)["appeal_id"].(string)
					seenMu.Lock()
					fresh := id != "" && !seen[id]
					seen[id] = true
					seenMu.Unlock()
					if fresh {
						toReview <- id
					}
				}
			} else if revCtx.Err() == nil {
				revErrs.Add(1)
				firstErrs.add(fmt.Errorf("review queue: %w", err))
			}
			select {
			case <-revCtx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	for range 8 {
		revWG.Add(1)
		go func() {
			defer revWG.Done()
			for id := range toReview {
				err := s.claim(revCtx, id)
				if err == nil {
					err = retry(revCtx, 3, func() error { return s.approve(revCtx, id) })
				} else {
					seenMu.Lock()
					delete(seen, id) // the poller offers it again if still pending
					seenMu.Unlock()
				}
				if err != nil && revCtx.Err() == nil {
					revErrs.Add(1)
					firstErrs.add(fmt.Errorf("review %s: %w", id, err))
				}
			}
		}()
	}

	// The applicants.
	var (
		done, failed atomic.Int64
		latMu        sync.Mutex
		lat          []time.Duration
		idx          = make(chan int)
		appWG        sync.WaitGroup
		phases       phaseTimes
	)
	for range inflight {
		appWG.Add(1)
		go func() {
			defer appWG.Done()
			for i := range idx {
				t0 := time.Now()
				err := func() error {
					id, token, err := s.fileAppeal(ctx, accts[i], i)
					if err != nil {
						return err
					}
					phases.add(0, time.Since(t0))
					t1 := time.Now()
					if err := s.upload(ctx, id, token, &jpegReader{size: 16_000}, 16_000); err != nil {
						return err
					}
					phases.add(1, time.Since(t1))
					t1 = time.Now()
					if err := s.submit(ctx, id, token); err != nil {
						return err
					}
					phases.add(2, time.Since(t1))
					t1 = time.Now()
					err = s.waitUnbound(ctx, id, token, 500*time.Millisecond)
					phases.add(3, time.Since(t1))
					return err
				}()
				if err != nil {
					failed.Add(1)
					firstErrs.add(err)
					continue
				}
				done.Add(1)
				latMu.Lock()
				lat = append(lat, time.Since(t0))
				latMu.Unlock()
			}
		}()
	}
	for i := range n {
		idx <- i
	}
	close(idx)
	appWG.Wait()
	elapsed := time.Since(start)
	stopReviewer()
	revWG.Wait()
	stop()

	slices.Sort(lat)
	b.ReportMetric(float64(elapsed.Nanoseconds()), "ns/op")
	b.ReportMetric(float64(done.Load()), "completed")
	b.ReportMetric(float64(failed.Load()), "failures")
	b.ReportMetric(float64(done.Load())/elapsed.Seconds(), "appeals/s")
	b.ReportMetric(float64(percentile(lat, 50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(lat, 99).Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(revErrs.Load()), "reviewer-errors")
	b.Logf("mean phase times: create %v, upload %v, submit %v, submitted to unbound %v", phases.mean(0), phases.mean(1), phases.mean(2), phases.mean(3))
	b.Logf("%d of %d appeals unbound in %v (%d in flight), %d failed, %d reviewer errors; first errors: %v",
		done.Load(), n, elapsed.Round(time.Millisecond), inflight, failed.Load(), revErrs.Load(), firstErrs.list())
}

// retry calls f up to n times, half a second apart, until it succeeds.
func retry(ctx context.Context, n int, f func() error) error {
	var err error
	for range n {
		if err = f(); err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	return err
}

// errList keeps the first few errors.
type errList struct {
	mu   sync.Mutex
	max  int
	errs []error
}

func (l *errList) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < l.max {
		l.errs = append(l.errs, err)
	}
}

func (l *errList) list() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// phaseTimes sums the times of the phases of many appeals.
type phaseTimes struct {
	mu  sync.Mutex
	sum [4]time.Duration
	n   [4]int
}

func (p *phaseTimes) add(i int, d time.Duration) {
	p.mu.Lock()
	p.sum[i] += d
	p.n[i]++
	p.mu.Unlock()
}

func (p *phaseTimes) mean(i int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return (p.sum[i] / time.Duration(max(p.n[i], 1))).Round(time.Millisecond)
}
