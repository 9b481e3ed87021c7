//! Checks every request passes before routing: a bounded URI and header block, and no
//! control characters in the path or the query string. Nothing with a NUL reaches
//! Postgres (whose `text` cannot hold one), and no route has to remember to check.

use axum::{
    extract::Request,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{ApiError, FieldError};

/// Longer than any URL the API hands out or a client needs to build.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Every header name and value together.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

pub async fn guard_request(request: Request, next: Next) -> Response {
    match refusal(&request) {
        Some(error) => error.into_response(),
        None => next.run(request).await,
    }
}

fn refusal(request: &Request) -> Option<ApiError> {
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return Some(ApiError::UriTooLong {
            limit: MAX_URI_BYTES,
        });
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Some(ApiError::HeadersTooLarge {
            limit: MAX_HEADER_BYTES,
        });
    }
    // A path with a control character names nothing.
    if percent_encoding::percent_decode_str(request.uri().path()).any(|b| b.is_ascii_control()) {
        return Some(ApiError::NotFound);
    }
    let query = request.uri().query().unwrap_or_default();
    let fields: Vec<FieldError> = form_urlencoded::parse(query.as_bytes())
        .filter(|(name, value)| has_control(name) || has_control(value))
        .map(|(name, _)| {
            FieldError::new(
                name.chars().filter(|c| !c.is_control()).collect::<String>(),
                "control_characters",
                "must not contain control characters",
            )
        })
        .collect();
    (!fields.is_empty()).then_some(ApiError::Validation(fields))
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn request(uri: &str) -> Request {
        Request::builder()
            .uri(uri)
            .body(Body::empty())
            .expect("a request")
    }

    #[test]
    fn nul_and_control_characters_are_refused_in_paths_and_queries() {
        assert!(matches!(
            refusal(&request("/api/v1/public/stores/%00")),
            Some(ApiError::NotFound)
        ));
        match refusal(&request(
            "/api/v1/public/stores/a/products?q=%00&tag=ok&x%01=1",
        )) {
            Some(ApiError::Validation(fields)) => {
                let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
                assert_eq!(names, ["q", "x"]);
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
        assert!(
            refusal(&request(
                "/api/v1/public/stores/a/products?q=caf%C3%A9+au+lait"
            ))
            .is_none()
        );
    }

    #[test]
    fn oversized_uris_and_header_blocks_are_refused() {
        let long = format!("/api/v1/public/stores/{}", "a".repeat(MAX_URI_BYTES));
        assert!(matches!(
            refusal(&request(&long)),
            Some(ApiError::UriTooLong { .. })
        ));
        let mut headers = request("/");
        headers.headers_mut().insert(
            "x-padding",
            "p".repeat(MAX_HEADER_BYTES)
                .parse()
                .expect("a header value"),
        );
        assert!(matches!(
            refusal(&headers),
            Some(ApiError::HeadersTooLarge { .. })
        ));
    }
}
