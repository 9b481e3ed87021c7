use std::{net::SocketAddr, path::PathBuf, time::Duration};

use rand::RngCore;

use bridge_relay::{AddressPolicy, DeliverySettings, ServiceUrls, parse_schedule};
use command_api::TrustedProxies;
use eventlog::jetstream::StreamNames;
use query_api::CacheBudget;
use thiserror::Error;

/// Settings from the environment (DESIGN §8), with defaults that fit a developer machine.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub nats_url: String,
    pub names: StreamNames,
    pub http_addr: SocketAddr,
    /// Signs merchant JWTs. Generated per process in development (tokens then die with
    /// it), required in production.
    pub jwt_secret: Secret,
    pub jwt_secret_generated: bool,
    /// How long a read with `X-Min-Position` waits before answering 503.
    pub read_your_writes_wait: Duration,
    /// Where uploaded images are kept.
    pub media_dir: PathBuf,
    /// Signs `X-Platform-Signature` on deliveries to the platform's services; generated
    /// per process in development, required in production.
    pub platform_webhook_secret: Secret,
    pub platform_webhook_secret_generated: bool,
    /// How the bridge relay delivers (`BRIDGE_*`); see the README's configuration table.
    pub bridge: DeliverySettings,
    /// Proxies whose forwarding headers name the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// Memory the storefront caches may take (`PUBLIC_CACHE_MB`).
    pub public_cache: CacheBudget,
    /// Postgres connections of this process, shared out among its roles' own pools.
    pub database_max_connections: u32,
    /// `IDEMPOTENCY_TTL_HOURS`: how long a write's answer is kept for its replays.
    pub idempotency_ttl: Duration,
    /// `BRIDGE_RETENTION_DAYS`: how long delivered webhooks and their attempts are kept.
    pub bridge_retention: Duration,
    /// `ORDER_PAYMENT_TIMEOUT_MINUTES`: how long an order waits for its payment before it
    /// expires and its stock returns.
    pub payment_timeout: Duration,
    /// `STRIPE_SECRET_KEY` with `STRIPE_RETURN_URL` (and `STRIPE_API_BASE`): checkouts are
    /// paid on Stripe Checkout Sessions; unset, on mock sessions.
    pub stripe: Option<StripeApi>,
    /// `STRIPE_WEBHOOK_SECRET`: verifies `Stripe-Signature` on `/api/v1/webhooks/stripe`,
    /// which answers 404 without it.
    pub stripe_webhook_secret: Option<Secret>,
}

/// A key from the environment: at least [`MIN_SECRET_BYTES`], generated (and said so)
/// in development when missing, required in production.
fn secret(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    production: bool,
) -> Result<(Secret, bool), ConfigError> {
    match lookup(name).filter(|v| !v.is_empty()) {
        Some(secret) if secret.len() >= MIN_SECRET_BYTES => {
            Ok((Secret(secret.into_bytes()), false))
        }
        Some(_) => Err(ConfigError {
            name,
            reason: format!("must be at least {MIN_SECRET_BYTES} bytes"),
        }),
        None if production => Err(ConfigError {
            name,
            reason: "is required when DROPSHIP_ENV=production".into(),
        }),
        None => {
            let mut secret = vec![0u8; MIN_SECRET_BYTES];
            rand::rng().fill_bytes(&mut secret);
            Ok((Secret(secret), true))
        }
    }
}

/// `name` parsed by `parse`, or `default` when it is not set.
fn setting<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    match lookup(name).filter(|v| !v.is_empty()) {
        Some(raw) => parse(&raw).map_err(|reason| ConfigError { name, reason }),
        None => Ok(default),
    }
}

fn seconds(raw: &str) -> Result<Duration, String> {
    raw.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("`{raw}` is not a positive number of seconds"))
}

