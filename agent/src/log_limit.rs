//! Rate limits for the log lines of a failure that repeats, such as a hub that stays unreachable
//! for a week: the first few occurrences are logged, then one per period, and each logged line
//! reports how many occurrences were left out since the previous one. Counting never stops, so the
//! totals stay right however long the failure lasts.

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// Occurrences logged before the rate limit applies.
pub const DEFAULT_BURST: u32 = 5;
/// One occurrence is logged per this period once the burst is used.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(60);

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Decides which occurrences of one repeating failure are logged.
pub struct LogLimiter<C: Clock + Clone = DefaultClock> {
    quota: Quota,
    clock: C,
    limiter: Limiter<C>,
    suppressed: u64,
}

impl LogLimiter<DefaultClock> {
    /// Logs the first `burst` occurrences, then one per `period`.
    pub fn new(burst: u32, period: Duration) -> LogLimiter<DefaultClock> {
        LogLimiter::with_clock(burst, period, DefaultClock::default())
    }
}

impl<C: Clock + Clone> LogLimiter<C> {
    /// Like [`LogLimiter::new`], with the clock given, so tests can move time.
    pub fn with_clock(burst: u32, period: Duration, clock: C) -> LogLimiter<C> {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let period = period.max(Duration::from_millis(1));
        let quota = Quota::with_period(period)
            .expect("the period is at least 1 ms")
            .allow_burst(burst);
        LogLimiter {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            quota,
            clock,
            suppressed: 0,
        }
    }

    /// Records one occurrence. Returns `Some(left_out)` when this one should be logged, with the
    /// number of occurrences left out since the last logged one, and `None` otherwise.
    pub fn admit(&mut self) -> Option<u64> {
        if self.limiter.check().is_ok() {
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// Starts afresh after the failure ended, so the next one gets its full burst. Returns the
    /// occurrences left out since the last logged one.
    pub fn reset(&mut self) -> u64 {
        self.limiter = RateLimiter::direct_with_clock(self.quota, self.clock.clone());
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn burst_then_one_per_period_with_counts() {
        let clock = FakeRelativeClock::default();
        let mut limiter = LogLimiter::with_clock(5, Duration::from_secs(60), clock.clone());
        let first: Vec<Option<u64>> = (0..8).map(|_| limiter.admit()).collect();
        assert_eq!(
            first,
            vec![
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                None,
                None,
                None
            ]
        );

        clock.advance(Duration::from_secs(30));
        assert_eq!(limiter.admit(), None);
        clock.advance(Duration::from_secs(31));
        assert_eq!(
            limiter.admit(),
            Some(4),
            "three before the wait and one during it"
        );
        assert_eq!(limiter.admit(), None);
    }

    #[test]
    fn reset_restores_the_burst_and_returns_left_out() {
        let clock = FakeRelativeClock::default();
        let mut limiter = LogLimiter::with_clock(2, Duration::from_secs(60), clock);
        for _ in 0..5 {
            limiter.admit();
        }
        assert_eq!(limiter.reset(), 3);
        assert_eq!(limiter.admit(), Some(0));
        assert_eq!(limiter.admit(), Some(0));
        assert_eq!(limiter.admit(), None);
    }
}
