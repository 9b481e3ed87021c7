//! Wire types shared by every part of the platform: the event envelope, the versioned
//! event payloads and their postcard encoding.

pub mod api;
pub mod catalog;
mod catalogue;
pub mod customer;
mod envelope;
mod error;
pub mod integration;
pub mod merchant;
pub mod order;
pub mod pii;
pub mod product;
pub mod public;
pub mod store;

pub use catalogue::{CATALOGUE, Event};
pub use envelope::{EventMetadata, RecordedEvent};
pub use error::{DecodeError, EncodeError};
