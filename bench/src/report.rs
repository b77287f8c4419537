//! The benchmark's write-up: the machine's facts (cores, memory, date, build profile) and each
//! measurement next to its target, marked met or missed, as Markdown.

use std::fmt::Write as _;

use crate::{
    drain::DrainResult,
    ingest::{BatchPass, IngestResult, quantile_ms},
    queries::{Footprint, QueriesResult},
};

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

/// This machine's CPU time so far as /proc/stat counts it: (all, stolen by the host's
/// hypervisor). None where the kernel does not say.
pub fn cpu_time() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is within user)
    let all = fields.iter().take(8).sum();
    Some((all, *fields.get(7)?))
}

/// The share of the machine's CPU time the host took (steal) between two readings of
/// [`cpu_time`], in percent: while a VM's cores are taken, every time measured in it is longer.
pub fn steal_pct(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<f64> {
    let ((a0, s0), (a1, s1)) = (before?, after?);
    let all = a1.checked_sub(a0).filter(|d| *d > 0)?;
    Some(s1.saturating_sub(s0) as f64 * 100.0 / all as f64)
}

/// A target and whether a measured value meets it.
fn mark(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// A table row: what, the value, and the target with whether it is met (if it has one).
type Row<'a> = (String, String, Option<(&'a str, bool)>);

/// Writes measure rows under a `| measure | value | target | |` header already written.
fn write_rows<'a>(out: &mut String, rows: impl IntoIterator<Item = Row<'a>>) {
    for (what, value, target) in rows {
        let (target, met) = target.map_or(("", ""), |(t, met)| (t, mark(met)));
        let _ = writeln!(out, "| {what} | {value} | {target} | {met} |");
    }
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
    let p50_p99 = |sorted: &[std::time::Duration], decimals: usize| {
        format!(
            "{:.decimals$} / {:.decimals$} ms",
            quantile_ms(sorted, 0.5),
            quantile_ms(sorted, 0.99)
        )
    };
    let per_s = r.reports_per_s();
    let fresh_p99 = quantile_ms(&r.freshness, 0.99);
    let batch_rows: Vec<Row<'_>> = match &r.batch {
        Some(b) => vec![
            (
                format!(
                    "SubmitBatch (the next month, one stream per node): reports/s, {} reports",
                    b.reports
                ),
                format!("{:.0}", b.reports_per_s()),
                Some(("≥ 20,000", b.reports_per_s() >= 20_000.0)),
            ),
            (
                "SubmitBatch: report sent → result p50 / p99".into(),
                p50_p99(&b.latencies, 1),
                None,
            ),
        ],
        None => Vec::new(),
    };
    let rows: [Row<'_>; 12] = [
        ("reports acknowledged".into(), r.reports.to_string(), None),
        (
            "wall time".into(),
            format!("{:.1} s", r.elapsed.as_secs_f64()),
            None,
        ),
        (
            format!("unary Submit: reports/s ({values_per_report:.0} values each)"),
            format!("{per_s:.0}"),
            None,
        ),
        ("values/s".into(), format!("{:.0}", r.values_per_s()), None),
        (
            "submit → receipt p50 / p99".into(),
            p50_p99(&r.latencies, 1),
            None,
        ),
        (
            "Ping (no work) calls/s, same connections".into(),
            format!("{:.0}", r.pings_per_s()),
            None,
        ),
        ("Ping p50 / p99".into(), p50_p99(&r.ping_latencies, 2), None),
        (
            "Submit rate ÷ Ping rate".into(),
            format!("{:.0}%", ratio * 100.0),
            Some(("≥ 50%", ratio >= 0.5)),
        ),
        (
            format!(
                "the same, part by part: the unary pass in {} parts, each against the Ping windows before and after it",
                r.round_ratios.len()
            ),
            spread(&r.round_ratios),
            None,
        ),
        (
            "CPU per call, the process's every thread: Submit / Ping (÷)".into(),
            cpu_per_call(r),
            None,
        ),
        (
            format!(
                "freshness: receipt → visible in a query, p50 / p99 ({} probes)",
                r.freshness.len()
            ),
            p50_p99(&r.freshness, 1),
            Some(("p99 ≤ 1 s", fresh_p99 <= 1000.0)),
        ),
        (
            "store on disk after the run".into(),
            format!("{:.0} MB", r.store_bytes as f64 / 1e6),
            None,
        ),
    ];
    write_rows(&mut out, rows.into_iter().chain(batch_rows));
    if !r.rankings.is_empty() {
        let _ = writeln!(
            out,
            "\nDuring the ingest, every township of the registry was ranked on 万人发案率 again and again: {} rankings, p50 / p99 {}.",
            r.rankings.len(),
            p50_p99(&r.rankings, 0)
        );
    }
    out
}

