-- The index of unbind appeals, and rate-limit counters shared by the API
-- replicas.

-- An appeal as the API looks it up. The UnbindAppeal workflow holds its
-- state and the applicant's data; this row holds no PII. token_hash is the
-- SHA-256 of the applicant's access token; the token itself is never stored.
CREATE TABLE appeals (
    id             text PRIMARY KEY,
    account_id     text NOT NULL,
    applicant_type text NOT NULL,
    token_hash     text NOT NULL,
    status         text NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    closed_at      timestamptz,
    CONSTRAINT appeals_token_hash_key UNIQUE (token_hash)
);
-- An account has at most one open appeal.
CREATE UNIQUE INDEX appeals_open_account ON appeals (account_id) WHERE closed_at IS NULL;
CREATE INDEX appeals_account ON appeals (account_id, created_at DESC, id DESC);
CREATE INDEX appeals_status ON appeals (status, created_at DESC, id DESC);
CREATE INDEX appeals_created ON appeals (created_at DESC, id DESC);

-- Fixed-window counters: hits of key in [window_start, window_end).
CREATE TABLE rate_limits (
    key          text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    hits         integer NOT NULL,
    PRIMARY KEY (key, window_start, window_end)
);
CREATE INDEX rate_limits_end ON rate_limits (window_end);
