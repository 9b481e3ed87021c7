//! The `dropship` binary's library: configuration, start-up, the roles and their
//! lifecycle. Each role's logic lives in its own crate; this only wires them.

mod api;
pub mod cli;
pub mod config;
mod http;
mod replay;
mod roles;
mod startup;
pub mod telemetry;

pub use roles::{Platform, Role};
pub use startup::StartupError;
