package benchsuite

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/server/common/dynamicconfig"
	servertemporal "go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/mfaflow/mfaflow/workflows"
)

// The review queue against the size of the visibility store (issue 15,
// item 4): GET /v1/review/appeals asks Temporal for
// WorkflowType = 'UnbindAppeal' (and, with ?status=, the status search
// attribute), whatever the executions' state, so closed appeals stay in
// the rows that query reads: on the test server's SQLite visibility store,
// one table, executions_visibility, for open and closed executions, with
// an index per filter column ordered as the list is (open ones first, then
// by close and start time).
//
// The closed appeals are executions of type UnbindAppeal with the search
// attributes a closed appeal keeps (status unbound, rejected, cancelled or
// expired in turn, applicant type, submitted at), each started and at once
// terminated, with no worker: the same rows in the same table and indexes
// as appeals that ran their course (closed, with a close time), without
// the course. Terminating is the fastest way found on this machine
// (about 110 a second under other load; a worker that completes them at
// once managed 15–90 a second, its workflow tasks waiting in matching).

// flagClosedAppeals is the 100,000. Seeding them is most of the
// benchmark's time: 80 to 400 a second on this 2-core machine, depending
// on its other load (seeded/s in the output).
var flagClosedAppeals = flag.Int("benchsuite.closed-appeals", 100_000,
	"closed appeals in the visibility store for BenchmarkReviewQueue's large runs")

// forcedRefresh is the test server's dynamic configuration:
// ForceSearchAttributesCacheRefreshOnRead while on is set, and every other
// setting at the server's default. The test server sets it (so that search
// attributes added a moment ago are known to every service at once), and
// it makes every read of a search attribute's type, once per row listed, a
// rate-limited read of the cluster's metadata. Production leaves it off.
type forcedRefresh struct{ on atomic.Bool }

func (f *forcedRefresh) GetValue(key dynamicconfig.Key) []dynamicconfig.ConstrainedValue {
	if key == dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key() {
		return []dynamicconfig.ConstrainedValue{{Value: f.on.Load()}}
	}
	return nil
}

// closedAppealQueue is the task queue the closed appeals are started on;
// no worker polls it.
const closedAppealQueue = "benchsuite-closed-appeals"

// queueRuns is how many times each page is fetched, after queueWarmups,
// at most queueRate times a second: Temporal's default limit on a
// namespace's visibility calls is 10 a second (frontend.namespaceRPS.visibility),
// and a call over it waits out the SDK's retry back-off (about 0.5 s).
const (
	queueRuns, queueWarmups = 100, 5
	queueRate               = 8
)

