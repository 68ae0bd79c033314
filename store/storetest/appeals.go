package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

func appeal(id, account, token string) store.Appeal {
	return store.Appeal{ID: id, AccountID: account, ApplicantType: "personal", TokenHash: store.TokenHash(token),
		Status: "collecting_documents"}
}

func testAppeals(t *testing.T, s store.Store) {
	c := ctx(t)
	in := appeal("ap-1", "acc-1", "token-1")
	in.ClosedAt, in.CreatedAt = time.Now(), time.Unix(1, 0) // ignored: a new appeal is open and created now
	before := time.Now()
	a, err := s.CreateAppeal(c, in)
	must(t, err)
	checkTime(t, "CreatedAt", a.CreatedAt, before, time.Now())
	want := appeal("ap-1", "acc-1", "token-1")
	want.CreatedAt, want.UpdatedAt = a.CreatedAt, a.CreatedAt
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("CreateAppeal =\n%+v\nwant\n%+v", a, want)
	}

	t.Run("get and find", func(t *testing.T) {
		got, err := s.GetAppeal(c, "ap-1")
		must(t, err)
		if !reflect.DeepEqual(got, a) {
			t.Errorf("GetAppeal =\n%+v\nwant\n%+v", got, a)
		}
		got, err = s.FindAppealByToken(c, store.TokenHash("token-1"))
		must(t, err)
		if !reflect.DeepEqual(got, a) {
			t.Errorf("FindAppealByToken =\n%+v\nwant\n%+v", got, a)
		}
	})
	t.Run("not found", func(t *testing.T) {
		for _, id := range []string{"ap-x", "AP-1", ""} {
			_, err := s.GetAppeal(c, id)
			wantErr(t, err, store.ErrNotFound)
		}
		for _, h := range []string{"token-1", store.TokenHash("token-2"), strings.ToUpper(a.TokenHash), ""} {
			_, err := s.FindAppealByToken(c, h)
			wantErr(t, err, store.ErrNotFound)
		}
	})
	t.Run("refused", func(t *testing.T) {
		conflicts := []struct {
			name string
			a    store.Appeal
		}{
			{"second open appeal of the account", appeal("ap-2", "acc-1", "token-2")},
			{"id exists", appeal("ap-1", "acc-9", "token-9")},
			{"token hash exists", appeal("ap-3", "acc-3", "token-1")},
		}
		for _, tt := range conflicts {
			_, err := s.CreateAppeal(c, tt.a)
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("%s: error = %v, want ErrConflict", tt.name, err)
			}
		}
		invalid := []struct {
			name   string
			change func(*store.Appeal)
		}{
			{"no id", func(a *store.Appeal) { a.ID = "" }},
			{"no account", func(a *store.Appeal) { a.AccountID = "" }},
			{"no applicant type", func(a *store.Appeal) { a.ApplicantType = "" }},
			{"no status", func(a *store.Appeal) { a.Status = "" }},
			{"no token hash", func(a *store.Appeal) { a.TokenHash = "" }},
			{"the token itself", func(a *store.Appeal) { a.TokenHash = "token-4" }},
			{"upper-case hash", func(a *store.Appeal) { a.TokenHash = strings.ToUpper(a.TokenHash) }},
			{"short hash", func(a *store.Appeal) { a.TokenHash = a.TokenHash[:63] }},
		}
		for _, tt := range invalid {
			in := appeal("ap-4", "acc-4", "token-4")
			tt.change(&in)
			if _, err := s.CreateAppeal(c, in); err == nil || errors.Is(err, store.ErrConflict) {
				t.Errorf("%s: error = %v, want a validation error", tt.name, err)
			}
		}
		list, err := s.ListAppeals(c, "", "", 0)
		must(t, err)
		if len(list) != 1 || !reflect.DeepEqual(list[0], a) {
			t.Errorf("refused appeals were stored: %+v", list)
		}
	})
	t.Run("other accounts", func(t *testing.T) {
		_, err := s.CreateAppeal(c, appeal("ap-5", "acc-5", "token-5"))
		must(t, err)
	})
	t.Run("new appeal once closed", func(t *testing.T) {
		at := time.Date(2026, 5, 10, 9, 0, 0, 0, time.UTC)
		must(t, s.SetAppealStatus(c, "ap-1", "rejected", true, at))
		next, err := s.CreateAppeal(c, appeal("ap-6", "acc-1", "token-6"))
		must(t, err)
		if !next.ClosedAt.IsZero() {
			t.Errorf("new appeal ClosedAt = %v", next.ClosedAt)
		}
		_, err = s.CreateAppeal(c, appeal("ap-7", "acc-1", "token-7"))
		wantErr(t, err, store.ErrConflict)
		// A closed appeal's id and token hash stay taken.
		_, err = s.CreateAppeal(c, appeal("ap-1", "acc-8", "token-8"))
		wantErr(t, err, store.ErrConflict)
		_, err = s.CreateAppeal(c, appeal("ap-8", "acc-8", "token-1"))
		wantErr(t, err, store.ErrConflict)
		old, err := s.FindAppealByToken(c, store.TokenHash("token-1"))
		must(t, err)
		if old.ID != "ap-1" || old.Status != "rejected" || !old.ClosedAt.Equal(at) {
			t.Errorf("closed appeal = %+v", old)
		}
	})
}

