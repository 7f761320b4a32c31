//! The retry schedule and `Retry-After`.
use rand::Rng;
use std::time::Duration;

/// Waits before the 1st, 2nd, … retry; the last repeats. Exponential by
/// default (5s, 30s, 2m, 10m, 30m, 1h); tests pass a fast one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::parse("5s,30s,2m,10m,30m,1h").expect("the default schedule parses")
    }
}

impl RetrySchedule {
    /// Parses `5s,30s,2m` (any humantime duration: `250ms`, `1h`…).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let waits = raw
            .split(',')
            .map(|part| {
                humantime::parse_duration(part.trim())
                    .map_err(|e| format!("'{}' is not a duration: {e}", part.trim()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if waits.is_empty() {
            return Err("the retry schedule needs at least one duration".into());
        }
        Ok(Self(waits))
    }

    /// The wait before retry number `retry` (1 for the first retry), plus up
    /// to 10 % jitter so that retries of many deliveries do not all land at
    /// once. Never shorter than the schedule says.
    pub fn wait_before(&self, retry: u32) -> Duration {
        let index = (retry.max(1) as usize - 1).min(self.0.len() - 1);
        let base = self.0[index];
        base + base.mul_f64(rand::thread_rng().gen_range(0.0..0.1))
    }

    /// The longest wait: the cap on a receiver's `Retry-After`.
    pub fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - projections::db::now();
    Some(wait.to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_waits_grow_then_repeat_with_bounded_jitter() {
        let schedule = RetrySchedule::parse("100ms, 1s").unwrap();
        let first = schedule.wait_before(1);
        assert!(first >= Duration::from_millis(100) && first < Duration::from_millis(110));
        let later = schedule.wait_before(7);
        assert!(later >= Duration::from_secs(1) && later < Duration::from_millis(1100));
        assert_eq!(schedule.max(), Duration::from_secs(1));
        assert!(RetrySchedule::parse("5s,soon").is_err());
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("later"), None);
    }
}
