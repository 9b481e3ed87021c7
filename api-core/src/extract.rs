use axum::{
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts},
};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{ApiError, FieldError};

/// The largest JSON body the APIs read; anything longer is a 413.
pub const BODY_LIMIT: usize = 256 * 1024;

/// A JSON body whose every failure is answered in the envelope: 415 for another content
/// type, 413 over [`BODY_LIMIT`], 400 for malformed JSON, 422 naming the field whose
/// value has the wrong shape. `raw` is kept for request fingerprints.
#[derive(Debug)]
pub struct ApiJson<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType {
                expected: "application/json",
            });
        }
        let raw = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge { limit: BODY_LIMIT }
                } else {
                    ApiError::Malformed(rejection.body_text())
                }
            })?;
        let value = parse_json(&raw)?;
        if let Some(field) = nul_in_strings(&raw) {
            return Err(ApiError::Validation(vec![FieldError::new(
                field,
                "control_characters",
                "must not contain NUL",
            )]));
        }
        Ok(Self { value, raw })
    }
}

/// Where a JSON body carries a NUL (`\u0000`) in a string, which no `text` column can
/// hold: the path of the first such value or key. Found by a scan of the raw bytes, so
/// only a body that has one is parsed a second time, to name the field.
fn nul_in_strings(raw: &[u8]) -> Option<String> {
    let escaped_nul = raw.windows(6).enumerate().any(|(at, window)| {
        window.eq_ignore_ascii_case(b"\\u0000")
            && raw[..at].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0
    });
    if !escaped_nul {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(raw).ok()?;
    Some(nul_path(&value, String::new()).unwrap_or_default())
}

fn nul_path(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(text) if text.contains('\0') => Some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(name, field)| {
            let inner = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            if name.contains('\0') {
                return Some(inner);
            }
            nul_path(field, inner)
        }),
        _ => None,
    }
}

fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = data_error_message(&inner);
                let parent = if path == "." { String::new() } else { path };
                let field_error = if let Some(name) = missing_field(&message) {
                    let field = match parent.is_empty() {
                        true => name.to_owned(),
                        false => format!("{parent}.{name}"),
                    };
                    FieldError::new(field, "required", "is required")
                } else if is_unknown_field(&message) {
                    // The path already ends with the unknown field's name.
                    FieldError::new(parent, "unknown_field", message)
                } else {
                    FieldError::new(parent, "invalid_type", message)
                };
                ApiError::Validation(vec![field_error])
            }
            _ => malformed(&inner),
        }
    })?;
    deserializer.end().map_err(|error| malformed(&error))?;
    Ok(value)
}

fn malformed(error: &serde_json::Error) -> ApiError {
    ApiError::Malformed(format!("the body is not valid JSON: {error}"))
}

/// serde reports a missing field at its parent's path, naming it only in the message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

fn is_unknown_field(message: &str) -> bool {
    message.starts_with("unknown field `")
}

/// serde's message without its " at line 1 column 9" suffix, which only helps humans
/// reading raw JSON.
fn data_error_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// A query string, with malformed values answered as 422 naming the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                let field = error.path().to_string();
                ApiError::Validation(vec![FieldError::new(
                    field,
                    "invalid_parameter",
                    error.into_inner().to_string(),
                )])
            })
    }
}

/// A resource id from the path. Something that is not an id names nothing, so it is a
/// 404 like any other missing resource.
pub fn resource_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        name: String,
    }

    fn fields(error: ApiError) -> Vec<FieldError> {
        match error {
            ApiError::Validation(fields) => fields,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_their_field_or_are_malformed() {
        let missing = fields(parse_json::<Body>(br#"{"count": 1}"#).expect_err("missing"));
        assert_eq!(
            (missing[0].field.as_str(), missing[0].code.as_str()),
            ("name", "required")
        );
        let unknown =
            fields(parse_json::<Strict>(br#"{"name": "a", "nmae": "b"}"#).expect_err("unknown"));
        assert_eq!(
            (unknown[0].field.as_str(), unknown[0].code.as_str()),
            ("nmae", "unknown_field")
        );
        let wrong =
            fields(parse_json::<Body>(br#"{"name": "a", "count": -1}"#).expect_err("wrong"));
        assert_eq!(wrong[0].field, "count");
        assert!(matches!(
            parse_json::<Body>(b"{\"name\": "),
            Err(ApiError::Malformed(_))
        ));
        assert!(matches!(
            parse_json::<Body>(br#"{"name": "a", "count": 1} trailing"#),
            Err(ApiError::Malformed(_))
        ));
    }

    #[test]
    fn a_nul_in_any_string_is_found_and_named_but_an_escaped_backslash_is_not_one() {
        assert_eq!(
            nul_in_strings(br#"{"name": "a\u0000b"}"#).as_deref(),
            Some("name")
        );
        assert_eq!(
            nul_in_strings(br#"{"variants": [{"sku": "ok"}, {"sku": "\u0000"}]}"#).as_deref(),
            Some("variants[1].sku")
        );
        assert_eq!(nul_in_strings(br#"{"name": "a\\u0000b"}"#), None);
        assert_eq!(nul_in_strings(br#"{"name": "plain"}"#), None);
    }
}
