//! One attempt: the signed POST, its timing, and what its answer means.

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use domain::integration::Service;
use reqwest::{
    StatusCode,
    header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER},
};
use uuid::Uuid;

use crate::{
    address::AddressPolicy,
    schedule::{FailureKind, parse_retry_after},
    signing::{bound_platform_signature, platform_signature, standard_signature},
};

/// How much of a response body the log keeps.
const EXCERPT_BYTES: usize = 1024;
pub(crate) const ERROR_BYTES: usize = 500;

/// A delivery taken from the queue for one attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub claim: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub endpoint_id: Uuid,
    pub trigger: String,
    pub body: String,
    /// This attempt's number, from 1.
    pub attempt: i32,
    pub max_attempts: i32,
}

/// Where and how to send it, as the endpoint stands now.
#[derive(Debug, Clone)]
pub struct Destination {
    /// `None` for a service the platform has no address for (any more).
    pub url: Option<String>,
    /// The platform's service it is, or `None` for a merchant's webhook.
    pub service: Option<Service>,
    /// Keys of the current secret and, during a rotation, the previous one.
    pub keys: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Failed(FailureKind),
    /// 410: the endpoint is gone and its integration is disabled.
    Gone,
}

#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub status_code: i32,
    pub latency_ms: i32,
    pub excerpt: Option<String>,
    pub error: Option<String>,
    pub verdict: Verdict,
    pub retry_after: Option<Duration>,
    pub attempted_at: DateTime<Utc>,
}

pub struct Sender<'a> {
    pub client: &'a reqwest::Client,
    pub addresses: &'a AddressPolicy,
    pub platform_secret: &'a [u8],
    pub legacy_platform_signature: bool,
    pub timeout: Duration,
}

impl Sender<'_> {
    pub async fn attempt(&self, message: &Claimed, destination: &Destination) -> AttemptResult {
        let attempted_at = Utc::now();
        let started = Instant::now();
        let failed = |error: String, kind: FailureKind| AttemptResult {
            status_code: 0,
            latency_ms: elapsed_ms(started),
            excerpt: None,
            error: Some(sanitized(&error, ERROR_BYTES)),
            verdict: Verdict::Failed(kind),
            retry_after: None,
            attempted_at,
        };
        let Some(url) = destination.url.as_deref() else {
            return failed(
                "the platform has no address for this service (BRIDGE_SERVICE_URLS)".into(),
                FailureKind::Other,
            );
        };
        let url = match reqwest::Url::parse(url) {
            Ok(url) => url,
            Err(e) => return failed(format!("invalid endpoint URL: {e}"), FailureKind::Other),
        };
        if let Some(refusal) = self.refusal(&url) {
            return failed(refusal, FailureKind::Other);
        }
        let request = self
            .client
            .post(url)
            .timeout(self.timeout)
            .headers(self.headers(message, destination, attempted_at.timestamp()))
            .body(message.body.clone());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => {
                return failed(
                    format!("no answer within {} s", self.timeout.as_secs_f64()),
                    FailureKind::Throttled,
                );
            }
            Err(error) => return failed(error_chain(&error), FailureKind::Other),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        let (verdict, error) = judge(status, location);
        AttemptResult {
            status_code: i32::from(status.as_u16()),
            latency_ms: elapsed_ms(started),
            excerpt: Some(sanitized_bytes(&excerpt, EXCERPT_BYTES)).filter(|e| !e.is_empty()),
            error: error.map(|error| sanitized(&error, ERROR_BYTES)),
            verdict,
            retry_after,
            attempted_at,
        }
    }

    /// A URL naming an address outright is checked here: the resolver never sees it.
    fn refusal(&self, url: &reqwest::Url) -> Option<String> {
        match url.host()? {
            url::Host::Ipv4(ip) => self.addresses.refusal(ip.into()),
            url::Host::Ipv6(ip) => self.addresses.refusal(ip.into()),
            url::Host::Domain(_) => None,
        }
    }

    fn headers(&self, message: &Claimed, destination: &Destination, timestamp: i64) -> HeaderMap {
        let body = message.body.as_bytes();
        let webhook_id = message.event_id.to_string();
        let signatures: Vec<String> = destination
            .keys
            .iter()
            .map(|key| standard_signature(key, &webhook_id, timestamp, body))
            .collect();
        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.insert(name, value);
            }
        };
        put("webhook-id", webhook_id.clone());
        put("webhook-timestamp", timestamp.to_string());
        put("webhook-signature", signatures.join(" "));
        put("x-platform-event", message.event_type.clone());
        put("x-platform-event-id", webhook_id);
        if let Some(service) = destination.service {
            put(
                "x-platform-signature-v2",
                bound_platform_signature(self.platform_secret, service.as_str(), timestamp, body),
            );
            if self.legacy_platform_signature {
                put(
                    "x-platform-signature",
                    platform_signature(self.platform_secret, body),
                );
            }
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers
    }
}

fn judge(status: StatusCode, location: Option<String>) -> (Verdict, Option<String>) {
    if status.is_success() {
        return (Verdict::Delivered, None);
    }
    if status == StatusCode::GONE {
        return (
            Verdict::Gone,
            Some("410 Gone: the integration is disabled".into()),
        );
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return (
            Verdict::Failed(FailureKind::Throttled),
            Some("429 Too Many Requests".into()),
        );
    }
    let error = if status.is_redirection() {
        format!(
            "redirect to {} not followed",
            location.unwrap_or_else(|| "nowhere".into())
        )
    } else {
        format!("HTTP {status}")
    };
    (Verdict::Failed(FailureKind::Other), Some(error))
}

fn elapsed_ms(started: Instant) -> i32 {
    i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX)
}

/// What a receiver sent, made fit for a Postgres `text`: invalid UTF-8 and NUL left
/// out, at most `max_bytes` bytes, cut at a character boundary.
pub(crate) fn sanitized_bytes(raw: &[u8], max_bytes: usize) -> String {
    let mut text = String::with_capacity(raw.len().min(max_bytes));
    for chunk in raw.utf8_chunks() {
        for character in chunk.valid().chars().filter(|c| *c != '\0') {
            if text.len() + character.len_utf8() > max_bytes {
                return text;
            }
            text.push(character);
        }
    }
    text
}

pub(crate) fn sanitized(text: &str, max_bytes: usize) -> String {
    sanitized_bytes(text.as_bytes(), max_bytes)
}

/// The error and its causes: the outermost alone says only "error sending request".
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_text_loses_nul_and_invalid_utf8_and_is_cut_at_a_character_boundary() {
        assert_eq!(sanitized_bytes(b"a\0b", 100), "ab");
        assert_eq!(sanitized_bytes(b"ok\xff\xfe fine", 100), "ok fine");
        assert_eq!(
            sanitized_bytes("\u{e9}\u{e9}\u{e9}".as_bytes(), 5),
            "\u{e9}\u{e9}"
        );
        let long = "x".repeat(5000);
        assert_eq!(sanitized(&long, ERROR_BYTES).len(), ERROR_BYTES);
    }
}
