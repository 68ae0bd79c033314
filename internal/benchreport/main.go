// Command benchreport turns `go test -bench` output into BENCHMARKS.md: the
// machine, the date, and each SPEC §9 figure as a ratio against its baseline
// measured in the same run (medians over -count runs), or as a value checked
// on its own; then every other figure, the CPU profiles of missed targets and
// the raw output.
//
// With -missed it writes nothing and prints, one per line, the missed
// figures whose profile must be taken by a separate run: name, package and
// -bench pattern, tab-separated (scripts/bench.sh profiles them).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// direction says which way a ratio or value must lie from its target.
type direction int

const (
	report  direction = iota // no target: reported only
	atMost                   // ≤ target
	atLeast                  // ≥ target
)

// pair is one figure the spec asks for: subject against baseline in the
// same run, or (baseline "") the subject's value alone.
type pair struct {
	title    string
	subject  string // benchmark name without "Benchmark" and the -N suffix
	baseline string // "": the subject's value is checked against target
	unit     string // the metric compared; "": ns/op
	baseUnit string // the baseline's metric when it differs from unit
	dir      direction
	target   float64
	spec     string   // where the target comes from
	show     []string // further metrics printed beside subject and baseline
	note     string   // what exactly is compared, printed under the table
	// profiles name the CPU profiles (files <name>.top in -profiles) shown
	// when the target is missed; rerun, "package pattern", takes the first
	// by a separate run when the main run does not write it.
	profiles []string
	rerun    string
}

var (
	verifyShow = []string{"p50-ns", "p99-ns", "go-cpu-ns", "pg-cpu-ns", "host-cpu-ns"}
	uploadShow = []string{"ns/op", "min-ns", "max-ns", "go-cpu-ns"}
)

