//! How fresh the read models are: the checkpoints a read with `X-Min-Position` waits
//! for, polled (often while someone waits), and the public cache entries each projected
//! change invalidates, learnt from the projections' `NOTIFY`s (a store's page by slug, a
//! store's catalog pages by moving that store's generation).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use api_core::ApiError;
use axum::{
    extract::FromRequestParts,
    http::{HeaderName, request::Parts},
};
use bytes::Bytes;
use moka::future::Cache;
use projections::{
    Projection,
    catalog::{CATALOG_CHANGED_CHANNEL, Catalog},
    orders::Orders,
    stores::{STORE_CHANGED_CHANNEL, Stores},
};
use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::warn;
use uuid::Uuid;

pub const X_MIN_POSITION: HeaderName = HeaderName::from_static("x-min-position");
/// What moka keeps per entry besides its key and value, roughly.
const ENTRY_OVERHEAD_BYTES: usize = 128;
/// Unchanged catalog pages still leave the cache after this; a safety net only.
const CATALOG_PAGE_TTL: Duration = Duration::from_secs(600);
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How often the checkpoints are read while a request waits for a position: about what
/// the projector lingers for a batch, so a wait ends a few milliseconds after its write
/// is applied.
const POLL_WHILE_WAITING: Duration = Duration::from_millis(5);

/// `X-Min-Position: <p>`: answer only once the read model has applied position `p`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MinPosition(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for MinPosition {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(X_MIN_POSITION) else {
            return Ok(Self(None));
        };
        value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .filter(|position| *position >= 0)
            .map(|position| Self(Some(position)))
            .ok_or_else(|| {
                ApiError::Malformed("X-Min-Position must be a position from X-Position".into())
            })
    }
}

/// A cached public answer: the serialized envelope, or `None` for "no such store".
pub type CachedPage = Option<Bytes>;

/// A cached value and the position its read model had reached before it was read, so
/// that a reader waiting for a position can trust it when it is at least that new.
#[derive(Debug, Clone)]
struct Cached<T> {
    value: T,
    position: i64,
}

/// When a read started: the notification generation and the position the read models
/// it reads had reached. Taken before reading, so what is read is at least that new.
#[derive(Debug, Clone, Copy)]
pub struct ReadStamp {
    generation: u64,
    position: i64,
}

/// How much memory the storefront caches may take, in bytes (`PUBLIC_CACHE_MB`): pages
/// get most of it, the slug lookups a tenth each.
#[derive(Debug, Clone, Copy)]
pub struct CacheBudget(pub u64);

impl CacheBudget {
    pub const DEFAULT_MB: u64 = 64;
}

fn weight(key_bytes: usize, value_bytes: usize) -> u32 {
    u32::try_from(key_bytes + value_bytes + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX)
}

fn page_bytes(page: &Cached<CachedPage>) -> usize {
    page.value.as_ref().map_or(0, Bytes::len)
}

#[derive(Clone)]
pub struct Freshness {
    inner: Arc<Inner>,
}

/// The read models a request can wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadModel {
    Stores,
    Catalog,
    /// The relay's view of integrations (`bridge_endpoints`).
    Bridge,
    /// Orders, customers and daily sales.
    Orders,
}

/// A storefront catalog page: which store, at which of its generations, which request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CatalogPageKey {
    store_id: Uuid,
    generation: u64,
    request: String,
}

struct Inner {
    stores_checkpoint: watch::Sender<i64>,
    catalog_checkpoint: watch::Sender<i64>,
    bridge_checkpoint: watch::Sender<i64>,
    orders_checkpoint: watch::Sender<i64>,
    public_stores: Cache<String, Cached<CachedPage>>,
    /// The active store a storefront slug names right now (`None`: no such store).
    store_ids: Cache<String, Cached<Option<Uuid>>>,
    catalog_pages: Cache<CatalogPageKey, Cached<CachedPage>>,
    /// Per store, the generation its catalog pages are cached under; a change moves it,
    /// so pages read before the change are never found again. Never evicted: a store
    /// whose generation was forgotten would find its oldest pages again.
    catalog_generations: moka::sync::Cache<Uuid, u64>,
    /// Source of catalog generations; also moved for every store after a reconnect.
    catalog_counter: AtomicU64,
    /// Bumped on every change notification, before the entry is invalidated; a reader
    /// that saw it move while it read does not trust what it cached (see `remember`).
    generation: AtomicU64,
    /// Set when the listening connection dropped, so `poll` empties the cache.
    reconnected: AtomicBool,
    /// Requests waiting for a checkpoint to move, and the poll's wake-up when one starts.
    waiting: AtomicUsize,
    waiter_arrived: Notify,
    max_wait: Duration,
}

