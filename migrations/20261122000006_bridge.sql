-- The bridge relay: integrations as the relay routes them, their signing secrets, the
-- durable delivery queue and the log of every attempt (DESIGN §5).

-- Written by the command API before the event naming the secret is appended; never in
-- an event, so never on the stream.
CREATE TABLE integration_secrets (
    id uuid PRIMARY KEY,
    integration_id uuid NOT NULL,
    secret text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The relay's view of every integration, applied from the stream in the same
-- transaction as the deliveries it routes (so routing sees exactly the integrations
-- that existed at the event's position).
CREATE TABLE bridge_endpoints (
    id uuid PRIMARY KEY,
    store_id uuid NOT NULL,
    target text NOT NULL,
    url text NOT NULL,
    event_types text[] NOT NULL,
    description text,
    enabled boolean NOT NULL,
    disabled_reason text,
    secret_id uuid NOT NULL,
    previous_secret_id uuid,
    previous_secret_until timestamptz,
    version integer NOT NULL,
    connected_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX bridge_endpoints_store ON bridge_endpoints (store_id);

-- One delivery of one event to one endpoint, and where it stands. `trigger` is
-- `scheduled` (routed by the relay, retried on the schedule) or `manual` (one attempt
-- asked for through the API).
CREATE TABLE bridge_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    store_id uuid NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    event_at timestamptz NOT NULL,
    endpoint_id uuid NOT NULL,
    target text NOT NULL,
    trigger text NOT NULL,
    -- pending | delivering | succeeded | exhausted | cancelled
    state text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    claim uuid,
    lease_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
-- A queue: every row is updated twice within seconds of its insert. Vacuumed and
-- analyzed often, so dead index entries and stale estimates do not pile up.
ALTER TABLE bridge_messages SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01,
    autovacuum_analyze_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);
CREATE UNIQUE INDEX bridge_messages_routed ON bridge_messages (event_id, endpoint_id)
    WHERE trigger = 'scheduled';
CREATE INDEX bridge_messages_due ON bridge_messages (next_attempt_at, endpoint_id)
    WHERE state = 'pending';
CREATE INDEX bridge_messages_leased ON bridge_messages (lease_until)
    WHERE state = 'delivering';
-- Few rows each: what redelivery looks for, and manual deliveries by event.
CREATE INDEX bridge_messages_failed ON bridge_messages (target, store_id)
    WHERE state IN ('exhausted', 'cancelled');
CREATE INDEX bridge_messages_manual ON bridge_messages (event_id, endpoint_id)
    WHERE trigger = 'manual';

-- What a delivery sends, once per event however many endpoints it goes to.
CREATE TABLE bridge_bodies (
    event_id uuid PRIMARY KEY,
    body text NOT NULL
);

-- BridgeDelivery: one row per attempt, kept for the dashboard and auditors.
CREATE TABLE bridge_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id bigint NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    store_id uuid NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    endpoint_id uuid NOT NULL,
    service text NOT NULL,
    attempt integer NOT NULL,
    trigger text NOT NULL,
    -- 0 when no HTTP answer came (refused, unreachable, timed out, relay stopped).
    status_code integer NOT NULL,
    latency_ms integer NOT NULL,
    response_excerpt text,
    error text,
    success boolean NOT NULL,
    attempted_at timestamptz NOT NULL
);
CREATE INDEX bridge_deliveries_store_time ON bridge_deliveries (store_id, attempted_at DESC);
CREATE INDEX bridge_deliveries_resource ON bridge_deliveries (resource_type, resource_id);
CREATE INDEX bridge_deliveries_message ON bridge_deliveries (message_id);

-- Events the relay owes the log (an exhausted delivery, an endpoint that answered
-- 410), recorded with the attempt that caused them and appended by a sweeper, so a
-- crash between the two loses neither.
CREATE TABLE bridge_notices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL,
    endpoint_id uuid NOT NULL,
    store_id uuid NOT NULL,
    message_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