func testAppealStatus(t *testing.T, s store.Store) {
	c := ctx(t)
	a, err := s.CreateAppeal(c, appeal("ap-1", "acc-1", "token-1"))
	must(t, err)
	get := func() store.Appeal {
		t.Helper()
		got, err := s.GetAppeal(c, a.ID)
		must(t, err)
		return got
	}
	t0 := time.Date(2026, 5, 10, 9, 0, 0, 0, time.UTC)
	cst := time.FixedZone("CST", 8*3600)

	steps := []struct {
		name       string
		status     string
		closed     bool
		at         time.Time
		wantStatus string
		wantAt     time.Time // UpdatedAt
		wantClosed time.Time
	}{
		{"open update", "pending_review", false, t0.Add(time.Minute).Add(789 * time.Nanosecond).In(cst),
			"pending_review", t0.Add(time.Minute), time.Time{}},
		{"another", "in_review", false, t0.Add(2 * time.Minute), "in_review", t0.Add(2 * time.Minute), time.Time{}},
		{"close", "cancelled", true, t0.Add(3 * time.Minute), "cancelled", t0.Add(3 * time.Minute), t0.Add(3 * time.Minute)},
		{"close again", "cancelled", true, t0.Add(4 * time.Minute), "cancelled", t0.Add(4 * time.Minute), t0.Add(3 * time.Minute)},
		{"late open update", "in_review", false, t0.Add(5 * time.Minute), "cancelled", t0.Add(4 * time.Minute), t0.Add(3 * time.Minute)},
		{"late open update, same status", "cancelled", false, t0.Add(6 * time.Minute), "cancelled", t0.Add(4 * time.Minute), t0.Add(3 * time.Minute)},
		{"closing update of a closed appeal", "expired", true, t0.Add(7 * time.Minute), "expired", t0.Add(7 * time.Minute), t0.Add(3 * time.Minute)},
	}
	for _, st := range steps {
		must(t, s.SetAppealStatus(c, a.ID, st.status, st.closed, st.at))
		got := get()
		want := a
		want.Status, want.UpdatedAt, want.ClosedAt = st.wantStatus, st.wantAt, st.wantClosed
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after %s: appeal =\n%+v\nwant\n%+v", st.name, got, want)
		}
	}

	t.Run("zero time is now", func(t *testing.T) {
		b, err := s.CreateAppeal(c, appeal("ap-2", "acc-2", "token-2"))
		must(t, err)
		before := time.Now()
		must(t, s.SetAppealStatus(c, b.ID, "unbound", true, time.Time{}))
		got, err := s.GetAppeal(c, b.ID)
		must(t, err)
		checkTime(t, "UpdatedAt", got.UpdatedAt, before, time.Now())
		if !got.ClosedAt.Equal(got.UpdatedAt) || got.Status != "unbound" {
			t.Errorf("appeal = %+v", got)
		}
	})
	t.Run("refused", func(t *testing.T) {
		wantErr(t, s.SetAppealStatus(c, "ap-x", "in_review", false, t0), store.ErrNotFound)
		wantErr(t, s.SetAppealStatus(c, "ap-x", "rejected", true, t0), store.ErrNotFound)
		if err := s.SetAppealStatus(c, a.ID, "", true, t0); err == nil {
			t.Error("SetAppealStatus with an empty status succeeded")
		}
		if got := get(); got.Status != "expired" {
			t.Errorf("status after refusals = %q", got.Status)
		}
	})
}

