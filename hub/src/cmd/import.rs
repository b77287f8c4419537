//! `pingan-hub import`: historical figures from CSV straight into a hub's store, each report
//! validated like any submission. Two layouts, told apart by the header:
//!
//! - long: `area,period,metric,value` (optional `part`), one row per value; the rows of one
//!   (area, period) must be contiguous;
//! - wide: `area,period,<metric>,<metric>,...` (ids or Chinese names), one row per report; an
//!   empty cell is a value not given.
//!
//! Headers may be Chinese (`区划代码,期间,指标,类别,数值`), files UTF-8 or GBK (as Excel and
//! WPS save them), periods typed loosely (`2026/10`, `2026年10月`). Each report is imported
//! whole or not at all: a bad row (not a number, a ragged row, rows of one report scattered
//! over the file) refuses its whole report, names the line and the reason, and the import goes
//! on with the next report. The summary's numbers add up: every report read is stored, already
//! stored, or refused.
//!
//! A report's submission id is derived from its content, so importing the same file twice stores
//! nothing new. Imported reports count as received on time ([`received_at_ms`]): history carries
//! no arrival times, and marking every imported report late would bury the real late ones. Run
//! it while the hub is stopped: the hub rebuilds its rollups at start-up.

use std::{
    collections::HashSet,
    io::{IsTerminal as _, Read},
    path::Path,
    sync::Arc,
    time::Instant,
};

use anyhow::Context as _;
use pingan_proto::{Period, pb};

use crate::state::HubState;

/// What an import did. `reports == stored + duplicates + refused.len()`.
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

/// Column headers, English or Chinese.
const AREA: [&str; 4] = ["area", "区划代码", "代码", "地区代码"];
const PERIOD: [&str; 3] = ["period", "期间", "报告期"];
const METRIC: [&str; 3] = ["metric", "指标", "指标代码"];
const PART: [&str; 3] = ["part", "类别", "分类"];
const VALUE: [&str; 3] = ["value", "数值", "数量"];

/// Where a file's text comes from: the file itself when it is UTF-8 (streamed: imports are
/// large), or its decoded text when Excel saved it as GBK.
enum Source<'a> {
    File(&'a Path),
    Decoded(Arc<String>),
}

impl Source<'_> {
    fn open(path: &Path) -> anyhow::Result<Source<'_>> {
        let mut head = Vec::with_capacity(64 * 1024);
        std::fs::File::open(path)
            .with_context(|| format!("打开 {} 失败", path.display()))?
            .take(64 * 1024)
            .read_to_end(&mut head)
            .with_context(|| format!("读取 {} 失败", path.display()))?;
        let utf8 = match std::str::from_utf8(&head) {
            Ok(_) => true,
            // a character cut by the 64 KiB boundary is still UTF-8
            Err(e) => e.error_len().is_none(),
        };
        if utf8 {
            return Ok(Source::File(path));
        }
        let bytes = std::fs::read(path).with_context(|| format!("读取 {} 失败", path.display()))?;
        let (text, encoding) =
            pingan_proto::text::decode(&bytes).with_context(|| format!("{}", path.display()))?;
        eprintln!("{} 按 {} 编码读取", path.display(), encoding.name());
        Ok(Source::Decoded(Arc::new(text)))
    }

    fn reader(&self) -> anyhow::Result<csv::Reader<Box<dyn Read + '_>>> {
        let inner: Box<dyn Read> = match self {
            Source::File(path) => Box::new(std::io::BufReader::new(
                std::fs::File::open(path)
                    .with_context(|| format!("打开 {} 失败", path.display()))?,
            )),
            Source::Decoded(text) => Box::new(std::io::Cursor::new(text.as_bytes())),
        };
        Ok(csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(inner))
    }
}

/// One row's fields as text, or why it is not text.
fn fields(rec: &csv::ByteRecord) -> Result<Vec<&str>, String> {
    rec.iter()
        .map(|f| std::str::from_utf8(f).map_err(|_| "这一行不是 UTF-8 文本".to_owned()))
        .collect()
}

/// A period as typed in a history file (`2026/10`), canonical when it can be read; the
/// validator names it otherwise.
fn period_cell(s: &str) -> String {
    Period::parse_typed(s).map_or_else(|_| s.to_owned(), |p| p.to_string())
}

/// The layout a header describes.
struct Layout {
    area: usize,
    period: usize,
    /// (metric, value, part) columns of the long layout; `None` for the wide layout.
    long: Option<(usize, usize, Option<usize>)>,
    headers: Vec<String>,
}

