package storetest

import (
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

// peek is one RateLimiter.Peek and what it must answer.
type peek struct {
	name        string
	key         string
	window      time.Duration
	limit       int
	at          time.Time
	wantAllowed bool
	wantRetry   time.Duration
}

func checkPeeks(t *testing.T, s store.Store, peeks []peek) {
	t.Helper()
	for _, p := range peeks {
		allowed, retry, err := s.Peek(ctx(t), p.key, p.window, p.limit, p.at)
		must(t, err)
		if allowed != p.wantAllowed || retry != p.wantRetry {
			t.Errorf("%s: Peek = %v, %v; want %v, %v", p.name, allowed, retry, p.wantAllowed, p.wantRetry)
		}
	}
}

// testRatePeek: Peek answers what the next Hit would, and counts nothing.
func testRatePeek(t *testing.T, s store.Store) {
	// 10:00:30.5 in a one-minute window [10:00, 10:01).
	t0 := time.Date(2026, 5, 1, 10, 0, 30, 500_000_000, time.UTC)
	end := time.Date(2026, 5, 1, 10, 1, 0, 0, time.UTC)
	const k, m = "appeal-eligible:account:acc-peek", time.Minute
	cst := time.FixedZone("CST", 8*3600)

	checkPeeks(t, s, []peek{
		{"unknown key", k, m, 2, t0, true, 0},
		{"unknown key, limit zero", k, m, 0, t0, false, 29500 * time.Millisecond},
	})
	// Peeking many times spends nothing: two hits still fit a limit of 2.
	for range 5 {
		checkPeeks(t, s, []peek{{"repeated peek", k, m, 2, t0, true, 0}})
	}
	checkHits(t, s, []hit{{"first hit after peeks", k, m, 2, t0, true, 0}})
	checkPeeks(t, s, []peek{
		{"one of two counted", k, m, 2, t0, true, 0},
		{"one of one counted", k, m, 1, t0, false, 29500 * time.Millisecond},
		{"in another zone", k, m, 1, t0.Add(10 * time.Second).In(cst), false, 19500 * time.Millisecond},
	})
	checkHits(t, s, []hit{{"second hit", k, m, 2, t0, true, 0}})
	checkPeeks(t, s, []peek{
		{"full", k, m, 2, t0, false, 29500 * time.Millisecond},
		{"full, last microsecond", k, m, 2, end.Add(-time.Microsecond), false, time.Microsecond},
		{"a higher limit", k, m, 3, t0, true, 0},
		{"other key", k + "0", m, 2, t0, true, 0},
		{"other window length", k, time.Hour, 2, t0, true, 0},
		{"next window", k, m, 2, end, true, 0},
		{"previous window", k, m, 2, t0.Add(-time.Minute), true, 0},
	})
	// Refused hits are counted too, and Peek sees them.
	checkHits(t, s, []hit{{"third hit, refused", k, m, 2, t0, false, 29500 * time.Millisecond}})
	checkPeeks(t, s, []peek{
		{"over the limit", k, m, 3, t0, false, 29500 * time.Millisecond},
		{"under a higher limit", k, m, 4, t0, true, 0},
	})

	t.Run("invalid", func(t *testing.T) {
		for _, tt := range []struct {
			window time.Duration
			limit  int
		}{{0, 1}, {-time.Minute, 1}, {999 * time.Nanosecond, 1}, {time.Minute, -1}} {
			if _, _, err := s.Peek(ctx(t), "bad", tt.window, tt.limit, t0); err == nil {
				t.Errorf("Peek(window %v, limit %d) succeeded", tt.window, tt.limit)
			}
		}
	})
}
