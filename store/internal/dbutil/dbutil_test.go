package dbutil

import (
	"testing"
	"testing/fstest"
	"time"
)

func TestReadMigrations(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []int
		wantErr bool
	}{
		{"ordered by number", fstest.MapFS{
			"m/0010_c.sql": {Data: []byte("c")}, "m/0002_b.sql": {Data: []byte("b")},
			"m/0001_a.sql": {Data: []byte("a")}, "m/README": {Data: []byte("x")},
		}, []int{1, 2, 10}, false},
		{"repeated version", fstest.MapFS{"m/0001_a.sql": {}, "m/1_b.sql": {}}, nil, true},
		{"no number", fstest.MapFS{"m/init.sql": {}}, nil, true},
		{"zero", fstest.MapFS{"m/0000_a.sql": {}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadMigrations(tt.files, "m")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d migrations, want %d", len(got), len(tt.want))
			}
			for i, m := range got {
				if m.Version != tt.want[i] {
					t.Errorf("migration %d version %d, want %d", i, m.Version, tt.want[i])
				}
			}
		})
	}
}

func TestTime(t *testing.T) {
	in := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CST", 8*3600))
	got := Time(in)
	if got.Location() != time.UTC || got.Nanosecond() != 123456000 || !got.Equal(in.Truncate(time.Microsecond)) {
		t.Errorf("Time(%v) = %v", in, got)
	}
	if !Time(time.Time{}).IsZero() {
		t.Error("Time(zero) is not zero")
	}
}

func TestRateWindow(t *testing.T) {
	at := func(us int64) time.Time { return time.UnixMicro(us) }
	tests := []struct {
		name       string
		window     time.Duration
		now        time.Time
		start, end int64 // microseconds since the epoch
	}{
		{"inside", time.Second, at(2_500_000), 2_000_000, 3_000_000},
		{"at the start", time.Second, at(3_000_000), 3_000_000, 4_000_000},
		{"last microsecond", time.Second, at(3_999_999), 3_000_000, 4_000_000},
		{"nanoseconds ignored", time.Second, time.Unix(3, 999_999_999), 3_000_000, 4_000_000},
		{"before the epoch", time.Second, at(-1), -1_000_000, 0},
		{"before the epoch, at a start", time.Second, at(-2_000_000), -2_000_000, -1_000_000},
		{"sub-microsecond part of the window ignored", time.Microsecond + 500, at(7), 7, 8},
		{"zone ignored", time.Hour, time.Date(2026, 5, 1, 18, 30, 0, 0, time.FixedZone("CST", 8*3600)),
			time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC).UnixMicro(), time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC).UnixMicro()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end, err := RateWindow(tt.window, 1, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if start.UnixMicro() != tt.start || end.UnixMicro() != tt.end || start.Location() != time.UTC || end.Location() != time.UTC {
				t.Errorf("RateWindow = %v, %v; want [%d, %d) µs in UTC", start, end, tt.start, tt.end)
			}
		})
	}
	for _, bad := range []struct {
		window time.Duration
		limit  int
	}{{0, 1}, {999, 1}, {-time.Second, 1}, {time.Second, -1}} {
		if _, _, err := RateWindow(bad.window, bad.limit, at(0)); err == nil {
			t.Errorf("RateWindow(%v, %d) succeeded", bad.window, bad.limit)
		}
	}
}

func TestPruner(t *testing.T) {
	var p Pruner
	var due []int
	for i := 1; i <= 3*pruneEvery; i++ {
		if p.Due() {
			due = append(due, i)
		}
	}
	if len(due) != 3 || due[0] != 1 || due[1] != pruneEvery+1 || due[2] != 2*pruneEvery+1 {
		t.Errorf("due at hits %v", due)
	}
}