impl Layout {
    fn of(headers: Vec<String>, path: &Path) -> anyhow::Result<Layout> {
        let col = |names: &[&str]| {
            headers
                .iter()
                .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
        };
        let (Some(area), Some(period)) = (col(&AREA), col(&PERIOD)) else {
            anyhow::bail!(
                "{}：表头应有 area 和 period 两列（或 区划代码 和 期间）",
                path.display()
            );
        };
        let long = match (col(&METRIC), col(&VALUE)) {
            (Some(m), Some(v)) => Some((m, v, col(&PART))),
            _ => None,
        };
        Ok(Layout {
            area,
            period,
            long,
            headers,
        })
    }
}

/// The report being gathered from the long layout's rows, and the first reason to refuse it.
struct Gathering {
    line: u64,
    report: pb::Report,
    bad: Option<String>,
}

/// The keys of the long layout whose rows are not contiguous: their reports are refused whole.
fn scattered_keys(
    source: &Source<'_>,
    layout: &Layout,
) -> anyhow::Result<HashSet<(String, String)>> {
    let mut finished = HashSet::new();
    let mut scattered = HashSet::new();
    let mut current: Option<(String, String)> = None;
    let mut rec = csv::ByteRecord::new();
    let mut csv = source.reader()?;
    while csv.read_byte_record(&mut rec).unwrap_or(false) {
        let (Some(a), Some(p)) = (rec.get(layout.area), rec.get(layout.period)) else {
            continue;
        };
        let key = (
            String::from_utf8_lossy(a).into_owned(),
            period_cell(&String::from_utf8_lossy(p)),
        );
        if current.as_ref() != Some(&key) {
            if let Some(done) = current.take() {
                finished.insert(done);
            }
            if finished.contains(&key) {
                scattered.insert(key.clone());
            }
            current = Some(key);
        }
    }
    Ok(scattered)
}