// BenchmarkReviewQueue times the review queue's first page (default
// filter, and ?status=pending_review) with six open appeals (three
// collecting documents, three pending review) and no closed one, with
// 1,000 closed ones (the default page of 200 is then full, as it is with
// more), and with -benchsuite.closed-appeals closed ones. Each point is
// 100 sequential requests, 8 a second, after 5 warm-ups: ns/op and p50-ns are the
// median, p99-ns the 99th percentile (the second slowest); items is the
// page's length. It also reports how fast the closed appeals were seeded
// (seeded/s).
func BenchmarkReviewQueue(b *testing.B) {
	forced := &forcedRefresh{}
	forced.on.Store(true)
	s := newStack(b, temporaltest.WithBaseServerOptions(servertemporal.WithDynamicConfigClient(forced)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for i := range 6 {
		id, token, err := s.fileAppeal(ctx, s.seedAppellant(i), i)
		if err != nil {
			b.Fatal(err)
		}
		if i%2 == 1 {
			continue
		}
		if err := s.upload(ctx, id, token, &jpegReader{size: 16 << 10}, 16<<10); err != nil {
			b.Fatal(err)
		}
		if err := s.submit(ctx, id, token); err != nil {
			b.Fatal(err)
		}
	}
	// From here on, production's setting: every service reads its search
	// attributes from a cache it refreshes once a minute.
	forced.on.Store(false)

	pages := []struct{ name, query string }{
		{"FirstPage", ""},
		{"Pending", "?status=" + workflows.AppealPending},
	}
	type point struct {
		name    string
		closed  int
		results []queueTiming
		rate    float64
	}
	var points []point
	closed := 0
	for _, n := range []int{0, 1000, *flagClosedAppeals} {
		var rate float64
		if n > closed {
			t0 := time.Now()
			seedClosedAppeals(ctx, b, s.tc, closed, n)
			took := time.Since(t0)
			rate = float64(n-closed) / took.Seconds()
			b.Logf("seeded %d closed appeals in %v (%.0f/s)", n-closed, took.Round(time.Millisecond), rate)
			closed = n
		}
		p := point{name: "Closed" + countName(n), closed: n, rate: rate}
		for _, pg := range pages {
			stop := profileMeasured(b, pg.name, p.name)
			p.results = append(p.results, timeQueue(ctx, b, s, pg.query))
			stop()
		}
		points = append(points, p)
	}
	for i, pg := range pages {
		for _, p := range points {
			r := p.results[i]
			b.Run(pg.name+"/"+p.name, func(b *testing.B) {
				b.ReportMetric(float64(percentile(r.lat, 50).Nanoseconds()), "ns/op")
				b.ReportMetric(float64(percentile(r.lat, 50).Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(percentile(r.lat, 99).Nanoseconds()), "p99-ns")
				b.ReportMetric(float64(r.items), "items")
				b.ReportMetric(float64(p.closed), "closed")
				if p.rate > 0 {
					b.ReportMetric(p.rate, "seeded/s")
				}
				b.Logf("%d closed appeals: median %v, p99 %v, slowest %v, %d items", p.closed, percentile(r.lat, 50), percentile(r.lat, 99), r.lat[len(r.lat)-3:], r.items)
			})
		}
	}
}

// queueTiming is one page's sorted latencies and its length.
type queueTiming struct {
	lat   []time.Duration
	items int
}

// timeQueue fetches the review queue's first page with query
// queueWarmups+queueRuns times, one after another at queueRate a second,
// as the stack's reviewer.
func timeQueue(ctx context.Context, b *testing.B, s *stack, query string) queueTiming {
	b.Helper()
	var out queueTiming
	tick := time.NewTicker(time.Second / queueRate)
	defer tick.Stop()
	for i := range queueWarmups + queueRuns {
		<-tick.C
		t0 := time.Now()
		resp, err := s.callJSON(ctx, http.MethodGet, "/v1/review/appeals"+query, s.reviewer, nil)
		d := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		items, _ := resp["appeals"].([]any)
		if i >= queueWarmups {
			out.lat = append(out.lat, d)
			out.items = len(items)
		}
	}
	slices.Sort(out.lat)
	return out
}

// seedClosedAppeals starts and terminates closed appeals from..to-1 (64 at
// once) and waits until the visibility store counts to-from more closed
// ones.
func seedClosedAppeals(ctx context.Context, b *testing.B, tc sdkclient.Client, from, to int) {
	b.Helper()
	const query = "WorkflowType = 'UnbindAppeal' AND ExecutionStatus = 'Terminated'"
	count := func() int64 {
		resp, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		if err != nil {
			b.Fatalf("count closed appeals: %v", err)
		}
		return resp.GetCount()
	}
	before := count()
	t0 := time.Now()
	statuses := []string{workflows.AppealUnbound, workflows.AppealRejected, workflows.AppealCancelled, workflows.AppealExpired}
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		firstE  error
	)
	next.Store(int64(from))
	submitted := time.Unix(1_700_000_000, 0).UTC()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= to {
					return
				}
				sa := temporal.NewSearchAttributes(
					temporal.NewSearchAttributeKeyKeyword(workflows.SearchAppealStatus).ValueSet(statuses[i%len(statuses)]),
					temporal.NewSearchAttributeKeyKeyword(workflows.SearchApplicantType).ValueSet(workflows.ApplicantPersonal),
					temporal.NewSearchAttributeKeyTime(workflows.SearchSubmittedAt).ValueSet(submitted.Add(time.Duration(i)*time.Second)),
				)
				id := fmt.Sprintf("closed-appeal-%07d", i)
				run, err := tc.ExecuteWorkflow(ctx, sdkclient.StartWorkflowOptions{
					ID: id, TaskQueue: closedAppealQueue, TypedSearchAttributes: sa,
				}, "UnbindAppeal")
				if err == nil {
					err = tc.TerminateWorkflow(ctx, id, run.GetRunID(), "benchsuite: closed appeal")
				}
				if err != nil {
					errOnce.Do(func() { firstE = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstE != nil {
		b.Fatalf("start closed appeal: %v", firstE)
	}
	b.Logf("started %d closed appeals in %v", to-from, time.Since(t0).Round(time.Millisecond))
	want := before + int64(to-from)
	deadline := time.Now().Add(20 * time.Minute)
	for {
		n := count()
		if n >= want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d closed appeals visible after 20 minutes", n-before, to-from)
		}
		select {
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
