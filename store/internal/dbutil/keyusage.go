package dbutil

// CountRecoveryCodesByKeySQL counts unused recovery codes per key id; the
// text is the same in PostgreSQL and SQLite.
const CountRecoveryCodesByKeySQL = `SELECT key_id, COUNT(*) FROM recovery_codes WHERE used_at IS NULL GROUP BY key_id`
