package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkVerify-2   	  100	     1000 ns/op	       0 B/op	       0 allocs/op
BenchmarkVerify-2   	  100	     1200 ns/op	       0 B/op	       0 allocs/op
BenchmarkVerify-2   	  100	     1100 ns/op	       0 B/op	       0 allocs/op
BenchmarkPquernaValidateCustom-2	  100	     1000 ns/op
BenchmarkHTTPVerify/NoopGin
BenchmarkHTTPVerify/NoopGin-2          	       1	     26728 ns/op	         0 errors	    331352 p50-ns	   3324318 p99-ns	     37414 req/s
--- BENCH: BenchmarkHTTPVerify/NoopGin-2
    main_test.go:102: 74828 requests in 2s
BenchmarkHTTPVerify/Postgres-2   	       1	    605510 ns/op	   8938854 p50-ns	  29649150 p99-ns	      1652 req/s
BenchmarkUpload10MB/API-2               	       1	 103400221 ns/op	 101.41 MB/s
BenchmarkUpload10MB/PutObject-2         	       1	  87735997 ns/op	 119.51 MB/s
BenchmarkAppeals1000-2   	       1	66631611510 ns/op	         3.002 appeals/s	       1000 completed	         0 failures
`

func TestParse(t *testing.T) {
	res, _, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, unit string
		want       float64
	}{
		{"Verify", "ns/op", 1100},
		{"HTTPVerify/NoopGin", "req/s", 37414},
		{"HTTPVerify/NoopGin", "p99-ns", 3324318},
		{"Upload10MB/API", "MB/s", 101.41},
		{"Appeals1000", "completed", 1000},
	} {
		if got, ok := res.get(c.name, c.unit); !ok || got != c.want {
			t.Errorf("%s %s = %v, %v; want %v", c.name, c.unit, got, ok, c.want)
		}
	}
}

func TestEvaluate(t *testing.T) {
	res, _, _ := parse(strings.NewReader(sample))
	for _, c := range []struct {
		p            pair
		ratio, want  string
		subjectHasIt string
	}{
		{pair{subject: "Verify", baseline: "PquernaValidateCustom", dir: atMost, target: 1.2}, "1.10×", "met", "1.10 µs/op"},
		{pair{subject: "Verify", baseline: "PquernaValidateCustom", dir: atMost, target: 1.05}, "1.10×", "MISSED", ""},
		{pair{subject: "HTTPVerify/Postgres", baseline: "HTTPVerify/NoopGin", unit: "req/s", dir: atLeast, target: 0.3, show: []string{"p99-ns"}}, "0.04×", "MISSED", "p99 29.65 ms"},
		{pair{subject: "Upload10MB/API", baseline: "Upload10MB/PutObject", unit: "MB/s", dir: atLeast, target: 0.8}, "0.85×", "met", "101.4 MB/s"},
		{pair{subject: "Appeals1000", unit: "completed", dir: atLeast, target: 1000}, "—", "met", "1000 completed"},
		{pair{subject: "HOTP", baseline: "PquernaHOTP"}, "not measured", "missing", ""},
		{pair{subject: "Verify", baseline: "PquernaValidateCustom"}, "1.10×", "report", ""},
	} {
		ev := evaluate(c.p, res)
		if ev.ratio != c.ratio || ev.verdict != c.want || !strings.Contains(ev.subject, c.subjectHasIt) {
			t.Errorf("%s vs %s: %+v; want ratio %s, verdict %s, subject with %q", c.p.subject, c.p.baseline, ev, c.ratio, c.want, c.subjectHasIt)
		}
	}
}

func TestTargetText(t *testing.T) {
	if got := (pair{baseline: "x", dir: atLeast, target: 0.3, spec: "SPEC §9"}).targetText(); got != "≥ 0.3× (SPEC §9)" {
		t.Errorf("got %q", got)
	}
	if got := (pair{dir: atLeast, target: 1000, spec: "all"}).targetText(); got != "≥ 1000 (all)" {
		t.Errorf("got %q", got)
	}
}

const issue15Sample = `BenchmarkHTTPVerify/NoopGin-2   	       1	    168327 ns/op	     55540 go-cpu-ns	    482890 p50-ns	  37415855 p99-ns	      5941 req/s
BenchmarkHTTPVerify/Postgres-2   	       1	    582479 ns/op	    208630 go-cpu-ns	   1157968 host-cpu-ns	   7086365 p50-ns	  38509046 p99-ns	    170084 pg-cpu-ns	      1717 req/s
BenchmarkHTTPVerify/LeastWorkPostgres-2   	       1	    389663 ns/op	    105863 go-cpu-ns	    665023 host-cpu-ns	   2999021 p50-ns	  40326588 p99-ns	     95000 pg-cpu-ns	      2566 req/s
BenchmarkUpload10MB/TLS-API-2   	       1	 103400221 ns/op	 101.41 MB/s
BenchmarkUpload10MB/TLS-PutObject-2   	       1	  97735997 ns/op	 107.28 MB/s
`

// TestReportRows: the issue 15 rows are worked out from the benchmarks the
// suite writes, with the figures they show; an unmeasured pair says so.
func TestReportRows(t *testing.T) {
	res, raw, err := parse(strings.NewReader(issue15Sample))
	if err != nil {
		t.Fatal(err)
	}
	out := render(res, raw, "")
	for _, want := range []string{
		"| mfaflow verify vs least correct work, PostgreSQL (requests/s) | 1717 req/s (p50 7.09 ms, p99 38.51 ms, go-cpu 208.63 µs, pg-cpu 170.08 µs, host-cpu 1.16 ms) | 2566 req/s (",
		"| 0.67× | ≥ 1× (SPEC §9) | MISSED |",
		"| mfaflow verify vs least correct work, SQLite (requests/s) | — | — | not measured |",
		"| mfaflow verify, PostgreSQL, vs a no-op Gin JSON handler (requests/s) | 1717 req/s",
		"| 0.29× | report only | report |",
		"| Document upload through the API vs bare minio-go PutObject, 10 MiB, TLS (MB/s) | 101.4 MB/s",
		"| 0.95× | ≥ 0.9× (SPEC §9) | met |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

const appealThroughputSample = `BenchmarkAppeals1000-2       	       1	174829407203 ns/op	         5.720 appeals/s	      1000 completed	         0 failures	 129848409 go-cpu-ns	       109.9 history-events	       628.7 history-events/s	         9.640 workflow-tasks	        55.14 workflow-tasks/s
BenchmarkOneActivity1000-2   	       1	17868529659 ns/op	      1000 completed	         0 failures	  17164092 go-cpu-ns	        11.00 history-events	       615.6 history-events/s	         2.000 workflow-tasks	       111.9 workflow-tasks/s	        55.96 workflows/s
`

// TestAppealThroughputRows: the appeals' rate is set against the
// one-activity workflows' in their own units, and per workflow task and
// history event.
func TestAppealThroughputRows(t *testing.T) {
	res, raw, err := parse(strings.NewReader(appealThroughputSample))
	if err != nil {
		t.Fatal(err)
	}
	out := render(res, raw, "")
	for _, want := range []string{
		"| 1,000 concurrent appeals vs 1,000 one-activity workflows (per second) | 5.72 appeals/s (go-cpu 129.85 ms) | 55.96 workflows/s (go-cpu 17.16 ms) | 0.10× |",
		"per workflow task (workflow tasks/s) | 55.14 workflow-tasks/s (9.64 workflow-tasks) | 111.9 workflow-tasks/s (2 workflow-tasks) | 0.49× | report only | report |",
		"per history event (history events/s) | 628.7 history-events/s (109.9 history-events, go-cpu 129.85 ms) | 615.6 history-events/s (11 history-events, go-cpu 17.16 ms) | 1.02× |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

const planSample = `BenchmarkVerifyScale/Accounts1M-2   	       1	    300000 ns/op	      3333 req/s
benchplan: begin Verify at 1,000,000 accounts — statement 1 of 2, check connections
Sort  (rows=1 loops=1)
  -> Index Scan using accounts_pkey on accounts a  (rows=1 loops=1)
