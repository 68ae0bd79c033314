package benchsuite

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
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

// startBaselineWorker starts a worker of OneActivity on baselineQueue with
// the options of the stack's appeal worker.
func (s *stack) startBaselineWorker() {
	s.ts.NewWorkerWithOptions(baselineQueue, func(r sdkworker.Registry) {
		r.RegisterWorkflow(OneActivity)
		r.RegisterActivity(Echo)
	}, workerOptions())
}

// oneActivity starts OneActivity as workflow id and waits for its result.
func oneActivity(ctx context.Context, tc sdkclient.Client, id string) error {
	run, err := tc.ExecuteWorkflow(ctx, sdkclient.StartWorkflowOptions{ID: id, TaskQueue: baselineQueue}, OneActivity, "x")
	var out string
	if err == nil {
		err = run.Get(ctx, &out)
	}
	if err != nil {
		return fmt.Errorf("one-activity workflow %s: %w", id, err)
	}
	return nil
}

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
	s.startBaselineWorker()
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
		if err := oneActivity(ctx, s.tc, fmt.Sprintf("one-activity-%d", r)); err != nil {
			b.Fatal(err)
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
// reports the total time, the appeals completed and the failures, the
// throughput and the CPU it took (throughput.report), the backlog of the
// appeals' normal task queue sampled meanwhile (queueStats.report), the
// status queries per appeal, and what Temporal did for each appeal, read
// from the histories of a sample of them (historySummary.report).
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
	stopWaits := profileWaits(b)

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
		phases  phaseTimes
		ids     = make([]string, n)
		created = make([]time.Duration, n)
	)
	stopQueue := sampleQueue(ctx, s, workflows.TaskQueue)
	reads0 := s.statusReads.Load()
	run := driveConcurrently(n, inflight, firstErrs, func(i int) error {
		t0 := time.Now()
		id, token, err := s.fileAppeal(ctx, accts[i], i)
		if err != nil {
			return fmt.Errorf("filing answered after %v: %w", time.Since(t0).Round(time.Millisecond), err)
		}
		ids[i], created[i] = id, time.Since(t0)
		phases.add(0, created[i])
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
	})
	queue := stopQueue()
	stopReviewer()
	revWG.Wait()
	stopWaits()
	stop()

	run.report(b, "appeals/s")
	queue.report(b)
	b.ReportMetric(float64(revErrs.Load()), "reviewer-errors")
	b.ReportMetric(float64(s.statusReads.Load()-reads0)/float64(max(run.done, 1)), "status-queries")
	b.Logf("mean phase times: create %v, upload %v, submit %v, submitted to unbound %v", phases.mean(0), phases.mean(1), phases.mean(2), phases.mean(3))
	b.Logf("%d of %d appeals unbound in %v (%d in flight), %d failed, %d reviewer errors; first errors: %v",
		run.done, n, run.elapsed.Round(time.Millisecond), inflight, run.failed, revErrs.Load(), firstErrs.list())
	h := readHistories(ctx, b, s.tc, sampleIDs(ids), ids, created)
	h.report(b, run)
}

// BenchmarkOneActivity1000 is BenchmarkAppeals1000's baseline: as many
// OneActivity workflows, as many at once, on a stack of its own built as
// the appeals' one (newStack), each started and awaited (ExecuteWorkflow
// and Get) through the API's Temporal client by a worker with the same
// options as the appeal worker's. It reports what BenchmarkAppeals1000
// does, per workflow.
func BenchmarkOneActivity1000(b *testing.B) {
	n, inflight := *flagAppeals, *flagInFlight
	s := newStack(b)
	s.startBaselineWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	// One workflow first, unmeasured: the worker's first poll and the task
	// queue's creation are not part of the throughput.
	if err := oneActivity(ctx, s.tc, "one-activity-warmup"); err != nil {
		b.Fatal(err)
	}
	stop := profileMeasured(b)
	stopWaits := profileWaits(b)
	ids := make([]string, n)
	errs := &errList{max: 5}
	stopQueue := sampleQueue(ctx, s, baselineQueue)
	run := driveConcurrently(n, inflight, errs, func(i int) error {
		ids[i] = fmt.Sprintf("one-activity-%05d", i)
		return oneActivity(ctx, s.tc, ids[i])
	})
	queue := stopQueue()
	stopWaits()
	stop()
	run.report(b, "workflows/s")
	queue.report(b)
	b.Logf("%d of %d one-activity workflows in %v (%d in flight), %d failed; first errors: %v",
		run.done, n, run.elapsed.Round(time.Millisecond), inflight, run.failed, errs.list())
	h := readHistories(ctx, b, s.tc, sampleIDs(ids), ids, nil)
	h.report(b, run)
}