var pairs = []pair{
	{title: "mfa.Verify (skew ±1) vs pquerna/otp totp.ValidateCustom", subject: "Verify", baseline: "PquernaValidateCustom",
		dir: atMost, target: 1.2, spec: "SPEC §9", profiles: []string{"Verify"}, rerun: "./mfa ^BenchmarkVerify$"},
	{title: "mfa.Verify of a wrong code vs totp.ValidateCustom of a wrong code", subject: "VerifyWrongCode", baseline: "PquernaValidateCustomWrongCode",
		dir: atMost, target: 1.2, spec: "SPEC §9", profiles: []string{"VerifyWrongCode"}, rerun: "./mfa ^BenchmarkVerifyWrongCode$"},
	{title: "mfa.HOTP vs pquerna/otp hotp.GenerateCodeCustom", subject: "HOTP", baseline: "PquernaHOTP", spec: "report only"},
	{title: "mfaflow verify vs least correct work, PostgreSQL (requests/s)", subject: "HTTPVerify/Postgres", baseline: "HTTPVerify/LeastWorkPostgres",
		unit: "req/s", dir: atLeast, target: 1.0, spec: "SPEC §9", show: verifyShow,
		profiles: []string{"BenchmarkHTTPVerify_Postgres", "BenchmarkHTTPVerify_LeastWorkPostgres"},
		note: "POST /v1/accounts/{id}/mfa/verify on api.NewServer (console key check, failure budget spent before the code is evaluated, " +
			"the step's compare-and-set, the audit entry) against the least correct work: a gin.New() handler that checks the same bearer key, " +
			"decodes the same body, reads the account's TOTP devices with one SELECT, opens the sealed secret with the same key ring (AES-256-GCM), " +
			"checks the code ±1 step with mfa.Verify and records the step with one UPDATE … WHERE last_step < $n, answering {\"verified\":true} " +
			"only when that UPDATE changed the row (TestLeastWorkHandler shows it refuses a replayed, an older and a wrong code, and gives one success " +
			"to 20 concurrent uses of a code). Both on the same database (mfaflow's devices table, each handler on devices of its own, the same " +
			"key ring and frozen clock; the baseline's pgx pool has the 8 connections of the store's main pool), on httptest over loopback in one " +
			"process, driven by the same closed loop of 16 keep-alive clients in five alternating rounds of 1 s per server " +
			"(so load from outside the process weighs on all alike), after a 1 s warm-up. " +
			"Every verification succeeds with a fresh code, so each one writes its step. " +
			"CPU per request over the measured phase: go-cpu is this process (server, client, SQLite), pg-cpu the PostgreSQL cluster's " +
			"postmaster and backends (from /proc), host-cpu the whole machine (whatever else runs on it included)."},
	{title: "mfaflow verify vs least correct work, SQLite (requests/s)", subject: "HTTPVerify/SQLite", baseline: "HTTPVerify/LeastWorkSQLite",
		unit: "req/s", dir: atLeast, target: 1.0, spec: "SPEC §9", show: verifyShow,
		profiles: []string{"BenchmarkHTTPVerify_SQLite", "BenchmarkHTTPVerify_LeastWorkSQLite"},
		note: "As on PostgreSQL, on one SQLite file: the baseline connects to it as sqlitestore does (WAL, one writer connection, " +
			"four read-only readers) with both statements prepared once."},
	{title: "Verify at 1,000,000 accounts with 1,000,000 audit entries vs at 10,000 accounts, PostgreSQL (requests/s)",
		subject: "VerifyScale/Accounts1M", baseline: "VerifyScale/Accounts10k", unit: "req/s", dir: atLeast, target: 0.8,
		spec: "issue 15: flat in the number of accounts; see the note", show: append([]string{"seed-s"}, verifyShow...),
		profiles: []string{"BenchmarkVerifyScale_Accounts1M", "BenchmarkVerifyScale_Accounts10k"},
		note: "The same verifications as HTTPVerify/Postgres (api.NewServer, 16 keep-alive clients, a fresh code each, five alternating rounds) " +
			"on two databases of the same cluster: one of the 10,000 driven accounts, seeded through the store; one with the same 10,000 and " +
			"990,000 more by bulk SQL, interleaved in key order (each with an active device, login protection and a failure budget; a closed " +
			"appeal for 1 in 100), 1,000,000 audit entries, then CLUSTERed by primary key so the driven rows lie one to a page, and both " +
			"VACUUM ANALYZEd; seed-s is each database's seeding time. Every statement of a verification reads by index (the Query plans below, " +
			"and TestVerifyPlans in every test run, which fails on a Seq Scan): 3–4 buffers a lookup at 1,000,000 rows. Flat is not 1.00× " +
			"here: each B-tree is a level deeper, and the 10,000 driven rows of five tables, one to a page, outgrow the harness cluster's " +
			"128 MB shared_buffers, so lookups read pages from the OS cache and evict dirty ones; PostgreSQL's CPU per verification rises " +
			"(next row). ≥ 0.8× allows for that and for the noise of a 2-core machine, while a Seq Scan of a million rows on the path would cost two " +
			"orders of magnitude."},
	{title: "PostgreSQL CPU per verification, 1,000,000 accounts vs 10,000", subject: "VerifyScale/Accounts1M", baseline: "VerifyScale/Accounts10k",
		unit: "pg-cpu-ns", spec: "report only",
		note: "The PostgreSQL cluster's CPU time (postmaster and backends, from /proc) over the measured rounds, per verification: the part of the cost that would grow with the tables."},
	{title: "Review queue, first page (200 appeals), 100,000 closed appeals vs 1,000", subject: "ReviewQueue/FirstPage/Closed100k", baseline: "ReviewQueue/FirstPage/Closed1k",
		unit: "p50-ns", dir: atMost, target: 1.5, spec: "issue 15: flat in the closed appeals", show: []string{"p99-ns", "items"},
		profiles: []string{"BenchmarkReviewQueue_FirstPage_Closed100k", "BenchmarkReviewQueue_FirstPage_Closed1k"},
		note: "GET /v1/review/appeals as a reviewer on the full stack (Temporal test server, its SQLite visibility store in memory), median " +
			"and p99 of 100 sequential requests after 5 warm-ups, with 6 open appeals (3 collecting documents, 3 pending review) and 1,000, " +
			"then 100,000 closed ones (started and terminated at once with a closed appeal's search attributes: the same rows of " +
			"executions_visibility; seeded/s in the raw output is the rate they went in). The queue's query, WorkflowType = 'UnbindAppeal' with no state filter, reads closed appeals too, " +
			"so the first page is full (200) from 1,000 on: the comparison holds the page's length. " +
			"The search-attribute cache is refreshed as production does (once a minute), not on " +
			"every read as the test server's default, which made a full page cost 0.5 s. Requests go 8 a second: Temporal's default " +
			"limit on a namespace's visibility calls is 10 a second, and a call over it waits out the SDK's retry back-off (0.5 s)."},
	{title: "Review queue, ?status=pending_review (3 appeals), 100,000 closed appeals vs none", subject: "ReviewQueue/Pending/Closed100k", baseline: "ReviewQueue/Pending/Closed0",
		unit: "p50-ns", dir: atMost, target: 1.5, spec: "issue 15: flat in the closed appeals", show: []string{"p99-ns", "items"},
		profiles: []string{"BenchmarkReviewQueue_Pending_Closed100k", "BenchmarkReviewQueue_Pending_Closed0"}},
	{title: "Review queue, first page, 100,000 closed appeals vs none", subject: "ReviewQueue/FirstPage/Closed100k", baseline: "ReviewQueue/FirstPage/Closed0",
		unit: "p50-ns", spec: "report only: 200 appeals on the page against 6", show: []string{"p99-ns", "items"}},
	{title: "mfaflow verify, PostgreSQL, vs a no-op Gin JSON handler (requests/s)", subject: "HTTPVerify/Postgres", baseline: "HTTPVerify/NoopGin",
		unit: "req/s", spec: "report only", show: []string{"p50-ns", "p99-ns", "go-cpu-ns"},
		note: "The no-op handler decodes the same body and answers {\"verified\":true} without any work: the ceiling of Gin and the load driver on this machine."},
	{title: "mfaflow verify, SQLite, vs a no-op Gin JSON handler (requests/s)", subject: "HTTPVerify/SQLite", baseline: "HTTPVerify/NoopGin",
		unit: "req/s", spec: "report only", show: []string{"p50-ns", "p99-ns", "go-cpu-ns"}},
	{title: "Appeal workflow path (approval sent → applicant sees unbound) vs a one-activity workflow", subject: "AppealLatency/ApproveToUnbound", baseline: "AppealLatency/OneActivityWorkflow",
		dir: atMost, target: 3, spec: "SPEC §9", show: []string{"p50-ns"}, profiles: []string{"BenchmarkAppealLatency"},
		note: "Means of 10 runs after 2 warm-ups, alternating on one Temporal test server. Subject: from sending the reviewer's approval " +
			"(POST …/decision, the last human input; cool-down 0) until GET /v1/appeals/{id}, polled every 2 ms, shows unbound: " +
			"the decision update, the zero cool-down, the UnbindAll activity and the status change. Baseline: ExecuteWorkflow of a workflow " +
			"running one no-op activity, and Get of its result, through the API's Temporal client (same converters)."},
	{title: "Appeal from filing to unbound through the HTTP API vs a one-activity workflow", subject: "AppealLatency/FiledToUnbound", baseline: "AppealLatency/OneActivityWorkflow",
		spec: "report only", show: []string{"create-ns", "upload-ns", "submit-ns", "claim-ns"},
		note: "The whole appeal: file (update-with-start, eligibility activity), upload a 20 kB photo, submit, claim, approve, wait for unbound — " +
			"six API calls that each wait for a workflow update, the automated reviewer acting at once."},
	{title: "1,000 appeals driven concurrently (50 in flight) from filing to unbound", subject: "Appeals1000", unit: "completed",
		dir: atLeast, target: 1000, spec: "SPEC §9: all complete", show: []string{"failures", "ns/op", "appeals/s", "p50-ns", "p99-ns"},
		profiles: []string{"BenchmarkAppeals1000"},
		note: "Each applicant files, uploads a 16 kB photo, submits and polls its view every 500 ms; an automated reviewer polls the review queue " +
			"every 100 ms and claims and approves what it finds (eight at once). ns/op is the total wall time."},
	{title: "1,000 concurrent appeals vs 1,000 one-activity workflows (per second)", subject: "Appeals1000", unit: "appeals/s",
		baseline: "OneActivity1000", baseUnit: "workflows/s",
		spec: "report only: SPEC §9 sets no rate; an appeal writes about ten times a one-activity workflow's history (the rows below)",
		show: []string{"p50-ns", "p99-ns", "go-cpu-ns", "go-cores", "host-cores"},
		note: "Baseline: BenchmarkOneActivity1000, as many OneActivity workflows (one no-op activity), 50 at once, each started and awaited " +
			"(ExecuteWorkflow, Get) through the API's Temporal client, on a stack of its own built like the appeals' one: temporaltest in " +
			"process, the SDK's default worker options as in production (two workflow and two activity task pollers). go-cpu is this " +
			"process's CPU per item (API, Temporal server with its in-memory SQLite, worker, driver); go-cores and host-cores the cores this " +
			"process and the whole machine (other work included) kept busy over the run, of 2. " +
			"The two run one after the other, so the ratio moves with any other load on the machine; the CPU per item holds better. " +
			"The reading of the figures (what limits the rate, from the profile) is in the hand-written analysis below the tables."},
	{title: "1,000 concurrent appeals vs 1,000 one-activity workflows, per workflow task (workflow tasks/s)", subject: "Appeals1000", unit: "workflow-tasks/s",
		baseline: "OneActivity1000", spec: "report only", show: []string{"workflow-tasks", "updates", "activities", "first-wft-wait-ns", "wft-backlog"},
		note: "Each side's rate times its workflow tasks per item, counted in the histories of 100 items (workflow-tasks, updates, activities " +
			"per item). An appeal is five updates (create with the eligibility check, upload, submit, claim, decision) and 16 activities: " +
			"the eligibility check, the unbind, and 14 background effects (the status mirror 5, audit entries 5, notices 3, the session " +
			"revocation). Its applicant also polls its status every 500 ms after submitting (status-queries per appeal in the raw output), " +
			"and the worker answers each of these queries from the sticky queue. first-wft-wait is the mean wait of each workflow's first " +
			"workflow task in the normal task queue; wft-backlog the mean number of workflow tasks waiting there, sampled every 500 ms."},
	{title: "1,000 concurrent appeals vs 1,000 one-activity workflows, per history event (history events/s)", subject: "Appeals1000", unit: "history-events/s",
		baseline: "OneActivity1000", spec: "report only", show: []string{"history-events", "go-cpu-ns"},
		note: "Each side's rate times its history events per item (history-events), the work Temporal's history service persists. " +
			"If both runs had the same share of the CPU, these two rates would show whether an appeal's events cost more than a " +
			"one-activity workflow's. On a shared machine, read them beside go-cpu per item and go-cores in the first row."},
	{title: "Document upload through the API vs bare minio-go PutObject, 10 MiB, TLS (MB/s)", subject: "Upload10MB/TLS-API", baseline: "Upload10MB/TLS-PutObject",
		unit: "MB/s", dir: atLeast, target: 0.9, spec: "SPEC §9", show: uploadShow, profiles: []string{"BenchmarkUpload10MB"},
		note: "25 rounds of one 10 MiB file through each of four sides after two warm-ups, the order reversed every round: the API and a bare " +
			"PutObject to a MinIO that serves TLS (certificate from a throwaway CA of the harness; production's transport), and the same two to a " +
			"plain-HTTP MinIO, each pair to one bucket, all with SSE-S3 and minio-go's defaults. Over TLS minio-go sends UNSIGNED-PAYLOAD with a " +
			"CRC32C trailer on both sides, so the API's own SHA-256 is the only hash of the body; over plain HTTP minio-go signs every chunk " +
			"(a SHA-256 pass on each side) and the API hashes a second time (blob.Put says why the plain link keeps the signatures). " +
			"Medians: time is the median upload and MB/s is taken at it; go-cpu is this process's CPU " +
			"per upload (API server, Temporal server and worker, both clients; MinIO runs apart). The API side is the whole " +
			"PUT /v1/appeals/{id}/documents/{type}: token check (which also refuses closed appeals), sniffing, SHA-256 while streaming, " +
			"the AddDocument update (the workflow's state and deadline check)."},
	{title: "Document upload through the API vs bare minio-go PutObject, 10 MiB, plain HTTP (MB/s)", subject: "Upload10MB/API", baseline: "Upload10MB/PutObject",
		unit: "MB/s", dir: atLeast, target: 0.9, spec: "SPEC §9", show: uploadShow, profiles: []string{"BenchmarkUpload10MB"}},
	{title: "Peak heap growth, 10 concurrent 10 MiB uploads vs 10 concurrent 1 MiB uploads", subject: "UploadPeakMemory/10x10MB", baseline: "UploadPeakMemory/10x1MB",
		unit: "heap-growth-bytes", dir: atMost, target: 2, spec: "SPEC §9 \"memory does not grow with file size\", read as ≤ 2×; whole-file buffering would give ≈ 10×",
		show: []string{"peak-heap-bytes", "idle-heap-bytes"}, profiles: []string{"BenchmarkUploadPeakMemory"},
		note: "Heap object bytes sampled every millisecond (runtime/metrics), GOGC=10 during the runs; growth is the peak minus the idle heap just before. " +
			"The process also holds the Temporal server, so the absolute peaks are mostly that."},
}

