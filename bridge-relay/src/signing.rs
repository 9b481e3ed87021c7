//! The signatures of a delivery (DESIGN §5): for the platform's services
//! `X-Platform-Signature-V2` (bound to a time and the service) and, while services
//! migrate, the legacy `X-Platform-Signature`; for every endpoint the Standard Webhooks signature,
//! `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the integration's `whsec_` secret.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes keys of any length; the error type exists for fixed-size MACs.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The legacy `X-Platform-Signature`: the body alone, so a captured delivery verifies
/// forever and anywhere. Kept while the services move to [`bound_platform_signature`].
pub fn platform_signature(platform_secret: &[u8], body: &[u8]) -> String {
    hex::encode(hmac(platform_secret, &[body]))
}

/// `X-Platform-Signature-V2`: `t=<unix seconds>,service=<name>,v1=<hex HMAC-SHA256 of
/// "<t>.<name>.<body>">` under the platform's secret. A service checks that `service`
/// is itself and `t` is recent, so a captured delivery cannot be replayed to another
/// service or later.
pub fn bound_platform_signature(
    platform_secret: &[u8],
    service: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let timestamp = timestamp.to_string();
    let signed = hmac(
        platform_secret,
        &[timestamp.as_bytes(), b".", service.as_bytes(), b".", body],
    );
    format!("t={timestamp},service={service},v1={}", hex::encode(signed))
}

/// One `v1,<base64>` signature; several are joined with spaces during a rotation.
pub fn standard_signature(key: &[u8], webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
    let signed = hmac(
        key,
        &[
            webhook_id.as_bytes(),
            b".",
            timestamp.to_string().as_bytes(),
            b".",
            body,
        ],
    );
    format!("v1,{}", STANDARD.encode(signed))
}

/// A new integration secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_` secret.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX)?)
        .ok()
        .filter(|key| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_reference_vector_verifies() {
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a secret");
        assert_eq!(
            standard_signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn new_secrets_carry_32_random_bytes() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(secret_key(&a).map(|k| k.len()), Some(32));
        assert_eq!(secret_key("no-prefix"), None);
    }

    #[test]
    fn the_platform_signature_is_hex_hmac_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            platform_signature(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
