-- WebAuthn devices (SPEC §6c): security keys and passkeys. A webauthn
-- device has no sealed secret (its key id is empty); its credential is a
-- row of webauthn_credentials. Assertion challenges are single use.

-- The devices table is rebuilt to widen its type CHECK, as in 0003.
CREATE TABLE devices_new (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL,
    type           TEXT NOT NULL CHECK (type IN ('virtual', 'hardware', 'security_center', 'webauthn')),
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
INSERT INTO devices_new (id, account_id, type, name, serial, secret_key_id, sealed_secret, algorithm, digits,
    period_seconds, last_step, drift, status, created_at, bound_at, last_used_at, revoked_at)
SELECT id, account_id, type, name, serial, secret_key_id, sealed_secret, algorithm, digits,
    period_seconds, last_step, drift, status, created_at, bound_at, last_used_at, revoked_at
FROM devices;
DROP TABLE devices;
ALTER TABLE devices_new RENAME TO devices;
CREATE INDEX devices_account ON devices (account_id, created_at);
-- A card is on at most one live device.
CREATE UNIQUE INDEX devices_live_serial ON devices (serial) WHERE serial IS NOT NULL AND status <> 'revoked';
-- An account has at most one live security-center authenticator.
CREATE UNIQUE INDEX devices_live_security_center ON devices (account_id)
    WHERE type = 'security_center' AND status <> 'revoked';

CREATE TABLE webauthn_credentials (
    device_id        TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL,
    credential_id    BLOB NOT NULL UNIQUE,
    user_handle      BLOB NOT NULL,
    public_key       BLOB NOT NULL,
    sign_count       INTEGER NOT NULL CHECK (sign_count >= 0),
    aaguid           BLOB NOT NULL,
    transports       TEXT NOT NULL DEFAULT '',
    backup_eligible  INTEGER NOT NULL,
    backup_state     INTEGER NOT NULL,
    user_verified    INTEGER NOT NULL,
    attestation_type TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX webauthn_credentials_account ON webauthn_credentials (account_id);

CREATE TABLE webauthn_challenges (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    action     TEXT NOT NULL DEFAULT '',
    resource   TEXT NOT NULL DEFAULT '',
    session    BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX webauthn_challenges_expires ON webauthn_challenges (expires_at);
