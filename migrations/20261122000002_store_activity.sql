-- Read model of the `store_activity` projection: how much has happened in each store.
-- The `_shadow` twin is where a rebuild replays the log before the two are swapped.
CREATE TABLE store_activity (
    store_id         uuid        PRIMARY KEY,
    events_total     bigint      NOT NULL,
    last_event_type  text        NOT NULL,
    last_position    bigint      NOT NULL,
    last_recorded_at timestamptz NOT NULL
);

CREATE TABLE store_activity_shadow (LIKE store_activity INCLUDING ALL);
