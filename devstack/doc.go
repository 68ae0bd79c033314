// Package devstack runs the embedded servers behind `mfaflow dev` inside one
// process: a Temporal server (frontend, history, matching and worker
// services) persisting to a SQLite file, with the Temporal Web UI, and an
// S3-compatible object store (versitygw with its POSIX backend) persisting
// to a directory. Both listen on loopback by default and pick free ports
// when asked for port 0, so several stacks can run on one machine.
//
// Two process-wide effects come with the S3 server, both from versitygw:
// only one gateway can run per process (StartS3 returns ErrS3Running for a
// second one), and while it runs the process's working directory is the
// gateway's bucket directory. Pass absolute paths everywhere once StartS3
// has been called; Stop restores the previous working directory.
package devstack
