-- Stores gain their low-stock threshold (5 until the merchant picks one).
ALTER TABLE stores ADD COLUMN low_stock_threshold integer NOT NULL DEFAULT 5;
ALTER TABLE stores_shadow ADD COLUMN low_stock_threshold integer NOT NULL DEFAULT 5;

-- Trigram matching for partial words.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Read model of the `catalog` projection. Money columns are minor units of `currency`.
CREATE TABLE catalog_products (
    id                uuid        PRIMARY KEY,
    store_id          uuid        NOT NULL,
    title             text        NOT NULL,
    slug              text        NOT NULL,
    description       text,
    price_amount      bigint      NOT NULL,
    compare_at_amount bigint,
    cost_amount       bigint,
    currency          text        NOT NULL,
    images            jsonb       NOT NULL,
    status            text        NOT NULL,
    seo_title         text,
    seo_description   text,
    tags              text[]      NOT NULL,
    category_ids      uuid[]      NOT NULL,
    -- The variants in the merchant's order, as the events describe them.
    variants          jsonb       NOT NULL,
    -- Upper-cased, for exact SKU search.
    skus              text[]      NOT NULL,
    inventory_total   bigint      NOT NULL,
    -- A product without variants does not track stock and is always in stock.
    in_stock          boolean     NOT NULL,
    search            tsvector    GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A')
        || setweight(to_tsvector('english', coalesce(description, '')), 'B')
    ) STORED,
    version           integer     NOT NULL,
    last_position     bigint      NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX catalog_products_newest ON catalog_products (store_id, created_at DESC, id DESC);
-- Counts a store's products (by status) from the index alone.
CREATE INDEX catalog_products_by_status ON catalog_products (store_id, status);
CREATE INDEX catalog_products_by_price ON catalog_products (store_id, price_amount, id);
CREATE INDEX catalog_products_by_title ON catalog_products (store_id, lower(title), id);
CREATE INDEX catalog_products_by_slug ON catalog_products (store_id, slug);
-- Plain GIN indexes: the store is checked on the rows they find, or, when the store
-- is the more selective side, the planner ANDs them with a store index. (GIN indexes
-- that lead with store_id decode the whole store's posting list on every search,
-- which made searches in a large store several times slower.)
CREATE INDEX catalog_products_search ON catalog_products USING gin (search);
CREATE INDEX catalog_products_title_trigrams ON catalog_products USING gin (title gin_trgm_ops);
CREATE INDEX catalog_products_skus ON catalog_products USING gin (skus);
CREATE INDEX catalog_products_tags ON catalog_products USING gin (tags);
CREATE INDEX catalog_products_categories ON catalog_products USING gin (category_ids);

CREATE TABLE catalog_categories (
    id            uuid        PRIMARY KEY,
    store_id      uuid        NOT NULL,
    name          text        NOT NULL,
    slug          text        NOT NULL,
    description   text,
    parent_id     uuid,
    deleted       boolean     NOT NULL DEFAULT false,
    version       integer     NOT NULL,
    last_position bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX catalog_categories_by_store ON catalog_categories (store_id, name) WHERE NOT deleted;

CREATE TABLE catalog_collections (
    id            uuid        PRIMARY KEY,
    store_id      uuid        NOT NULL,
    name          text        NOT NULL,
    slug          text        NOT NULL,
    description   text,
    product_ids   uuid[]      NOT NULL,
    deleted       boolean     NOT NULL DEFAULT false,
    version       integer     NOT NULL,
    last_position bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX catalog_collections_by_store ON catalog_collections (store_id, name) WHERE NOT deleted;
CREATE INDEX catalog_collections_by_product ON catalog_collections USING gin (product_ids) WHERE NOT deleted;

CREATE TABLE catalog_products_shadow (LIKE catalog_products INCLUDING ALL);
CREATE TABLE catalog_categories_shadow (LIKE catalog_categories INCLUDING ALL);
CREATE TABLE catalog_collections_shadow (LIKE catalog_collections INCLUDING ALL);