func testAppealCreateRace(t *testing.T, s store.Store) {
	c := ctx(t)
	race := func(round int) store.Appeal {
		t.Helper()
		const n = 30
		var wins atomic.Int32
		var wg sync.WaitGroup
		won := make(chan store.Appeal, n)
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				id := fmt.Sprintf("ap-%d-%d", round, i)
				a, err := s.CreateAppeal(c, appeal(id, "acc-race", id))
				switch {
				case err == nil:
					wins.Add(1)
					won <- a
				case !errors.Is(err, store.ErrConflict):
					errs <- fmt.Errorf("CreateAppeal: %w", err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d of 30 concurrent appeals for one account created, want exactly 1", round, n)
		}
		return <-won
	}
	first := race(1)
	must(t, s.SetAppealStatus(c, first.ID, "rejected", true, time.Now()))
	second := race(2)
	list, err := s.ListAppeals(c, "", "acc-race", 0)
	must(t, err)
	if len(list) != 2 || list[0].ID != second.ID || list[1].ID != first.ID {
		t.Errorf("ListAppeals(acc-race) = %+v, want %s then %s", list, second.ID, first.ID)
	}
}

func testListAppeals(t *testing.T, s store.Store) {
	c := ctx(t)
	create := func(id, account string) {
		t.Helper()
		_, err := s.CreateAppeal(c, appeal(id, account, id))
		must(t, err)
	}
	at := time.Date(2026, 5, 10, 9, 0, 0, 0, time.UTC)
	create("ap-1", "acc-1")
	must(t, s.SetAppealStatus(c, "ap-1", "rejected", true, at))
	create("ap-2", "acc-2")
	must(t, s.SetAppealStatus(c, "ap-2", "pending_review", false, at))
	create("ap-3", "acc-1")
	must(t, s.SetAppealStatus(c, "ap-3", "pending_review", false, at))
	create("ap-4", "acc-3")
	create("ap-5", "acc-4")
	must(t, s.SetAppealStatus(c, "ap-5", "pending_review", false, at))

	tests := []struct {
		status, account string
		limit           int
		want            []string
	}{
		{"", "", 0, []string{"ap-5", "ap-4", "ap-3", "ap-2", "ap-1"}},
		{"", "", -1, []string{"ap-5", "ap-4", "ap-3", "ap-2", "ap-1"}},
		{"", "", 2000, []string{"ap-5", "ap-4", "ap-3", "ap-2", "ap-1"}},
		{"", "", 2, []string{"ap-5", "ap-4"}},
		{"pending_review", "", 0, []string{"ap-5", "ap-3", "ap-2"}},
		{"pending_review", "", 1, []string{"ap-5"}},
		{"", "acc-1", 0, []string{"ap-3", "ap-1"}},
		{"pending_review", "acc-1", 0, []string{"ap-3"}},
		{"rejected", "", 0, []string{"ap-1"}},
		{"collecting_documents", "", 0, []string{"ap-4"}},
		{"rejected", "acc-2", 0, []string{}},
		{"", "acc-none", 0, []string{}},
		{"in_review", "", 0, []string{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%d", tt.status, tt.account, tt.limit), func(t *testing.T) {
			got, err := s.ListAppeals(c, tt.status, tt.account, tt.limit)
			must(t, err)
			ids := []string{}
			for _, a := range got {
				ids = append(ids, a.ID)
			}
			if got == nil || !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("ListAppeals = %v, want %v", ids, tt.want)
			}
		})
	}
	t.Run("rows as stored", func(t *testing.T) {
		list, err := s.ListAppeals(c, "", "", 0)
		must(t, err)
		for i, a := range list {
			got, err := s.GetAppeal(c, a.ID)
			must(t, err)
			if !reflect.DeepEqual(got, a) {
				t.Errorf("listed %+v, GetAppeal %+v", a, got)
			}
			if i > 0 && a.CreatedAt.After(list[i-1].CreatedAt) {
				t.Errorf("%s created after %s, listed after it", a.ID, list[i-1].ID)
			}
		}
	})
}

// hit is one RateLimiter.Hit and what it must answer.
type hit struct {
	name        string
	key         string
	window      time.Duration
	limit       int
	at          time.Time
	wantAllowed bool
	wantRetry   time.Duration
}

func checkHits(t *testing.T, s store.Store, hits []hit) {
	t.Helper()
	for _, h := range hits {
		allowed, retry, err := s.Hit(ctx(t), h.key, h.window, h.limit, h.at)
		must(t, err)
		if allowed != h.wantAllowed || retry != h.wantRetry {
			t.Errorf("%s: Hit = %v, %v; want %v, %v", h.name, allowed, retry, h.wantAllowed, h.wantRetry)
		}
	}
}

