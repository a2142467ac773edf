//! Retry delays for entries whose destination is down.

use std::time::Duration;

use cpimgate_model::time::Timestamp;

/// Exponential backoff with jitter.
///
/// The nominal delay before retry number `attempt` (0 for the first retry)
/// is `base * factor^attempt`, capped at `max`. The delay actually used is
/// drawn from `[nominal * (1 - jitter), nominal]`, so that the entries of a
/// destination that went down together do not all hit it again in the same
/// instant when it comes back.
///
/// ```
/// use std::time::Duration;
/// use cpimgate::queue::Backoff;
///
/// let b = Backoff::default();
/// assert!(b.delay(0) <= Duration::from_secs(1));
/// assert!(b.delay(100) <= Duration::from_secs(300));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Nominal delay before the first retry.
    pub base: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
    /// Growth per attempt (2.0 doubles).
    pub factor: f64,
    /// Fraction of the nominal delay that is random, in `0.0..=1.0`.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 1 s, doubling, capped at 5 minutes, 20 % jitter.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            factor: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// From `base` to `max`, doubling, with the default 20 % jitter.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            ..Backoff::default()
        }
    }

    /// The nominal (jitter-free) delay before retry number `attempt`.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let max = self.max.as_secs_f64();
        // powi of a large attempt is inf; min() with the cap keeps it finite.
        let exp = i32::try_from(attempt).unwrap_or(i32::MAX);
        let secs = (self.base.as_secs_f64() * self.factor.max(1.0).powi(exp)).min(max);
        Duration::try_from_secs_f64(secs).unwrap_or(self.max)
    }

    /// The delay before retry number `attempt`, with fresh randomness.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, rand::random::<f64>())
    }

    /// The delay before retry number `attempt` for a given random draw
    /// `unit` in `[0, 1)`: `unit = 0` gives the nominal delay.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let jitter = self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
        self.nominal(attempt).mul_f64(1.0 - jitter)
    }

    /// When retry number `attempt` is due, counted from `now`.
    pub fn next_attempt(&self, now: Timestamp, attempt: u32) -> Timestamp {
        now.plus(self.delay(attempt))
    }
}
