//! Attempt limits: login attempts per email and per client address (guessing a password
//! is slow, spraying one over many accounts too), and registrations per address (each
//! costs an argon2 hash, so one client cannot keep the CPU busy with sign-ups).
//!
//! An attempt takes its place in the count *before* the password is checked, in one
//! atomic step per key, so concurrent guesses cannot all pass a check made before any
//! of them was recorded. A successful login gives its places back.

use std::{
    hash::Hash,
    net::IpAddr,
    time::{Duration, Instant},
};

use moka::{ops::compute::Op, sync::Cache};
use sha2::{Digest, Sha256};

const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys are fixed-size (an address, an email's digest), so this bounds the memory too.
const MAX_KEYS: u64 = 100_000;

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
                .max_capacity(MAX_KEYS)
                .time_to_live(window)
                .build(),
            limit,
            window,
        }
    }

    /// Counts one attempt, or answers how long to wait when the key has none left.
    fn take(&self, key: K) -> Result<(), Duration> {
        let (limit, window) = (self.limit, self.window);
        let mut refused = None;
        self.attempts.entry(key).and_compute_with(|previous| {
            match previous.map(|entry| entry.into_value()) {
                Some(a) if a.since.elapsed() < window => {
                    if a.count >= limit {
                        refused = Some(window.saturating_sub(a.since.elapsed()));
                        Op::Nop
                    } else {
                        Op::Put(Attempts {
                            count: a.count + 1,
                            since: a.since,
                        })
                    }
                }
                _ => Op::Put(Attempts {
                    count: 1,
                    since: Instant::now(),
                }),
            }
        });
        refused.map_or(Ok(()), Err)
    }

    /// Gives back one attempt taken by [`Counter::take`].
    fn give_back(&self, key: K) {
        self.attempts.entry(key).and_compute_with(|previous| {
            match previous.map(|entry| entry.into_value()) {
                Some(a) if a.count > 1 => Op::Put(Attempts {
                    count: a.count - 1,
                    since: a.since,
                }),
                Some(_) => Op::Remove,
                None => Op::Nop,
            }
        });
    }

    fn forget(&self, key: &K) {
        self.attempts.invalidate(key);
    }
}

/// An email as a counter key: fixed-size whatever the client sent.
type EmailKey = [u8; 32];

fn email_key(email: &str) -> EmailKey {
    Sha256::digest(email.as_bytes()).into()
}

#[derive(Clone)]
pub struct AttemptLimits {
    login_by_email: Counter<EmailKey>,
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

/// A login attempt that has its place in the limits; tell it how the check went.
#[must_use]
pub struct LoginAttempt<'a> {
    limits: &'a AttemptLimits,
    email: EmailKey,
    address: IpAddr,
}

impl LoginAttempt<'_> {
    /// The password matched: the email's failures are forgotten and the address gets
    /// its place back. A failure keeps both places taken.
    pub fn succeeded(self) {
        self.limits.login_by_email.forget(&self.email);
        self.limits.login_by_address.give_back(self.address);
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

    /// Takes a place for one login attempt, or answers how long the caller must wait.
    pub fn begin_login(&self, email: &str, address: IpAddr) -> Result<LoginAttempt<'_>, Duration> {
        let email = email_key(email);
        self.login_by_email.take(email)?;
        if let Err(wait) = self.login_by_address.take(address) {
            self.login_by_email.give_back(email);
            return Err(wait);
        }
        Ok(LoginAttempt {
            limits: self,
            email,
            address,
        })
    }

    /// Counts a registration attempt; how long to wait first when over the limit.
    pub fn registration_blocked_for(&self, address: IpAddr) -> Option<Duration> {
        self.registrations_by_address.take(address).err()
    }
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, sync::Arc};

    use super::*;

    const HERE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn the_limit_blocks_after_the_allowed_failures_and_a_success_resets_the_email() {
        let limits = AttemptLimits::new(Duration::from_secs(60), 2, 100, 100);
        let _failed = limits.begin_login("a@example.com", HERE).expect("first");
        let second = limits.begin_login("a@example.com", HERE).expect("second");
        assert!(limits.begin_login("a@example.com", HERE).is_err());
        assert!(limits.begin_login("b@example.com", HERE).is_ok());
        second.succeeded();
        assert!(limits.begin_login("a@example.com", HERE).is_ok());
    }

    #[test]
    fn the_address_limit_spans_emails_and_successes_do_not_use_it_up() {
        let limits = AttemptLimits::new(Duration::from_secs(60), 100, 2, 100);
        limits
            .begin_login("a@example.com", HERE)
            .expect("a")
            .succeeded();
        let _failed = limits.begin_login("a@example.com", HERE).expect("a again");
        let _failed = limits.begin_login("b@example.com", HERE).expect("b");
        assert!(limits.begin_login("c@example.com", HERE).is_err());
    }

    #[test]
    fn concurrent_attempts_never_get_more_places_than_the_limit() {
        let limits = Arc::new(AttemptLimits::new(Duration::from_secs(60), 5, 10_000, 1));
        let admitted: usize = (0..8)
            .map(|_| {
                let limits = limits.clone();
                std::thread::spawn(move || {
                    (0..250)
                        .filter(|_| limits.begin_login("target@example.com", HERE).is_ok())
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|thread| thread.join().expect("no panic"))
            .sum();
        assert_eq!(admitted, 5);
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
