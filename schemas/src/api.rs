//! Request and response bodies of the HTTP APIs, shared by the command side, the query
//! side and the OpenAPI document. Requests keep raw types: the command API parses them
//! into the domain's value objects and answers 422 for each field that does not parse.

pub mod accounts;
pub mod stores;
