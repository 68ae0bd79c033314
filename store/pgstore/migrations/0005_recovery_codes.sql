-- Recovery codes (SPEC §6b): single-use codes of an account, stored only as
-- keyed hashes (HMAC-SHA256 with a key derived from the key ring's key_id).
CREATE TABLE recovery_codes (
    id         text PRIMARY KEY,
    account_id text NOT NULL,
    key_id     text NOT NULL,
    hash       bytea NOT NULL,
    created_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX recovery_codes_account ON recovery_codes (account_id, created_at, id);
