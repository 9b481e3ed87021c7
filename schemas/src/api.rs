//! Request and response bodies of the HTTP APIs, shared by the command side, the query
//! side and the OpenAPI document. Requests keep raw types: the command API parses them
//! into the domain's value objects and answers 422 for each field that does not parse.

pub mod accounts;
pub mod bridge;
pub mod catalog;
pub mod customers;
pub mod orders;
pub mod products;
pub mod stores;

use serde::{Deserialize, Deserializer};

/// Tells a field sent as `null` (`Some(None)`) from one not sent (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