fn bridge_settings(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<DeliverySettings, ConfigError> {
    let defaults = DeliverySettings::default();
    Ok(DeliverySettings {
        retry_schedule: setting(
            lookup,
            "BRIDGE_RETRY_SCHEDULE",
            defaults.retry_schedule,
            parse_schedule,
        )?,
        service_addresses: setting(
            lookup,
            "BRIDGE_ALLOWED_SUBNETS",
            defaults.service_addresses,
            AddressPolicy::parse,
        )?,
        webhook_addresses: setting(
            lookup,
            "WEBHOOK_ALLOWED_SUBNETS",
            defaults.webhook_addresses,
            AddressPolicy::parse,
        )?,
        service_urls: setting(
            lookup,
            "BRIDGE_SERVICE_URLS",
            defaults.service_urls,
            ServiceUrls::parse,
        )?,
        legacy_platform_signature: setting(
            lookup,
            "BRIDGE_LEGACY_PLATFORM_SIGNATURE",
            defaults.legacy_platform_signature,
            |raw| match raw {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!("`{raw}` must be `true` or `false`")),
            },
        )?,
        throttle_wait: setting(
            lookup,
            "BRIDGE_THROTTLE_WAIT_SECS",
            defaults.throttle_wait,
            seconds,
        )?,
        timeout: setting(lookup, "BRIDGE_TIMEOUT_SECS", defaults.timeout, seconds)?,
        endpoint_concurrency: setting(
            lookup,
            "BRIDGE_ENDPOINT_CONCURRENCY",
            defaults.endpoint_concurrency,
            at_least_one,
        )?,
        endpoint_rate: setting(
            lookup,
            "BRIDGE_ENDPOINT_RATE",
            defaults.endpoint_rate,
            |raw| {
                raw.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 1.0)
                    .ok_or_else(|| format!("`{raw}` must be a number of at least 1"))
            },
        )?,
        circuit_cooldown: setting(
            lookup,
            "BRIDGE_CIRCUIT_COOLDOWN_SECS",
            defaults.circuit_cooldown,
            seconds,
        )?,
        max_in_flight: setting(
            lookup,
            "BRIDGE_MAX_IN_FLIGHT",
            defaults.max_in_flight,
            at_least_one,
        )?,
    })
}

/// A whole number of `unit`s (at least one).
fn whole(unit: Duration) -> impl Fn(&str) -> Result<Duration, String> {
    move |raw| {
        raw.parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .map(|n| unit * n)
            .ok_or_else(|| format!("`{raw}` must be a whole number of at least 1"))
    }
}

fn at_least_one(raw: &str) -> Result<usize, String> {
    raw.parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("`{raw}` must be a whole number of at least 1"))
}

/// Key material, kept out of `Debug` output and logs.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Stripe's API as `STRIPE_SECRET_KEY`, `STRIPE_RETURN_URL` and `STRIPE_API_BASE` say.
#[derive(Debug, Clone)]
pub struct StripeApi {
    pub secret_key: Secret,
    /// Where the shopper returns from the Checkout Session (the storefront's page).
    pub return_url: String,
    /// `https://api.stripe.com` unless something stands in for Stripe (tests).
    pub api_base: String,
}

const STRIPE_API: &str = "https://api.stripe.com";

/// With a secret key the return URL is required: a session cannot be opened without it.
fn stripe_api(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<StripeApi>, ConfigError> {
    let Some(key) = lookup("STRIPE_SECRET_KEY").filter(|key| !key.is_empty()) else {
        return Ok(None);
    };
    if !(key.starts_with("sk_") || key.starts_with("rk_")) {
        return Err(ConfigError {
            name: "STRIPE_SECRET_KEY",
            reason: "a Stripe secret key starts with `sk_` (or `rk_` when restricted)".into(),
        });
    }
    let web_url = |name: &'static str, raw: Option<String>| match raw {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => Ok(url),
        Some(_) => Err(ConfigError {
            name,
            reason: "must be an http(s) URL".into(),
        }),
        None => Err(ConfigError {
            name,
            reason: "is needed with STRIPE_SECRET_KEY".into(),
        }),
    };
    let present = |name: &str| lookup(name).filter(|value| !value.is_empty());
    Ok(Some(StripeApi {
        secret_key: Secret(key.into_bytes()),
        return_url: web_url("STRIPE_RETURN_URL", present("STRIPE_RETURN_URL"))?,
        api_base: web_url(
            "STRIPE_API_BASE",
            Some(present("STRIPE_API_BASE").unwrap_or_else(|| STRIPE_API.to_owned())),
        )?,
    }))
}

