-- One key per data subject (a store's customer). Personal data in events is sealed
-- with it; deleting the row erases that data from every event without touching the log.
CREATE TABLE pii_keys (
    key_id uuid PRIMARY KEY,
    store_id uuid NOT NULL,
    key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pii_keys_store ON pii_keys (store_id);
