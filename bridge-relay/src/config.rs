use std::time::Duration;

use domain::integration::{EndpointUrl, Service, Target};
use eventlog::jetstream::StreamNames;

use crate::address::AddressPolicy;

/// Where the platform's services receive deliveries, as the operator configures them:
/// `service=url` pairs, comma-separated. A service without an address cannot be
/// connected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceUrls(Vec<(Service, String)>);

impl ServiceUrls {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut urls: Vec<(Service, String)> = Vec::new();
        for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, url) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not `service=url`"))?;
            let service = match Target::parse(name.trim()) {
                Some(Target::Service(service)) => service,
                _ => return Err(format!("`{}` is not a service", name.trim())),
            };
            let url = EndpointUrl::parse(url.trim())
                .map_err(|e| format!("the URL of {} is not valid: {e}", service.as_str()))?;
            if urls.iter().any(|(known, _)| *known == service) {
                return Err(format!("{} is named twice", service.as_str()));
            }
            urls.push((service, url.as_str().to_owned()));
        }
        Ok(Self(urls))
    }

    pub fn url_of(&self, service: Service) -> Option<&str> {
        self.0
            .iter()
            .find(|(known, _)| *known == service)
            .map(|(_, url)| url.as_str())
    }
}

/// How deliveries are made, as operators tune them (`BRIDGE_*`); the defaults are
/// DESIGN §5's.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// The wait before each attempt: the first is normally 0 (at once).
    pub retry_schedule: Vec<Duration>,
    /// Private, loopback and link-local ranges the platform's services may be reached
    /// at anyway (`BRIDGE_ALLOWED_SUBNETS`).
    pub service_addresses: AddressPolicy,
    /// The same for merchants' own webhooks (`WEBHOOK_ALLOWED_SUBNETS`, none by
    /// default): a merchant must not reach the operator's internal network.
    pub webhook_addresses: AddressPolicy,
    /// Where each service receives its deliveries (`BRIDGE_SERVICE_URLS`).
    pub service_urls: ServiceUrls,
    /// Whether services still get the body-only `X-Platform-Signature` beside
    /// `X-Platform-Signature-V2` (`BRIDGE_LEGACY_PLATFORM_SIGNATURE`).
    pub legacy_platform_signature: bool,
    /// A timeout or a 429 waits at least this long before the next attempt.
    pub throttle_wait: Duration,
    pub timeout: Duration,
    /// Deliveries sending to one endpoint at once.
    pub endpoint_concurrency: usize,
    /// Deliveries per second to one endpoint (token bucket; bursts up to one second's worth).
    pub endpoint_rate: f64,
    /// How long an opened circuit waits before its first probe; doubles while probes fail.
    pub circuit_cooldown: Duration,
    /// Deliveries in flight in one relay process, all endpoints together (each holds a
    /// connection: size it to the process's file limit).
    pub max_in_flight: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            retry_schedule: [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            service_addresses: AddressPolicy::default(),
            webhook_addresses: AddressPolicy::default(),
            service_urls: ServiceUrls::default(),
            legacy_platform_signature: true,
            throttle_wait: Duration::from_secs(60),
            timeout: Duration::from_secs(15),
            endpoint_concurrency: 32,
            endpoint_rate: 100.0,
            circuit_cooldown: Duration::from_secs(30),
            max_in_flight: 1024,
        }
    }
}

/// Everything the relay runs with.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub names: StreamNames,
    /// Signs `X-Platform-Signature` (hex HMAC of the body) for the platform's services.
    pub platform_secret: Vec<u8>,
    pub delivery: DeliverySettings,
    /// Consecutive failures that open an endpoint's circuit.
    pub circuit_failures: u32,
}

impl RelayConfig {
    pub fn new(names: StreamNames, platform_secret: Vec<u8>, delivery: DeliverySettings) -> Self {
        Self {
            names,
            platform_secret,
            delivery,
            circuit_failures: 5,
        }
    }

    /// How long a claimed delivery is ours before a sweeper may take it back: a wait for
    /// its endpoint's slot (at most one attempt), the attempt, and room to record it.
    pub(crate) fn lease(&self) -> Duration {
        self.delivery.timeout * 2 + Duration::from_secs(5)
    }

    pub(crate) fn max_attempts(&self) -> i32 {
        i32::try_from(self.delivery.retry_schedule.len()).unwrap_or(i32::MAX)
    }
}

/// Parses `BRIDGE_RETRY_SCHEDULE`: comma-separated seconds (decimals allowed).
pub fn parse_schedule(raw: &str) -> Result<Vec<Duration>, String> {
    let delays = raw
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 7.0 * 86_400.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("`{}` is not a number of seconds", part.trim()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() || delays.len() > 50 {
        return Err("needs 1 to 50 delays".into());
    }
    Ok(delays)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_are_pairs_of_a_known_service_and_a_url() {
        let urls = ServiceUrls::parse(
            " rankpilot=https://rp.internal/in , flowsend=http://10.0.0.5:8080/hook",
        )
        .expect("valid");
        assert_eq!(
            urls.url_of(Service::RankPilot),
            Some("https://rp.internal/in")
        );
        assert_eq!(
            urls.url_of(Service::FlowSend),
            Some("http://10.0.0.5:8080/hook")
        );
        assert_eq!(urls.url_of(Service::AdScale), None);
        for invalid in [
            "myspace=https://x.example/",
            "rankpilot",
            "rankpilot=ftp://x.example/",
            "rankpilot=https://a.example/,rankpilot=https://b.example/",
        ] {
            assert!(ServiceUrls::parse(invalid).is_err(), "{invalid}");
        }
        assert_eq!(ServiceUrls::parse(""), Ok(ServiceUrls::default()));
    }

    #[test]
    fn a_schedule_is_seconds_separated_by_commas() {
        assert_eq!(
            parse_schedule("0, 0.5,2"),
            Ok(vec![
                Duration::ZERO,
                Duration::from_millis(500),
                Duration::from_secs(2)
            ])
        );
        assert!(parse_schedule("0,soon").is_err());
        assert!(parse_schedule("-1").is_err());
    }
}