/// Receipts with and without national rankings running beside the ingest, at full load
/// (closed loop, `full`) and at a steady rate (`paced`): the p99 of submit → receipt in each run
/// and their ratio, against the re-layering issue's target (≤ 1.5×).
pub fn receipts_under_ranking_markdown(
    m: &Machine,
    registry: &str,
    full: (&IngestResult, &IngestResult),
    paced: (&IngestResult, &IngestResult),
) -> String {
    let (quiet, ranked) = full;
    let p99_ratio = |(quiet, ranked): (&IngestResult, &IngestResult)| {
        let (p99_quiet, p99_ranked) = (
            quantile_ms(&quiet.latencies, 0.99),
            quantile_ms(&ranked.latencies, 0.99),
        );
        let ratio = p99_ranked / p99_quiet;
        format!(
            "| {p99_quiet:.1} ms | {p99_ranked:.1} ms ({ratio:.2}×) | ≤ 1.5× | {} |",
            if ratio <= 1.5 { "met" } else { "**missed**" }
        )
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Receipts while national rankings run\n\n\
         {registry} on {} cores, {} profile, {}. The same ingest twice ({} reports, {} nodes × {} \
         in flight): alone, then with every township of the registry ranked on 万人发案率 in a loop \
         beside it ({} rankings, p50 {:.0} ms). Queries hold the rollups' lock one chunk of rows at \
         a time; the writer needs it before any receipt goes out. Load generator, hub and rankings \
         share the same cores.\n",
        m.cores,
        m.profile,
        m.date,
        quiet.reports,
        quiet.nodes,
        quiet.in_flight,
        ranked.rankings.len(),
        quantile_ms(&ranked.rankings, 0.5),
    );
    let _ = writeln!(
        out,
        "| measure | alone | with rankings | target | |\n|---|---:|---:|---|---|"
    );
    let _ = writeln!(
        out,
        "| submit → receipt p50 | {:.1} ms | {:.1} ms | | |",
        quantile_ms(&quiet.latencies, 0.5),
        quantile_ms(&ranked.latencies, 0.5)
    );
    let _ = writeln!(out, "| submit → receipt p99 {}", p99_ratio(full));
    let _ = writeln!(
        out,
        "| reports/s | {:.0} | {:.0} | | |",
        quiet.reports_per_s(),
        ranked.reports_per_s()
    );
    let waits = |r: &IngestResult| {
        format!(
            "≤ {} / ≤ {} (longest {})",
            micros(r.lock_waits.quantile_us(0.5)),
            micros(r.lock_waits.quantile_us(0.99)),
            micros(r.lock_waits.longest_us)
        )
    };
    // the writer's wait for the lock in a pair of runs, one per committed group, and added up
    let waits_row = |what: &str, (quiet, ranked): (&IngestResult, &IngestResult)| {
        let total = |r: &IngestResult| {
            format!(
                "{:.2} s of the pass's {:.1} s",
                r.lock_waits.total_us as f64 / 1e6,
                r.elapsed.as_secs_f64()
            )
        };
        format!(
            "| {what}the writer's wait for the rollups' lock, p50 / p99 (one per committed group: {} / {} groups) | {} | {} | | |\n\
             | {what}the writer's waits for the lock, added up | {} | {} | | |",
            quiet.lock_waits.count(),
            ranked.lock_waits.count(),
            waits(quiet),
            waits(ranked),
            total(quiet),
            total(ranked),
        )
    };
    let _ = writeln!(out, "{}", waits_row("", full));
    let _ = writeln!(out, "{}", scheduled_rows("", full, m.cores));
    let (steady, steady_ranked) = paced;
    let _ = writeln!(
        out,
        "| at a steady {:.0} reports/s offered ({} reports, open loop: each leaves at its turn, its time counted from then), submit → receipt p50 | {:.1} ms | {:.1} ms | | |",
        steady.reports_per_s(),
        steady.reports,
        quantile_ms(&steady.latencies, 0.5),
        quantile_ms(&steady_ranked.latencies, 0.5)
    );
    let _ = writeln!(
        out,
        "| at the steady rate, submit → receipt p99 {}",
        p99_ratio(paced)
    );
    let _ = writeln!(out, "{}", waits_row("at the steady rate, ", paced));
    let _ = writeln!(
        out,
        "{}",
        scheduled_rows("at the steady rate, ", paced, m.cores)
    );
    let _ = writeln!(
        out,
        "\nAt full load ({} × {} submissions always in flight) a receipt's time is the queue \
         ahead of it, so its p99 follows the rate: {:.0} reports/s with rankings against {:.0} \
         alone. Where the time goes, from the scheduler's figures (Linux schedstat, every thread \
         of the process) and the writer's waits added up: the rankings took {:.0}% of the {} \
         cores; the threads serving the ingest spent {} of CPU per report against {} alone (the \
         same work made dearer beside the rankings: shared caches the likely reason, not measured \
         apart); the writer waited for the lock {:.2} s in all of the pass's {:.1} s. At a steady \
         rate the hub has room, and the ratio is what a ranking costs a receipt: the serving \
         threads waited {} per report for a core (alone {}), while the writer's waits for the \
         lock added up to {:.2} s of {:.1} s: a receipt behind a ranking waits mostly for a core, \
         not for the lock. A steady pass's p99 is its slowest 1% of receipts, {:.1} s of \
         traffic: one stall of the disk or the machine that long sets it, alone or ranked, so \
         that pair's ratio moves from run to run far more than the full-load pair's.",
        quiet.nodes,
        quiet.in_flight,
        ranked.reports_per_s(),
        quiet.reports_per_s(),
        cores_share(ranked, m.cores),
        m.cores,
        micros(per_report_us(ranked.scheduled.ran, ranked)),
        micros(per_report_us(quiet.scheduled.ran, quiet)),
        ranked.lock_waits.total_us as f64 / 1e6,
        ranked.elapsed.as_secs_f64(),
        micros(per_report_us(steady_ranked.scheduled.waited, steady_ranked)),
        micros(per_report_us(steady.scheduled.waited, steady)),
        steady_ranked.lock_waits.total_us as f64 / 1e6,
        steady_ranked.elapsed.as_secs_f64(),
        steady.elapsed.as_secs_f64() / 100.0,
    );
    out
}

