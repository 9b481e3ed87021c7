-- Read model of the `stores` projection: what the query API lists and shows. The
-- `_shadow` twin is where a rebuild replays the log before the two are swapped.
CREATE TABLE stores (
    id            uuid        PRIMARY KEY,
    owner_id      uuid        NOT NULL,
    name          text        NOT NULL,
    slug          text        NOT NULL,
    niche         text,
    description   text,
    currency      text        NOT NULL,
    status        text        NOT NULL,
    version       integer     NOT NULL,
    last_position bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
-- A merchant's list, newest first, deleted stores left out.
CREATE INDEX stores_by_owner ON stores (owner_id, created_at DESC, id) WHERE status <> 'deleted';
-- The public storefront lookup. Not unique: slugs are unique among live stores through
-- their reservations, and a deleted store keeps the slug it released.
CREATE INDEX stores_by_slug ON stores (slug) WHERE status = 'active';

CREATE TABLE stores_shadow (LIKE stores INCLUDING ALL);
