// Package faulttest holds mfaflow's fault tests (SPEC §8): the real worker
// binary killed with SIGKILL mid-appeal, MinIO stopped during an upload,
// PostgreSQL stopped under a verification, Temporal stopped under the
// binding and appeal endpoints, and the dev stack killed and restarted
// mid-appeal. Each test brings up real servers through the shared harness,
// injects one fault, checks the API fails closed with a clear 503 and that
// the work resumes when the server is back. It holds tests only.
package faulttest
