//! The benchmark's write-up: the machine's facts (cores, memory, date, build profile) and each
//! measurement next to its target, marked met or missed, as Markdown.

use std::fmt::Write as _;

use crate::ingest::{IngestResult, quantile_ms};

/// The machine the numbers were taken on.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub date: String,
    /// "release" or "dev" (debug assertions on: numbers far below release).
    pub profile: &'static str,
}

impl Machine {
    /// This machine, now.
    pub fn here() -> Machine {
        let memory_kib: f64 = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0.0);
        Machine {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: memory_kib / 1024.0 / 1024.0,
            date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
            profile: if cfg!(debug_assertions) {
                "dev"
            } else {
                "release"
            },
        }
    }
}

/// A target and whether a measured value meets it.
fn mark(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// The ingest section: a table of measurements with their targets.
pub fn ingest_markdown(m: &Machine, registry: &str, r: &IngestResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Ingest over gRPC with mutual TLS and durable receipts\n\n\
         {} on {} cores, {:.0} GiB, {} profile, {}. {} simulated nodes (one per province, own \
         certificate and connection), {} submissions in flight each; every submission waits for \
         its receipt, sent after the group commit's fsync. Load generator in the same process, on \
         the same 2 cores.\n",
        registry, m.cores, m.memory_gib, m.profile, m.date, r.nodes, r.in_flight
    );
    let ratio = r.reports_per_s() / r.pings_per_s();
    let values_per_report = r.values as f64 / r.reports.max(1) as f64;
    let _ = writeln!(out, "| measure | value | target | |\n|---|---:|---|---|");
    let rows = [
        (
            "reports acknowledged".to_owned(),
            format!("{}", r.reports),
            String::new(),
            String::new(),
        ),
        (
            "wall time".into(),
            format!("{:.1} s", r.elapsed.as_secs_f64()),
            String::new(),
            String::new(),
        ),
        (
            format!("reports/s ({values_per_report:.0} values each)"),
            format!("{:.0}", r.reports_per_s()),
            "≥ 20,000".into(),
            mark(r.reports_per_s() >= 20_000.0).into(),
        ),
        (
            "values/s".into(),
            format!("{:.0}", r.values_per_s()),
            String::new(),
            String::new(),
        ),
        (
            "submit → receipt p50 / p99".into(),
            format!(
                "{:.1} / {:.1} ms",
                quantile_ms(&r.latencies, 0.5),
                quantile_ms(&r.latencies, 0.99)
            ),
            String::new(),
            String::new(),
        ),
        (
            "Ping (no work) calls/s, same connections".into(),
            format!("{:.0}", r.pings_per_s()),
            String::new(),
            String::new(),
        ),
        (
            "Ping p50 / p99".into(),
            format!(
                "{:.2} / {:.2} ms",
                quantile_ms(&r.ping_latencies, 0.5),
                quantile_ms(&r.ping_latencies, 0.99)
            ),
            String::new(),
            String::new(),
        ),
        (
            "Submit rate ÷ Ping rate".into(),
            format!("{:.0}%", ratio * 100.0),
            "≥ 50%".into(),
            mark(ratio >= 0.5).into(),
        ),
        (
            format!(
                "freshness: receipt → visible in a query, p50 / p99 ({} probes)",
                r.freshness.len()
            ),
            format!(
                "{:.1} / {:.1} ms",
                quantile_ms(&r.freshness, 0.5),
                quantile_ms(&r.freshness, 0.99)
            ),
            "p99 ≤ 1 s".into(),
            mark(quantile_ms(&r.freshness, 0.99) <= 1000.0).into(),
        ),
        (
            "store on disk after the run".into(),
            format!("{:.0} MB", r.store_bytes as f64 / 1e6),
            String::new(),
            String::new(),
        ),
    ];
    for (what, value, target, met) in rows {
        let _ = writeln!(out, "| {what} | {value} | {target} | {met} |");
    }
    out
}
