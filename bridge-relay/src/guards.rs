//! Protection per endpoint, in this process: a concurrency limit, a token bucket, and a
//! circuit breaker that opens after consecutive failures and lets one probe through
//! once its cool-down has passed (doubling it, up to ten minutes, while probes fail).
//!
//! An endpoint may hold up to twice its concurrency in admitted deliveries: the ones
//! sending and as many waiting for a slot, so that one claim can fill an endpoint's
//! pipeline while the previous batch is still being answered. A waiting delivery starts
//! within one timeout, which its lease allows for.
//!
//! How many it may hold *now* is its window, as in TCP's slow start: an endpoint starts
//! with a few, gains one per success (so the window doubles per round trip) and halves on
//! a failure. An endpoint that stops answering therefore holds a handful of the process's
//! delivery slots while its attempts time out, not twice its concurrency: many endpoints
//! hanging at once (a hosting provider down) cannot starve the healthy ones.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;
use uuid::Uuid;

const MAX_COOLDOWN: Duration = Duration::from_secs(600);
/// An endpoint's window before it has answered anything.
const INITIAL_WINDOW: usize = 4;
/// How long an endpoint with nothing in flight keeps what it learnt (window, tokens).
const FORGET_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct GuardConfig {
    pub concurrency: usize,
    pub rate: f64,
    pub failures: u32,
    pub cooldown: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Circuit {
    Closed,
    Open { until: Instant, cooldown: Duration },
    Probing { cooldown: Duration },
}

#[derive(Debug)]
struct Guard {
    /// Admitted and not finished: sending, or waiting for one of `slots`.
    in_flight: usize,
    /// How many may be admitted at once now (up to `GuardConfig::admissible`).
    window: usize,
    last_finished: Instant,
    slots: Arc<Semaphore>,
    failures: u32,
    circuit: Circuit,
    tokens: f64,
    refilled: Instant,
    /// Deliveries sent back for lack of tokens are spread from here at the rate.
    paced_until: Instant,
}

impl GuardConfig {
    /// Deliveries one endpoint may hold admitted at once, however well it answers.
    fn admissible(&self) -> usize {
        self.concurrency * 2
    }

    fn initial_window(&self) -> usize {
        INITIAL_WINDOW.min(self.admissible())
    }
}

impl Guard {
    fn new(config: &GuardConfig, now: Instant) -> Self {
        Self {
            in_flight: 0,
            window: config.initial_window(),
            last_finished: now,
            slots: Arc::new(Semaphore::new(config.concurrency)),
            failures: 0,
            circuit: Circuit::Closed,
            tokens: config.rate.max(1.0),
            refilled: now,
            paced_until: now,
        }
    }

    /// Whether forgetting this endpoint changes nothing but its window.
    fn idle(&self, now: Instant) -> bool {
        self.in_flight == 0
            && self.failures == 0
            && matches!(self.circuit, Circuit::Closed)
            && now.saturating_duration_since(self.last_finished) >= FORGET_AFTER
    }
}

/// Whether a claimed delivery goes now, or back to the queue for a while.
#[derive(Debug, Clone)]
pub enum Admission {
    /// Send once one of these slots is free.
    Go(Arc<Semaphore>),
    Later(Duration),
}

/// Which endpoints the next claim must skip, and how many more the busy ones take.
#[derive(Debug, Default)]
pub struct Capacity {
    pub excluded: Vec<Uuid>,
    pub limited: Vec<(Uuid, i32)>,
}

/// Endpoints not yet in flight that one claim makes room for, at their initial window.
const NEW_ENDPOINTS_PER_CLAIM: usize = 16;

impl Capacity {
    /// The most one claim can take: what the busy endpoints have free, and room for a
    /// few endpoints not in flight. A claim scans a multiple of this, so a lone busy
    /// endpoint with a few free slots costs a scan of a few rows, not of the whole
    /// batch.
    pub fn claimable(&self, initial_window: usize) -> usize {
        let busy: usize = self
            .limited
            .iter()
            .map(|(_, free)| usize::try_from(*free).unwrap_or_default())
            .sum();
        busy + initial_window * NEW_ENDPOINTS_PER_CLAIM
    }
}

pub struct Guards {
    config: GuardConfig,
    endpoints: Mutex<HashMap<Uuid, Guard>>,
}

impl Guards {
    pub fn new(config: GuardConfig) -> Self {
        Self {
            config,
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    /// How many deliveries a claim may take for an endpoint `capacity` does not list.
    pub fn initial_window(&self) -> usize {
        self.config.initial_window()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Uuid, Guard>) -> T) -> T {
        let mut endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut endpoints)
    }

    /// What the next claim may take. Endpoints not listed take up to the initial window:
    /// one with nothing in flight is listed only when its window is smaller, which keeps
    /// the list as short as what is in flight (a drained busy endpoint regains its
    /// window on the next claim).
    pub fn capacity(&self, now: Instant) -> Capacity {
        let initial = self.config.initial_window();
        self.with(|endpoints| {
            endpoints.retain(|_, guard| !guard.idle(now));
            let mut capacity = Capacity::default();
            for (id, guard) in endpoints.iter() {
                let free = guard.window.saturating_sub(guard.in_flight);
                match guard.circuit {
                    Circuit::Open { until, .. } if now < until => capacity.excluded.push(*id),
                    Circuit::Probing { .. } => capacity.excluded.push(*id),
                    Circuit::Open { .. } => capacity.limited.push((*id, 1)),
                    Circuit::Closed if free == 0 => capacity.excluded.push(*id),
                    Circuit::Closed if guard.in_flight > 0 || free < initial => capacity
                        .limited
                        .push((*id, i32::try_from(free).unwrap_or(i32::MAX))),
                    Circuit::Closed => {}
                }
            }
            capacity
        })
    }

    /// Takes a slot and a token for one delivery to `endpoint`, or says when to retry.
    pub fn admit(&self, endpoint: Uuid, now: Instant) -> Admission {
        let config = &self.config;
        self.with(|endpoints| {
            let guard = endpoints
                .entry(endpoint)
                .or_insert_with(|| Guard::new(config, now));
            match guard.circuit {
                Circuit::Open { until, .. } if now < until => return Admission::Later(until - now),
                Circuit::Probing { .. } => return Admission::Later(Duration::ZERO),
                Circuit::Open { cooldown, .. } if guard.in_flight == 0 => {
                    guard.circuit = Circuit::Probing { cooldown };
                }
                Circuit::Open { .. } => return Admission::Later(Duration::ZERO),
                Circuit::Closed if guard.in_flight >= guard.window => {
                    return Admission::Later(Duration::ZERO);
                }
                Circuit::Closed => {}
            }
            let burst = config.rate.max(1.0);
            let elapsed = now.saturating_duration_since(guard.refilled).as_secs_f64();
            guard.tokens = (guard.tokens + elapsed * config.rate).min(burst);
            guard.refilled = now;
            if guard.tokens >= 1.0 {
                guard.tokens -= 1.0;
                guard.in_flight += 1;
                return Admission::Go(guard.slots.clone());
            }
            if let Circuit::Probing { cooldown } = guard.circuit {
                guard.circuit = Circuit::Open {
                    until: now,
                    cooldown,
                };
            }
            guard.paced_until =
                guard.paced_until.max(now) + Duration::from_secs_f64(1.0 / config.rate.max(0.001));
            Admission::Later(guard.paced_until - now)
        })
    }

    /// Records how an admitted delivery ended; returns when the circuit opened, if it did.
    pub fn finished(&self, endpoint: Uuid, success: bool, now: Instant) -> Option<Instant> {
        let config = &self.config;
        self.with(|endpoints| {
            let guard = endpoints.get_mut(&endpoint)?;
            guard.in_flight = guard.in_flight.saturating_sub(1);
            guard.last_finished = now;
            if success {
                guard.window = (guard.window + 1).min(config.admissible());
                guard.failures = 0;
                guard.circuit = Circuit::Closed;
                return None;
            }
            guard.window = (guard.window / 2).max(1);
            guard.failures = guard.failures.saturating_add(1);
            let cooldown = match guard.circuit {
                Circuit::Probing { cooldown } => (cooldown * 2).min(MAX_COOLDOWN),
                Circuit::Closed if guard.failures >= config.failures => config.cooldown,
                _ => return None,
            };
            let until = now + cooldown;
            guard.circuit = Circuit::Open { until, cooldown };
            Some(until)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guards(concurrency: usize, rate: f64) -> Guards {
        Guards::new(GuardConfig {
            concurrency,
            rate,
            failures: 3,
            cooldown: Duration::from_secs(10),
        })
    }

    fn admitted(admission: Admission) -> bool {
        matches!(admission, Admission::Go(_))
    }

    #[test]
    fn an_endpoint_holds_twice_its_concurrency_and_others_are_unaffected() {
        let (guards, now) = (guards(1, 1000.0), Instant::now());
        let (busy, other) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(admitted(guards.admit(busy, now)));
        assert!(admitted(guards.admit(busy, now)));
        assert!(matches!(
            guards.admit(busy, now),
            Admission::Later(Duration::ZERO)
        ));
        assert!(admitted(guards.admit(other, now)));
        assert_eq!(guards.capacity(now).excluded, vec![busy]);
        guards.finished(busy, true, now);
        assert_eq!(
            guards
                .capacity(now)
                .limited
                .iter()
                .find(|(id, _)| *id == busy),
            Some(&(busy, 1))
        );
        assert!(admitted(guards.admit(busy, now)));
    }

    #[test]
    fn a_claim_takes_what_busy_endpoints_have_free_and_room_for_a_few_new_ones() {
        let (guards, now) = (guards(32, 1_000_000.0), Instant::now());
        let busy = Uuid::new_v4();
        for _ in 0..3 {
            assert!(admitted(guards.admit(busy, now)));
        }
        let capacity = guards.capacity(now);
        assert_eq!(capacity.limited, vec![(busy, 1)]);
        assert_eq!(
            capacity.claimable(guards.initial_window()),
            1 + INITIAL_WINDOW * NEW_ENDPOINTS_PER_CLAIM
        );
    }

    #[test]
    fn a_new_endpoint_holds_a_few_until_answers_grow_its_window_and_failures_halve_it() {
        let (guards, now) = (guards(32, 1_000_000.0), Instant::now());
        let endpoint = Uuid::new_v4();
        for _ in 0..INITIAL_WINDOW {
            assert!(admitted(guards.admit(endpoint, now)));
        }
        assert!(
            matches!(
                guards.admit(endpoint, now),
                Admission::Later(Duration::ZERO)
            ),
            "an endpoint that has not answered yet holds only its initial window"
        );
        assert_eq!(guards.capacity(now).excluded, vec![endpoint]);
        for _ in 0..INITIAL_WINDOW {
            guards.finished(endpoint, true, now);
        }
        assert!(admitted(guards.admit(endpoint, now)));
        assert_eq!(
            guards.capacity(now).limited,
            vec![(endpoint, 2 * INITIAL_WINDOW as i32 - 1)],
            "each answer frees its place and adds one: the window doubles per round trip"
        );
        guards.finished(endpoint, true, now);
        for _ in 0..100 {
            assert!(admitted(guards.admit(endpoint, now)));
            guards.finished(endpoint, true, now);
        }
        assert!(admitted(guards.admit(endpoint, now)));
        assert_eq!(guards.capacity(now).limited, vec![(endpoint, 63)]);
        guards.finished(endpoint, false, now);
        assert!(admitted(guards.admit(endpoint, now)));
        assert_eq!(guards.capacity(now).limited, vec![(endpoint, 31)]);
        guards.finished(endpoint, true, now);
        let capacity = guards.capacity(now + FORGET_AFTER);
        assert!(
            capacity.limited.is_empty() && capacity.excluded.is_empty(),
            "an endpoint idle for a minute starts again from the initial window"
        );
    }

    #[test]
    fn the_token_bucket_paces_what_exceeds_the_rate() {
        let (guards, now) = (guards(100, 2.0), Instant::now());
        let endpoint = Uuid::new_v4();
        assert!(admitted(guards.admit(endpoint, now)));
        assert!(admitted(guards.admit(endpoint, now)));
        assert!(
            matches!(guards.admit(endpoint, now), Admission::Later(d) if d == Duration::from_millis(500))
        );
        assert!(
            matches!(guards.admit(endpoint, now), Admission::Later(d) if d == Duration::from_secs(1))
        );
        assert!(admitted(
            guards.admit(endpoint, now + Duration::from_secs(1))
        ));
    }

    #[test]
    fn the_circuit_opens_after_consecutive_failures_and_one_probe_decides() {
        let (guards, start) = (guards(10, 1000.0), Instant::now());
        let endpoint = Uuid::new_v4();
        for _ in 0..2 {
            assert!(admitted(guards.admit(endpoint, start)));
            assert_eq!(guards.finished(endpoint, false, start), None);
        }
        guards.admit(endpoint, start);
        let opened = guards.finished(endpoint, false, start).expect("opens");
        assert_eq!(opened, start + Duration::from_secs(10));
        assert_eq!(guards.capacity(start).excluded, vec![endpoint]);
        assert!(matches!(guards.admit(endpoint, start), Admission::Later(_)));
        let later = opened + Duration::from_millis(1);
        assert_eq!(guards.capacity(later).limited, vec![(endpoint, 1)]);
        assert!(admitted(guards.admit(endpoint, later)));
        assert!(matches!(
            guards.admit(endpoint, later),
            Admission::Later(Duration::ZERO)
        ));
        let reopened = guards
            .finished(endpoint, false, later)
            .expect("probe failed");
        assert_eq!(reopened, later + Duration::from_secs(20));
        let after = reopened + Duration::from_millis(1);
        assert!(admitted(guards.admit(endpoint, after)));
        assert_eq!(guards.finished(endpoint, true, after), None);
        assert!(admitted(guards.admit(endpoint, after)));
    }
}