// throughput is the outcome of driving many items (appeals, workflows), a
// bounded number at once, with the CPU spent meanwhile.
type throughput struct {
	done, failed int64
	elapsed      time.Duration
	lat          []time.Duration // of the completed items, sorted
	cpu          cpuSample       // CPU used over the run (differences)
}

// driveConcurrently calls do(i) for every i below n from inflight
// goroutines, each taking the next i as soon as its last one returned, and
// measures the wall time, each call's latency and the CPU used by this
// process, the PostgreSQL cluster and the machine. Errors go to errs.
func driveConcurrently(n, inflight int, errs *errList, do func(i int) error) throughput {
	var (
		out   throughput
		done  atomic.Int64
		fail  atomic.Int64
		latMu sync.Mutex
		idx   = make(chan int)
		wg    sync.WaitGroup
	)
	cpu0 := sampleCPU()
	start := time.Now()
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				t0 := time.Now()
				if err := do(i); err != nil {
					fail.Add(1)
					errs.add(err)
					continue
				}
				d := time.Since(t0)
				done.Add(1)
				latMu.Lock()
				out.lat = append(out.lat, d)
				latMu.Unlock()
			}
		}()
	}
	for i := range n {
		idx <- i
	}
	close(idx)
	wg.Wait()
	out.elapsed = time.Since(start)
	cpu1 := sampleCPU()
	out.cpu = cpuSample{proc: cpu1.proc - cpu0.proc, host: cpu1.host - cpu0.host, pg: cpu1.pg - cpu0.pg, pgOK: cpu0.pgOK && cpu1.pgOK}
	out.done, out.failed = done.Load(), fail.Load()
	slices.Sort(out.lat)
	return out
}

// report writes the run's figures: ns/op is the total wall time, unit
// (appeals/s, workflows/s) the completed items per second; CPU per item
// (go-cpu-ns this process: API, Temporal server, worker, SQLite of the
// Temporal server, driver; pg-cpu-ns the PostgreSQL cluster; host-cpu-ns
// the machine, whatever else runs on it included) and the cores in use
// over the wall time (go-cores, host-cores: of runtime.NumCPU()).
func (r throughput) report(b *testing.B, unit string) {
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(max(r.done, 1)) }
	cores := func(d time.Duration) float64 { return d.Seconds() / r.elapsed.Seconds() }
	b.ReportMetric(float64(r.elapsed.Nanoseconds()), "ns/op")
	b.ReportMetric(float64(r.done), "completed")
	b.ReportMetric(float64(r.failed), "failures")
	b.ReportMetric(float64(r.done)/r.elapsed.Seconds(), unit)
	b.ReportMetric(float64(percentile(r.lat, 50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(r.lat, 99).Nanoseconds()), "p99-ns")
	b.ReportMetric(per(r.cpu.proc), "go-cpu-ns")
	if r.cpu.pgOK {
		b.ReportMetric(per(r.cpu.pg), "pg-cpu-ns")
	}
	b.ReportMetric(per(r.cpu.host), "host-cpu-ns")
	b.ReportMetric(cores(r.cpu.proc), "go-cores")
	b.ReportMetric(cores(r.cpu.host), "host-cores")
	b.Logf("CPU over %v: this process %.2f cores, PostgreSQL %.2f, the machine %.2f of %d (load average at the end: %s)",
		r.elapsed.Round(time.Millisecond), cores(r.cpu.proc), cores(r.cpu.pg), cores(r.cpu.host), runtime.NumCPU(), loadAverage())
}

// loadAverage is the first three fields of /proc/loadavg, or "".
func loadAverage() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	return strings.Join(f[:min(3, len(f))], " ")
}

