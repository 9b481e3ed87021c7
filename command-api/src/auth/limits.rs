//! Attempt limits: login failures per email and per client address (guessing a password
//! is slow, spraying one over many accounts too), and registrations per address (each
//! costs an argon2 hash, so one client cannot keep the CPU busy with sign-ups).

use std::{
    hash::Hash,
    net::IpAddr,
    time::{Duration, Instant},
};

use moka::sync::Cache;

const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy)]
struct Attempts {
    count: u32,
    since: Instant,
}

/// Counts attempts per key in a window that starts at the first one.
#[derive(Clone)]
struct Counter<K: Hash + Eq + Send + Sync + 'static> {
    attempts: Cache<K, Attempts>,
    limit: u32,
    window: Duration,
}

impl<K: Hash + Eq + Send + Sync + Clone + 'static> Counter<K> {
    fn new(limit: u32, window: Duration) -> Self {
        Self {
            attempts: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(window)
                .build(),
            limit,
            window,
        }
    }

    fn wait(&self, key: &K) -> Option<Duration> {
        let attempts = self.attempts.get(key)?;
        let elapsed = attempts.since.elapsed();
        (attempts.count >= self.limit && elapsed < self.window).then(|| self.window - elapsed)
    }

    fn record(&self, key: K) {
        let window = self.window;
        self.attempts.entry(key).and_upsert_with(|previous| {
            match previous.map(|entry| *entry.value()) {
                Some(a) if a.since.elapsed() < window => Attempts {
                    count: a.count + 1,
                    since: a.since,
                },
                _ => Attempts {
                    count: 1,
                    since: Instant::now(),
                },
            }
        });
    }

    fn forget(&self, key: &K) {
        self.attempts.invalidate(key);
    }
}

#[derive(Clone)]
pub struct AttemptLimits {
    login_by_email: Counter<String>,
    login_by_address: Counter<IpAddr>,
    registrations_by_address: Counter<IpAddr>,
}

impl Default for AttemptLimits {
    /// In 15 minutes: 5 login failures per email, 50 per address, 20 registrations per
    /// address.
    fn default() -> Self {
        Self::new(WINDOW, 5, 50, 20)
    }
}

impl AttemptLimits {
    pub fn new(window: Duration, per_email: u32, per_address: u32, registrations: u32) -> Self {
        Self {
            login_by_email: Counter::new(per_email, window),
            login_by_address: Counter::new(per_address, window),
            registrations_by_address: Counter::new(registrations, window),
        }
    }

    /// How long the caller must wait before trying to log in again, if they must.
    pub fn login_blocked_for(&self, email: &str, address: IpAddr) -> Option<Duration> {
        let email_wait = self.login_by_email.wait(&email.to_owned());
        email_wait.max(self.login_by_address.wait(&address))
    }

    pub fn record_login_failure(&self, email: &str, address: IpAddr) {
        self.login_by_email.record(email.to_owned());
        self.login_by_address.record(address);
    }

    /// A successful login forgets the email's failures (the address's stay).
    pub fn record_login_success(&self, email: &str) {
        self.login_by_email.forget(&email.to_owned());
    }

    /// Counts a registration attempt; how long to wait first when over the limit.
    pub fn registration_blocked_for(&self, address: IpAddr) -> Option<Duration> {
        let wait = self.registrations_by_address.wait(&address);
        if wait.is_none() {
            self.registrations_by_address.record(address);
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const HERE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn the_limit_blocks_after_the_allowed_failures_and_a_success_resets_the_email() {
        let limits = AttemptLimits::new(Duration::from_secs(60), 2, 100, 100);
        limits.record_login_failure("a@example.com", HERE);
        assert_eq!(limits.login_blocked_for("a@example.com", HERE), None);
        limits.record_login_failure("a@example.com", HERE);
        assert!(limits.login_blocked_for("a@example.com", HERE).is_some());
        assert_eq!(limits.login_blocked_for("b@example.com", HERE), None);
        limits.record_login_success("a@example.com");
        assert_eq!(limits.login_blocked_for("a@example.com", HERE), None);
    }

    #[test]
    fn the_address_limit_spans_emails() {
        let limits = AttemptLimits::new(Duration::from_secs(60), 100, 2, 100);
        limits.record_login_failure("a@example.com", HERE);
        limits.record_login_failure("b@example.com", HERE);
        assert!(limits.login_blocked_for("c@example.com", HERE).is_some());
    }

    #[test]
    fn registrations_are_counted_per_address() {
        let limits = AttemptLimits::new(Duration::from_secs(60), 100, 100, 2);
        assert_eq!(limits.registration_blocked_for(HERE), None);
        assert_eq!(limits.registration_blocked_for(HERE), None);
        assert!(limits.registration_blocked_for(HERE).is_some());
        assert_eq!(
            limits.registration_blocked_for(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
            None
        );
    }
}
