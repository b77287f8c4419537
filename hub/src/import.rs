//! `pingan-hub import`: historical figures from CSV straight into a hub's store, each report
//! validated like any submission. Two layouts, told apart by the header:
//!
//! - long: `area,period,metric,value` (optional `part`), one row per value; the rows of one
//!   (area, period) must be contiguous;
//! - wide: `area,period,<metric>,<metric>,...` (ids or Chinese names), one row per report; an
//!   empty cell is a value not given.
//!
//! A report's submission id is derived from its content, so importing the same file twice stores
//! nothing new. Imported reports count as received on time ([`received_at_ms`]): history carries
//! no arrival times, and marking every imported report late would bury the real late ones. Run it while the hub is stopped: the hub rebuilds its rollups at start-up.

use std::{collections::HashSet, io::IsTerminal as _, path::Path, sync::Arc, time::Instant};

use anyhow::Context as _;
use pingan_proto::pb;

use crate::state::HubState;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub reports: u64,
    pub stored: u64,
    pub duplicates: u64,
    /// (line, reason) of every refused report.
    pub refused: Vec<(u64, String)>,
}

/// When an imported report counts as received: its real arrival is not known, so just before the
/// earliest deadline any hub can be configured with (the 1st of the next month, the Monday after
/// a week, 01:00 of a day): on time whatever the serving hub's deadlines. Never later than now.
pub fn received_at_ms(period: pingan_proto::Period, now_ms: i64) -> i64 {
    let earliest = crate::query::Deadlines {
        monthly_day: 1,
        weekly_days: 0,
        daily_hour: 1,
    };
    (earliest.due_ms(period) - 1).min(now_ms)
}

/// Reports in flight to the store at once (they share group commits).
const IN_FLIGHT: usize = 4096;

