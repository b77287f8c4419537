//! `pingan-hub import`: historical figures from CSV straight into a hub's store, each report
//! validated like any submission. Two layouts, told apart by the header:
//!
//! - long: `area,period,metric,value` (optional `part`), one row per value; the rows of one
//!   (area, period) must be contiguous;
//! - wide: `area,period,<metric>,<metric>,...` (ids or Chinese names), one row per report; an
//!   empty cell is a value not given.
//!
//! An area cell holding a department's id (`sw-510722`, with `--departments`) makes the row a
//! department's (条) report on the departments' form, kept apart from the divisions' totals.
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
use pingan_domain::{Period, pb};

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
pub fn received_at_ms(period: pingan_domain::Period, now_ms: i64) -> i64 {
    let earliest = crate::query::Deadlines {
        monthly_day: 1,
        weekly_days: 0,
        daily_hour: 1,
        forms: Default::default(),
    };
    // with no form's deadline, the level does not matter
    (earliest.due_ms(pingan_domain::Level::Village, period) - 1).min(now_ms)
}

/// Reports in flight to the store at once (they share group commits).
const IN_FLIGHT: usize = 16384;

/// Wide rows handed on together: the loop reading the file does nothing else with them (it is
/// one thread, and was the import's limit); turning rows into reports, checking and storing
/// them is done by the runtime's workers, a batch per task.
const BATCH: usize = 256;

/// Column headers, English or Chinese.
const AREA: [&str; 6] = [
    "area",
    "区划代码",
    "代码",
    "地区代码",
    "department",
    "部门代码",
];
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
            pingan_domain::text::decode(&bytes).with_context(|| format!("{}", path.display()))?;
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

/// Why an imported report was refused, as the summary lists it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// One row's fields as text, or why it is not text.
fn fields(rec: &csv::ByteRecord) -> Result<Vec<&str>, Refused> {
    rec.iter()
        .map(|f| std::str::from_utf8(f).map_err(|_| Refused("这一行不是 UTF-8 文本".to_owned())))
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

/// A report handed to the store: its line, and whether it was stored before (or why not).
type Stored = (u64, Result<bool, Refused>);

/// An import under way: the file's layout, the report being gathered (long layout) or the rows
/// not yet handed on (wide), the reports in flight to the store and the summary so far.
struct Importer {
    state: Arc<HubState>,
    sender: String,
    layout: Arc<Layout>,
    scattered: HashSet<(String, String)>,
    current: Option<Gathering>,
    rows: Vec<(u64, csv::ByteRecord)>,
    pending: tokio::task::JoinSet<Vec<Stored>>,
    in_flight: usize,
    summary: ImportSummary,
}

impl Importer {
    /// A finished report: counted once, then refused with its first reason or handed to the
    /// store.
    fn finish(&mut self, g: Gathering) {
        self.summary.reports += 1;
        match g.bad {
            Some(reason) => self.summary.refused.push((g.line, reason)),
            None => {
                let (state, sender) = (self.state.clone(), self.sender.clone());
                self.in_flight += 1;
                self.pending
                    .spawn(async move { vec![(g.line, store(&state, g.report, sender).await)] });
            }
        }
    }

    /// Hands the wide rows read so far to a worker: each is one report, counted now.
    fn hand_on_rows(&mut self) {
        if self.rows.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.rows);
        self.summary.reports += rows.len() as u64;
        self.in_flight += rows.len();
        let (state, sender, layout) =
            (self.state.clone(), self.sender.clone(), self.layout.clone());
        self.pending.spawn(async move {
            let mut done = Vec::with_capacity(rows.len());
            let mut storing = Vec::with_capacity(rows.len());
            for (line, rec) in &rows {
                let g = match read_record(&layout, rec) {
                    Ok((key, row, problem)) => wide_report(&layout, *line, key, &row, problem),
                    Err(reason) => Gathering::refused(*line, reason),
                };
                match g.bad {
                    Some(reason) => done.push((g.line, Err(Refused(reason)))),
                    // every report of the batch goes to the store before any answer is awaited:
                    // they share group commits
                    None => {
                        let (line, report, sender) = (g.line, g.report, sender.clone());
                        let state = &state;
                        storing.push(async move { (line, store(state, report, sender).await) });
                    }
                }
            }
            done.extend(futures_util::future::join_all(storing).await);
            done
        });
    }

    /// Finishes the report being gathered, if any.
    fn finish_current(&mut self) {
        if let Some(g) = self.current.take() {
            self.finish(g);
        }
    }

    /// A report of one line that is refused before it is gathered.
    fn refuse_line(&mut self, line: u64, reason: String) {
        self.finish_current();
        self.summary.reports += 1;
        self.summary.refused.push((line, reason));
    }

    fn absorb(&mut self, done: Vec<Stored>) {
        self.in_flight -= done.len();
        for (line, stored) in done {
            match stored {
                Ok(true) => self.summary.duplicates += 1,
                Ok(false) => self.summary.stored += 1,
                Err(Refused(reason)) => self.summary.refused.push((line, reason)),
            }
        }
    }

    /// Waits until at most `limit` reports are in flight.
    async fn drain_to(&mut self, limit: usize) -> anyhow::Result<()> {
        while self.in_flight > limit {
            match self.pending.join_next().await {
                Some(done) => self.absorb(done?),
                None => break,
            }
        }
        Ok(())
    }

    /// One row of the long layout: a value added to the report of its (area, period), or that
    /// report's first reason to be refused.
    fn long_row(
        &mut self,
        line: u64,
        key: (String, String),
        row: &[&str],
        problem: Option<String>,
    ) {
        let Some((m, v, p)) = self.layout.long else {
            return;
        };
        let (area, period) = key;
        let same = self
            .current
            .as_ref()
            .is_some_and(|g| g.report.area == area && g.report.period == period);
        if !same {
            self.finish_current();
            let bad = self.scattered.contains(&(area.clone(), period.clone())).then(|| {
                format!(
                    "{area} {period} 的行不连续（分散在文件各处）：请按区划代码和期间排序后重新导入这份报表"
                )
            });
            self.current = Some(Gathering {
                line,
                report: pb::Report {
                    area,
                    period,
                    ..Default::default()
                },
                bad,
            });
        }
        let g = self.current.as_mut().expect("just set");
        if let Some(problem) = problem {
            g.bad.get_or_insert(format!("第 {line} 行：{problem}"));
            return;
        }
        let Ok(value) = row[v].parse::<i64>() else {
            g.bad.get_or_insert(format!(
                "第 {line} 行：{} 的数值「{}」不是整数",
                row[m], row[v]
            ));
            return;
        };
        let part = p.map(|p| row[p].to_owned()).filter(|s| !s.is_empty());
        if let Err(Refused(twice)) = g.add(row[m], part, value) {
            g.bad.get_or_insert(format!("第 {line} 行：{twice}"));
        }
    }

    /// One record of the file: a wide row is kept to be handed on with its batch, a long row
    /// added to its report.
    fn record(&mut self, line: u64, rec: &csv::ByteRecord) {
        if self.layout.long.is_none() {
            self.rows.push((line, rec.clone()));
            if self.rows.len() >= BATCH {
                self.hand_on_rows();
            }
            return;
        }
        match read_record(&self.layout, rec) {
            Ok((key, row, problem)) => self.long_row(line, key, &row, problem),
            // nothing says which report the row belongs to: it is a refused report of its own
            Err(reason) => self.refuse_line(line, reason),
        }
    }
}

