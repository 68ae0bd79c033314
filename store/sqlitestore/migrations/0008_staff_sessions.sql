-- Staff sessions (SPEC §5b): a reviewer's or admin's browser session after
-- the company IdP's sign-in. id_hash is the hex SHA-256 of the session id
-- the cookie carries; the id itself is never stored. roles is a
-- comma-separated list.
CREATE TABLE staff_sessions (
    id_hash    TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    roles      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX staff_sessions_expires ON staff_sessions (expires_at);