/// Imports a CSV file into the hub's store, printing progress to stderr.
pub async fn import_file(state: &HubState, path: &Path) -> anyhow::Result<ImportSummary> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(std::io::BufReader::new(file));
    let headers: Vec<String> = csv
        .headers()
        .with_context(|| format!("{}: header", path.display()))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(area_col), Some(period_col)) = (col("area"), col("period")) else {
        anyhow::bail!(
            "{}: the header must name the columns area and period",
            path.display()
        );
    };
    let long = match (col("metric"), col("value")) {
        (Some(m), Some(v)) => Some((m, v, col("part"))),
        _ => None,
    };
    let sender = format!(
        "import:{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut summary = ImportSummary::default();
    let mut pending = tokio::task::JoinSet::new();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut finished_keys: HashSet<(String, String)> = HashSet::new();
    let mut current: Option<(u64, pb::Report)> = None;
    let mut broken: Option<String> = None;
    let state_arc = Arc::new(state.clone());

    let submit =
        |line: u64,
         report: pb::Report,
         pending: &mut tokio::task::JoinSet<(u64, Result<bool, String>)>| {
            let state = state_arc.clone();
            let sender = sender.clone();
            pending.spawn(async move {
                let mut report = report;
                // validated under a placeholder id, then identified by its content digest: the same
                // figures imported twice are the same submission
                report.submission_id = "import".into();
                report.reporter = "import".into();
                let outcome = match state.validator().validate(&report) {
                    Err(v) => Err(v.to_string()),
                    Ok(mut valid) => {
                        let digest = valid.digest();
                        valid.submission_id = format!(
                            "import-{}",
                            digest[..16]
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect::<String>()
                        );
                        let received_at = received_at_ms(valid.period, state.clock.now_ms());
                        state
                            .store
                            .write(valid, sender, received_at)
                            .await
                            .map(|r| r.duplicate)
                            .map_err(|e| e.to_string())
                    }
                };
                (line, outcome)
            });
        };
    let absorb = |done: (u64, Result<bool, String>), summary: &mut ImportSummary| match done.1 {
        Ok(true) => summary.duplicates += 1,
        Ok(false) => summary.stored += 1,
        Err(reason) => summary.refused.push((done.0, reason)),
    };

    for rec in csv.records() {
        let rec = rec.with_context(|| format!("{}: reading", path.display()))?;
        let line = rec.position().map_or(0, |p| p.line());
        let (area, period) = (rec[area_col].to_owned(), rec[period_col].to_owned());
        match long {
            Some((m, v, p)) => {
                let metric = rec[m].to_owned();
                let value: i64 = match rec[v].parse() {
                    Ok(n) => n,
                    Err(_) => {
                        summary
                            .refused
                            .push((line, format!("value {:?} is not a whole number", &rec[v])));
                        continue;
                    }
                };
                let part = p.map(|p| rec[p].to_owned()).filter(|s| !s.is_empty());
                let same = current
                    .as_ref()
                    .is_some_and(|(_, r)| r.area == area && r.period == period);
                if !same {
                    if let Some((l, r)) = current.take() {
                        finished_keys.insert((r.area.clone(), r.period.clone()));
                        summary.reports += 1;
                        submit(l, r, &mut pending);
                    }
                    if finished_keys.contains(&(area.clone(), period.clone())) {
                        broken = Some(format!(
                            "{}, line {line}: rows of {area} {period} are not contiguous; sort the file by area and period \
                             (the reports before this line were imported; importing again stores nothing twice)",
                            path.display()
                        ));
                        break;
                    }
                    current = Some((
                        line,
                        pb::Report {
                            area: area.clone(),
                            period: period.clone(),
                            ..Default::default()
                        },
                    ));
                }
                let report = &mut current.as_mut().expect("just set").1;
                let slot = match report.values.iter_mut().position(|x| x.metric == metric) {
                    Some(i) => &mut report.values[i],
                    None => {
                        report.values.push(pb::MetricValue {
                            metric: metric.clone(),
                            total: None,
                            parts: Default::default(),
                        });
                        report.values.last_mut().expect("just pushed")
                    }
                };
                match part {
                    Some(part) => {
                        slot.parts.insert(part, value);
                    }
                    None => slot.total = Some(value),
                }
            }
            None => {
                let mut report = pb::Report {
                    area,
                    period,
                    ..Default::default()
                };
                let mut bad = None;
                for (i, h) in headers.iter().enumerate() {
                    if i == area_col || i == period_col || rec[i].is_empty() {
                        continue;
                    }
                    match rec[i].parse::<i64>() {
                        Ok(n) => report.values.push(pb::MetricValue {
                            metric: h.clone(),
                            total: Some(n),
                            parts: Default::default(),
                        }),
                        Err(_) => {
                            bad = Some(format!("column {h}: {:?} is not a whole number", &rec[i]))
                        }
                    }
                }
                summary.reports += 1;
                match bad {
                    Some(reason) => summary.refused.push((line, reason)),
                    None => submit(line, report, &mut pending),
                }
            }
        }
        while pending.len() >= IN_FLIGHT {
            if let Some(done) = pending.join_next().await {
                absorb(done?, &mut summary);
            }
        }
        if last_progress.elapsed().as_secs_f64() >= 1.0 {
            last_progress = Instant::now();
            let rate = summary.reports as f64 / started.elapsed().as_secs_f64();
            let msg = format!(
                "import: line {line}, {} reports read ({rate:.0}/s), {} refused",
                summary.reports,
                summary.refused.len()
            );
            if tty {
                eprint!("\r{msg}")
            } else {
                eprintln!("{msg}")
            }
        }
    }
    if let Some((l, r)) = current.take().filter(|_| broken.is_none()) {
        summary.reports += 1;
        submit(l, r, &mut pending);
    }
    // every report handed to the store is waited for, even when the file turned out broken
    while let Some(done) = pending.join_next().await {
        absorb(done?, &mut summary);
    }
    if let Some(e) = broken {
        anyhow::bail!(
            "{e}; {} stored, {} already stored",
            summary.stored,
            summary.duplicates
        );
    }
    if tty {
        eprintln!();
    }
    summary.refused.sort();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Deadlines;
    use chrono::TimeZone as _;

    #[test]
    fn imported_reports_count_on_time_under_any_deadline() {
        let now = chrono::Utc::now().timestamp_millis();
        for p in ["2025-10", "2025-W40", "2025-10-01", "2024-12"] {
            let period: pingan_proto::Period = p.parse().expect("period");
            let at = received_at_ms(period, now);
            assert!(at < now, "{p}");
            for deadlines in [
                Deadlines::default(),
                Deadlines {
                    monthly_day: 1,
                    weekly_days: 0,
                    daily_hour: 1,
                },
            ] {
                assert!(deadlines.on_time(period, at), "{p} {deadlines:?}");
            }
            // and after the period began
            let first = crate::clock::beijing()
                .from_local_datetime(&period.first_day().and_hms_opt(0, 0, 0).expect("midnight"))
                .single()
                .expect("fixed offset")
                .timestamp_millis();
            assert!(at > first, "{p}");
        }
        // a period whose earliest deadline has not passed: now
        let month = pingan_proto::Period::month_of(crate::clock::Clock::System.today()).previous();
        let early = Deadlines {
            monthly_day: 1,
            weekly_days: 0,
            daily_hour: 1,
        }
        .due_ms(month)
            - 10_000;
        assert_eq!(received_at_ms(month, early), early);
    }
}
