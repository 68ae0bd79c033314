-- Operation grants, and the security-center authenticator as a device type.

-- Single-use permissions for one sensitive operation. The id is the SHA-256
-- of the grant token; the token itself is never stored.
CREATE TABLE grants (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    device_id  TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX grants_expires ON grants (expires_at);

-- The platform's security-center app is a device type of its own. SQLite
-- cannot change a CHECK constraint in place, so the devices table is
-- rebuilt (https://www.sqlite.org/lang_altertable.html#otheralter): create
-- the new table, copy the rows, drop the old one, rename, then recreate its
-- indexes (it has no triggers or views). No foreign key refers to devices,
-- so foreign_keys may stay on, and Migrate's transaction makes it atomic.
CREATE TABLE devices_new (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL,
    type           TEXT NOT NULL CHECK (type IN ('virtual', 'hardware', 'security_center')),
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