/// A time per report of a pass, in whole µs.
fn per_report_us(t: std::time::Duration, r: &IngestResult) -> u64 {
    (t.as_secs_f64() * 1e6 / r.reports.max(1) as f64).round() as u64
}

/// The scheduler's rows of a pair of runs: the serving threads' CPU and wait for a core per
/// report, and the rankings' share of the cores.
fn scheduled_rows(
    what: &str,
    (quiet, ranked): (&IngestResult, &IngestResult),
    cores: usize,
) -> String {
    format!(
        "| {what}the threads serving the ingest (hub, writer, load generator): CPU per report | {} | {} | | |\n\
         | {what}the same threads' wait for a core (run queue), per report | {} | {} | | |\n\
         | {what}the rankings' share of the {cores} cores over the pass (the process's CPU beyond those threads') | — | {:.0}% | | |",
        micros(per_report_us(quiet.scheduled.ran, quiet)),
        micros(per_report_us(ranked.scheduled.ran, ranked)),
        micros(per_report_us(quiet.scheduled.waited, quiet)),
        micros(per_report_us(ranked.scheduled.waited, ranked)),
        cores_share(ranked, cores),
    )
}

/// The rankings' CPU over a pass as a share of the machine's cores, in %.
fn cores_share(r: &IngestResult, cores: usize) -> f64 {
    100.0 * r.scheduled.rankings_ran.as_secs_f64()
        / (r.elapsed.as_secs_f64() * cores.max(1) as f64).max(f64::MIN_POSITIVE)
}

