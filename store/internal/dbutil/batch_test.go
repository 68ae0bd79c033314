package dbutil

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

// The Batcher's Run here is a function of the test: this is a unit test of
// the grouping, not of a store (storetest runs both stores' batches).

func TestBatcherGroupsConcurrentCalls(t *testing.T) {
	gate := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	b := &Batcher[int, int]{
		Workers: 1,
		Run: func(ctx context.Context, reqs []int) ([]int, error) {
			<-gate
			mu.Lock()
			sizes = append(sizes, len(reqs))
			mu.Unlock()
			out := make([]int, len(reqs))
			for i, r := range reqs {
				out[i] = r * 10
			}
			return out, nil
		},
	}
	defer b.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			got, err := b.Do(context.Background(), i)
			if err != nil || got != i*10 {
				errs <- fmt.Errorf("Do(%d) = %d, %v; want %d", i, got, err, i*10)
			}
		})
		if i == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The first call runs alone and blocks on the gate; the other 19
	// queue behind it and must run together.
	time.Sleep(100 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 19 {
		t.Errorf("batch sizes = %v, want [1 19]", sizes)
	}
}

func TestBatcherKeepsKeysApart(t *testing.T) {
	gate := make(chan struct{})
	var mu sync.Mutex
	var batches [][]string
	b := &Batcher[string, string]{
		Workers: 1,
		Key:     func(s string) string { return s[:1] },
		Run: func(ctx context.Context, reqs []string) ([]string, error) {
			<-gate
			mu.Lock()
			batches = append(batches, append([]string(nil), reqs...))
			mu.Unlock()
			return reqs, nil
		},
	}
	defer b.Close()
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = b.Do(context.Background(), "z0") })
	time.Sleep(50 * time.Millisecond)
	for _, r := range []string{"a1", "a2", "b1", "a3", "b2"} {
		wg.Go(func() {
			if got, err := b.Do(context.Background(), r); err != nil || got != r {
				t.Errorf("Do(%q) = %q, %v", r, got, err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	close(gate)
	wg.Wait()
	for _, batch := range batches {
		seen := map[byte]bool{}
		for _, r := range batch {
			if seen[r[0]] {
				t.Errorf("batch %v holds key %q twice", batch, r[:1])
			}
			seen[r[0]] = true
		}
	}
	if n := len(batches); n != 4 {
		t.Errorf("%d batches %v, want 4 (z0; then three for the three a's)", n, batches)
	}
}

func TestBatcherIsolatesAFailingCall(t *testing.T) {
	gate := make(chan struct{})
	bad := errors.New("bad request")
	b := &Batcher[int, int]{
		Workers: 1,
		Run: func(ctx context.Context, reqs []int) ([]int, error) {
			<-gate
			for _, r := range reqs {
				if r == 7 {
					return nil, bad
				}
			}
			return reqs, nil
		},
	}
	defer b.Close()
	var wg sync.WaitGroup
	results := make([]error, 10)
	for i := range 10 {
		wg.Go(func() {
			got, err := b.Do(context.Background(), i)
			if err == nil && got != i {
				err = fmt.Errorf("got %d", got)
			}
			results[i] = err
		})
		if i == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(gate)
	wg.Wait()
	for i, err := range results {
		if i == 7 && !errors.Is(err, bad) {
			t.Errorf("call 7: %v, want its own error", err)
		}
		if i != 7 && err != nil {
			t.Errorf("call %d failed beside the bad one: %v", i, err)
		}
	}
}

func TestBatcherUnavailableFailsTheBatch(t *testing.T) {
	gate := make(chan struct{})
	var mu sync.Mutex
	runs := 0
	b := &Batcher[int, int]{
		Workers: 1,
		Run: func(ctx context.Context, reqs []int) ([]int, error) {
			<-gate
			mu.Lock()
			runs++
			mu.Unlock()
			return nil, fmt.Errorf("%w: down", store.ErrUnavailable)
		},
	}
	defer b.Close()
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			if _, err := b.Do(context.Background(), i); !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Do(%d) error = %v, want unavailable", i, err)
			}
		})
		if i == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(gate)
	wg.Wait()
	if runs != 2 {
		t.Errorf("%d runs, want 2 (no call-by-call retry when the database is down)", runs)
	}
}

func TestBatcherCallerContextAndClose(t *testing.T) {
	release := make(chan struct{})
	b := &Batcher[int, int]{
		Workers: 1,
		Run: func(ctx context.Context, reqs []int) ([]int, error) {
			<-release
			return reqs, nil
		},
	}
	go func() { _, _ = b.Do(context.Background(), 1) }()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Do(ctx, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do with an expiring context = %v, want its deadline", err)
	}
	close(release)
	b.Close()
	if _, err := b.Do(context.Background(), 3); !errors.Is(err, ErrBatcherClosed) || !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Do after Close = %v, want ErrBatcherClosed, which is unavailable", err)
	}
}
