use thiserror::Error;

/// Why bytes from the log or the stream could not be turned into a typed value.
/// Always a value, never a panic: a bad message is reported and skipped by its caller.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unknown event type `{0}`")]
    UnknownEventType(String),
    #[error("event type `{event_type}` has no schema version {schema_version}")]
    UnknownSchemaVersion {
        event_type: String,
        schema_version: u16,
    },
    #[error("{what} does not decode: {reason}")]
    Malformed { what: &'static str, reason: String },
}

impl DecodeError {
    pub(crate) fn malformed(what: &'static str, reason: impl ToString) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}

#[derive(Debug, Error)]
#[error("cannot encode {what}: {reason}")]
pub struct EncodeError {
    pub what: &'static str,
    pub reason: String,
}

/// Decodes postcard strictly: trailing bytes mean the writer and reader disagree on the
/// shape, which must surface rather than silently drop data.
pub(crate) fn decode_exact<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| DecodeError::malformed(what, e))?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(DecodeError::malformed(
            what,
            format!("{} trailing bytes", rest.len()),
        ))
    }
}

pub(crate) fn encode<T: serde::Serialize>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, EncodeError> {
    postcard::to_allocvec(value).map_err(|e| EncodeError {
        what,
        reason: e.to_string(),
    })
}