// sampleIDs returns at most historySample of ids, evenly spread, without
// the empty ones (items that failed before they had an id).
func sampleIDs(ids []string) []int {
	step := max(1, len(ids)/historySample)
	var out []int
	for i := 0; i < len(ids); i += step {
		if ids[i] != "" {
			out = append(out, i)
		}
	}
	return out
}

// queueStats sums what sampleQueue saw of a task queue: the backlog the
// matching service reports across the partitions (tasks that found no
// poller waiting), and the age of its oldest task.
type queueStats struct {
	wftBacklog, wftAge, actBacklog, actAge float64 // sums
	n                                      int
	errs                                   int
}

// sampleQueue reads, every 500 ms until stop is called, the normal (not
// sticky) workflow and activity task queues of name.
func sampleQueue(ctx context.Context, s *stack, name string) (stop func() queueStats) {
	var (
		out  queueStats
		done = make(chan struct{})
	)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var b [2]int64
			var age [2]time.Duration
			ok := true
			for k, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
				resp, err := s.tc.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
					Namespace: s.ts.GetDefaultNamespace(), TaskQueue: &taskqueuepb.TaskQueue{Name: name, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
					TaskQueueType: typ, ReportStats: true,
				})
				if err != nil {
					ok = false
					break
				}
				b[k], age[k] = resp.GetStats().GetApproximateBacklogCount(), resp.GetStats().GetApproximateBacklogAge().AsDuration()
			}
			if ok {
				out.wftBacklog += float64(b[0])
				out.wftAge += age[0].Seconds()
				out.actBacklog += float64(b[1])
				out.actAge += age[1].Seconds()
				out.n++
			} else if ctx.Err() == nil {
				out.errs++
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return func() queueStats {
		cancel()
		<-done
		return out
	}
}

// report writes the mean backlogs and ages.
func (q queueStats) report(b *testing.B) {
	if q.n == 0 {
		b.Logf("task queue: no sample (%d errors)", q.errs)
		return
	}
	n := float64(q.n)
	b.ReportMetric(q.wftBacklog/n, "wft-backlog")
	b.ReportMetric(q.wftAge/n*1e9, "wft-backlog-age-ns")
	b.ReportMetric(q.actBacklog/n, "activity-backlog")
	b.Logf("normal task queue, mean of %d samples: workflow tasks in backlog %.1f (oldest %.2fs), activity tasks %.1f (oldest %.2fs)",
		q.n, q.wftBacklog/n, q.wftAge/n, q.actBacklog/n, q.actAge/n)
}

// historySample is how many workflows' histories are read after a
// throughput run.
const historySample = 100

// span sums durations between two events of a history.
type span struct {
	sum time.Duration
	n   int
}

func (s *span) add(from, to time.Time) {
	if from.IsZero() || to.IsZero() {
		return
	}
	s.sum += to.Sub(from)
	s.n++
}

func (s span) mean() time.Duration { return s.sum / time.Duration(max(s.n, 1)) }

// historySummary is what Temporal recorded for a sample of the workflows
// of a throughput run: counts per workflow, and the mean waits and runs of
// its tasks. For appeals, create* break the filing down.
type historySummary struct {
	workflows                                  int
	events, workflowTasks, activities, updates int
	activityRetries                            int
	byActivity                                 map[string]int
	// Workflow tasks: scheduled to started (waiting in the task queue for a
	// poller) and started to completed (the worker); activities likewise.
	wftWait, wftRun, actWait, actRun span
	// firstWait: the workflow's start to its first workflow task's start
	// (the wait in the normal task queue). The filing, from the create
	// update's history: the first workflow task, the
	// eligibility activity's wait and run, its completion to the next
	// workflow task's start, that task; started to the update's
	// completion; and the HTTP call's time outside it (API before the
	// start: rate limits, the appeal row; and after: the update's result
	// reaching the client).
	firstWait, createFirstRun, createCheckWait, createCheckRun, createNextWait, createNextRun, createServer, createOutside span
}

