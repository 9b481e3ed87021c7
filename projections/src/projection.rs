use std::future::Future;

use futures::{FutureExt, future::BoxFuture};
use schemas::RecordedEvent;
use sqlx::PgConnection;

/// Which copy of a projection's tables to write: the live ones readers see, or the
/// shadow twins a rebuild fills before they are swapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Live,
    Shadow,
}

/// A read model. `apply` is called inside the transaction that also moves the
/// checkpoint, with events in log order that it has not seen before; it must ignore
/// event types it does not use. Every projection sees the whole stream, so a gap in
/// positions always means missing messages and is filled from the log.
pub trait Projection: Send + Sync + 'static {
    /// Names its checkpoint row (and its durable consumer when it runs alone).
    const NAME: &'static str;
    /// The tables it owns; each has a `<table>_shadow` twin created by the migrations.
    const TABLES: &'static [&'static str];

    /// Whether `apply` may change anything for this event. A batch of none such is not
    /// applied: its checkpoint moves in memory, and in the database with the next batch
    /// that is, or once the lane is idle (a commit per batch per projection costs the
    /// write path). Reading everything is always correct, only slower.
    fn reads(&self, _event: &RecordedEvent) -> bool {
        true
    }

    fn apply(
        &self,
        conn: &mut PgConnection,
        target: Target,
        events: &[RecordedEvent],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// A projection behind a pointer, so that one projector can run several of different
/// types on the live tables.
pub(crate) trait AnyProjection: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    fn reads(&self, event: &RecordedEvent) -> bool;

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}

impl<P: Projection> AnyProjection for P {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn reads(&self, event: &RecordedEvent) -> bool {
        Projection::reads(self, event)
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Projection::apply(self, conn, Target::Live, events).boxed()
    }
}
