-- Credentials stay out of the event log, which every subscriber receives: these tables
-- are the command API's own. A merchant's existence and email live in the log
-- (`merchant.registered`, with the email reserved in `unique_keys`).

CREATE TABLE merchant_credentials (
    merchant_id   uuid        PRIMARY KEY,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per login: a family of refresh tokens of which only `current_jti` is valid.
-- Presenting an older one means it leaked, and the whole family is revoked.
CREATE TABLE auth_sessions (
    id             uuid        PRIMARY KEY,
    merchant_id    uuid        NOT NULL,
    current_jti    uuid        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    rotated_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX auth_sessions_merchant ON auth_sessions (merchant_id);

-- Only the SHA-256 of a key is kept; the key itself is shown once, at creation.
CREATE TABLE api_keys (
    id          uuid        PRIMARY KEY,
    merchant_id uuid        NOT NULL,
    name        text        NOT NULL,
    prefix      text        NOT NULL,
    key_sha256  bytea       NOT NULL UNIQUE,
    scopes      text[]      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id, created_at);
