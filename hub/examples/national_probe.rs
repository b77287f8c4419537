//! A rough probe of the query engine at national scale, ahead of the benchmark issue: loads a
//! divisions directory (e.g. domain/data/divisions-national), applies synthetic monthly revisions of
//! every county, township and village straight to the engine (no gRPC, no store writes), and
//! times a few questions. Prints RSS. Not a benchmark: one run, no DuckDB comparison.
//!
//! `cargo run --release -p pingan-hub --example national_probe -- domain/data/divisions-national 3`

use std::time::Instant;

use pingan_domain::{Areas, Catalogue, Level, Period, pb};
use pingan_hub::{Clock, HubState, store::Committed};

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| "domain/data/divisions-national".into());
    let months: i64 = args.next().map(|m| m.parse()).transpose()?.unwrap_or(3);
    let t = Instant::now();
    let areas = Areas::load_dir(std::path::Path::new(&dir))?;
    println!(
        "registry: {} areas in {:.1?}, RSS {} MiB",
        areas.len(),
        t.elapsed(),
        rss_mib()
    );
    let tmp = tempfile::tempdir()?;
    let t = Instant::now();
    let state = HubState::open(
        tmp.path(),
        Catalogue::builtin(),
        areas.clone(),
        Clock::System,
        Default::default(),
    )?;
    println!("engine built in {:.1?}, RSS {} MiB", t.elapsed(), rss_mib());
    let reporters: Vec<_> = areas
        .iter()
        .map(|a| a.code)
        .filter(|c| matches!(c.level(), Level::County | Level::Township | Level::Village))
        .collect();
    let metrics = [
        "disputes.mediated",
        "disputes.resolved",
        "cases.criminal_filed",
        "patrol.sessions",
        "grid.visits",
    ];
    let first: Period = "2026-01".parse()?;
    let t = Instant::now();
    for m in 0..months {
        let period = first.shift(m);
        let batch: Vec<Committed> = reporters
            .iter()
            .map(|code| {
                let d = code.digits();
                Committed {
                    area: *code,
                    period,
                    revision: 1,
                    received_at_ms: 0,
                    first_received_at_ms: 0,
                    zero_report: false,
                    values: metrics
                        .iter()
                        .enumerate()
                        .map(|(i, id)| pingan_domain::rollup::Value {
                            metric: (*id).into(),
                            total: Some(((d >> i) % 7) as i64 + i64::from(i == 0)),
                            parts: Default::default(),
                        })
                        .collect(),
                    rollup: None,
                    previous: None,
                }
            })
            .collect();
        state.engine.apply(&batch);
    }
    let n = reporters.len() as i64 * months;
    println!(
        "applied {n} revisions in {:.1?} ({:.0}/s), RSS {} MiB",
        t.elapsed(),
        n as f64 / t.elapsed().as_secs_f64(),
        rss_mib()
    );
    let time = |what: &str, f: &mut dyn FnMut() -> anyhow::Result<usize>| -> anyhow::Result<()> {
        let mut best = f64::MAX;
        let mut rows = 0;
        for _ in 0..5 {
            let t = Instant::now();
            rows = f()?;
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        println!("{what}: best of 5 {best:.1} ms ({rows} rows)");
        Ok(())
    };
    let e = &state.engine;
    let range = format!("2026-01..{}", first.shift(months - 1));
    time("rollup of 四川省 (51), one month", &mut || {
        Ok(e.rollup(&pingan_hub::query::RollupQuery::try_from(
            &pb::RollupRequest {
                area: "51".into(),
                period: "2026-01".into(),
                ..Default::default()
            },
        )?)?
        .figures
        .len())
    })?;
    time(
        &format!("every township of 四川省 ranked on 万人发案率 over {range}"),
        &mut || {
            Ok(e.compare(&pingan_hub::query::CompareQuery::try_from(
                &pb::CompareRequest {
                    area: "51".into(),
                    period: range.clone(),
                    metric: "万人发案率".into(),
                    level: "township".into(),
                    complete_only: false,
                    ..Default::default()
                },
            )?)?
            .rows
            .len())
        },
    )?;
    time("completeness of 四川省, one month", &mut || {
        Ok(
            e.completeness(&pingan_hub::query::CompletenessQuery::try_from(
                &pb::CompletenessRequest {
                    area: "51".into(),
                    period: "2026-01".into(),
                    level: String::new(),
                    ..Default::default()
                },
            )?)?
            .missing
            .len(),
        )
    })?;
    println!("final RSS {} MiB", rss_mib());
    Ok(())
}
