//! What a benchmark of `tests/benches/` leaves for the benchmark report:
//! its headline figures beside their reference, its own tables, and the
//! latency distributions of its paced runs, as one JSON file in
//! `target/bench-report/` (the `report` benchmark reads them all and
//! writes `report.md` and `latency.png` there).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything one benchmark run found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BenchResult {
    /// The benchmark's name (`irc_bridge`, ...): also its file's name.
    pub bench: String,
    /// When it ran, UTC, `YYYY-MM-DD HH:MM`.
    pub when: String,
    /// The figures the report's table shows, each beside its reference
    /// measured in the same run.
    pub headline: Vec<Headline>,
    /// The benchmark's own tables, Markdown, as it printed them.
    pub details: String,
    /// Latency distributions to plot.
    pub latencies: Vec<Series>,
}

/// One figure of cpimgate beside the same figure of its reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Headline {
    /// What is measured, e.g. "XMPP MUC → IRC, msg/s".
    pub figure: String,
    /// cpimgate's value (NaN, written as null, when not measured).
    #[serde(deserialize_with = "nan_if_null")]
    pub ours: f64,
    /// What it is compared with, e.g. "biboumi"; empty for none.
    pub reference: String,
    /// The reference's value in the same run (NaN for none).
    #[serde(deserialize_with = "nan_if_null")]
    pub reference_value: f64,
    /// The issue's target for the ratio, in words ("≥ 3×"); empty for none.
    pub target: String,
}

impl Headline {
    /// A figure with its reference.
    pub fn new(figure: &str, ours: f64, reference: &str, reference_value: f64) -> Headline {
        Headline {
            figure: figure.to_owned(),
            ours,
            reference: reference.to_owned(),
            reference_value,
            target: String::new(),
        }
    }

    /// A figure without a reference.
    pub fn alone(figure: &str, ours: f64) -> Headline {
        Headline::new(figure, ours, "", f64::NAN)
    }

    /// With the target of its ratio, in words.
    pub fn target(mut self, target: &str) -> Headline {
        target.clone_into(&mut self.target);
        self
    }

    /// ours / reference, NaN without a reference.
    pub fn ratio(&self) -> f64 {
        if self.reference_value.is_finite() && self.reference_value != 0.0 {
            self.ours / self.reference_value
        } else {
            f64::NAN
        }
    }
}

/// JSON has no NaN: `serde_json` writes it as null, read back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One latency distribution: its quantiles 0 %, 1 %, … 100 % in ms.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Series {
    /// The path it was measured on, e.g. "irc_bridge: puppet XMPP→IRC".
    pub label: String,
    /// 101 quantiles (nearest rank), ms; empty for no samples.
    pub quantiles_ms: Vec<f64>,
}

impl Series {
    /// The distribution of `latencies_us` (microseconds).
    pub fn of_micros(label: &str, latencies_us: &[u64]) -> Series {
        let mut v = latencies_us.to_vec();
        v.sort_unstable();
        Series {
            label: label.to_owned(),
            quantiles_ms: quantiles(&v)
                .into_iter()
                .map(|us| us as f64 / 1000.0)
                .collect(),
        }
    }

    /// The distribution of `latencies_ms`.
    pub fn of_millis(label: &str, latencies_ms: &[f64]) -> Series {
        let mut v = latencies_ms.to_vec();
        v.sort_by(f64::total_cmp);
        Series {
            label: label.to_owned(),
            quantiles_ms: quantiles(&v),
        }
    }
}

/// The 101 nearest-rank quantiles of sorted `v`; none for an empty `v`.
fn quantiles<T: Copy>(v: &[T]) -> Vec<T> {
    let Some(last) = v.len().checked_sub(1) else {
        return Vec::new();
    };
    (0..=100)
        .filter_map(|q| v.get((last * q + 50) / 100))
        .copied()
        .collect()
}

/// `target/bench-report/` of the workspace, or `BENCH_REPORT_DIR`.
pub fn report_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCH_REPORT_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")),
        PathBuf::from,
    );
    target.join("bench-report")
}

impl BenchResult {
    /// An empty result of `bench`, stamped now.
    pub fn new(bench: &str) -> BenchResult {
        BenchResult {
            bench: bench.to_owned(),
            when: utc_now(),
            ..BenchResult::default()
        }
    }

    /// Writes `<report_dir>/<bench>.json`; returns its path.
    pub fn save(&self) -> std::io::Result<PathBuf> {
        let dir = report_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.json", self.bench));
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, json)?;
        Ok(path)
    }

    /// Writes the file and says where, or why not (a benchmark's figures
    /// are printed anyway: a report that cannot be written fails nothing).
    pub fn save_and_say(&self) {
        match self.save() {
            Ok(path) => eprintln!("{}: figures written to {}", self.bench, path.display()),
            Err(e) => eprintln!("{}: the report file could not be written: {e}", self.bench),
        }
    }
}

/// Now, UTC, `YYYY-MM-DD HH:MM`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// The calendar date of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2000-03-01 is day 11,017; 2026-12-04 is day 20,791.
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(20_791), (2026, 12, 4));
    }

    #[test]
    fn quantiles_span_the_samples() {
        let v: Vec<u64> = (1..=1000).collect();
        let s = Series::of_micros("x", &v);
        assert_eq!(s.quantiles_ms.len(), 101);
        assert_eq!(s.quantiles_ms.first().copied(), Some(0.001));
        assert_eq!(s.quantiles_ms.get(50).copied(), Some(0.501));
        assert_eq!(s.quantiles_ms.last().copied(), Some(1.0));
        assert!(Series::of_millis("y", &[]).quantiles_ms.is_empty());
    }

    #[test]
    fn a_missing_figure_survives_the_file() {
        let mut r = BenchResult::new("t");
        r.headline.push(Headline::alone("f", f64::NAN));
        let json = serde_json::to_string(&r).unwrap_or_default();
        let back: BenchResult = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back.headline.len(), 1);
        assert!(
            back.headline
                .iter()
                .all(|h| h.ours.is_nan() && h.reference_value.is_nan())
        );
    }

    #[test]
    fn ratios_need_a_reference() {
        assert_eq!(Headline::new("f", 6.0, "r", 2.0).ratio(), 3.0);
        assert!(Headline::alone("f", 6.0).ratio().is_nan());
        assert!(Headline::new("f", 6.0, "r", 0.0).ratio().is_nan());
    }
}
