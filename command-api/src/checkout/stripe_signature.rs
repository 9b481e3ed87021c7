//! `Stripe-Signature` as Stripe documents it: `t=<unix seconds>` and one or more
//! `v1=<hex HMAC-SHA256 of "<t>.<body>">` under the endpoint's signing secret (used
//! whole, `whsec_` prefix included). Any `v1` may match, so a secret being rolled
//! verifies under either; other schemes (`v0`) are ignored.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

/// How far the signed timestamp may be from now, either way.
pub const TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    #[error("the signature's timestamp is more than {TOLERANCE_SECONDS} s from now")]
    Stale,
    #[error("no v1 signature matches the payload")]
    Mismatch,
}

pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secret: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(timestamp) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let signed = signed_payload(secret, timestamp, body);
    // Each comparison runs in constant time (`verify_slice`).
    let matches = signatures
        .iter()
        .any(|candidate| signed.clone().verify_slice(candidate).is_ok());
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn signed_payload(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;
    const NOW: i64 = 1_800_000_000;

    /// The header Stripe would send for `body` at `timestamp`.
    fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
        let signature = signed_payload(secret, timestamp, body)
            .finalize()
            .into_bytes();
        format!("t={timestamp},v1={}", hex::encode(signature))
    }

    #[test]
    fn a_signature_stripe_would_send_verifies() {
        let header = sign(SECRET, NOW, BODY);
        assert_eq!(verify(Some(&header), BODY, SECRET, NOW + 10), Ok(()));
    }

    #[test]
    fn any_v1_may_match_and_v0_is_ignored() {
        let good = sign(SECRET, NOW, BODY);
        let (_, good_v1) = good.split_once(",v1=").expect("a v1 signature");
        let header = format!("t={NOW},v1={},v0={good_v1},v1={good_v1}", "ab".repeat(32));
        assert_eq!(verify(Some(&header), BODY, SECRET, NOW), Ok(()));
        let only_v0 = format!("t={NOW},v0={good_v1}");
        assert_eq!(
            verify(Some(&only_v0), BODY, SECRET, NOW),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn another_secret_or_a_changed_body_does_not_verify() {
        let header = sign(b"whsec_other", NOW, BODY);
        assert_eq!(
            verify(Some(&header), BODY, SECRET, NOW),
            Err(SignatureError::Mismatch)
        );
        let header = sign(SECRET, NOW, BODY);
        assert_eq!(
            verify(Some(&header), b"{\"id\":\"evt_2\"}", SECRET, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_timestamp_outside_five_minutes_is_refused_even_when_signed() {
        let old = sign(SECRET, NOW - 301, BODY);
        assert_eq!(
            verify(Some(&old), BODY, SECRET, NOW),
            Err(SignatureError::Stale)
        );
        let edge = sign(SECRET, NOW - 300, BODY);
        assert_eq!(verify(Some(&edge), BODY, SECRET, NOW), Ok(()));
        let future = sign(SECRET, NOW + 301, BODY);
        assert_eq!(
            verify(Some(&future), BODY, SECRET, NOW),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn garbage_headers_are_malformed_not_a_panic() {
        for header in ["", "t=", "v1=zz", "t=abc,v1=00", "t=1\0,v1=00", ",,,"] {
            assert!(verify(Some(header), BODY, SECRET, NOW).is_err(), "{header}");
        }
        assert_eq!(
            verify(None, BODY, SECRET, NOW),
            Err(SignatureError::Missing)
        );
    }
}