/// Imports a CSV file into the hub's store, printing progress to stderr.
pub async fn import_file(state: &HubState, path: &Path) -> anyhow::Result<ImportSummary> {
    let source = Source::open(path)?;
    let mut csv = source.reader()?;
    let headers: Vec<String> = csv
        .byte_headers()
        .with_context(|| format!("{}：读取表头失败", path.display()))?
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim_start_matches('\u{feff}')
                .to_owned()
        })
        .collect();
    let layout = Layout::of(headers, path)?;
    let scattered = match layout.long {
        Some(_) => scattered_keys(&source, &layout)?,
        None => HashSet::new(),
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
    let mut current: Option<Gathering> = None;
    let state = Arc::new(state.clone());

    // a finished report: counted once, then refused with its first reason or handed to the store
    let finish =
        |g: Gathering,
         summary: &mut ImportSummary,
         pending: &mut tokio::task::JoinSet<(u64, Result<bool, String>)>| {
            summary.reports += 1;
            match g.bad {
                Some(reason) => summary.refused.push((g.line, reason)),
                None => {
                    let (state, sender) = (state.clone(), sender.clone());
                    pending.spawn(async move { (g.line, store(&state, g.report, sender).await) });
                }
            }
        };
    let absorb = |done: (u64, Result<bool, String>), summary: &mut ImportSummary| match done.1 {
        Ok(true) => summary.duplicates += 1,
        Ok(false) => summary.stored += 1,
        Err(reason) => summary.refused.push((done.0, reason)),
    };

    let mut rec = csv::ByteRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // a broken quote and the like: the rest of the file cannot be read as rows
                if let Some(g) = current.take() {
                    finish(g, &mut summary, &mut pending);
                }
                summary.reports += 1;
                summary
                    .refused
                    .push((line, format!("CSV 格式错误，文件其余部分无法读取：{e}")));
                break;
            }
        }
        let line = rec.position().map_or(line, |p| p.line());
        if rec.iter().all(<[u8]>::is_empty) {
            continue;
        }
        let row = fields(&rec);
        let ragged = rec.len() != layout.headers.len();
        let key = match &row {
            Ok(f) if f.len() > layout.area.max(layout.period) => {
                Some((f[layout.area].to_owned(), period_cell(f[layout.period])))
            }
            _ => None,
        };
        let row_problem = match (&row, ragged) {
            (Err(e), _) => Some(e.clone()),
            (Ok(_), true) => Some(format!(
                "这一行有 {} 列，表头有 {} 列",
                rec.len(),
                layout.headers.len()
            )),
            (Ok(_), false) => None,
        };
        let Some((area, period)) = key else {
            // nothing says which report the row belongs to: it is a refused report of its own
            if let Some(g) = current.take() {
                finish(g, &mut summary, &mut pending);
            }
            summary.reports += 1;
            summary.refused.push((
                line,
                row_problem.unwrap_or_else(|| "缺少区划代码或期间".into()),
            ));
            continue;
        };
        let row = row.unwrap_or_default();
        match layout.long {
            Some((m, v, p)) => {
                let same = current
                    .as_ref()
                    .is_some_and(|g| g.report.area == area && g.report.period == period);
                if !same {
                    if let Some(g) = current.take() {
                        finish(g, &mut summary, &mut pending);
                    }
                    let bad = scattered.contains(&(area.clone(), period.clone())).then(|| {
                        format!(
                            "{area} {period} 的行不连续（分散在文件各处）：请按区划代码和期间排序后重新导入这份报表"
                        )
                    });
                    current = Some(Gathering {
                        line,
                        report: pb::Report {
                            area,
                            period,
                            ..Default::default()
                        },
                        bad,
                    });
                }
                let g = current.as_mut().expect("just set");
                if let Some(problem) = row_problem {
                    g.bad.get_or_insert(format!("第 {line} 行：{problem}"));
                    continue;
                }
                let value: i64 = match row[v].parse() {
                    Ok(n) => n,
                    Err(_) => {
                        g.bad.get_or_insert(format!(
                            "第 {line} 行：{} 的数值「{}」不是整数",
                            row[m], row[v]
                        ));
                        continue;
                    }
                };
                let part = p.map(|p| row[p].to_owned()).filter(|s| !s.is_empty());
                let metric = row[m].to_owned();
                let slot = match g.report.values.iter_mut().position(|x| x.metric == metric) {
                    Some(i) => &mut g.report.values[i],
                    None => {
                        g.report.values.push(pb::MetricValue {
                            metric,
                            total: None,
                            parts: Default::default(),
                        });
                        g.report.values.last_mut().expect("just pushed")
                    }
                };
                match part {
                    Some(part) => {
                        if slot.parts.insert(part.clone(), value).is_some() {
                            g.bad.get_or_insert(format!(
                                "第 {line} 行：{}「{part}」填了两次",
                                slot.metric
                            ));
                        }
                    }
                    None => {
                        if slot.total.replace(value).is_some() {
                            g.bad
                                .get_or_insert(format!("第 {line} 行：{} 填了两次", slot.metric));
                        }
                    }
                }
            }
            None => {
                let mut g = Gathering {
                    line,
                    report: pb::Report {
                        area,
                        period,
                        ..Default::default()
                    },
                    bad: row_problem,
                };
                if g.bad.is_none() {
                    for (i, h) in layout.headers.iter().enumerate() {
                        if i == layout.area || i == layout.period || row[i].is_empty() {
                            continue;
                        }
                        match row[i].parse::<i64>() {
                            Ok(n) => g.report.values.push(pb::MetricValue {
                                metric: h.clone(),
                                total: Some(n),
                                parts: Default::default(),
                            }),
                            Err(_) => {
                                g.bad
                                    .get_or_insert(format!("{h} 列的数值「{}」不是整数", row[i]));
                            }
                        }
                    }
                }
                finish(g, &mut summary, &mut pending);
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
                "import: 第 {line} 行，已读 {} 份报表（{rate:.0}/s），拒收 {}",
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
    if let Some(g) = current.take() {
        finish(g, &mut summary, &mut pending);
    }
    while let Some(done) = pending.join_next().await {
        absorb(done?, &mut summary);
    }
    if tty {
        eprintln!();
    }
    summary.refused.sort();
    debug_assert_eq!(
        summary.reports,
        summary.stored + summary.duplicates + summary.refused.len() as u64
    );
    Ok(summary)
}

/// Validates and stores one imported report; whether it was stored already.
async fn store(state: &HubState, mut report: pb::Report, sender: String) -> Result<bool, String> {
    // validated under a placeholder id, then identified by its content digest: the same
    // figures imported twice are the same submission
    report.submission_id = "import".into();
    report.reporter = "import".into();
    let mut valid = state
        .validator()
        .validate(&report)
        .map_err(|v| v.to_string())?;
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
