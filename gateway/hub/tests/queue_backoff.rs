//! Retry delays: exponential, capped, jittered within bounds.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use cpimgate::queue::Backoff;
use cpimgate_model::time::Timestamp;
use proptest::prelude::*;

fn backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(500),
        max: Duration::from_secs(60),
        factor: 2.0,
        jitter: 0.25,
    }
}

#[test]
fn nominal_delay_doubles_then_caps() {
    let b = backoff();
    let got: Vec<_> = (0..10).map(|a| b.nominal(a).as_millis()).collect();
    assert_eq!(
        got,
        [
            500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000
        ]
    );
    assert_eq!(b.nominal(u32::MAX), Duration::from_secs(60));
}

#[test]
fn jitter_only_shortens_and_at_most_by_its_fraction() {
    let b = backoff();
    assert_eq!(b.delay_with(3, 0.0), Duration::from_secs(4));
    assert_eq!(b.delay_with(3, 1.0), Duration::from_secs(3));
    assert_eq!(b.delay_with(3, 0.5), Duration::from_millis(3500));
}

#[test]
fn random_delays_differ() {
    let b = backoff();
    let delays: std::collections::HashSet<_> = (0..50).map(|_| b.delay(5)).collect();
    assert!(delays.len() > 1, "no jitter: {delays:?}");
}

#[test]
fn next_attempt_is_in_the_future_within_the_cap() {
    let b = backoff();
    let now = Timestamp::now();
    let next = b.next_attempt(now, 100);
    assert!(next > now);
    assert!(next <= now.plus(Duration::from_secs(60)));
}

proptest! {
    #[test]
    fn delay_is_within_bounds(attempt in 0u32..200, base_ms in 1u64..10_000, max_ms in 1u64..1_000_000,
                              factor in 1.0f64..10.0, jitter in 0.0f64..=1.0) {
        let b = Backoff {
            base: Duration::from_millis(base_ms),
            max: Duration::from_millis(max_ms),
            factor,
            jitter,
        };
        let nominal = b.nominal(attempt);
        prop_assert!(nominal <= b.max);
        prop_assert!(nominal >= b.base.min(b.max));
        prop_assert!(b.nominal(attempt + 1) >= nominal);
        let d = b.delay(attempt);
        prop_assert!(d <= nominal);
        prop_assert!(d >= nominal.mul_f64(1.0 - jitter) - Duration::from_nanos(1));
    }
}
