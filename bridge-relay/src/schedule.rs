//! When a failed delivery is tried again (DESIGN §5): the schedule with ±20 % jitter,
//! at least the throttle wait after a timeout or a 429, and never before `Retry-After`.

use std::time::{Duration, SystemTime};

/// The longest `Retry-After` honoured; a service asking for more is tried after this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No answer in time, or 429 Too Many Requests.
    Throttled,
    Other,
}

pub struct Retry<'a> {
    pub schedule: &'a [Duration],
    pub throttle_wait: Duration,
}

impl Retry<'_> {
    /// The wait before the next attempt after `attempts` failed ones, or `None` when the
    /// schedule is used up. `jitter` is in [-1, 1] and scales to ±20 %.
    pub fn next_wait(
        &self,
        attempts: usize,
        kind: FailureKind,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        let base = *self.schedule.get(attempts)?;
        let mut wait = base.mul_f64(1.0 + 0.2 * jitter.clamp(-1.0, 1.0));
        if kind == FailureKind::Throttled {
            wait = wait.max(self.throttle_wait);
        }
        if let Some(asked) = retry_after {
            wait = wait.max(asked.min(MAX_RETRY_AFTER));
        }
        Some(wait)
    }
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn retry(schedule: &[Duration]) -> Retry<'_> {
        Retry {
            schedule,
            throttle_wait: secs(60),
        }
    }

    #[test]
    fn the_schedule_is_followed_within_twenty_percent_and_then_ends() {
        let schedule = [secs(0), secs(5), secs(300)];
        let policy = retry(&schedule);
        assert_eq!(
            policy.next_wait(1, FailureKind::Other, None, 0.0),
            Some(secs(5))
        );
        assert_eq!(
            policy.next_wait(2, FailureKind::Other, None, 1.0),
            Some(secs(360))
        );
        assert_eq!(
            policy.next_wait(2, FailureKind::Other, None, -1.0),
            Some(secs(240))
        );
        assert_eq!(policy.next_wait(3, FailureKind::Other, None, 0.0), None);
    }

    #[test]
    fn timeouts_and_429_wait_at_least_the_throttle_wait_and_retry_after_is_honoured() {
        let schedule = [secs(0), secs(5), secs(300)];
        let policy = retry(&schedule);
        assert_eq!(
            policy.next_wait(1, FailureKind::Throttled, None, 0.0),
            Some(secs(60))
        );
        assert_eq!(
            policy.next_wait(1, FailureKind::Other, Some(secs(120)), 0.0),
            Some(secs(120))
        );
        assert_eq!(
            policy.next_wait(1, FailureKind::Other, Some(secs(10 * 86_400)), 0.0),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + secs(1_445_412_480);
        assert_eq!(parse_retry_after("120", now), Some(secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(secs(1_445_412_600 - 1_445_412_480))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
