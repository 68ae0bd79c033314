-- MFA devices, protection settings, the hardware token inventory, SMS
-- challenges and failure budgets. No foreign key to accounts: in production
-- the account directory is another service.

CREATE TABLE devices (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL,
    type           TEXT NOT NULL CHECK (type IN ('virtual', 'hardware')),
    name           TEXT NOT NULL DEFAULT '',
    serial         TEXT,
    secret_key_id  TEXT NOT NULL,
    sealed_secret  BLOB NOT NULL,
    algorithm      TEXT NOT NULL,
    digits         INTEGER NOT NULL,
    period_seconds INTEGER NOT NULL,
    last_step      INTEGER NOT NULL DEFAULT 0,
    drift          INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'active', 'revoked')),
    created_at     INTEGER NOT NULL,
    bound_at       INTEGER,
    last_used_at   INTEGER,
    revoked_at     INTEGER
) STRICT;
CREATE INDEX devices_account ON devices (account_id, created_at);
-- A card is on at most one live device.
CREATE UNIQUE INDEX devices_live_serial ON devices (serial) WHERE serial IS NOT NULL AND status <> 'revoked';

CREATE TABLE protection (
    account_id TEXT PRIMARY KEY,
    login      INTEGER NOT NULL,
    operation  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE hardware_tokens (
    serial         TEXT PRIMARY KEY,
    seed_key_id    TEXT NOT NULL,
    sealed_seed    BLOB NOT NULL,
    algorithm      TEXT NOT NULL,
    digits         INTEGER NOT NULL,
    period_seconds INTEGER NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('unassigned', 'bound', 'revoked')),
    account_id     TEXT,
    device_id      TEXT,
    batch_id       TEXT NOT NULL DEFAULT '',
    imported_at    INTEGER NOT NULL,
    bound_at       INTEGER,
    CHECK ((state = 'bound') = (account_id IS NOT NULL AND device_id IS NOT NULL))
) STRICT;
CREATE INDEX hardware_tokens_account ON hardware_tokens (account_id) WHERE account_id IS NOT NULL;

CREATE TABLE sms_challenges (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    code_hash  BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    tries_left INTEGER NOT NULL CHECK (tries_left >= 0),
    used_at    INTEGER
) STRICT;
CREATE INDEX sms_challenges_account ON sms_challenges (account_id, created_at);

CREATE TABLE failure_budgets (
    account_id   TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    locked_until INTEGER,
    hard         INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