// readHistories reads the histories of the workflows ids[i] for i in pick
// (eight at a time) and sums them up; created[i], when given, is the HTTP
// create call's time of appeal i.
func readHistories(ctx context.Context, tb testing.TB, tc sdkclient.Client, pick []int, ids []string, created []time.Duration) *historySummary {
	h := &historySummary{byActivity: map[string]int{}}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, 8)
	)
	for _, i := range pick {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var events []*historypb.HistoryEvent
			it := tc.GetWorkflowHistory(ctx, ids[i], "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				e, err := it.Next()
				if err != nil {
					tb.Errorf("history of %s: %v", ids[i], err)
					return
				}
				events = append(events, e)
			}
			var c time.Duration
			if created != nil {
				c = created[i]
			}
			mu.Lock()
			h.add(events, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return h
}

// add sums up one workflow's history; created is its HTTP create call's
// time (0: not an appeal).
func (h *historySummary) add(events []*historypb.HistoryEvent, created time.Duration) {
	h.workflows++
	h.events += len(events)
	at := map[int64]time.Time{} // event id → time
	var (
		started   time.Time
		createID  int64 // the create update's accepted event
		checkID   int64 // CheckEligibility's scheduled event
		checkDone time.Time
		firstWFT  int64 // the first workflow task's started event
		nextWFT   int64 // the one after the eligibility check
	)
	for _, e := range events {
		t := e.GetEventTime().AsTime()
		at[e.GetEventId()] = t
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			started = t
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			h.wftWait.add(at[e.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()], t)
			if firstWFT == 0 {
				firstWFT = e.GetEventId()
				h.firstWait.add(started, t)
			}
			if !checkDone.IsZero() && nextWFT == 0 {
				nextWFT = e.GetEventId()
				h.createNextWait.add(checkDone, t)
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			a := e.GetWorkflowTaskCompletedEventAttributes()
			h.workflowTasks++
			h.wftRun.add(at[a.GetStartedEventId()], t)
			switch a.GetStartedEventId() {
			case firstWFT:
				h.createFirstRun.add(at[firstWFT], t)
			case nextWFT:
				h.createNextRun.add(at[nextWFT], t)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			h.activities++
			name := e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			h.byActivity[name]++
			if name == workflows.ActivityCheckEligibility && checkID == 0 {
				checkID = e.GetEventId()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := e.GetActivityTaskStartedEventAttributes()
			h.actWait.add(at[a.GetScheduledEventId()], t)
			if a.GetAttempt() > 1 {
				h.activityRetries += int(a.GetAttempt()) - 1
			}
			if a.GetScheduledEventId() == checkID {
				h.createCheckWait.add(at[checkID], t)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := e.GetActivityTaskCompletedEventAttributes()
			h.actRun.add(at[a.GetStartedEventId()], t)
			if a.GetScheduledEventId() == checkID {
				h.createCheckRun.add(at[a.GetStartedEventId()], t)
				checkDone = t
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			h.updates++
			if e.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest().GetInput().GetName() == workflows.UpdateAppealCreate {
				createID = e.GetEventId()
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
			if createID != 0 && e.GetWorkflowExecutionUpdateCompletedEventAttributes().GetAcceptedEventId() == createID && created > 0 {
				server := t.Sub(started)
				h.createServer.add(started, t)
				h.createOutside.sum += created - server
				h.createOutside.n++
			}
		}
	}
}

// report writes the counts per workflow and the mean task waits; per
// second (workflow-tasks/s, history-events/s) at the run's throughput, so
// that runs of different workflows compare by the work Temporal did.
func (h *historySummary) report(b *testing.B, r throughput) {
	if h.workflows == 0 {
		return
	}
	per := func(n int) float64 { return float64(n) / float64(h.workflows) }
	rate := float64(r.done) / r.elapsed.Seconds()
	b.ReportMetric(per(h.events), "history-events")
	b.ReportMetric(per(h.workflowTasks), "workflow-tasks")
	b.ReportMetric(per(h.activities), "activities")
	b.ReportMetric(per(h.updates), "updates")
	b.ReportMetric(per(h.activityRetries), "activity-retries")
	b.ReportMetric(rate*per(h.workflowTasks), "workflow-tasks/s")
	b.ReportMetric(rate*per(h.events), "history-events/s")
	b.ReportMetric(rate*per(h.activities), "activities/s")
	for _, m := range []struct {
		s    span
		unit string
	}{
		{h.wftWait, "wft-wait-ns"}, {h.wftRun, "wft-run-ns"}, {h.actWait, "activity-wait-ns"}, {h.actRun, "activity-run-ns"},
	} {
		b.ReportMetric(float64(m.s.mean().Nanoseconds()), m.unit)
	}
	names := slices.Sorted(maps.Keys(h.byActivity))
	var acts []string
	for _, n := range names {
		acts = append(acts, fmt.Sprintf("%s %.1f", n, per(h.byActivity[n])))
	}
	b.Logf("history of %d sampled workflows, per workflow: %.1f events, %.1f workflow tasks, %.1f updates, %.1f activities (%s), %.2f activity retries",
		h.workflows, per(h.events), per(h.workflowTasks), per(h.updates), per(h.activities), strings.Join(acts, ", "), per(h.activityRetries))
	b.ReportMetric(float64(h.firstWait.mean().Nanoseconds()), "first-wft-wait-ns")
	b.Logf("mean waits: workflow task scheduled→started %v (the first one, on the normal task queue: %v), started→completed %v; activity scheduled→started %v, started→completed %v",
		h.wftWait.mean(), h.firstWait.mean(), h.wftRun.mean(), h.actWait.mean(), h.actRun.mean())
	if h.createServer.n > 0 {
		for _, m := range []struct {
			s    span
			unit string
		}{
			{h.createFirstRun, "create-first-wft-run-ns"},
			{h.createCheckWait, "create-check-wait-ns"}, {h.createCheckRun, "create-check-run-ns"},
			{h.createNextWait, "create-next-wft-wait-ns"}, {h.createNextRun, "create-next-wft-run-ns"},
			{h.createServer, "create-temporal-ns"}, {h.createOutside, "create-outside-ns"},
		} {
			b.ReportMetric(float64(m.s.mean().Nanoseconds()), m.unit)
		}
		b.Logf("create, mean of %d: started→first workflow task started %v, that task %v; eligibility activity waited %v, ran %v; "+
			"its completion→next workflow task started %v, that task %v; started→create update completed %v; the HTTP call outside it %v",
			h.createServer.n, h.firstWait.mean(), h.createFirstRun.mean(), h.createCheckWait.mean(), h.createCheckRun.mean(),
			h.createNextWait.mean(), h.createNextRun.mean(), h.createServer.mean(), h.createOutside.mean())
	}
}

var flagWaitProfile = flag.String("benchsuite.waitprofile", "",
	"write block and mutex profiles of the throughput runs' measured phases to `dir`/<benchmark>.{block,mutex}[.base].prof")

// profileWaits starts, when asked (-benchsuite.waitprofile), the block and
// mutex profiles: where goroutines of the process waited during the
// measured phase. The returned function writes them and stops. The
// runtime's profiles count from the process's start, so each is written
// twice, at the start (.base.prof) and at the end: read the phase with
// go tool pprof -diff_base <name>.block.base.prof <name>.block.prof.
func profileWaits(tb testing.TB) func() {
	tb.Helper()
	if *flagWaitProfile == "" {
		return func() {}
	}
	write := func(kind, suffix string) {
		f, err := os.Create(filepath.Join(*flagWaitProfile, strings.ReplaceAll(tb.Name(), "/", "_")+"."+kind+suffix))
		if err == nil {
			err = pprof.Lookup(kind).WriteTo(f, 0)
			f.Close()
		}
		if err != nil {
			tb.Errorf("%s profile: %v", kind, err)
		}
	}
	write("block", ".base.prof")
	write("mutex", ".base.prof")
	// A blocking event is sampled about once per 100 µs spent blocked, a
	// mutex contention once in 10.
	runtime.SetBlockProfileRate(100_000)
	runtime.SetMutexProfileFraction(10)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			write("block", ".prof")
			write("mutex", ".prof")
			runtime.SetBlockProfileRate(0)
			runtime.SetMutexProfileFraction(0)
		})
	}
	tb.Cleanup(stop)
	return stop
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
