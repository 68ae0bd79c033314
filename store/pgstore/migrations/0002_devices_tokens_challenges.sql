-- MFA devices, protection settings, the hardware token inventory, SMS
-- challenges and failure budgets. No foreign key to accounts: in production
-- the account directory is another service.

CREATE TABLE devices (
    id             text PRIMARY KEY,
    account_id     text NOT NULL,
    type           text NOT NULL CHECK (type IN ('virtual', 'hardware')),
    name           text NOT NULL DEFAULT '',
    serial         text,
    secret_key_id  text NOT NULL,
    sealed_secret  bytea NOT NULL,
    algorithm      text NOT NULL,
    digits         integer NOT NULL,
    period_seconds integer NOT NULL,
    last_step      bigint NOT NULL DEFAULT 0,
    drift          bigint NOT NULL DEFAULT 0,
    status         text NOT NULL CHECK (status IN ('pending', 'active', 'revoked')),
    created_at     timestamptz NOT NULL,
    bound_at       timestamptz,
    last_used_at   timestamptz,
    revoked_at     timestamptz
);
CREATE INDEX devices_account ON devices (account_id, created_at);
-- A card is on at most one live device.
CREATE UNIQUE INDEX devices_live_serial ON devices (serial) WHERE serial IS NOT NULL AND status <> 'revoked';

CREATE TABLE protection (
    account_id text PRIMARY KEY,
    login      boolean NOT NULL,
    operation  boolean NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE hardware_tokens (
    serial         text PRIMARY KEY,
    seed_key_id    text NOT NULL,
    sealed_seed    bytea NOT NULL,
    algorithm      text NOT NULL,
    digits         integer NOT NULL,
    period_seconds integer NOT NULL,
    state          text NOT NULL CHECK (state IN ('unassigned', 'bound', 'revoked')),
    account_id     text,
    device_id      text,
    batch_id       text NOT NULL DEFAULT '',
    imported_at    timestamptz NOT NULL,
    bound_at       timestamptz,
    CHECK ((state = 'bound') = (account_id IS NOT NULL AND device_id IS NOT NULL))
);
CREATE INDEX hardware_tokens_account ON hardware_tokens (account_id) WHERE account_id IS NOT NULL;

CREATE TABLE sms_challenges (
    id         text PRIMARY KEY,
    account_id text NOT NULL,
    purpose    text NOT NULL,
    code_hash  bytea NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    tries_left integer NOT NULL CHECK (tries_left >= 0),
    used_at    timestamptz
);
CREATE INDEX sms_challenges_account ON sms_challenges (account_id, created_at);

CREATE TABLE failure_budgets (
    account_id   text PRIMARY KEY,
    failures     integer NOT NULL,
    locked_until timestamptz,
    hard         boolean NOT NULL,
    updated_at   timestamptz NOT NULL
);
