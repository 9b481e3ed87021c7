//! Read models built from the event stream: the projector runtime (durable JetStream
//! consumers, batches applied with their checkpoint in one transaction), the rebuild
//! path, and the projections themselves.

pub mod catalog;
mod checkpoint;
mod projection;
mod rebuild;
mod runtime;
pub mod store_activity;
pub mod stores;

pub use checkpoint::{CHECKPOINT_CHANNEL, checkpoint, lag};
pub use projection::{Projection, Target};
pub use rebuild::{RebuildError, RebuildReport, rebuild};
pub use runtime::{ProjectorConfig, run_projector};
