//! Login failures are limited per email and per client address, so that guessing a
//! password is slow and spraying one over many accounts is too.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use moka::sync::Cache;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

#[derive(Clone)]
pub struct LoginLimits {
    by_email: Cache<String, Failures>,
    by_address: Cache<IpAddr, Failures>,
    window: Duration,
    per_email: u32,
    per_address: u32,
}

impl Default for LoginLimits {
    /// 5 failures per email and 50 per address in 15 minutes.
    fn default() -> Self {
        Self::new(Duration::from_secs(15 * 60), 5, 50)
    }
}

impl LoginLimits {
    pub fn new(window: Duration, per_email: u32, per_address: u32) -> Self {
        Self {
            by_email: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(window)
                .build(),
            by_address: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(window)
                .build(),
            window,
            per_email,
            per_address,
        }
    }

    /// How long the caller must wait before trying again, if they must.
    pub fn blocked_for(&self, email: &str, address: IpAddr) -> Option<Duration> {
        let email_wait = self.wait(self.by_email.get(email), self.per_email);
        let address_wait = self.wait(self.by_address.get(&address), self.per_address);
        email_wait.max(address_wait)
    }

    fn wait(&self, failures: Option<Failures>, limit: u32) -> Option<Duration> {
        let failures = failures?;
        let elapsed = failures.since.elapsed();
        (failures.count >= limit && elapsed < self.window).then(|| self.window - elapsed)
    }

    pub fn record_failure(&self, email: &str, address: IpAddr) {
        let window = self.window;
        let bump = move |previous: Option<Failures>| match previous {
            Some(f) if f.since.elapsed() < window => Failures {
                count: f.count + 1,
                since: f.since,
            },
            _ => Failures {
                count: 1,
                since: Instant::now(),
            },
        };
        self.by_email
            .entry(email.to_owned())
            .and_upsert_with(|e| bump(e.map(|e| *e.value())));
        self.by_address
            .entry(address)
            .and_upsert_with(|e| bump(e.map(|e| *e.value())));
    }

    /// A successful login forgets the email's failures (the address's stay).
    pub fn record_success(&self, email: &str) {
        self.by_email.invalidate(email);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn the_limit_blocks_after_the_allowed_failures_and_a_success_resets_the_email() {
        let limits = LoginLimits::new(Duration::from_secs(60), 2, 100);
        let address = IpAddr::V4(Ipv4Addr::LOCALHOST);
        limits.record_failure("a@example.com", address);
        assert_eq!(limits.blocked_for("a@example.com", address), None);
        limits.record_failure("a@example.com", address);
        assert!(limits.blocked_for("a@example.com", address).is_some());
        assert_eq!(limits.blocked_for("b@example.com", address), None);
        limits.record_success("a@example.com");
        assert_eq!(limits.blocked_for("a@example.com", address), None);
    }

    #[test]
    fn the_address_limit_spans_emails() {
        let limits = LoginLimits::new(Duration::from_secs(60), 100, 2);
        let address = IpAddr::V4(Ipv4Addr::LOCALHOST);
        limits.record_failure("a@example.com", address);
        limits.record_failure("b@example.com", address);
        assert!(limits.blocked_for("c@example.com", address).is_some());
    }
}
