//! Flood control: a token bucket per connection, so the gateway sends no
//! faster than the server allows and is never killed for flooding.
//!
//! Servers count lines (RFC 1459 §8.10: a client may send a burst, then
//! about one line every two seconds; InspIRCd's `commandrate` and
//! `threshold`, ircd-hybrid's and Libera's limits are of the same shape).
//! The bucket holds `burst` tokens and refills `rate` per second; a line
//! costs one. Lines that do not fit wait, in order: the driver asks
//! [`TokenBucket::wait`] how long, and never drops or reorders.

use std::time::{Duration, Instant};

/// A token bucket; time is passed in.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` lines refilled at `rate` lines per second.
    /// A `rate` of zero or less means no limit.
    pub fn new(burst: u32, rate: f64, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            burst,
            rate,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.at = now;
    }

    /// How long to wait before one more line may go; zero when it may go
    /// now.
    pub fn wait(&mut self, now: Instant) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    /// Take a token for a line sent at `now`. Call only when
    /// [`wait`](Self::wait) said zero.
    pub fn take(&mut self, now: Instant) {
        if self.rate <= 0.0 {
            return;
        }
        self.refill(now);
        self.tokens = (self.tokens - 1.0).max(-self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, 2.0, t0);
        for _ in 0..3 {
            assert_eq!(b.wait(t0), Duration::ZERO);
            b.take(t0);
        }
        // Empty: half a second to the next token at 2 per second.
        assert_eq!(b.wait(t0), Duration::from_millis(500));
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(b.wait(t1), Duration::ZERO);
        b.take(t1);
        // Never more than the burst, however long it was idle.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(b.wait(t2), Duration::ZERO);
            b.take(t2);
        }
        assert!(b.wait(t2) > Duration::ZERO);
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1, 0.0, t0);
        for _ in 0..100 {
            assert_eq!(b.wait(t0), Duration::ZERO);
            b.take(t0);
        }
    }
}