func testRateLimit(t *testing.T, s store.Store) {
	c := ctx(t)
	// 10:00:30.5 in a one-minute window [10:00, 10:01).
	t0 := time.Date(2026, 5, 1, 10, 0, 30, 500_000_000, time.UTC)
	end := time.Date(2026, 5, 1, 10, 1, 0, 0, time.UTC)
	const k, m = "appeal-create:ip:192.0.2.1", time.Minute
	cst := time.FixedZone("CST", 8*3600)

	checkHits(t, s, []hit{
		{"first", k, m, 3, t0, true, 0},
		{"second", k, m, 3, t0.Add(time.Second), true, 0},
		{"third, in another zone", k, m, 3, t0.Add(2 * time.Second).In(cst), true, 0},
		{"over the limit", k, m, 3, t0, false, 29500 * time.Millisecond},
		{"later in the window", k, m, 3, t0.Add(10 * time.Second), false, 19500 * time.Millisecond},
		{"last microsecond", k, m, 3, end.Add(-time.Microsecond), false, time.Microsecond},
		{"last nanosecond", k, m, 3, end.Add(-time.Nanosecond), false, time.Nanosecond},
		{"other key", k + "0", m, 3, t0, true, 0},
		{"other window length", k, time.Hour, 3, t0, true, 0},
		{"new window", k, m, 3, end, true, 0},
		{"new window, second", k, m, 3, end.Add(59 * time.Second), true, 0},
		{"new window, third", k, m, 3, end.Add(time.Second), true, 0},
		{"new window, over", k, m, 3, end.Add(30 * time.Second), false, 30 * time.Second},
		{"limit zero", "zero", m, 0, t0, false, 29500 * time.Millisecond},
		{"hour window aligned on the epoch", "hour", time.Hour, 0, t0, false, 59*time.Minute + 29500*time.Millisecond},
		{"odd window aligned on the epoch", "odd", 7 * time.Minute, 0, t0,
			false, time.UnixMicro(t0.UnixMicro() - t0.UnixMicro()%(7*60e6) + 7*60e6).Sub(t0)},
	})

	t.Run("invalid", func(t *testing.T) {
		for _, tt := range []struct {
			window time.Duration
			limit  int
		}{{0, 1}, {-time.Minute, 1}, {999 * time.Nanosecond, 1}, {time.Minute, -1}} {
			if _, _, err := s.Hit(c, "bad", tt.window, tt.limit, t0); err == nil {
				t.Errorf("Hit(window %v, limit %d) succeeded", tt.window, tt.limit)
			}
		}
	})
	t.Run("pruning keeps current windows", func(t *testing.T) {
		later := t0.Add(24 * time.Hour)
		lag := later.Add(-90 * time.Second) // a replica whose clock lags, in the window before
		checkHits(t, s, []hit{
			{"now", "live", m, 1, later, true, 0},
			{"lagging", "lagging", m, 1, lag, true, 0},
		})
		// Enough hits for every implementation to prune at least once.
		for i := range 600 {
			_, _, err := s.Hit(c, fmt.Sprintf("filler-%d", i%7), m, 1000, later)
			must(t, err)
		}
		checkHits(t, s, []hit{
			{"now, after pruning", "live", m, 1, later, false, 29500 * time.Millisecond},
			{"lagging, after pruning", "lagging", m, 1, lag, false, 59500 * time.Millisecond},
		})
	})
}

func testRateLimitRace(t *testing.T, s store.Store) {
	c := ctx(t)
	now := time.Date(2026, 5, 1, 10, 0, 15, 0, time.UTC)
	const n, limit = 50, 20
	var allowed atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			ok, retry, err := s.Hit(c, "appeal-create:account:acc-race", time.Minute, limit, now)
			switch {
			case err != nil:
				errs <- err
			case ok && retry != 0:
				errs <- fmt.Errorf("allowed hit with retryAfter %v", retry)
			case !ok && retry != 45*time.Second:
				errs <- fmt.Errorf("refused hit with retryAfter %v, want 45s", retry)
			case ok:
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := allowed.Load(); got != limit {
		t.Fatalf("%d of %d concurrent hits allowed, want exactly %d", got, n, limit)
	}
	checkHits(t, s, []hit{
		{"still over", "appeal-create:account:acc-race", time.Minute, limit, now.Add(44 * time.Second), false, time.Second},
		{"next window", "appeal-create:account:acc-race", time.Minute, limit, now.Add(45 * time.Second), true, 0},
	})
}
