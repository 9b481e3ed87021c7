//! Read models built from the event stream: the projector runtime (one durable JetStream
//! consumer fanned out to every projection, each applying batches with its checkpoint in
//! one transaction), the rebuild path, and the projections themselves.

pub mod catalog;
mod checkpoint;
pub mod orders;
mod projection;
mod rebuild;
mod runtime;
pub mod store_activity;
pub mod stores;

pub use checkpoint::{checkpoint, checkpoints, lag};
pub use projection::{Projection, Target};
pub use rebuild::{RebuildError, RebuildReport, rebuild};
pub use runtime::{Projector, ProjectorConfig, run_projector};
