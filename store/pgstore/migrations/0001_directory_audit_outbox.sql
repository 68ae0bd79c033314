-- The account directory, the append-only audit log and the notification outbox.

CREATE TABLE accounts (
    id                 text PRIMARY KEY,
    type               text NOT NULL,
    bound_phone        text NOT NULL,
    email              text NOT NULL DEFAULT '',
    real_name_verified boolean NOT NULL DEFAULT false,
    real_name          text NOT NULL DEFAULT '',
    id_number          text NOT NULL DEFAULT '',
    company_name       text NOT NULL DEFAULT '',
    company_reg_number text NOT NULL DEFAULT '',
    login_method       text NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);

-- A login (kind, id) belongs to at most one account.
CREATE TABLE account_logins (
    kind       text NOT NULL,
    login_id   text NOT NULL,
    account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    position   integer NOT NULL,
    PRIMARY KEY (kind, login_id)
);
CREATE INDEX account_logins_account ON account_logins (account_id, position);

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    outcome    text NOT NULL,
    account_id text NOT NULL DEFAULT '',
    subject    text NOT NULL DEFAULT '',
    remote_ip  text NOT NULL DEFAULT '',
    details    jsonb
);
CREATE INDEX audit_log_account ON audit_log (account_id, id) WHERE account_id <> '';
CREATE INDEX audit_log_subject ON audit_log (subject, id) WHERE subject <> '';

-- The audit log is append-only: no row is ever changed or removed.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE outbox (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    channel text NOT NULL,
    to_addr text NOT NULL,
    kind    text NOT NULL,
    body    text NOT NULL,
    data    jsonb
);
CREATE INDEX outbox_to ON outbox (to_addr, id);
