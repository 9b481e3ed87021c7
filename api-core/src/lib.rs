//! What both HTTP APIs share (DESIGN §7): the response envelope, the error type and its
//! statuses, extractors that answer in that envelope (JSON bodies, query strings,
//! pagination), and authentication of bearer tokens and API keys.

pub mod auth;
mod envelope;
mod error;
mod extract;
mod guard;
pub mod media;
pub mod openapi;
mod pagination;
mod request_id;
pub mod tokens;

pub use envelope::{Data, Listed, data, listed};
pub use error::{ApiError, FieldError, api_fallback, normalise_rejections};
pub use extract::{ApiJson, ApiQuery, BODY_LIMIT, resource_id};
pub use guard::{MAX_HEADER_BYTES, MAX_URI_BYTES, guard_request};
pub use pagination::PageRequest;
pub use request_id::{REQUEST_ID_HEADER, assign_request_id, current_request_id};
