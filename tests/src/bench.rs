//! What the benchmarks of `tests/benches/` share: one clock for send and
//! arrival times in a process, percentiles of latencies, the kernel's
//! clock tick for CPU figures, settings from the environment.

use std::sync::OnceLock;
use std::time::Instant;

/// Microseconds since the first call in this process: every body a
/// benchmark sends carries it, and its arrival is read on the same clock.
pub fn micros() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The `p` quantile (0.0 to 1.0, nearest rank) of latencies in
/// microseconds, in milliseconds; NaN for none.
pub fn percentile_ms(latencies: &[u64], p: f64) -> f64 {
    if latencies.is_empty() {
        return f64::NAN;
    }
    let mut v = latencies.to_vec();
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v.get(i.min(v.len() - 1)).copied().unwrap_or_default() as f64 / 1000.0
}

/// Clock ticks per second of `/proc/PID/stat` CPU times.
pub fn clock_ticks_per_second() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on; `getconf`
    // says otherwise if it is not.
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The integer in environment variable `name`, `default` when it is not
/// set; an error that names it when it is not an integer.
pub fn env_u64(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{name}={v:?}: an integer is needed")),
        Err(_) => Ok(default),
    }
}

/// The runtime of a benchmark's `main`: two workers (the peers the
/// benchmark starts have the rest of the machine); `None` after saying
/// why under `name` when it cannot start.
pub fn runtime(name: &str) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("{name}: starting the runtime: {e}");
            None
        }
    }
}

/// The soft and hard limits of open files of this process (and of the
/// processes it starts), from `/proc/self/limits`.
pub fn open_files_limit() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut values = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .map(|v| {
            if v == "unlimited" {
                Some(u64::MAX)
            } else {
                v.parse().ok()
            }
        });
    Some((values.next()??, values.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_in_ms() {
        let v = [3000, 1000, 2000, 4000, 5000];
        assert_eq!(percentile_ms(&v, 0.5), 3.0);
        assert_eq!(percentile_ms(&v, 1.0), 5.0);
        assert_eq!(percentile_ms(&v, 0.0), 1.0);
        assert!(percentile_ms(&[], 0.5).is_nan());
    }

    #[test]
    fn this_process_has_an_open_files_limit() {
        let (soft, hard) = open_files_limit().unwrap_or_default();
        assert!(soft > 0 && soft <= hard);
    }
}