/// A record's fields as text, the (area, period) of its report and its first problem; or, when
/// nothing says which report it belongs to, why it is refused.
type RecordRead<'r> = ((String, String), Vec<&'r str>, Option<String>);

fn read_record<'r>(layout: &Layout, rec: &'r csv::ByteRecord) -> Result<RecordRead<'r>, String> {
    let row = fields(rec);
    let ragged = rec.len() != layout.headers.len();
    let (area_col, period_col) = (layout.area, layout.period);
    let key = match &row {
        Ok(f) if f.len() > area_col.max(period_col) => {
            Some((f[area_col].to_owned(), period_cell(f[period_col])))
        }
        _ => None,
    };
    let problem = match (&row, ragged) {
        (Err(Refused(e)), _) => Some(e.clone()),
        (Ok(_), true) => Some(format!(
            "这一行有 {} 列，表头有 {} 列",
            rec.len(),
            layout.headers.len()
        )),
        (Ok(_), false) => None,
    };
    let Some(key) = key else {
        return Err(problem.unwrap_or_else(|| "缺少区划代码或期间".into()));
    };
    Ok((key, row.unwrap_or_default(), problem))
}

/// One row of the wide layout: a whole report, or its first reason to be refused.
fn wide_report(
    layout: &Layout,
    line: u64,
    (area, period): (String, String),
    row: &[&str],
    problem: Option<String>,
) -> Gathering {
    let mut g = Gathering {
        line,
        report: pb::Report {
            area,
            period,
            ..Default::default()
        },
        bad: problem,
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
    g
}

impl Gathering {
    /// A line refused before any of its report was read.
    fn refused(line: u64, reason: String) -> Gathering {
        Gathering {
            line,
            report: pb::Report::default(),
            bad: Some(reason),
        }
    }

    /// Adds a value (a metric's total, or one of its parts); a value given twice is an error.
    fn add(&mut self, metric: &str, part: Option<String>, value: i64) -> Result<(), Refused> {
        let values = &mut self.report.values;
        let i = match values.iter().position(|x| x.metric == metric) {
            Some(i) => i,
            None => {
                values.push(pb::MetricValue {
                    metric: metric.to_owned(),
                    total: None,
                    parts: Default::default(),
                });
                values.len() - 1
            }
        };
        let slot = &mut values[i];
        let twice = match part {
            Some(part) => slot
                .parts
                .insert(part.clone(), value)
                .map(|_| format!("{metric}「{part}」填了两次")),
            None => slot
                .total
                .replace(value)
                .map(|_| format!("{metric} 填了两次")),
        };
        twice.map_or(Ok(()), |t| Err(Refused(t)))
    }
}

/// Progress on stderr, once a second: on one line at a terminal, a line each otherwise.
struct Progress {
    started: Instant,
    last: Instant,
    tty: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            started: Instant::now(),
            last: Instant::now(),
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn tick(&mut self, line: u64, summary: &ImportSummary) {
        if self.last.elapsed().as_secs_f64() < 1.0 {
            return;
        }
        self.last = Instant::now();
        let rate = summary.reports as f64 / self.started.elapsed().as_secs_f64();
        let msg = format!(
            "import: 第 {line} 行，已读 {} 份报表（{rate:.0}/s），拒收 {}",
            summary.reports,
            summary.refused.len()
        );
        if self.tty {
            eprint!("\r{msg}")
        } else {
            eprintln!("{msg}")
        }
    }

    fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
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
    let mut import = Importer {
        state: Arc::new(state.clone()),
        sender,
        layout: Arc::new(layout),
        scattered,
        current: None,
        rows: Vec::with_capacity(BATCH),
        pending: tokio::task::JoinSet::new(),
        in_flight: 0,
        summary: ImportSummary::default(),
    };
    let mut progress = Progress::new();
    let mut rec = csv::ByteRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // a broken quote and the like: the rest of the file cannot be read as rows
                import.refuse_line(line, format!("CSV 格式错误，文件其余部分无法读取：{e}"));
                break;
            }
        }
        if rec.iter().all(<[u8]>::is_empty) {
            continue;
        }
        import.record(rec.position().map_or(line, |p| p.line()), &rec);
        import.drain_to(IN_FLIGHT - 1).await?;
        progress.tick(line, &import.summary);
    }
    import.finish_current();
    import.hand_on_rows();
    import.drain_to(0).await?;
    progress.done();
    let mut summary = import.summary;
    summary.refused.sort();
    debug_assert_eq!(
        summary.reports,
        summary.stored + summary.duplicates + summary.refused.len() as u64
    );
    Ok(summary)
}