/// A time in µs as a reader takes it in: µs below a millisecond, else ms.
fn micros(us: u64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else {
        format!("{:.1} ms", us as f64 / 1000.0)
    }
}

/// How the ingest's rate goes with the months already stored: the national month onto an
/// empty hub (the ingest above) and onto hubs holding the dataset's first months. A rate falling
/// below four fifths of the empty hub's is called out: the work per report is the same.
/// Ratios as the lowest–highest percentage; `—` for none.
fn spread(ratios: &[f64]) -> String {
    let lowest = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match ratios.len() {
        0 => "—".into(),
        1 => format!("{:.0}%", lowest * 100.0),
        _ => format!("{:.0}–{:.0}%", lowest * 100.0, highest * 100.0),
    }
}

/// The CPU time per `Submit` and per `Ping`, and their ratio; `—` where it was not read.
fn cpu_per_call(r: &IngestResult) -> String {
    let (submit, ping) = r.cpu_per_call_us();
    if submit > 0.0 && ping > 0.0 {
        format!("{submit:.0} / {ping:.0} µs ({:.2}×)", submit / ping)
    } else {
        "—".into()
    }
}

pub fn ingest_growth_markdown(grown: &[(u32, IngestResult)]) -> String {
    let Some((_, empty)) = grown.first() else {
        return String::new();
    };
    let mut out = String::from(
        "\n### Ingest over gRPC as history grows\n\n\
         The same national month (every county, township and village; 31 nodes, mutual TLS, \
         durable receipts) onto a hub already holding the dataset's first months: a copy of the \
         imported store and its saved rollups, opened by the hub in the benchmark's process. The \
         months submitted are new to every hub (the two before the dataset's; the empty hub's \
         are those of the ingest above).\n\n\
         | months stored | unary Submit reports/s | Ping calls/s | Submit ÷ Ping | CPU per Submit / Ping | SubmitBatch reports/s | receipt p99 |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let batch_rate = |r: &IngestResult| r.batch.as_ref().map_or(f64::NAN, BatchPass::reports_per_s);
    let mut slower = Vec::new();
    for (months, r) in grown {
        let _ = writeln!(
            out,
            "| {months} | {:.0} | {:.0} | {:.0}% | {} | {:.0} | {:.1} ms |",
            r.reports_per_s(),
            r.pings_per_s(),
            100.0 * r.reports_per_s() / r.pings_per_s(),
            cpu_per_call(r),
            batch_rate(r),
            quantile_ms(&r.latencies, 0.99)
        );
        // against Ping in the same run: the machine's speed drifts between runs
        let (ratio, ratio0) = (
            r.reports_per_s() / r.pings_per_s(),
            empty.reports_per_s() / empty.pings_per_s(),
        );
        if *months > 0 && ratio < 0.8 * ratio0 {
            slower.push(format!("unary Submit at {months} months"));
        }
        if *months > 0 && batch_rate(r) < 0.8 * batch_rate(empty) {
            slower.push(format!("SubmitBatch at {months} months"));
        }
    }
    if slower.is_empty() {
        out += "\nNo rate falls below four fifths of the empty hub's (unary Submit against Ping in the same run).\n";
    } else {
        let _ = writeln!(
            out,
            "\n**Slows as history grows** (below four fifths of the empty hub's): {}.",
            slower.join(", ")
        );
    }
    out.push('\n');
    out
}

/// The node's backlog drained by the real binaries.
pub fn drain_markdown(m: &Machine, d: &DrainResult) -> String {
    format!(
        "### A node's backlog drained by the real binaries

\
         `pingan-node run` (release) delivering an outbox of {} reports (26 values each, one \
         month of as many villages) to `pingan-hub serve` (release, plaintext gRPC on loopback, an \
         empty store) over its `SubmitBatch` stream, timed from the node's start until its outbox \
         holds nothing pending; {} cores, {}.

\
         | measure | value |
|---|---:|
\
         | reports drained | {} (the hub stored {}) |
\
         | time | {:.1} s |
\
         | reports/s | {:.0} |
\
         | the node's peak RSS while draining | {:.0} MiB |

",
        d.reports,
        m.cores,
        m.date,
        d.reports,
        d.stored,
        d.took.as_secs_f64(),
        d.reports_per_s(),
        d.node_peak_rss_kib as f64 / 1024.0
    )
}

/// p-quantile of milliseconds (nearest rank).
pub(crate) fn q_ms(times: &[f64], q: f64) -> f64 {
    let mut v = times.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// The queries section (hub against DuckDB) and the resources section.
pub fn queries_markdown(m: &Machine, registry: &str, r: &QueriesResult) -> String {
    let mut out = String::new();
    let runs = r.queries.first().map_or(0, |q| q.hub_ms.len());
    let _ = writeln!(
        out,
        "### Queries at national scale, against DuckDB\n\n\
         {registry}; {} months, {} revisions in the hub's store; on {} cores, {:.0} GiB, {} \
         profile, {}. The hub is the real `pingan-hub serve` process, asked over gRPC on loopback \
         (answers decoded by the client; the national rankings asked `as_columns` and read back \
         into rows within the timed call, and the township ranking once more as rows); DuckDB {} (Python, {} threads) answers the same \
         questions from the same raw rows: the {} CSV rows the hub imported (a correction's row \
         replaces its report's), the registry as the hub loaded it and the populations, loaded \
         into DuckDB's memory first ({:.1} s, not counted). Each question {runs} times on each \
         side; every answer is checked equal (values, rates and ranks, 同比, the missing \
         reporters by code).\n",
        r.months,
        r.revisions,
        m.cores,
        m.memory_gib,
        m.profile,
        m.date,
        r.duckdb_version,
        r.duckdb_threads,
        r.raw_rows,
        r.duckdb_load_ms / 1000.0,
    );
    if let Some(steal) = r.hub_steal_pct {
        let _ = writeln!(
            out,
            "While the hub was asked, the host took {steal:.0}% of this VM's CPU time (steal, \
             /proc/stat): the cores were not ours for that share of the time, and every time below \
             is longer for it.\n"
        );
    }
    let _ = writeln!(
        out,
        "| question | rows | hub p50 / p99 | DuckDB p50 / p99 | hub ÷ DuckDB (p50) | answers | target: p50 ≤ 50 ms, faster than DuckDB |\n|---|---:|---:|---:|---:|---|---|"
    );
    for q in &r.queries {
        let (h50, h99) = (q_ms(&q.hub_ms, 0.5), q_ms(&q.hub_ms, 0.99));
        let (d50, d99) = (q_ms(&q.duckdb_ms, 0.5), q_ms(&q.duckdb_ms, 0.99));
        let answers = match &q.difference {
            None => "equal".to_owned(),
            Some(d) => format!("**differ**: {d}"),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {h50:.1} / {h99:.1} ms | {d50:.1} / {d99:.1} ms | {:.2} | {answers} | {} |",
            q.what,
            q.rows,
            h50 / d50,
            mark(h50 <= 50.0 && h50 < d50)
        );
    }
    span_markdown(&mut out, r);
    resources_markdown(&mut out, r);
    out
}

/// How the national township ranking's time grows with its span; a time growing faster than
/// the months it reads is called out.
fn span_markdown(out: &mut String, r: &QueriesResult) {
    if r.ranking_by_span.is_empty() {
        return;
    }
    let _ = writeln!(
        *out,
        "\n### How the national ranking's time grows with its span\n\n\
         Every township ranked on 万人发案率 over the last N months (cumulative), with 同比 and 环比 \
         (so three spans of N months are read per row); {} runs each.\n\n\
         | months in the span | rows | hub p50 / p99 | p50 ÷ the 1-month p50 |\n|---:|---:|---:|---:|",
        r.ranking_by_span[0].1.len()
    );
    let base = q_ms(&r.ranking_by_span[0].1, 0.5);
    let mut faster = None;
    for (months, times, rows) in &r.ranking_by_span {
        let p50 = q_ms(times, 0.5);
        let _ = writeln!(
            *out,
            "| {months} | {rows} | {p50:.1} / {:.1} ms | {:.1}× |",
            q_ms(times, 0.99),
            p50 / base
        );
        if p50 / base > f64::from(*months) * 1.2 && faster.is_none() {
            faster = Some(*months);
        }
    }
    if let Some(m) = faster {
        let _ = writeln!(
            *out,
            "\n**The time grows faster than the months read** (at {m} months)."
        );
    }
}

/// How memory, the snapshot and the store grow with the months stored; a measure growing
/// faster than the months is called out.
pub fn footprint_markdown(growth: &[Footprint]) -> String {
    let mut out = String::new();
    let Some(first) = growth.first() else {
        return out;
    };
    let _ = writeln!(
        out,
        "\n### How memory and the saved rollups grow with the months stored

\
         Hubs on stores holding the dataset's first months (each imported into its own store), \
         started, stopped (which saves the rollups) and restarted; RSS once serving after the \
         restart.\n\n\
         | months stored | hub RSS | snapshot | snapshot per month | store | restart |\n|---:|---:|---:|---:|---:|---:|"
    );
    let mut faster = Vec::new();
    for g in growth {
        let _ = writeln!(
            out,
            "| {} | {:.0} MiB | {:.2} GB | {:.0} MB | {:.2} GB | {:.1} s |",
            g.months,
            g.rss_kib as f64 / 1024.0,
            g.snapshot_bytes as f64 / 1e9,
            g.snapshot_bytes as f64 / 1e6 / g.months.max(1) as f64,
            g.store_bytes as f64 / 1e9,
            g.restart.as_secs_f64()
        );
        let months = g.months as f64 / first.months.max(1) as f64;
        for (what, now, then) in [
            ("RSS", g.rss_kib as f64, first.rss_kib as f64),
            (
                "snapshot",
                g.snapshot_bytes as f64,
                first.snapshot_bytes as f64,
            ),
            ("store", g.store_bytes as f64, first.store_bytes as f64),
        ] {
            if then > 0.0 && now / then > months * 1.2 {
                faster.push(format!("{what} at {} months", g.months));
            }
        }
    }
    if !faster.is_empty() {
        let _ = writeln!(
            out,
            "\n**Grows faster than the months stored**: {}.",
            faster.join(", ")
        );
    }
    out
}

/// The resources section: memory, restart, first start, store and snapshot sizes.
fn resources_markdown(out: &mut String, r: &QueriesResult) {
    let _ = writeln!(
        *out,
        "\n### Resources with {} national months loaded\n\n| measure | value | target | |\n|---|---:|---|---|",
        r.months
    );
    // the target is 2 GB for 24 national months, so 2 GB / 24 a month for fewer
    let store_target = 2e9 * r.months as f64 / 24.0;
    let rows: [Row<'_>; 8] = [
        (
            "hub RSS, serving after the restart / peak after the questions".into(),
            format!(
                "{:.0} / {:.0} MiB",
                r.rss_kib as f64 / 1024.0,
                r.peak_rss_kib as f64 / 1024.0
            ),
            Some(("≤ 4 GiB", r.peak_rss_kib <= 4 << 20)),
        ),
        (
            "restart to serving (rollups from the saved snapshot)".into(),
            format!("{:.1} s", r.restart.as_secs_f64()),
            Some(("≤ 60 s", r.restart.as_secs_f64() <= 60.0)),
        ),
        (
            if r.first_start_rebuilt {
                "first start, rollups rebuilt from every stored revision".into()
            } else {
                "first start of this run (a snapshot was already there)".into()
            },
            format!("{:.1} s", r.first_start.as_secs_f64()),
            r.first_start_rebuilt
                .then_some(("≤ 60 s", r.first_start.as_secs_f64() <= 60.0)),
        ),
        (
            if r.on_postgres {
                "store in PostgreSQL (`pg_database_size`: every revision, its indexes)".into()
            } else {
                "store on disk (SQLite, every revision)".into()
            },
            format!("{:.2} GB", r.store_bytes as f64 / 1e9),
            Some((
                if r.months == 24 {
                    "≤ 2 GB"
                } else {
                    "≤ 2 GB for 24 months (pro rata)"
                },
                r.store_bytes as f64 <= store_target,
            )),
        ),
        (
            "store per revision (every audit field kept)".into(),
            format!(
                "{:.0} bytes",
                r.store_bytes as f64 / r.revisions.max(1) as f64
            ),
            None,
        ),
        (
            "DuckDB database file of the same rows (values only)".into(),
            format!("{:.2} GB", r.duckdb_file_bytes as f64 / 1e9),
            None,
        ),
        (
            "store per month".into(),
            format!(
                "{:.0} MB",
                r.store_bytes as f64 / 1e6 / r.months.max(1) as f64
            ),
            None,
        ),
        (
            "saved rollups (snapshot file)".into(),
            format!("{:.0} MB", r.snapshot_bytes as f64 / 1e6),
            None,
        ),
    ];
    write_rows(out, rows);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ingest::Scheduled;

    fn at(months: usize, rss_mib: u64, snapshot_mb: u64) -> Footprint {
        Footprint {
            months,
            rss_kib: rss_mib * 1024,
            snapshot_bytes: snapshot_mb * 1_000_000,
            store_bytes: months as u64 * 64_000_000,
            restart: Duration::from_millis(1500),
        }
    }

    #[test]
    fn steal_is_the_host_s_share_of_the_cpu_time_between_two_readings() {
        assert_eq!(steal_pct(Some((1000, 10)), Some((1400, 110))), Some(25.0));
        assert_eq!(steal_pct(Some((1000, 10)), Some((1000, 10))), None);
        assert_eq!(steal_pct(None, Some((1000, 10))), None);
        // this machine's own reading: steal within all
        if let Some((all, steal)) = cpu_time() {
            assert!(steal <= all && all > 0);
        }
    }

    #[test]
    fn the_footprint_table_has_a_row_per_store_and_calls_out_what_grows_faster_than_months() {
        let steady = footprint_markdown(&[at(1, 400, 60), at(12, 900, 720), at(24, 1500, 1440)]);
        assert!(
            steady.contains("| 12 | 900 MiB | 0.72 GB | 60 MB | 0.77 GB | 1.5 s |"),
            "{steady}"
        );
        assert!(!steady.contains("faster"), "{steady}");
        // the snapshot per month doubling by 24 months is called out
        let growing = footprint_markdown(&[at(1, 400, 60), at(24, 1500, 2880)]);
        assert!(
            growing.contains("**Grows faster than the months stored**: snapshot at 24 months."),
            "{growing}"
        );
        assert!(footprint_markdown(&[]).is_empty());
    }

    /// An ingest of `reports` in `secs`, Ping at `pings` per second, and a batch pass at
    /// `batch` reports per second.
    fn ingested(reports: u64, secs: u64, pings: u64, batch: u64) -> IngestResult {
        IngestResult {
            reports,
            elapsed: Duration::from_secs(secs),
            pings,
            ping_elapsed: Duration::from_secs(1),
            // 90 µs of CPU a Submit, 45 a Ping
            cpu: Duration::from_micros(reports * 90),
            ping_cpu: Duration::from_micros(pings * 45),
            latencies: vec![Duration::from_millis(80), Duration::from_millis(150)],
            batch: Some(BatchPass {
                reports: batch,
                elapsed: Duration::from_secs(1),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_parts_ratios_read_as_their_lowest_and_highest() {
        assert_eq!(spread(&[0.61, 0.524, 0.58]), "52–61%");
        assert_eq!(spread(&[0.5]), "50%");
        assert_eq!(spread(&[]), "—");
    }

    #[test]
    fn the_receipts_table_marks_full_load_and_the_steady_rate_against_the_bound() {
        let with = |ms: [u64; 3]| IngestResult {
            latencies: ms.map(Duration::from_millis).to_vec(),
            ..ingested(5_000, 1, 10_000, 0)
        };
        let m = Machine {
            cores: 2,
            memory_gib: 24.0,
            date: "2026-12-05".into(),
            profile: "release",
        };
        // 5,000 reports in 1 s: the steady pass's threads waited 0.2 s alone, 1.5 s with
        // rankings (40 and 300 µs a report), the rankings took 0.9 s of the 2 cores' 2 s
        // and the writer waited 0.25 s for the lock in all with rankings
        let scheduled = |r: IngestResult, waited_ms, rankings_ms, lock_ms: u64| {
            let mut lock_waits = pingan_hub::query::WaitsSeen::default();
            lock_waits.total_us = lock_ms * 1_000;
            IngestResult {
                scheduled: Scheduled {
                    waited: Duration::from_millis(waited_ms),
                    ran: Duration::from_secs(1),
                    rankings_ran: Duration::from_millis(rankings_ms),
                },
                lock_waits,
                ..r
            }
        };
        let text = receipts_under_ranking_markdown(
            &m,
            "三台县",
            (&with([40, 50, 80]), &with([60, 70, 160])),
            (
                &scheduled(with([1, 2, 20]), 200, 0, 0),
                &scheduled(with([3, 5, 28]), 1_500, 900, 250),
            ),
        );
        assert!(
            text.contains("| at the steady rate, the same threads' wait for a core (run queue), per report | 40 µs | 300 µs | | |"),
            "{text}"
        );
        assert!(
            text.contains("| at the steady rate, the rankings' share of the 2 cores over the pass (the process's CPU beyond those threads') | — | 45% | | |"),
            "{text}"
        );
        assert!(
            text.contains("| at the steady rate, the threads serving the ingest (hub, writer, load generator): CPU per report | 200 µs | 200 µs | | |"),
            "{text}"
        );
        assert!(
            text.contains("| at the steady rate, the writer's waits for the lock, added up | 0.00 s of the pass's 1.0 s | 0.25 s of the pass's 1.0 s | | |"),
            "{text}"
        );
        assert!(
            text.contains("threads waited 300 µs per report for a core (alone 40 µs), while the writer's waits for the lock added up to 0.25 s of 1.0 s"),
            "{text}"
        );
        assert!(
            text.contains(
                "| submit → receipt p99 | 80.0 ms | 160.0 ms (2.00×) | ≤ 1.5× | **missed** |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| at the steady rate, submit → receipt p99 | 20.0 ms | 28.0 ms (1.40×) | ≤ 1.5× | met |"),
            "{text}"
        );
        assert!(
            text.contains("submit → receipt p50 | 2.0 ms | 5.0 ms |"),
            "{text}"
        );
        assert_eq!(
            text.matches("the writer's wait for the rollups' lock")
                .count(),
            2
        );
    }

    #[test]
    fn times_in_micros_read_as_micros_or_millis() {
        assert_eq!(micros(0), "0 µs");
        assert_eq!(micros(512), "512 µs");
        assert_eq!(micros(8192), "8.2 ms");
    }

    #[test]
    fn the_ingest_growth_table_has_a_row_per_history_and_calls_out_a_falling_rate() {
        let steady = ingest_growth_markdown(&[
            (0, ingested(600_000, 50, 30_000, 45_000)),
            (24, ingested(600_000, 60, 26_000, 44_000)),
        ]);
        // 10,000/s against 26,000 Pings in the same run: 38%, within four fifths of 40%
        assert!(
            steady.contains("| 24 | 10000 | 26000 | 38% | 90 / 45 µs (2.00×) | 44000 | 150.0 ms |"),
            "{steady}"
        );
        assert!(steady.contains("No rate falls"), "{steady}");
        let falling = ingest_growth_markdown(&[
            (0, ingested(600_000, 50, 30_000, 45_000)),
            (12, ingested(600_000, 100, 30_000, 30_000)),
        ]);
        assert!(
            falling.contains(
                "**Slows as history grows** (below four fifths of the empty hub's): unary Submit at 12 months, SubmitBatch at 12 months."
            ),
            "{falling}"
        );
        assert!(ingest_growth_markdown(&[]).is_empty());
    }
}
