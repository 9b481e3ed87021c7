-- Storefront customer accounts. The password hash lives here, never in the log: the
-- `customer.account_opened` event names the credential that is valid, so of two
-- registrations racing for one email only the one whose event committed can log in.
CREATE TABLE customer_credentials (
    id            uuid        PRIMARY KEY,
    customer_id   uuid        NOT NULL,
    store_id      uuid        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customer_credentials_by_customer ON customer_credentials (customer_id);

-- One row per customer login, as `auth_sessions` is for merchants.
CREATE TABLE customer_sessions (
    id             uuid        PRIMARY KEY,
    customer_id    uuid        NOT NULL,
    store_id       uuid        NOT NULL,
    current_jti    uuid        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    rotated_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX customer_sessions_by_customer ON customer_sessions (customer_id);
CREATE INDEX customer_sessions_rotated ON customer_sessions (rotated_at);

-- Whether a signed-in customer placed the order (rather than a guest giving the same
-- email): a shopper's order history shows only those, since an account proves nobody
-- owns the email a guest typed.
ALTER TABLE orders ADD COLUMN by_account boolean NOT NULL DEFAULT false;
ALTER TABLE orders_shadow ADD COLUMN by_account boolean NOT NULL DEFAULT false;
