-- Read models of the money path, kept by the `orders` projection.

-- Each order as its events fold it (`state`), with the columns lists filter and sort on.
CREATE TABLE orders (
    id uuid PRIMARY KEY,
    store_id uuid NOT NULL,
    number bigint NOT NULL,
    customer_id uuid NOT NULL,
    status text NOT NULL,
    payment_status text NOT NULL,
    fulfillment_status text NOT NULL,
    cancelled_at timestamptz,
    currency text NOT NULL,
    total bigint NOT NULL,
    paid bigint NOT NULL,
    refunded bigint NOT NULL,
    state jsonb NOT NULL,
    -- Each order.shipped / order.refunded, as recorded.
    fulfillments jsonb NOT NULL DEFAULT '[]',
    refunds jsonb NOT NULL DEFAULT '[]',
    version integer NOT NULL,
    last_position bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX orders_by_store ON orders (store_id, created_at DESC, number DESC);
CREATE UNIQUE INDEX orders_by_number ON orders (store_id, number);
CREATE INDEX orders_by_customer ON orders (customer_id, created_at DESC);
CREATE TABLE orders_shadow (LIKE orders INCLUDING ALL);

-- A store's customers: sealed contact details (opened when shown), how many orders
-- they placed and what they paid net of refunds.
CREATE TABLE customers (
    id uuid PRIMARY KEY,
    store_id uuid NOT NULL,
    email_digest text NOT NULL,
    contact jsonb NOT NULL,
    orders integer NOT NULL DEFAULT 0,
    lifetime_value bigint NOT NULL DEFAULT 0,
    last_order_at timestamptz,
    last_position bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX customers_by_store ON customers (store_id, created_at DESC);
CREATE INDEX customers_by_email ON customers (store_id, email_digest);
CREATE TABLE customers_shadow (LIKE customers INCLUDING ALL);

-- Sales per store and UTC day: payments taken and refunds given that day.
CREATE TABLE daily_sales (
    store_id uuid NOT NULL,
    day date NOT NULL,
    orders integer NOT NULL DEFAULT 0,
    gross bigint NOT NULL DEFAULT 0,
    refunds bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (store_id, day)
);
CREATE TABLE daily_sales_shadow (LIKE daily_sales INCLUDING ALL);
