-- Recovery codes (SPEC §6b): single-use codes of an account, stored only as
-- keyed hashes (HMAC-SHA256 with a key derived from the key ring's key_id).
CREATE TABLE recovery_codes (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    hash       BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX recovery_codes_account ON recovery_codes (account_id, created_at, id);
