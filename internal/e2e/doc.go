// Package e2e drives the product end to end through its HTTP API on real
// servers: the Temporal test server with the production worker
// registration, PostgreSQL or SQLite, MinIO, and real HTTP.
package e2e
