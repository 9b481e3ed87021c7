//! Black-box tests of the HTTP API against the running platform (real Postgres, real
//! JetStream), one module per concern.

#![allow(clippy::unwrap_used)]

mod accounts;
mod api_keys;
mod bridge;
mod catalog;
mod checkout;
mod customers;
mod cutting_proxy;
mod envelope;
mod events;
mod export;
mod helpers;
mod integrations;
mod isolation;
mod media;
mod openapi;
mod orders;
mod payments;
mod products;
mod receiver;
mod selling;
mod storefront;
mod stores;
mod unknown_outcome;
