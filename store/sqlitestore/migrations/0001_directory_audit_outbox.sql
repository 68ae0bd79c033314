-- The account directory, the append-only audit log and the notification outbox.
-- Times are INTEGER microseconds since the Unix epoch, UTC.

CREATE TABLE accounts (
    id                 TEXT PRIMARY KEY,
    type               TEXT NOT NULL,
    bound_phone        TEXT NOT NULL,
    email              TEXT NOT NULL DEFAULT '',
    real_name_verified INTEGER NOT NULL DEFAULT 0,
    real_name          TEXT NOT NULL DEFAULT '',
    id_number          TEXT NOT NULL DEFAULT '',
    company_name       TEXT NOT NULL DEFAULT '',
    company_reg_number TEXT NOT NULL DEFAULT '',
    login_method       TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;

-- A login (kind, id) belongs to at most one account.
CREATE TABLE account_logins (
    kind       TEXT NOT NULL,
    login_id   TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    PRIMARY KEY (kind, login_id)
) STRICT;
CREATE INDEX account_logins_account ON account_logins (account_id, position);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    account_id TEXT NOT NULL DEFAULT '',
    subject    TEXT NOT NULL DEFAULT '',
    remote_ip  TEXT NOT NULL DEFAULT '',
    details    TEXT
) STRICT;
CREATE INDEX audit_log_account ON audit_log (account_id, id) WHERE account_id <> '';
CREATE INDEX audit_log_subject ON audit_log (subject, id) WHERE subject <> '';

-- The audit log is append-only: no row is ever changed or removed.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE outbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    channel TEXT NOT NULL,
    to_addr TEXT NOT NULL,
    kind    TEXT NOT NULL,
    body    TEXT NOT NULL,
    data    TEXT
) STRICT;
CREATE INDEX outbox_to ON outbox (to_addr, id);
