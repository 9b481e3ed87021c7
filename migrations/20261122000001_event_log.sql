-- The event log: the source of truth. Positions are drawn under the append lock
-- (see docs/decisions.md), so position order is commit order and has no gaps.
CREATE TABLE events (
    position       bigint      PRIMARY KEY,
    stream_id      text        NOT NULL,
    version        integer     NOT NULL CHECK (version >= 1),
    event_id       uuid        NOT NULL UNIQUE,
    event_type     text        NOT NULL,
    schema_version smallint    NOT NULL,
    store_id       uuid,
    payload        bytea       NOT NULL,
    metadata       jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL,
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    hash           bytea       NOT NULL,
    UNIQUE (stream_id, version)
);

-- Cross-aggregate uniqueness (email, store slug, SKU in a store): a reservation row
-- written in the same transaction as the events that claim it.
CREATE TABLE unique_keys (
    scope       text        NOT NULL,
    value       text        NOT NULL,
    stream_id   text        NOT NULL,
    reserved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, value)
);

-- A write's Idempotency-Key with the response it produced, stored with its events.
CREATE TABLE idempotency_keys (
    scope               text        NOT NULL,
    key                 text        NOT NULL,
    request_fingerprint bytea       NOT NULL,
    response            jsonb       NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

CREATE TABLE snapshots (
    stream_id     text        PRIMARY KEY,
    version       integer     NOT NULL,
    state_version smallint    NOT NULL,
    state         bytea       NOT NULL,
    taken_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per projection: the log position it has applied, moved in the same
-- transaction as its rows.
CREATE TABLE projection_checkpoints (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The publisher's progress per JetStream stream (several platforms may share a NATS).
CREATE TABLE publisher_checkpoints (
    stream_name text        PRIMARY KEY,
    position    bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
