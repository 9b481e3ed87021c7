-- Per-store order numbers (#1001, #1002, …): the last one handed out. A number is taken
-- before the order's append, so one whose checkout then fails is skipped, never reused.
CREATE TABLE order_numbers (
    store_id uuid PRIMARY KEY,
    last bigint NOT NULL
);

-- A checkout names variants; this finds their products.
ALTER TABLE catalog_products ADD COLUMN variant_ids jsonb
    GENERATED ALWAYS AS (jsonb_path_query_array(variants, '$[*].variant_id')) STORED;
CREATE INDEX catalog_products_variant_ids ON catalog_products USING gin (variant_ids);
ALTER TABLE catalog_products_shadow ADD COLUMN variant_ids jsonb
    GENERATED ALWAYS AS (jsonb_path_query_array(variants, '$[*].variant_id')) STORED;
CREATE INDEX catalog_products_shadow_variant_ids ON catalog_products_shadow USING gin (variant_ids);

-- What a store's checkout charges, as its last store.shipping_changed / taxes_changed say.
ALTER TABLE stores ADD COLUMN shipping jsonb NOT NULL DEFAULT '{"flat_rate": 0, "free_above": null}';
ALTER TABLE stores ADD COLUMN taxes jsonb NOT NULL DEFAULT '{"prices_include_tax": false, "rates": []}';
ALTER TABLE stores_shadow ADD COLUMN shipping jsonb NOT NULL DEFAULT '{"flat_rate": 0, "free_above": null}';
ALTER TABLE stores_shadow ADD COLUMN taxes jsonb NOT NULL DEFAULT '{"prices_include_tax": false, "rates": []}';

-- Unpaid orders and when they expire, kept by the workers' order_expiry process
-- manager from order.created / paid / cancelled / expired; the expiry job reads it.
CREATE TABLE order_deadlines (
    order_id uuid PRIMARY KEY,
    store_id uuid NOT NULL,
    due timestamptz NOT NULL,
    -- The order.created event: the expiry command's idempotency key derives from it.
    cause uuid NOT NULL
);
CREATE INDEX order_deadlines_due ON order_deadlines (due);
