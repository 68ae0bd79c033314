-- Staff sessions (SPEC §5b): a reviewer's or admin's browser session after
-- the company IdP's sign-in. id_hash is the hex SHA-256 of the session id
-- the cookie carries; the id itself is never stored. roles is a
-- comma-separated list.
CREATE TABLE staff_sessions (
    id_hash    text PRIMARY KEY,
    subject    text NOT NULL,
    name       text NOT NULL DEFAULT '',
    roles      text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX staff_sessions_expires ON staff_sessions (expires_at);
