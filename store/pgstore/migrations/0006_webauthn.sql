-- WebAuthn devices (SPEC §6c): security keys and passkeys. A webauthn
-- device has no sealed secret (its key id is empty); its credential is a
-- row of webauthn_credentials. Assertion challenges are single use.
ALTER TABLE devices DROP CONSTRAINT devices_type_check;
ALTER TABLE devices ADD CONSTRAINT devices_type_check
    CHECK (type IN ('virtual', 'hardware', 'security_center', 'webauthn'));

CREATE TABLE webauthn_credentials (
    device_id        text PRIMARY KEY,
    account_id       text NOT NULL,
    credential_id    bytea NOT NULL UNIQUE,
    user_handle      bytea NOT NULL,
    public_key       bytea NOT NULL,
    sign_count       bigint NOT NULL CHECK (sign_count >= 0),
    aaguid           bytea NOT NULL,
    transports       text NOT NULL DEFAULT '',
    backup_eligible  boolean NOT NULL,
    backup_state     boolean NOT NULL,
    user_verified    boolean NOT NULL,
    attestation_type text NOT NULL DEFAULT ''
);
CREATE INDEX webauthn_credentials_account ON webauthn_credentials (account_id);

CREATE TABLE webauthn_challenges (
    id         text PRIMARY KEY,
    account_id text NOT NULL,
    purpose    text NOT NULL,
    action     text NOT NULL DEFAULT '',
    resource   text NOT NULL DEFAULT '',
    session    bytea NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX webauthn_challenges_expires ON webauthn_challenges (expires_at);
