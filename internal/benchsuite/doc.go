// Package benchsuite measures the SPEC §9 figures that need the whole product
// on real servers: HTTP verify with the replay write against the least
// correct work (one SELECT, the TOTP check, one compare-and-set UPDATE) on
// the same PostgreSQL and SQLite, and against a no-op Gin handler; an
// appeal's workflow path against a one-activity workflow; 1,000 concurrent
// appeals; document uploads against a bare minio-go PutObject, over
// plain HTTP and over TLS; and the cost against size: verify at 1,000,000
// accounts against 10,000 with the plans of its statements
// (TestVerifyPlans asserts in every test run that they read by index),
// and the review queue's first page with many closed appeals.
//
// Every figure is a Benchmark function that runs its own bounded workload once
// and reports it with testing.B.ReportMetric, so plain `go test` runs none of
// them. scripts/bench.sh runs them with -benchtime 1x and
// internal/benchreport turns the output into BENCHMARKS.md.
package benchsuite
