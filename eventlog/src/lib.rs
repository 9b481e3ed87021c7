//! The event log over PostgreSQL: appends with optimistic concurrency, idempotency and
//! uniqueness reservations batched by group commit; stream reads, snapshots and the
//! hash chain; the commit-order tailer; and the JetStream publisher.

mod append;
mod audit;
mod batch;
mod committer;
mod hash;
pub mod jetstream;
mod publisher;
mod read;
mod snapshot;

pub use append::{
    AppendError, AppendOutcome, AppendRequest, Appended, ExpectedVersion, IdempotencyClaim,
    MultiAppendOutcome, NewEvent, UniqueKey,
};
pub use audit::{LogBreak, LogVerification, verify_log};
pub use batch::{BEGIN_APPEND, KnownHeads, Parts, Reads, Written, write_batch};
pub use committer::{EventLog, GroupCommitConfig};
pub use hash::{ChainBreak, verify_stream};
pub use publisher::{Publisher, PublisherConfig, load_checkpoint as publisher_checkpoint};
pub use read::{
    LogFilter, head_position, read_after, read_event, read_filtered, read_stream, stream_position,
};
pub use snapshot::{Fold, LoadError, Loaded, load};

/// Every migration of the platform, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The channel the append transaction notifies on commit, so tailers wake at once.
pub const APPENDED_CHANNEL: &str = "dropship_events_appended";