func main() {
	out := flag.String("o", "BENCHMARKS.md", "output file")
	missed := flag.Bool("missed", false, "print the missed figures to profile by a separate run instead of writing the report")
	profiles := flag.String("profiles", "", "directory of CPU profile summaries (<name>.top) to show for missed targets")
	flag.Parse()
	res, raw, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	if *missed {
		for _, p := range pairs {
			if ev := evaluate(p, res); ev.verdict == "MISSED" && p.rerun != "" && len(p.profiles) > 0 {
				pkg, pattern, _ := strings.Cut(p.rerun, " ")
				fmt.Printf("%s\t%s\t%s\n", p.profiles[0], pkg, pattern)
			}
		}
		return
	}
	if err := os.WriteFile(*out, []byte(render(res, raw, *profiles)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

// results holds every sample by benchmark name and unit.
type results map[string]map[string][]float64

// parse collects every metric of every benchmark line: after the name and
// the iteration count come value-unit pairs.
func parse(r io.Reader) (results, string, error) {
	res := results{}
	var raw strings.Builder
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		raw.WriteString(line + "\n")
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			if res[name] == nil {
				res[name] = map[string][]float64{}
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res, raw.String(), sc.Err()
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// get returns the median of a benchmark's metric and whether it was measured.
func (r results) get(name, unit string) (float64, bool) {
	v := r[name][unit]
	if len(v) == 0 {
		return 0, false
	}
	return median(v), true
}

// evaluation is one figure worked out.
type evaluation struct {
	subject, baseline, ratio, verdict string
}

func orNS(unit string) string {
	if unit == "" {
		return "ns/op"
	}
	return unit
}

func (p pair) targetText() string {
	suffix := "×"
	if p.baseline == "" {
		suffix = ""
	}
	switch p.dir {
	case atMost:
		return fmt.Sprintf("≤ %s%s (%s)", trimFloat(p.target), suffix, p.spec)
	case atLeast:
		return fmt.Sprintf("≥ %s%s (%s)", trimFloat(p.target), suffix, p.spec)
	}
	return p.spec
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// evaluate works out p's cells and verdict.
func evaluate(p pair, res results) evaluation {
	unit, baseUnit := orNS(p.unit), orNS(p.unit)
	if p.baseUnit != "" {
		baseUnit = p.baseUnit
	}
	s, ok := res.get(p.subject, unit)
	if !ok {
		return evaluation{subject: "—", baseline: "—", ratio: "not measured", verdict: "missing"}
	}
	ev := evaluation{subject: cell(res, p.subject, unit, p.show), baseline: "—"}
	value := s
	if p.baseline != "" {
		bl, ok := res.get(p.baseline, baseUnit)
		if !ok || bl == 0 {
			return evaluation{subject: ev.subject, baseline: "—", ratio: "not measured", verdict: "missing"}
		}
		ev.baseline = cell(res, p.baseline, baseUnit, p.show)
		value = s / bl
		ev.ratio = fmt.Sprintf("%.2f×", value)
	} else {
		ev.ratio = "—"
	}
	switch p.dir {
	case atMost:
		ev.verdict = verdict(value <= p.target)
	case atLeast:
		ev.verdict = verdict(value >= p.target)
	default:
		ev.verdict = "report"
	}
	return ev
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

// cell prints a benchmark's metric and, in parentheses, the shown ones it has.
func cell(res results, name, unit string, show []string) string {
	v, _ := res.get(name, unit)
	out := format(v, unit)
	var extra []string
	for _, u := range show {
		if u == unit {
			continue
		}
		if x, ok := res.get(name, u); ok {
			if l := label(u); l != "" {
				extra = append(extra, l+" "+format(x, u))
			} else {
				extra = append(extra, format(x, u))
			}
		}
	}
	if len(extra) > 0 {
		out += " (" + strings.Join(extra, ", ") + ")"
	}
	return out
}

// label names a metric in a cell when its formatted value does not.
func label(unit string) string {
	switch {
	case unit == "ns/op":
		return "time"
	case strings.HasSuffix(unit, "-ns"):
		return strings.TrimSuffix(unit, "-ns")
	case strings.HasSuffix(unit, "-bytes"):
		return strings.TrimSuffix(unit, "-bytes")
	}
	return ""
}

// format prints a value in its unit: durations for ns, MiB for bytes.
func format(v float64, unit string) string {
	switch {
	case unit == "ns/op" || strings.HasSuffix(unit, "-ns"):
		s := duration(v)
		if unit == "ns/op" {
			s += "/op"
		}
		return s
	case strings.HasSuffix(unit, "-bytes"):
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case unit == "req/s" || unit == "completed" || unit == "failures" || unit == "requests" || unit == "errors":
		return fmt.Sprintf("%.0f %s", v, unit)
	}
	return fmt.Sprintf("%.4g %s", v, unit)
}

func duration(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
	return fmt.Sprintf("%.2f s", ns/1e9)
}

func render(res results, raw, profileDir string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Benchmarks\n\nWritten by `make bench` on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s, %d cores (%s/%s), %s, host %s.\n\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), host)
	b.WriteString("Every figure comes from this one run: each ratio compares two benchmarks measured side by side in it " +
		"(medians where a benchmark ran more than once).\n\n")
	b.WriteString("| figure | subject | baseline | ratio | target | verdict |\n|---|---|---|---|---|---|\n")
	var missed []pair
	for _, p := range pairs {
		ev := evaluate(p, res)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", p.title, ev.subject, ev.baseline, ev.ratio, p.targetText(), ev.verdict)
		if ev.verdict == "MISSED" {
			missed = append(missed, p)
		}
	}
	b.WriteString("\nWhat is compared:\n\n")
	for _, p := range pairs {
		if p.note != "" {
			fmt.Fprintf(&b, "- **%s**: %s\n", p.title, p.note)
		}
	}

	used := map[string]bool{}
	for _, p := range pairs {
		used[p.subject], used[p.baseline] = true, true
	}
	var rest []string
	for name := range res {
		if !used[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	if len(rest) > 0 {
		b.WriteString("\nOther figures (medians):\n\n| benchmark | figures |\n|---|---|\n")
		for _, name := range rest {
			var units []string
			for u := range res[name] {
				units = append(units, u)
			}
			sort.Strings(units)
			var cells []string
			for _, u := range units {
				v, _ := res.get(name, u)
				cells = append(cells, format(v, u))
			}
			fmt.Fprintf(&b, "| %s | %s |\n", name, strings.Join(cells, ", "))
		}
	}

	if len(missed) > 0 && profileDir != "" {
		b.WriteString("\n## CPU profiles of the missed targets\n\n" +
			"Taken in this run over each benchmark's measured phase only (`-benchsuite.cpuprofile`; `go test -cpuprofile` for packages without it), " +
			"summarised with `go tool pprof -top`.\n")
		for _, p := range missed {
			for _, name := range p.profiles {
				top, err := os.ReadFile(filepath.Join(profileDir, name+".top"))
				if err != nil {
					continue
				}
				fmt.Fprintf(&b, "\n<details><summary>%s — profile %s</summary>\n\n```\n%s```\n</details>\n", p.title, name, top)
			}
		}
	}
	if ps := planBlocks(raw); len(ps) > 0 {
		b.WriteString("\n## Query plans\n\n" +
			"The plans PostgreSQL executed for the statements of a verification, as the benchmarks printed them " +
			"(auto_explain: EXPLAIN ANALYZE with buffers; one line a node, with its rows, loops, time and shared buffers).\n")
		for _, p := range ps {
			fmt.Fprintf(&b, "\n<details><summary>%s</summary>\n\n```\n%s```\n</details>\n", p.title, p.body)
		}
	}
	b.WriteString("\n<details><summary>raw go test output</summary>\n\n```\n" + raw + "```\n</details>\n")
	return b.String()
}

// planBlock is a query plan a benchmark printed.
type planBlock struct{ title, body string }

// planBlocks returns the plans in the output: the lines between
// "benchplan: begin <title>" and "benchplan: end".
func planBlocks(raw string) []planBlock {
	var (
		out  []planBlock
		cur  *planBlock
		body strings.Builder
	)
	for _, line := range strings.Split(raw, "\n") {
		switch {
		case strings.HasPrefix(line, "benchplan: begin "):
			cur = &planBlock{title: strings.TrimPrefix(line, "benchplan: begin ")}
			body.Reset()
		case line == "benchplan: end" && cur != nil:
			cur.body = body.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		}
	}
	return out
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