impl ReadModel {
    const ALL: [Self; 4] = [Self::Stores, Self::Catalog, Self::Bridge, Self::Orders];

    fn projection(self) -> &'static str {
        match self {
            Self::Stores => Stores::NAME,
            Self::Catalog => Catalog::NAME,
            Self::Bridge => bridge_relay::NAME,
            Self::Orders => Orders::NAME,
        }
    }
}

impl Freshness {
    /// Starts listening; the listener stops with `shutdown`.
    pub async fn start(
        pool: PgPool,
        max_wait: Duration,
        budget: CacheBudget,
        shutdown: CancellationToken,
    ) -> Result<Self, sqlx::Error> {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener
            .listen_all([STORE_CHANGED_CHANNEL, CATALOG_CHANGED_CHANNEL])
            .await?;
        let [stores_at, catalog_at, bridge_at, orders_at] = read_checkpoints(&pool).await?;
        let freshness = Self {
            inner: Arc::new(Inner {
                stores_checkpoint: watch::Sender::new(stores_at),
                catalog_checkpoint: watch::Sender::new(catalog_at),
                bridge_checkpoint: watch::Sender::new(bridge_at),
                orders_checkpoint: watch::Sender::new(orders_at),
                public_stores: Cache::builder()
                    .max_capacity(budget.0 / 10)
                    .weigher(|slug: &String, page| weight(slug.len(), page_bytes(page)))
                    .build(),
                store_ids: Cache::builder()
                    .max_capacity(budget.0 / 10)
                    .weigher(|slug: &String, _| weight(slug.len(), 16))
                    .build(),
                catalog_pages: Cache::builder()
                    .max_capacity(budget.0 - 2 * (budget.0 / 10))
                    .weigher(|key: &CatalogPageKey, page| {
                        weight(key.request.len() + 24, page_bytes(page))
                    })
                    .time_to_live(CATALOG_PAGE_TTL)
                    .build(),
                catalog_generations: moka::sync::Cache::builder().build(),
                catalog_counter: AtomicU64::new(1),
                generation: AtomicU64::new(0),
                reconnected: AtomicBool::new(false),
                waiting: AtomicUsize::new(0),
                waiter_arrived: Notify::new(),
                max_wait,
            }),
        };
        tokio::spawn(freshness.clone().listen(listener, shutdown.clone()));
        tokio::spawn(freshness.clone().poll(pool, shutdown));
        Ok(freshness)
    }