benchplan: end
some other line
benchplan: begin second
Insert on audit_log
benchplan: end
`

// TestPlanBlocks: the plans a benchmark prints become details sections of
// their own.
func TestPlanBlocks(t *testing.T) {
	res, raw, err := parse(strings.NewReader(planSample))
	if err != nil {
		t.Fatal(err)
	}
	ps := planBlocks(raw)
	if len(ps) != 2 || ps[0].title != "Verify at 1,000,000 accounts — statement 1 of 2, check connections" ||
		ps[0].body != "Sort  (rows=1 loops=1)\n  -> Index Scan using accounts_pkey on accounts a  (rows=1 loops=1)\n" ||
		ps[1].body != "Insert on audit_log\n" {
		t.Fatalf("plans %q", ps)
	}
	out := render(res, raw, "")
	if !strings.Contains(out, "## Query plans") ||
		!strings.Contains(out, "<details><summary>Verify at 1,000,000 accounts — statement 1 of 2, check connections</summary>\n\n```\nSort  (rows=1 loops=1)\n") {
		t.Errorf("report lacks the plans:\n%s", out)
	}
}

const scaleSample = `BenchmarkReviewQueue/FirstPage/Closed1k-2        	       1	  18278086 ns/op	      1000 closed	       200.0 items	  18278086 p50-ns	  45137918 p99-ns	        80.73 seeded/s
BenchmarkReviewQueue/FirstPage/Closed100k-2       	       1	  15991333 ns/op	    100000 closed	       200.0 items	  15991333 p50-ns	 181086098 p99-ns	       151.5 seeded/s
BenchmarkVerifyScale/Accounts10k-2               	       1	    241616 ns/op	         0 errors	    160463 go-cpu-ns	    456654 host-cpu-ns	   3197191 p50-ns	  15426941 p99-ns	    130956 pg-cpu-ns	      4139 req/s	     20694 requests	         4.601 seed-s
BenchmarkVerifyScale/Accounts1M-2                	       1	    295247 ns/op	         0 errors	    174549 go-cpu-ns	    571597 host-cpu-ns	   4081181 p50-ns	  16147025 p99-ns	    168291 pg-cpu-ns	      3387 req/s	     16935 requests	        30.92 seed-s
`

// TestScaleRows: the item 4 rows are worked out from the names and
// metrics BenchmarkVerifyScale and BenchmarkReviewQueue write.
func TestScaleRows(t *testing.T) {
	res, raw, err := parse(strings.NewReader(scaleSample))
	if err != nil {
		t.Fatal(err)
	}
	out := render(res, raw, "")
	for _, want := range []string{
		"| 3387 req/s (30.92 seed-s, p50 4.08 ms, p99 16.15 ms, go-cpu 174.55 µs, pg-cpu 168.29 µs, host-cpu 571.60 µs) | 4139 req/s (4.601 seed-s,",
		"| 0.82× | ≥ 0.8× (issue 15: flat in the number of accounts; see the note) | met |",
		"| PostgreSQL CPU per verification, 1,000,000 accounts vs 10,000 | 168.29 µs | 130.96 µs | 1.29× | report only | report |",
		"| Review queue, first page (200 appeals), 100,000 closed appeals vs 1,000 | 15.99 ms (p99 181.09 ms, 200 items) | 18.28 ms (p99 45.14 ms, 200 items) | 0.87× | ≤ 1.5×",
		"| Review queue, ?status=pending_review (3 appeals), 100,000 closed appeals vs none | — | — | not measured |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
