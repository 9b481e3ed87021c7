use std::future::Future;

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
/// event types it does not use. Every projection consumes the whole stream, so a gap in
/// positions always means missing messages and is filled from the log.
pub trait Projection: Send + Sync + 'static {
    /// Names its checkpoint row and its durable consumer.
    const NAME: &'static str;
    /// The tables it owns; each has a `<table>_shadow` twin created by the migrations.
    const TABLES: &'static [&'static str];

    fn apply(
        &self,
        conn: &mut PgConnection,
        target: Target,
        events: &[RecordedEvent],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}
