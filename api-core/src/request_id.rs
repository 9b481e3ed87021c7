//! Every request has an id: the caller's `X-Request-Id` when it is a plain token, else a
//! new one. It is echoed on the answer, and the events the request appends carry it in
//! their metadata, so an auditor can go from an event to the request that caused it
//! (and a client's own logs to the events its request wrote).

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use uuid::Uuid;

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

const MAX_LENGTH: usize = 64;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Names the request for everything that runs within it, and the answer after.
pub async fn assign_request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| plain(id))
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_owned);
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER.clone(), value);
    }
    response
}

/// The id of the request this code runs for, if it runs for one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Short, and nothing that could forge a log line or a header: letters, digits, `-`,
/// `_`, `.` and `:`.
fn plain(id: &str) -> bool {
    (1..=MAX_LENGTH).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn only_plain_tokens_are_taken_from_the_caller() {
        assert!(plain("req-01J9Z.abc:7"));
        assert!(!plain(""));
        assert!(!plain(&"a".repeat(65)));
        assert!(!plain("a b"));
        assert!(!plain("a\u{0}b"));
        assert!(!plain("line\nbreak"));
    }
}
