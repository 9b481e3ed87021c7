//! Black-box tests of the HTTP API against the running platform (real Postgres, real
//! JetStream), one module per concern.

#![allow(clippy::unwrap_used)]

mod accounts;
mod api_keys;
mod envelope;
mod helpers;
mod isolation;
mod openapi;
mod stores;
