use std::net::SocketAddr;

use eventlog::jetstream::StreamNames;
use thiserror::Error;

/// Settings from the environment (DESIGN §8), with defaults that fit a developer machine.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub nats_url: String,
    pub names: StreamNames,
    pub http_addr: SocketAddr,
}

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
        Ok(Self {
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
    }

    #[test]
    fn a_bad_listen_address_names_the_variable() {
        let error = Config::from_lookup(|name| (name == "HTTP_ADDR").then(|| "nowhere".to_owned()))
            .expect_err("invalid address");
        assert!(error.to_string().starts_with("HTTP_ADDR is not valid"));
    }
}
