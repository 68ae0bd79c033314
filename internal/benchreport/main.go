// Command benchreport turns `go test -bench` output into BENCHMARKS.md: the
// machine, the date, and each figure as a ratio against its baseline measured
// in the same run (medians over -count runs).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// pair is one ratio the spec asks for.
type pair struct {
	title     string
	subject   string // benchmark name without "Benchmark" and the -N suffix
	baseline  string
	target    float64 // the ratio subject/baseline must not exceed; 0: report only
	spec      string
	higherBad bool
}

var pairs = []pair{
	{title: "mfa.Verify (skew ±1) vs pquerna/otp totp.ValidateCustom", subject: "Verify", baseline: "PquernaValidateCustom", target: 1.2, spec: "SPEC §9: ≤ 1.2×"},
	{title: "mfa.Verify of a wrong code vs totp.ValidateCustom of a wrong code", subject: "VerifyWrongCode", baseline: "PquernaValidateCustomWrongCode", target: 1.2, spec: "SPEC §9: ≤ 1.2×"},
	{title: "mfa.HOTP vs pquerna/otp hotp.GenerateCodeCustom", subject: "HOTP", baseline: "PquernaHOTP", spec: "report only"},
}

func main() {
	out := flag.String("o", "BENCHMARKS.md", "output file")
	flag.Parse()
	res, raw, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, []byte(render(res, raw)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

// parse collects ns/op samples by benchmark name.
func parse(r io.Reader) (map[string][]float64, string, error) {
	res := map[string][]float64{}
	var raw strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		raw.WriteString(line + "\n")
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		for i := 2; i+1 < len(f); i++ {
			if f[i+1] == "ns/op" {
				v, err := strconv.ParseFloat(f[i], 64)
				if err == nil {
					res[name] = append(res[name], v)
				}
			}
		}
	}
	return res, raw.String(), sc.Err()
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func render(res map[string][]float64, raw string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	cpu := cpuModel()
	fmt.Fprintf(&b, "# Benchmarks\n\nWritten by `make bench` on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s, %d cores (%s/%s), %s, host %s.\n\n", cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), host)
	b.WriteString("Each ratio compares two benchmarks measured side by side in the same run (medians of every sample).\n\n")
	b.WriteString("| figure | subject | baseline | ratio | target | verdict |\n|---|---|---|---|---|---|\n")
	for _, p := range pairs {
		s, bl := res[p.subject], res[p.baseline]
		if len(s) == 0 || len(bl) == 0 {
			fmt.Fprintf(&b, "| %s | — | — | not measured | %s | missing |\n", p.title, p.spec)
			continue
		}
		ms, mb := median(s), median(bl)
		ratio := ms / mb
		verdict := "report"
		if p.target > 0 {
			verdict = "met"
			if ratio > p.target {
				verdict = "MISSED"
			}
		}
		fmt.Fprintf(&b, "| %s | %.0f ns/op | %.0f ns/op | %.2f× | %s | %s |\n", p.title, ms, mb, ratio, p.spec, verdict)
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
		b.WriteString("\nOther figures (median ns/op):\n\n| benchmark | ns/op | ops/s |\n|---|---|---|\n")
		for _, name := range rest {
			m := median(res[name])
			fmt.Fprintf(&b, "| %s | %.0f | %.0f |\n", name, m, 1e9/m)
		}
	}
	b.WriteString("\nFigures that later issues add (HTTP verify on PostgreSQL and SQLite against a no-op Gin handler, appeal path latency, uploads against a bare PutObject) join this table as they are built.\n")
	b.WriteString("\n<details><summary>raw go test output</summary>\n\n```\n" + raw + "```\n</details>\n")
	return b.String()
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
