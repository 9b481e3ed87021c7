//! How fresh the read models are, learnt from the projections' `NOTIFY`s: the
//! checkpoint a read with `X-Min-Position` waits for, and the public-store cache entries
//! each projected change invalidates.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
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
    CHECKPOINT_CHANNEL, Projection,
    stores::{STORE_CHANGED_CHANNEL, Stores},
};
use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

pub const X_MIN_POSITION: HeaderName = HeaderName::from_static("x-min-position");
const PUBLIC_STORE_CAPACITY: u64 = 100_000;
const POLL_EVERY: Duration = Duration::from_secs(1);

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

#[derive(Clone)]
pub struct Freshness {
    inner: Arc<Inner>,
}

struct Inner {
    stores_checkpoint: watch::Sender<i64>,
    public_stores: Cache<String, CachedPage>,
    /// Bumped on every change notification, before the entry is invalidated; a reader
    /// that saw it move while it read does not trust what it cached (see `remember`).
    generation: AtomicU64,
    /// Set when the listening connection dropped, so `poll` empties the cache.
    reconnected: AtomicBool,
    max_wait: Duration,
}

impl Freshness {
    /// Starts listening; the listener stops with `shutdown`.
    pub async fn start(
        pool: PgPool,
        max_wait: Duration,
        shutdown: CancellationToken,
    ) -> Result<Self, sqlx::Error> {
        // Listening before reading the checkpoint: a move in between is then heard.
        let mut listener = PgListener::connect_with(&pool).await?;
        listener
            .listen_all([CHECKPOINT_CHANNEL, STORE_CHANGED_CHANNEL])
            .await?;
        let initial = projections::checkpoint(&pool, Stores::NAME).await?;
        let freshness = Self {
            inner: Arc::new(Inner {
                stores_checkpoint: watch::Sender::new(initial),
                public_stores: Cache::builder().max_capacity(PUBLIC_STORE_CAPACITY).build(),
                generation: AtomicU64::new(0),
                reconnected: AtomicBool::new(false),
                max_wait,
            }),
        };
        tokio::spawn(freshness.clone().listen(listener, shutdown.clone()));
        tokio::spawn(freshness.clone().poll(pool, shutdown));
        Ok(freshness)
    }

    /// The safety net under the notifications: once a second, the checkpoint as the
    /// database has it, and after the listener lost its connection (notifications sent
    /// meanwhile are gone) an emptied cache. By then the listener listens again.
    async fn poll(self, pool: PgPool, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(POLL_EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if self.inner.reconnected.swap(false, Ordering::SeqCst) {
                self.inner.generation.fetch_add(1, Ordering::SeqCst);
                self.inner.public_stores.invalidate_all();
            }
            match projections::checkpoint(&pool, Stores::NAME).await {
                Ok(position) => self.advance(position),
                Err(error) => warn!(%error, "cannot read the stores checkpoint"),
            }
        }
    }

    fn advance(&self, position: i64) {
        self.inner.stores_checkpoint.send_if_modified(|current| {
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
        } else if let Some((name, position)) = payload.split_once(':')
            && name == Stores::NAME
            && let Ok(position) = position.parse::<i64>()
        {
            self.advance(position);
        }
    }

    /// Returns once the `stores` read model has applied `position`, or answers 503 with
    /// `Retry-After` when that takes longer than the configured wait: stale data is
    /// never presented as fresh.
    pub async fn wait_for_stores(&self, position: Option<i64>) -> Result<(), ApiError> {
        let Some(position) = position else {
            return Ok(());
        };
        let mut receiver = self.inner.stores_checkpoint.subscribe();
        match tokio::time::timeout(self.inner.max_wait, receiver.wait_for(|at| *at >= position))
            .await
        {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::Unavailable {
                message: format!("the read model has not reached position {position} yet"),
                retry_after: Duration::from_secs(1),
            }),
        }
    }

    pub(crate) async fn cached_public_store(&self, slug: &str) -> Option<CachedPage> {
        self.inner.public_stores.get(slug).await
    }

    pub(crate) fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    /// Caches what was read while the generation was `read_at`. If a change arrived
    /// meanwhile, what was read may predate it and the entry is dropped again: the
    /// notifier bumps the generation before invalidating, so one of the two sees the
    /// other.
    pub(crate) async fn remember(&self, slug: String, page: CachedPage, read_at: u64) {
        self.inner.public_stores.insert(slug.clone(), page).await;
        if self.generation() != read_at {
            self.inner.public_stores.invalidate(&slug).await;
        }
    }
}