/// Validates and stores one imported report; whether it was stored already.
async fn store(state: &HubState, mut report: pb::Report, sender: String) -> Result<bool, Refused> {
    // validated under a placeholder id, then identified by its content digest: the same
    // figures imported twice are the same submission
    report.submission_id = "import".into();
    report.reporter = "import".into();
    // a department's id where a code would be: that department's report (its area from the list)
    if pingan_domain::department::valid_id(report.area.trim()) {
        report.department = std::mem::take(&mut report.area).trim().to_owned();
    }
    let mut valid = state
        .validator()
        .validate(&report)
        .map_err(|v| Refused(v.to_string()))?;
    let digest = valid.digest();
    valid.submission_id = format!("import-{}", crate::store::hex(&digest[..16]));
    let received_at = received_at_ms(valid.period, state.clock.now_ms());
    state
        .store
        .write(valid, sender, received_at)
        .await
        .map(|r| r.duplicate)
        .map_err(|e| Refused(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Deadlines;
    use chrono::TimeZone as _;

    #[test]
    fn imported_reports_count_on_time_under_any_deadline() {
        let now = chrono::Utc::now().timestamp_millis();
        for p in ["2025-10", "2025-10-H2", "2025-W40", "2025-10-01", "2024-12"] {
            let period: pingan_domain::Period = p.parse().expect("period");
            let at = received_at_ms(period, now);
            assert!(at < now, "{p}");
            for deadlines in [
                Deadlines::default(),
                Deadlines {
                    monthly_day: 1,
                    weekly_days: 0,
                    daily_hour: 1,
                    forms: Default::default(),
                },
                Deadlines::default().with_forms(&pingan_domain::Catalogue::builtin()),
            ] {
                let level = pingan_domain::Level::Village;
                assert!(deadlines.on_time(level, period, at), "{p} {deadlines:?}");
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
        let month = pingan_domain::Period::month_of(crate::clock::Clock::System.today()).previous();
        let early = Deadlines {
            monthly_day: 1,
            weekly_days: 0,
            daily_hour: 1,
            forms: Default::default(),
        }
        .due_ms(pingan_domain::Level::Village, month)
            - 10_000;
        assert_eq!(received_at_ms(month, early), early);
    }
}
