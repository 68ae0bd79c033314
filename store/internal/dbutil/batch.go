package dbutil

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

// ErrBatcherClosed is the error of a call made after Batcher.Close (or
// still queued then). It matches store.ErrUnavailable: a request caught by
// a shutdown is answered 503, never as a refusal of its code.
var ErrBatcherClosed = fmt.Errorf("%w: closed", store.ErrUnavailable)

// Batcher groups concurrent calls into batches (group commit): a call
// waits while a batch is running, and the calls that gathered meanwhile
// run together as the next batch, so N concurrent requests cost one round
// trip and one statement instead of N. Nothing waits on purpose: a lone
// call runs at once, as a batch of one.
//
// Calls with the same Key never share a batch (a statement may not change
// one row twice); the later one runs in a following batch. Run answers
// every request of its batch, in order; when it fails as a whole, each
// request is run again on its own so that one bad request cannot fail the
// others, and only the requests that fail alone get an error.
type Batcher[Req, Res any] struct {
	// Run executes one batch and returns one result per request, or an
	// error for the whole batch. It must be safe to run again after an
	// error (one statement, atomic).
	Run func(ctx context.Context, reqs []Req) ([]Res, error)
	// Key names the row a request writes; empty: no restriction.
	Key func(Req) string
	// Max is the largest batch; 0: 64.
	Max int
	// Workers is how many batches may run at once; 0: 2.
	Workers int
	// Timeout bounds one run of a batch; 0: 30s.
	Timeout time.Duration

	once   sync.Once
	calls  chan *batchCall[Req, Res]
	done   chan struct{}
	mu     sync.RWMutex // held for reading while a call is queued; Close takes it
	closed bool
	wg     sync.WaitGroup
}

type batchCall[Req, Res any] struct {
	ctx  context.Context
	req  Req
	res  Res
	err  error
	done chan struct{}
}

func (b *Batcher[Req, Res]) start() {
	b.once.Do(func() {
		if b.Max <= 0 {
			b.Max = 64
		}
		if b.Workers <= 0 {
			b.Workers = 2
		}
		if b.Timeout <= 0 {
			b.Timeout = 30 * time.Second
		}
		b.calls = make(chan *batchCall[Req, Res], 4*b.Max)
		b.done = make(chan struct{})
		for range b.Workers {
			b.wg.Go(b.work)
		}
	})
}

// Do runs req in the next batch and returns its result. When ctx ends
// first Do returns ctx's error; the request may still run (a caller must
// treat that like a lost answer: the write may or may not have happened).
func (b *Batcher[Req, Res]) Do(ctx context.Context, req Req) (Res, error) {
	b.start()
	c := &batchCall[Req, Res]{ctx: ctx, req: req, done: make(chan struct{})}
	var zero Res
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return zero, ErrBatcherClosed
	}
	select {
	case b.calls <- c:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return zero, ctx.Err()
	}
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Close stops the workers once the batches running now are done; later
// calls fail with ErrBatcherClosed.
func (b *Batcher[Req, Res]) Close() {
	b.start()
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.done)
	}
	b.mu.Unlock()
	b.wg.Wait()
	// Calls queued but never taken are answered.
	for {
		select {
		case c := <-b.calls:
			c.err = ErrBatcherClosed
			close(c.done)
		default:
			return
		}
	}
}

// work is one worker: it takes a first call (waiting for it), adds the
// calls queued meanwhile up to Max, and runs them. A call whose key is
// already in the batch is held for the worker's next batch.
func (b *Batcher[Req, Res]) work() {
	var held []*batchCall[Req, Res]
	keys := map[string]bool{}
	for {
		batch := make([]*batchCall[Req, Res], 0, b.Max)
		clear(keys)
		add := func(c *batchCall[Req, Res]) bool {
			if b.Key != nil {
				k := b.Key(c.req)
				if k != "" && keys[k] {
					return false
				}
				keys[k] = true
			}
			batch = append(batch, c)
			return true
		}
		// Held calls first, in arrival order.
		rest := held[:0]
		for _, c := range held {
			if len(batch) == b.Max || !add(c) {
				rest = append(rest, c)
			}
		}
		held = rest
		if len(batch) == 0 {
			select {
			case c := <-b.calls:
				add(c)
			case <-b.done:
				for _, c := range held {
					c.err = ErrBatcherClosed
					close(c.done)
				}
				return
			}
		}
	gather:
		for len(batch) < b.Max {
			select {
			case c := <-b.calls:
				if !add(c) {
					held = append(held, c)
				}
			default:
				break gather
			}
		}
		b.run(batch)
	}
}

// run runs one batch and answers its calls; a failed batch of several is
// retried one call at a time.
func (b *Batcher[Req, Res]) run(batch []*batchCall[Req, Res]) {
	live := batch[:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			close(c.done)
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	reqs := make([]Req, len(live))
	for i, c := range live {
		reqs[i] = c.req
	}
	res, err := b.runOnce(live[0].ctx, reqs)
	if err == nil && len(res) != len(live) {
		err = errors.New("store: batch answered the wrong number of requests")
	}
	// A batch that failed for a reason other than the database being
	// unreachable is run again call by call, so only the culprit fails.
	if err != nil && len(live) > 1 && !errors.Is(err, store.ErrUnavailable) {
		for _, c := range live {
			r, err := b.runOnce(c.ctx, []Req{c.req})
			switch {
			case err != nil:
				c.err = err
			case len(r) != 1:
				c.err = errors.New("store: batch answered the wrong number of requests")
			default:
				c.res = r[0]
			}
			close(c.done)
		}
		return
	}
	for i, c := range live {
		if err != nil {
			c.err = err
		} else {
			c.res = res[i]
		}
		close(c.done)
	}
}

// runOnce runs reqs under the batch timeout. The batch serves several
// callers, so no one caller's cancellation stops it (each stops waiting on
// its own context); values of ctx are kept.
func (b *Batcher[Req, Res]) runOnce(ctx context.Context, reqs []Req) ([]Res, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.Timeout)
	defer cancel()
	return b.Run(ctx, reqs)
}

// CheckCall is one store.CheckStore Check waiting for its batch.
type CheckCall struct {
	Req    store.CheckRequest
	LockAt int // FirstLock of the request's policy at its time
	Eval   store.CheckEval
}

// CheckResult is one Check's answer from its batch: the outcome, or the
// error of this check alone.
type CheckResult struct {
	Out store.CheckOutcome
	Err error
}

// DoCheck hands a check to the store's batcher of checks and returns its
// outcome, or the batch's or its own error (for the store to classify).
func DoCheck(ctx context.Context, b *Batcher[CheckCall, CheckResult], r store.CheckRequest, eval store.CheckEval) (store.CheckOutcome, error) {
	if r.Policy == nil {
		return store.CheckOutcome{Consumed: -1}, errors.New("no lock policy")
	}
	res, err := b.Do(ctx, CheckCall{Req: r, LockAt: FirstLock(r.Policy, r.Now), Eval: eval})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return store.CheckOutcome{Consumed: -1}, err
	}
	return res.Out, nil
}
