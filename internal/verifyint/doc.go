// Package verifyint tests mfa.Verifier against the real stores: the replay
// guard and the failure budget on PostgreSQL and on SQLite, under
// concurrency, and benchmarks verification with its replay write.
package verifyint
