//! The benchmark report: reads what the benchmarks of this directory left
//! in `target/bench-report/*.json` (see `cpimgate_e2e::bench_report`) and
//! writes there `report.md` (the machine, one table of every headline
//! figure beside its reference and the ratio, then each benchmark's own
//! tables) and `latency.png` (the latency distributions of the paced
//! runs, one panel per benchmark), and prints the table.
//!
//! `tests/bench/run` runs it last; alone: `cargo bench -p cpimgate-e2e
//! --bench report`. The plot's text needs DejaVu Sans
//! (`fonts-dejavu-core`, which `tests/bench/run` installs) or the font
//! file named by `BENCH_FONT`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cpimgate_e2e::bench_report::{BenchResult, Headline, report_dir, utc_now};
use plotters::prelude::*;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// The order of the benchmarks in the report; others follow by name.
const ORDER: &[&str] = &[
    "sip_load",
    "xmpp_relay",
    "irc_bridge",
    "msrp_room",
    "footprint",
];

fn main() -> ExitCode {
    let dir = report_dir();
    let results = match load(&dir) {
        Ok(r) if r.is_empty() => {
            eprintln!(
                "report: no benchmark results in {}: run the benchmarks first (tests/bench/run)",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
        Ok(r) => r,
        Err(e) => {
            eprintln!("report: reading {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let table = headline_table(&results);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# cpimgate benchmark report\n\nWritten {} UTC on {}.\n\n\
         Every ratio compares two figures measured side by side in one run of \
         one benchmark (the date of each run is in its section). Latencies are \
         from the sender's clock to the receiver's, both in the benchmark's \
         process.\n\n{table}\n![latency distributions](latency.png)\n",
        utc_now(),
        machine()
    );
    for r in &results {
        let _ = writeln!(
            md,
            "\n## {} (run {} UTC)\n\n{}",
            r.bench,
            r.when,
            r.details.trim()
        );
    }
    let md_path = dir.join("report.md");
    if let Err(e) = std::fs::write(&md_path, &md) {
        eprintln!("report: writing {}: {e}", md_path.display());
        return ExitCode::FAILURE;
    }
    println!("{table}");
    println!("report: {}", md_path.display());
    let png_path = dir.join("latency.png");
    match plot(&results, &png_path) {
        Ok(()) => {
            println!("report: {}", png_path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("report: the latency plot was not drawn: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every `*.json` of `dir`, in [`ORDER`].
fn load(dir: &Path) -> Result<Vec<BenchResult>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut results = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let r: BenchResult =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        results.push(r);
    }
    let rank = |b: &str| ORDER.iter().position(|o| *o == b).unwrap_or(ORDER.len());
    results.sort_by(|a, b| (rank(&a.bench), &a.bench).cmp(&(rank(&b.bench), &b.bench)));
    Ok(results)
}

/// The Markdown table of every headline figure.
fn headline_table(results: &[BenchResult]) -> String {
    let mut t = String::from(
        "| benchmark | figure | cpimgate | reference | its value | ratio | target |\n\
         |---|---|---:|---|---:|---:|---|\n",
    );
    for r in results {
        for h in &r.headline {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.bench,
                h.figure,
                number(h.ours),
                if h.reference.is_empty() {
                    "–"
                } else {
                    &h.reference
                },
                number(h.reference_value),
                ratio(h),
                if h.target.is_empty() {
                    "–"
                } else {
                    &h.target
                },
            );
        }
    }
    t
}

/// ours / reference; none where either is not positive (an added
/// latency of -0.3 ms has no meaningful ratio to one of +2 ms).
fn ratio(h: &Headline) -> String {
    let r = h.ratio();
    if r.is_finite() && h.ours > 0.0 && h.reference_value > 0.0 {
        format!("{r:.2}×")
    } else {
        "–".to_owned()
    }
}

/// 1,234 for large figures, 1.23 for small ones, – for none.
fn number(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_owned();
    }
    if v.abs() < 100.0 {
        return format!("{v:.2}");
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

/// "CPU model, N cores, M GiB, OS, Linux x.y".
fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0 / 1024.0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|l| l.trim_matches('"').to_owned())
        .unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease");
    format!(
        "{model}, {cores} cores, {mem_gib:.0} GiB, {os}, Linux {}",
        kernel.trim()
    )
}

/// One panel per benchmark with latencies: the share of messages (y, %)
/// that arrived within x ms, x on a log scale.
fn plot(results: &[BenchResult], path: &Path) -> Result<(), String> {
    let font = std::env::var_os("BENCH_FONT").map_or_else(|| PathBuf::from(FONT), PathBuf::from);
    let bytes = std::fs::read(&font).map_err(|e| {
        format!(
            "{}: {e} (install fonts-dejavu-core or set BENCH_FONT)",
            font.display()
        )
    })?;
    // The plotting library keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{}: not a font the plot can use", font.display()))?;

    let panels: Vec<&BenchResult> = results
        .iter()
        .filter(|r| r.latencies.iter().any(|s| !s.quantiles_ms.is_empty()))
        .collect();
    if panels.is_empty() {
        return Err("no benchmark left latencies to plot".to_owned());
    }
    let height = 420 * u32::try_from(panels.len()).unwrap_or(1);
    let root = BitMapBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    for (area, r) in root.split_evenly((panels.len(), 1)).iter().zip(&panels) {
        panel(area, r).map_err(|e| format!("{}: {e}", r.bench))?;
    }
    root.present().map_err(|e| e.to_string())
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    r: &BenchResult,
) -> Result<(), Box<dyn std::error::Error>> {
    let values = || {
        r.latencies
            .iter()
            .flat_map(|s| s.quantiles_ms.iter().copied())
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let lo = values().fold(f64::INFINITY, f64::min).max(0.001) / 1.2;
    let hi = values().fold(0.0, f64::max).max(lo * 10.0) * 1.2;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}: latency distributions ({} UTC)", r.bench, r.when),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("ms (log scale)")
        .y_desc("% of messages within")
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, s) in r.latencies.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points = s
            .quantiles_ms
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite() && **v > 0.0)
            .map(|(q, v)| (*v, q as f64));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(())
}