/// HMAC-SHA256 keys shorter than its output weaken it.
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Error)]
#[error("{name} is not valid: {reason}")]
pub struct ConfigError {
    name: &'static str,
    reason: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str, default: &str| {
            lookup(name)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let http_addr = var("HTTP_ADDR", "127.0.0.1:8000");
        let production = var("DROPSHIP_ENV", "development") == "production";
        let (jwt_secret, jwt_secret_generated) = secret(&lookup, "JWT_SECRET", production)?;
        let (platform_webhook_secret, platform_webhook_secret_generated) =
            secret(&lookup, "PLATFORM_WEBHOOK_SECRET", production)?;
        let bridge = bridge_settings(&lookup)?;
        let wait_ms = var("READ_YOUR_WRITES_TIMEOUT_MS", "5000");
        let read_your_writes_wait =
            wait_ms
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|e| ConfigError {
                    name: "READ_YOUR_WRITES_TIMEOUT_MS",
                    reason: format!("`{wait_ms}`: {e}"),
                })?;
        let trusted_proxies = setting(
            &lookup,
            "TRUSTED_PROXIES",
            TrustedProxies::default(),
            TrustedProxies::parse,
        )?;
        let public_cache = setting(
            &lookup,
            "PUBLIC_CACHE_MB",
            CacheBudget(CacheBudget::DEFAULT_MB << 20),
            |raw| {
                raw.parse::<u64>()
                    .ok()
                    .filter(|mb| (1..=1 << 20).contains(mb))
                    .map(|mb| CacheBudget(mb << 20))
                    .ok_or_else(|| format!("`{raw}` is not a number of megabytes (1 or more)"))
            },
        )?;
        let database_max_connections = setting(&lookup, "DATABASE_MAX_CONNECTIONS", 40, |raw| {
            raw.parse::<u32>()
                .ok()
                .filter(|n| (2..=10_000).contains(n))
                .ok_or_else(|| format!("`{raw}` must be a whole number of at least 2"))
        })?;
        const HOUR: Duration = Duration::from_secs(3600);
        let idempotency_ttl = setting(&lookup, "IDEMPOTENCY_TTL_HOURS", HOUR * 24, whole(HOUR))?;
        let bridge_retention = setting(
            &lookup,
            "BRIDGE_RETENTION_DAYS",
            HOUR * 24 * 30,
            whole(HOUR * 24),
        )?;
        let payment_timeout = setting(
            &lookup,
            "ORDER_PAYMENT_TIMEOUT_MINUTES",
            Duration::from_secs(30 * 60),
            whole(Duration::from_secs(60)),
        )?;
        let stripe = stripe_api(&lookup)?;
        let stripe_webhook_secret = lookup("STRIPE_WEBHOOK_SECRET")
            .filter(|secret| !secret.is_empty())
            .map(|secret| Secret(secret.into_bytes()));
        Ok(Self {
            stripe,
            stripe_webhook_secret,
            payment_timeout,
            idempotency_ttl,
            bridge_retention,
            database_max_connections,
            public_cache,
            trusted_proxies,
            jwt_secret,
            jwt_secret_generated,
            platform_webhook_secret,
            platform_webhook_secret_generated,
            bridge,
            read_your_writes_wait,
            media_dir: PathBuf::from(var("MEDIA_DIR", "var/media")),
            database_url: var(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/dropship",
            ),
            nats_url: var("NATS_URL", "nats://127.0.0.1:4222"),
            names: StreamNames::new(
                var("NATS_STREAM", "EVENTS"),
                var("NATS_SUBJECT_PREFIX", "events"),
            ),
            http_addr: http_addr
                .parse()
                .map_err(|e: std::net::AddrParseError| ConfigError {
                    name: "HTTP_ADDR",
                    reason: format!("`{http_addr}`: {e}"),
                })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_a_developer_machine() {
        let config = Config::from_lookup(|_| None).expect("defaults are valid");
        assert_eq!(
            config.database_url,
            "postgres://postgres@127.0.0.1:5432/dropship"
        );
        assert_eq!(config.names, StreamNames::new("EVENTS", "events"));
        assert_eq!(config.http_addr.port(), 8000);
        assert_eq!(config.idempotency_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(config.bridge_retention, Duration::from_secs(30 * 24 * 3600));
    }

    #[test]
    fn production_needs_a_real_jwt_secret() {
        let production = |secret: Option<&'static str>| {
            Config::from_lookup(move |name| match name {
                "DROPSHIP_ENV" => Some("production".to_owned()),
                "JWT_SECRET" | "PLATFORM_WEBHOOK_SECRET" => secret.map(str::to_owned),
                _ => None,
            })
        };
        assert!(production(None).is_err());
        assert!(production(Some("short")).is_err());
        let config = production(Some("0123456789abcdef0123456789abcdef")).expect("valid");
        assert!(!config.jwt_secret_generated);
        assert!(
            Config::from_lookup(|_| None)
                .expect("dev")
                .jwt_secret_generated
        );
    }

    #[test]
    fn production_needs_the_platform_webhook_secret_too() {
        let error = Config::from_lookup(|name| match name {
            "DROPSHIP_ENV" => Some("production".to_owned()),
            "JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".to_owned()),
            _ => None,
        })
        .expect_err("no webhook secret");
        assert!(error.to_string().starts_with("PLATFORM_WEBHOOK_SECRET"));
    }

    #[test]
    fn bridge_settings_are_read_and_checked() {
        let config = Config::from_lookup(|name| match name {
            "BRIDGE_RETRY_SCHEDULE" => Some("0,1.5".to_owned()),
            "BRIDGE_ALLOWED_SUBNETS" => Some("127.0.0.0/8".to_owned()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(
            config.bridge.retry_schedule,
            [Duration::ZERO, Duration::from_millis(1500)]
        );
        assert!(
            config
                .bridge
                .service_addresses
                .permits("127.0.0.1".parse().expect("ip"))
        );
        assert_eq!(config.bridge.timeout, Duration::from_secs(15));
        for (name, value) in [
            ("BRIDGE_RETRY_SCHEDULE", "soon"),
            ("BRIDGE_ALLOWED_SUBNETS", "10.0.0.0/99"),
            ("BRIDGE_ENDPOINT_CONCURRENCY", "0"),
            ("BRIDGE_MAX_IN_FLIGHT", "many"),
            ("BRIDGE_TIMEOUT_SECS", "-1"),
            ("IDEMPOTENCY_TTL_HOURS", "0"),
            ("BRIDGE_RETENTION_DAYS", "1.5"),
        ] {
            let error = Config::from_lookup(|n| (n == name).then(|| value.to_owned()))
                .expect_err("invalid");
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }

    #[test]
    fn a_stripe_key_needs_a_return_url_and_looks_like_one() {
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            Config::from_lookup(move |name| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            })
        };
        assert!(
            with(&[]).expect("defaults").stripe.is_none(),
            "mock payments by default"
        );
        let missing = with(&[("STRIPE_SECRET_KEY", "sk_test_123")]).expect_err("no return URL");
        assert!(
            missing.to_string().contains("STRIPE_RETURN_URL"),
            "{missing}"
        );
        let foreign = with(&[
            ("STRIPE_SECRET_KEY", "pk_test_123"),
            ("STRIPE_RETURN_URL", "https://shop.example/return"),
        ])
        .expect_err("a publishable key");
        assert!(
            foreign.to_string().contains("STRIPE_SECRET_KEY"),
            "{foreign}"
        );
        let stripe = with(&[
            ("STRIPE_SECRET_KEY", "sk_test_123"),
            ("STRIPE_RETURN_URL", "https://shop.example/return"),
        ])
        .expect("valid")
        .stripe
        .expect("Stripe configured");
        assert_eq!(stripe.api_base, "https://api.stripe.com");
        assert!(
            !format!("{stripe:?}").contains("sk_test_123"),
            "the key stays out of logs"
        );
    }

    #[test]
    fn a_bad_listen_address_names_the_variable() {
        let error = Config::from_lookup(|name| (name == "HTTP_ADDR").then(|| "nowhere".to_owned()))
            .expect_err("invalid address");
        assert!(error.to_string().starts_with("HTTP_ADDR is not valid"));
    }
}
