package sqlitestore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/sqlitestore"
	"github.com/mfaflow/mfaflow/store/storetest"
)

func TestContract(t *testing.T) {
	start := time.Now()
	storetest.Run(t, func(t *testing.T) store.Store {
		return storetest.SQLite(t)
	})
	t.Cleanup(func() { t.Logf("contract suite on SQLite: %v", time.Since(start)) })
}

// TestTwoHandlesOneFile stands in for two processes on one file: both
// migrate at once, then write concurrently, and nothing is lost.
func TestTwoHandlesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	ctx := context.Background()
	dbs := make([]*sqlitestore.DB, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := range dbs {
		db, err := sqlitestore.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
		wg.Go(func() { errs <- db.Migrate(ctx) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	const each = 100
	failures := make(chan error, 2*each)
	for i, db := range dbs {
		wg.Go(func() {
			for j := range each {
				if _, _, err := db.SpendAttempt(ctx, "acc", time.Now(), func(int, time.Time) (time.Time, bool) {
					return time.Time{}, false
				}); err != nil {
					failures <- fmt.Errorf("handle %d attempt %d: %w", i, j, err)
				}
			}
		})
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	st, _, err := dbs[0].SpendAttempt(ctx, "acc", time.Now(), func(int, time.Time) (time.Time, bool) { return time.Time{}, false })
	if err != nil || st.Failures != 2*each+1 {
		t.Fatalf("failures = %d, %v; want %d", st.Failures, err, 2*each+1)
	}
}

func TestUnopenableFileIsUnavailable(t *testing.T) {
	_, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "missing-dir", "x.db"))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open error = %v, want ErrUnavailable", err)
	}
}

func TestRefusesNonFilePaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=memory"} {
		if _, err := sqlitestore.Open(context.Background(), p); err == nil {
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}
