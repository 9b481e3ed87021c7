-- The workers role (docs/decisions.md, "Workers").

-- Periodic jobs: one row each, leased by the process running it, with its last run.
CREATE TABLE scheduled_jobs (
    name             text        PRIMARY KEY,
    schedule         text        NOT NULL,
    next_run_at      timestamptz NOT NULL,
    lease_owner      uuid,
    lease_until      timestamptz,
    -- Failed attempts of the run now due (0 after a success or after giving up).
    attempt          integer     NOT NULL DEFAULT 0,
    last_started_at  timestamptz,
    last_finished_at timestamptz,
    last_duration_ms bigint,
    -- succeeded | retrying | failed | interrupted
    last_outcome     text,
    last_detail      text,
    runs             bigint      NOT NULL DEFAULT 0,
    failures         bigint      NOT NULL DEFAULT 0
);

-- The store-deletion process manager's own state: which integrations each store has,
-- kept from the stream in the transaction that moves its checkpoint.
CREATE TABLE store_integrations (
    store_id       uuid NOT NULL,
    integration_id uuid NOT NULL,
    PRIMARY KEY (store_id, integration_id)
);

-- Deleted stores whose media is still to be removed, claimed by a housekeeping job.
CREATE TABLE deleted_store_media (
    store_id   uuid        PRIMARY KEY,
    deleted_at timestamptz NOT NULL
);

-- What the housekeeping jobs look up by age.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX bridge_messages_delivered ON bridge_messages (finished_at)
    WHERE state = 'succeeded';
CREATE INDEX auth_sessions_rotated ON auth_sessions (rotated_at);