    /// The checkpoints as the database has them: once a second, every few milliseconds
    /// while a request waits for one to move. After the listener lost its connection
    /// (notifications sent meanwhile are gone) also an emptied cache; by then the
    /// listener listens again.
    async fn poll(self, pool: PgPool, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.next_poll() => {}
            }
            if self.inner.reconnected.swap(false, Ordering::SeqCst) {
                self.inner.generation.fetch_add(1, Ordering::SeqCst);
                self.inner.public_stores.invalidate_all();
                self.inner.store_ids.invalidate_all();
                // Every store's pages may be stale: a new epoch for all of them.
                let epoch = self.inner.catalog_counter.fetch_add(1, Ordering::SeqCst) + 1;
                let stores: Vec<Uuid> = self
                    .inner
                    .catalog_generations
                    .iter()
                    .map(|(id, _)| *id)
                    .collect();
                for store_id in stores {
                    self.inner.catalog_generations.insert(store_id, epoch);
                }
                self.inner.catalog_pages.invalidate_all();
            }
            match read_checkpoints(&pool).await {
                Ok(positions) => {
                    for (model, position) in ReadModel::ALL.into_iter().zip(positions) {
                        self.advance(model, position);
                    }
                }
                Err(error) => warn!(%error, "cannot read the checkpoints"),
            }
        }
    }

    async fn next_poll(&self) {
        if self.inner.waiting.load(Ordering::SeqCst) == 0 {
            tokio::select! {
                () = tokio::time::sleep(POLL_EVERY) => return,
                () = self.inner.waiter_arrived.notified() => {}
            }
        }
        tokio::time::sleep(POLL_WHILE_WAITING).await;
    }

    fn checkpoint_of(&self, model: ReadModel) -> &watch::Sender<i64> {
        match model {
            ReadModel::Stores => &self.inner.stores_checkpoint,
            ReadModel::Catalog => &self.inner.catalog_checkpoint,
            ReadModel::Bridge => &self.inner.bridge_checkpoint,
            ReadModel::Orders => &self.inner.orders_checkpoint,
        }
    }

    fn advance(&self, model: ReadModel, position: i64) {
        self.checkpoint_of(model).send_if_modified(|current| {
            let moved = position > *current;
            *current = (*current).max(position);
            moved
        });
    }

    async fn listen(self, mut listener: PgListener, shutdown: CancellationToken) {
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    self.apply(notification.channel(), notification.payload())
                        .await;
                }
                // The connection dropped (it reconnects on the next call) and notifications
                // may have been missed: `poll` starts the cache over.
                Ok(None) => self.inner.reconnected.store(true, Ordering::SeqCst),
                Err(error) => {
                    warn!(%error, "read-model notifications unavailable; retrying");
                    self.inner.reconnected.store(true, Ordering::SeqCst);
                    tokio::time::sleep(POLL_EVERY).await;
                }
            }
        }
    }

    async fn apply(&self, channel: &str, payload: &str) {
        if channel == STORE_CHANGED_CHANNEL {
            self.inner.generation.fetch_add(1, Ordering::SeqCst);
            self.inner.public_stores.invalidate(payload).await;
            self.inner.store_ids.invalidate(payload).await;
        } else if channel == CATALOG_CHANGED_CHANNEL
            && let Ok(store_id) = payload.parse::<Uuid>()
        {
            let generation = self.inner.catalog_counter.fetch_add(1, Ordering::SeqCst) + 1;
            self.inner.catalog_generations.insert(store_id, generation);
        }
    }

    /// Returns once the `stores` read model has applied `position`.
    pub async fn wait_for_stores(&self, position: Option<i64>) -> Result<(), ApiError> {
        self.wait_for(&[ReadModel::Stores], position).await
    }

    /// Returns once every one of `models` has applied `position`, or answers 503 with
    /// `Retry-After` when that takes longer than the configured wait: stale data is
    /// never presented as fresh.
    pub async fn wait_for(
        &self,
        models: &[ReadModel],
        position: Option<i64>,
    ) -> Result<(), ApiError> {
        let Some(position) = position else {
            return Ok(());
        };
        let reached = |model: &ReadModel| *self.checkpoint_of(*model).borrow() >= position;
        if models.iter().all(reached) {
            return Ok(());
        }
        let _waiting = Waiting::start(&self.inner);
        let all = async {
            for model in models {
                let mut receiver = self.checkpoint_of(*model).subscribe();
                receiver.wait_for(|at| *at >= position).await.ok();
            }
        };
        tokio::time::timeout(self.inner.max_wait, all)
            .await
            .map_err(|_| ApiError::Unavailable {
                message: format!("the read model has not reached position {position} yet"),
                retry_after: Duration::from_secs(1),
            })
    }

    /// When a read of `models` starts (see [`ReadStamp`]).
    pub(crate) fn stamp(&self, models: &[ReadModel]) -> ReadStamp {
        let generation = self.generation();
        let position = models
            .iter()
            .map(|model| *self.checkpoint_of(*model).borrow())
            .min()
            .unwrap_or(0);
        ReadStamp {
            generation,
            position,
        }
    }

    /// The active store a storefront slug names, as cached at `min_position` or later.
    pub(crate) async fn cached_store_id(
        &self,
        slug: &str,
        min_position: Option<i64>,
    ) -> Option<Option<Uuid>> {
        fresh_enough(self.inner.store_ids.get(slug).await, min_position)
    }

    pub(crate) async fn remember_store_id(
        &self,
        slug: String,
        store_id: Option<Uuid>,
        read_at: ReadStamp,
    ) {
        let entry = Cached {
            value: store_id,
            position: read_at.position,
        };
        self.inner.store_ids.insert(slug.clone(), entry).await;
        if self.generation() != read_at.generation {
            self.inner.store_ids.invalidate(&slug).await;
        }
    }

    /// The key a storefront catalog page of `store_id` is cached under right now. Read
    /// it before reading the page: a change in between moves the generation, and the
    /// page lands under a key nobody asks for again.
    pub(crate) fn catalog_page_key(&self, store_id: Uuid, request: String) -> CatalogPageKey {
        CatalogPageKey {
            store_id,
            generation: self.inner.catalog_generations.get(&store_id).unwrap_or(0),
            request,
        }
    }

    pub(crate) async fn cached_catalog_page(
        &self,
        key: &CatalogPageKey,
        min_position: Option<i64>,
    ) -> Option<CachedPage> {
        fresh_enough(self.inner.catalog_pages.get(key).await, min_position)
    }

    pub(crate) async fn remember_catalog_page(
        &self,
        key: CatalogPageKey,
        page: CachedPage,
        read_at: ReadStamp,
    ) {
        let entry = Cached {
            value: page,
            position: read_at.position,
        };
        self.inner.catalog_pages.insert(key, entry).await;
    }

    pub(crate) async fn cached_public_store(
        &self,
        slug: &str,
        min_position: Option<i64>,
    ) -> Option<CachedPage> {
        fresh_enough(self.inner.public_stores.get(slug).await, min_position)
    }

    fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    /// Caches what was read at `read_at`. If a change arrived meanwhile, what was read
    /// may predate it and the entry is dropped again: the notifier bumps the generation
    /// before invalidating, so one of the two sees the other.
    pub(crate) async fn remember(&self, slug: String, page: CachedPage, read_at: ReadStamp) {
        let entry = Cached {
            value: page,
            position: read_at.position,
        };
        self.inner.public_stores.insert(slug.clone(), entry).await;
        if self.generation() != read_at.generation {
            self.inner.public_stores.invalidate(&slug).await;
        }
    }
}

