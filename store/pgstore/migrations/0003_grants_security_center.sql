-- Operation grants, and the security-center authenticator as a device type.

-- Single-use permissions for one sensitive operation. The id is the SHA-256
-- of the grant token; the token itself is never stored.
CREATE TABLE grants (
    id         text PRIMARY KEY,
    account_id text NOT NULL,
    action     text NOT NULL,
    resource   text NOT NULL,
    device_id  text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX grants_expires ON grants (expires_at);

-- The platform's security-center app is a device type of its own.
ALTER TABLE devices DROP CONSTRAINT devices_type_check;
ALTER TABLE devices ADD CONSTRAINT devices_type_check
    CHECK (type IN ('virtual', 'hardware', 'security_center'));
-- An account has at most one live security-center authenticator.
CREATE UNIQUE INDEX devices_live_security_center ON devices (account_id)
    WHERE type = 'security_center' AND status <> 'revoked';