/// A cached value a reader waiting for `min_position` may be given: one read after the
/// read model had applied that position. (The poll can teach the API a checkpoint
/// before the invalidation of an older entry arrives; such an entry is older than the
/// position, so it is not trusted.)
fn fresh_enough<T>(cached: Option<Cached<T>>, min_position: Option<i64>) -> Option<T> {
    cached
        .filter(|entry| entry.position >= min_position.unwrap_or(i64::MIN))
        .map(|entry| entry.value)
}

/// The checkpoints of [`ReadModel::ALL`], in its order.
async fn read_checkpoints(pool: &PgPool) -> Result<[i64; 4], sqlx::Error> {
    let names = ReadModel::ALL.map(ReadModel::projection);
    let positions = projections::checkpoints(pool, &names).await?;
    // One row per name asked for, always.
    <[i64; 4]>::try_from(positions).map_err(|_| sqlx::Error::RowNotFound)
}

/// A request waiting for a checkpoint to move, counted while it waits so that the poll
/// reads the checkpoints often meanwhile.
struct Waiting<'a>(&'a Inner);

impl<'a> Waiting<'a> {
    fn start(inner: &'a Inner) -> Self {
        inner.waiting.fetch_add(1, Ordering::SeqCst);
        inner.waiter_arrived.notify_one();
        Self(inner)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}
