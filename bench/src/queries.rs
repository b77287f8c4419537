//! Leaders' questions at national scale, against the real `pingan-hub serve` process over gRPC on
//! loopback, side by side with DuckDB (the Python package) answering the same questions from the
//! same raw rows (the dataset's CSVs the hub imported, the registry the hub loaded, the
//! populations). Every answer is checked equal; start-up, restart and memory of the hub are
//! measured in the same run.

use std::{
    collections::BTreeMap,
    io::BufRead as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use pingan_domain::{Areas, Catalogue, Period, Span, pb};
use serde::Deserialize;
use tonic::transport::Channel;

use crate::ingest::dir_bytes;

/// The DuckDB side, run with `python3`.
const DUCKDB_SCRIPT: &str = include_str!("../duckdb/queries.py");

/// What to measure.
#[derive(Debug, Clone)]
pub struct QueriesConfig {
    /// The `pingan-hub` binary.
    pub hub: PathBuf,
    /// The hub's data directory (the imported months, or the saved rollups when `store` is
    /// set).
    pub data: PathBuf,
    pub divisions: PathBuf,
    /// The dataset directory (`reports-*.csv`, `corrections-*.csv`, `population.csv`).
    pub dataset: PathBuf,
    /// Runs of each question, on each side.
    pub runs: usize,
    pub python: String,
    /// The province of the rollup and completeness questions, the county of the village one.
    pub province: String,
    pub county: String,
    /// The month asked about (and the last month of the range).
    pub month: Period,
    /// `serve --store`: a PostgreSQL database holding the imported months (`None`: SQLite in
    /// `data`).
    pub store: Option<String>,
}

impl QueriesConfig {
    /// The store's size with the data directory's (the snapshot among them).
    fn store_bytes(&self) -> anyhow::Result<u64> {
        let store = pingan_hub::store::StoreAt::new(&self.data, self.store.as_deref());
        Ok(match store {
            pingan_hub::store::StoreAt::Postgres(_) => {
                crate::ingest::store_bytes(&store, &self.data)? + dir_bytes(&self.data)
            }
            pingan_hub::store::StoreAt::Sqlite(_) => dir_bytes(&self.data),
        })
    }
}

/// One question's timings on both sides.
#[derive(Debug, Clone)]
pub struct Timed {
    pub name: &'static str,
    pub what: String,
    pub hub_ms: Vec<f64>,
    pub duckdb_ms: Vec<f64>,
    /// Rows (or figures) in the answer.
    pub rows: usize,
    /// `None`: the answers are equal; otherwise the first difference.
    pub difference: Option<String>,
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct QueriesResult {
    pub queries: Vec<Timed>,
    /// The national township ranking over spans of 1, 6, 12 and 24 months ending at the month:
    /// (months, the hub's times in ms, rows).
    pub ranking_by_span: Vec<(i32, Vec<f64>, usize)>,
    /// Months stored, and revisions.
    pub months: usize,
    pub revisions: u64,
    /// The first start: rollups rebuilt from the store (no snapshot) when `cold` is set.
    pub first_start: Duration,
    pub first_start_rebuilt: bool,
    /// Start after a graceful stop: rollups from the snapshot.
    pub restart: Duration,
    /// Hub RSS (KiB) once serving after the restart, and its peak after the questions.
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    /// The store's size: the SQLite file, or the PostgreSQL database with its indexes.
    pub store_bytes: u64,
    pub on_postgres: bool,
    pub snapshot_bytes: u64,
    pub duckdb_load_ms: f64,
    /// A DuckDB database file of the same rows (every report and correction).
    pub duckdb_file_bytes: u64,
    pub duckdb_version: String,
    pub duckdb_threads: String,
    pub raw_rows: u64,
    /// The share of CPU time the host took while the hub was asked (see
    /// [`crate::report::steal_pct`]).
    pub hub_steal_pct: Option<f64>,
}

impl QueriesResult {
    /// An error naming every question whose answers differ between the hub and DuckDB.
    pub fn ensure_equal(&self) -> anyhow::Result<()> {
        let differ: Vec<_> = self
            .queries
            .iter()
            .filter(|q| q.difference.is_some())
            .map(|q| q.name)
            .collect();
        anyhow::ensure!(
            differ.is_empty(),
            "the hub's and DuckDB's answers differ: {differ:?}"
        );
        Ok(())
    }
}

/// A running `pingan-hub serve` (plaintext gRPC on a free loopback port).
pub(crate) struct Hub {
    child: Child,
    pub(crate) url: String,
}

/// What a `pingan-hub serve` is started on.
pub(crate) struct HubRun<'a> {
    /// The `pingan-hub` binary.
    pub(crate) hub: &'a Path,
    pub(crate) data: &'a Path,
    pub(crate) divisions: &'a Path,
    pub(crate) population: Option<&'a Path>,
    /// `--store` (a PostgreSQL database); `None`: SQLite in `data`.
    pub(crate) store: Option<&'a str>,
}

impl Hub {
    /// Starts the hub and waits until it listens; how long that took.
    pub(crate) fn start(run: &HubRun<'_>) -> anyhow::Result<(Hub, Duration)> {
        let started = Instant::now();
        let mut command = Command::new(run.hub);
        command
            .args(["serve", "--insecure", "--listen", "127.0.0.1:0", "--data"])
            .arg(run.data)
            .arg("--divisions")
            .arg(run.divisions);
        if let Some(p) = run.population {
            command.arg("--population").arg(p);
        }
        if let Some(s) = run.store {
            command.arg("--store").arg(s);
        }
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", run.hub.display()))?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("hub stdout")?).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("pingan-hub listening on ") else {
            let status = child.wait()?;
            bail!("pingan-hub did not start ({status}): {line:?}");
        };
        let elapsed = started.elapsed();
        Ok((
            Hub {
                url: format!("http://{addr}"),
                child,
            },
            elapsed,
        ))
    }

    /// (RSS, peak RSS) in KiB.
    pub(crate) fn rss(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// SIGTERM and wait: the hub saves its rollups on the way out.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "pingan-hub exited with {status}");
        Ok(())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Deserialize)]
struct DuckOut {
    load_ms: f64,
    raw_rows: u64,
    threads: serde_json::Value,
    version: String,
    /// The size of a DuckDB database file holding the same rows.
    #[serde(default)]
    file_bytes: u64,
    queries: BTreeMap<String, DuckQuery>,
}

#[derive(Deserialize)]
struct DuckQuery {
    times: Vec<f64>,
    answer: serde_json::Value,
}

/// Relative equality for rates and percentages computed in different orders.
fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

fn f(v: &serde_json::Value) -> Option<f64> {
    v.as_f64()
}

async fn time_it<T>(
    runs: usize,
    mut ask: impl AsyncFnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(Vec<f64>, T)> {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let answer = ask().await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        last = Some(answer);
    }
    Ok((times, last.context("at least one run")?))
}

/// The dataset's months, its report files and its correction files, in month order.
type DatasetFiles = (
    Vec<String>,
    Vec<std::path::PathBuf>,
    Vec<std::path::PathBuf>,
);

fn dataset_files(dataset: &Path) -> anyhow::Result<DatasetFiles> {
    let mut months = std::fs::read_dir(dataset)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| {
            n.strip_prefix("reports-")
                .and_then(|m| m.strip_suffix(".csv"))
                .map(str::to_owned)
        })
        .collect::<Vec<_>>();
    months.sort();
    let (mut reports, mut corrections) = (Vec::new(), Vec::new());
    for m in &months {
        reports.push(dataset.join(format!("reports-{m}.csv")));
        let c = dataset.join(format!("corrections-{m}.csv"));
        if c.exists() {
            corrections.push(c);
        }
    }
    anyhow::ensure!(
        !months.is_empty(),
        "no reports-*.csv in {}",
        dataset.display()
    );
    Ok((months, reports, corrections))
}

/// What the questions ask, as both sides ask it.
struct Asked {
    month: Period,
    year_earlier: Period,
    range: Span,
    ranking_metric: &'static str,
    village_metric: &'static str,
    /// The counties' trend: this many months ending with the month.
    trend_months: u32,
    metrics: Vec<String>,
}

impl Asked {
    /// The questions' periods and metrics for the configured month.
    fn new(cfg: &QueriesConfig, catalogue: &Catalogue) -> anyhow::Result<Asked> {
        let month = cfg.month;
        let first_of_year = Period::Month {
            year: match month {
                Period::Month { year, .. } => year,
                _ => bail!("the month must be a month"),
            },
            month: 1,
        };
        Ok(Asked {
            month,
            year_earlier: month.shift(-12),
            range: Span {
                from: first_of_year,
                to: month,
            },
            ranking_metric: "cases.criminal_per_10k",
            village_metric: "disputes.identified",
            trend_months: 24,
            metrics: catalogue
                .metrics()
                .iter()
                .map(|m| m.id.to_string())
                .collect(),
        })
    }
}

/// The DuckDB side's inputs in `work`: the registry exactly as the hub loaded it, the
/// questions' parameters and the script. Returns (script, parameters).
fn duckdb_inputs(
    work: &Path,
    cfg: &QueriesConfig,
    areas: &Areas,
    catalogue: &Catalogue,
    asked: &Asked,
    files: (&[std::path::PathBuf], &[std::path::PathBuf], &Path),
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let (reports, corrections, population) = files;
    let registry = work.join("registry.csv");
    {
        let mut w = csv::Writer::from_path(&registry)?;
        w.write_record(["code", "level"])?;
        for a in areas.iter() {
            w.write_record([a.code.to_string(), a.code.level().as_str().to_owned()])?;
        }
        w.flush()?;
    }
    let ind = catalogue
        .indicator(asked.ranking_metric)
        .context("the catalogue's 万人发案率")?;
    let range_months: Vec<String> = asked
        .range
        .periods()
        .iter()
        .map(Period::to_string)
        .collect();
    let month = asked.month.to_string();
    // the trend's months, each with the month a year earlier (同比)
    let trend_months: Vec<[String; 2]> = (0..asked.trend_months)
        .rev()
        .map(|back| {
            let m = asked.month.shift(-i64::from(back));
            [m.to_string(), m.shift(-12).to_string()]
        })
        .collect();
    let params = serde_json::json!({
        "runs": cfg.runs,
        "metrics": asked.metrics,
        "reports": reports,
        "corrections": corrections,
        "registry": registry,
        "population": population,
        "rollup": {"area": cfg.province, "period": month},
        "ranking": {"numerator": ind.numerator.to_string(), "months": range_months,
                    "year": asked.range.population_year(), "factor": ind.factor},
        "villages": {"area": cfg.county, "metric": asked.village_metric, "period": month,
                     "year_earlier": asked.year_earlier.to_string()},
        "completeness": {"area": cfg.province, "period": month},
        "province_villages": {"area": cfg.province, "period": month,
                              "numerator": ind.numerator.to_string(),
                              "year": Span { from: asked.month, to: asked.month }.population_year(),
                              "factor": ind.factor},
        "county_trend": {"metric": asked.village_metric, "months": trend_months},
        "file": work.join("same-rows.duckdb"),
    });
    let params_path = work.join("params.json");
    std::fs::write(&params_path, serde_json::to_vec(&params)?)?;
    let script = work.join("queries.py");
    std::fs::write(&script, DUCKDB_SCRIPT)?;
    Ok((script, params_path))
}

/// The hub's answers to the questions, with each run's time.
struct HubAnswers {
    ranking_by_span: Vec<(i32, Vec<f64>, usize)>,
    rollup: (Vec<f64>, pb::RollupReply),
    ranking: (Vec<f64>, pb::CompareReply),
    ranking_as_rows: (Vec<f64>, pb::CompareReply),
    province_villages: (Vec<f64>, pb::CompareReply),
    villages: (Vec<f64>, pb::CompareReply),
    completeness: (Vec<f64>, pb::CompletenessReply),
    county_trend: (Vec<f64>, pb::TrendReply),
}

type QueryClient = pb::query_service_client::QueryServiceClient<Channel>;

/// A comparison asked with its rows as columns, as a client of tens of thousands of rows asks,
/// and read back into `rows` within the call (so that what is timed ends with the rows the
/// checks read).
async fn compare_as_columns(
    client: &mut QueryClient,
    req: &pb::CompareRequest,
) -> anyhow::Result<pb::CompareReply> {
    let req = pb::CompareRequest {
        as_columns: true,
        ..req.clone()
    };
    let mut reply = client.compare(req).await?.into_inner();
    anyhow::ensure!(reply.columns.is_some(), "the hub sent no columns");
    pingan_domain::compare_columns::columns_into_rows(&mut reply)?;
    Ok(reply)
}

/// Asks the hub each question `cfg.runs` times over gRPC.
async fn ask_hub(url: &str, cfg: &QueriesConfig, asked: &Asked) -> anyhow::Result<HubAnswers> {
    let channel = Channel::from_shared(url.to_owned())?.connect().await?;
    let mut client = pb::query_service_client::QueryServiceClient::new(channel)
        .max_decoding_message_size(256 << 20);
    let month = asked.month.to_string();
    eprintln!("  hub: {} runs of each question", cfg.runs);
    // 1. a province's rollup for a month
    let rollup_req = pb::RollupRequest {
        area: cfg.province.clone(),
        period: month.clone(),
        metrics: vec![],
        by_category: false,
        approved_only: false,
    };
    let rollup = time_it(cfg.runs, async || {
        Ok(client.rollup(rollup_req.clone()).await?.into_inner())
    })
    .await?;
    // 2. every township in the country ranked on 万人发案率 over January..month
    let ranking_req = pb::CompareRequest {
        area: pingan_hub::query::engine::NATION.to_owned(),
        period: asked.range.to_string(),
        metric: asked.ranking_metric.to_owned(),
        level: "township".into(),
        complete_only: false,
        // the 41,352 townships in one answer, as before paging existed
        page_size: 100_000,
        ..Default::default()
    };
    let ranking = time_it(cfg.runs, async || {
        compare_as_columns(&mut client, &ranking_req).await
    })
    .await?;
    // 2a. the same ranking with its rows sent row by row (CompareRow messages), as before
    // `as_columns`
    let ranking_as_rows = time_it(cfg.runs, async || {
        Ok(client.compare(ranking_req.clone()).await?.into_inner())
    })
    .await?;
    // 2b. every village of a province ranked on the same rate for the month (villages' own
    // values come from the store, not the rollups)
    let province_villages_req = pb::CompareRequest {
        area: cfg.province.clone(),
        period: month.clone(),
        metric: asked.ranking_metric.to_owned(),
        level: "village".into(),
        complete_only: false,
        page_size: 100_000,
        ..Default::default()
    };
    let province_villages = time_it(cfg.runs, async || {
        compare_as_columns(&mut client, &province_villages_req).await
    })
    .await?;
    // 3. every village of a county with 同比
    let villages_req = pb::CompareRequest {
        area: cfg.county.clone(),
        period: month.clone(),
        metric: asked.village_metric.to_owned(),
        level: "village".into(),
        complete_only: false,
        ..Default::default()
    };
    let villages = time_it(cfg.runs, async || {
        Ok(client.compare(villages_req.clone()).await?.into_inner())
    })
    .await?;
    // 4. completeness of a province, on the monthly form: the dataset holds monthly reports only
    // (a township's half-monthly form is expected too, and the plain SQL does not model it)
    let completeness_req = pb::CompletenessRequest {
        area: cfg.province.clone(),
        period: month,
        level: String::new(),
        form: "zongzhi_monthly".into(),
        ..Default::default()
    };
    let completeness = time_it(cfg.runs, async || {
        Ok(client
            .completeness(completeness_req.clone())
            .await?
            .into_inner())
    })
    .await?;
    // 5. every county of the country: its series over 24 months on one metric, with 同比
    let trend_req = pb::TrendRequest {
        area: pingan_hub::query::engine::NATION.to_owned(),
        period: asked.month.to_string(),
        periods: asked.trend_months,
        metric: asked.village_metric.to_owned(),
        approved_only: false,
        level: "county".into(),
        as_columns: true,
    };
    // asked as columns and read back into series within the timed call, as the rankings
    let county_trend = time_it(cfg.runs, async || {
        let mut reply = client.trend(trend_req.clone()).await?.into_inner();
        anyhow::ensure!(reply.series_columns.is_some(), "the hub sent no columns");
        pingan_domain::trend_columns::columns_into_series(&mut reply)?;
        Ok(reply)
    })
    .await?;
    // how the ranking's time grows with its span (no DuckDB side: the answers are the ranking's)
    let mut ranking_by_span = Vec::new();
    for months in [1i32, 6, 12, 24] {
        let from = asked.month.shift(-i64::from(months - 1));
        let req = pb::CompareRequest {
            period: if months == 1 {
                asked.month.to_string()
            } else {
                format!("{from}..{}", asked.month)
            },
            ..ranking_req.clone()
        };
        let (times, reply) = time_it(cfg.runs.min(20), async || {
            compare_as_columns(&mut client, &req).await
        })
        .await?;
        ranking_by_span.push((months, times, reply.rows.len()));
    }
    Ok(HubAnswers {
        ranking_by_span,
        rollup,
        ranking,
        ranking_as_rows,
        province_villages,
        villages,
        completeness,
        county_trend,
    })
}

/// The hub's side of the questions alone, against a hub already serving at `url`: each
/// question's p50 and p99 on stderr (for profiling a change; no DuckDB, nothing checked).
pub async fn ask_only(url: &str, cfg: &QueriesConfig, catalogue: &Catalogue) -> anyhow::Result<()> {
    let asked = Asked::new(cfg, catalogue)?;
    let before = crate::report::cpu_time();
    let a = ask_hub(url, cfg, &asked).await?;
    if let Some(steal) = crate::report::steal_pct(before, crate::report::cpu_time()) {
        eprintln!("  the host took {steal:.0}% of the CPU time while the hub was asked (steal)");
    }
    let line = |what: &str, times: &[f64]| {
        let (p50, p99) = (
            crate::report::q_ms(times, 0.5),
            crate::report::q_ms(times, 0.99),
        );
        eprintln!("{what:<24} p50 {p50:>8.1} ms  p99 {p99:>8.1} ms");
    };
    line("rollup", &a.rollup.0);
    line("township ranking", &a.ranking.0);
    line("  the same, as rows", &a.ranking_as_rows.0);
    line("province's villages", &a.province_villages.0);
    line("county's villages", &a.villages.0);
    line("completeness", &a.completeness.0);
    line("county trend", &a.county_trend.0);
    for (months, times, _) in &a.ranking_by_span {
        line(&format!("ranking over {months} months"), times);
    }
    // the same rankings answered in full but one row sent: what is not the reply on the wire
    let channel = Channel::from_shared(url.to_owned())?.connect().await?;
    let mut client = pb::query_service_client::QueryServiceClient::new(channel);
    for (what, area, period, level) in [
        (
            "township ranking",
            pingan_hub::query::engine::NATION.to_owned(),
            asked.range.to_string(),
            "township",
        ),
        (
            "province's villages",
            cfg.province.clone(),
            asked.month.to_string(),
            "village",
        ),
    ] {
        let req = pb::CompareRequest {
            area,
            period,
            metric: asked.ranking_metric.to_owned(),
            level: level.into(),
            page_size: 1,
            ..Default::default()
        };
        let (times, _) = time_it(cfg.runs, async || {
            Ok(client.compare(req.clone()).await?.into_inner())
        })
        .await?;
        line(&format!("{what}, 1 row sent"), &times);
    }
    Ok(())
}

/// Runs the DuckDB script on the same raw rows.
fn ask_duckdb(cfg: &QueriesConfig, script: &Path, params: &Path) -> anyhow::Result<DuckOut> {
    eprintln!(
        "  DuckDB: loading the raw rows and {} runs of each question",
        cfg.runs
    );
    let out = Command::new(&cfg.python)
        .arg(script)
        .arg(params)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {} (pip install duckdb)", cfg.python))?;
    anyhow::ensure!(
        out.status.success(),
        "the DuckDB script failed ({}); is the duckdb package installed? (pip install duckdb)",
        out.status
    );
    serde_json::from_slice(&out.stdout).context("the DuckDB script's output")
}

impl DuckOut {
    fn query(&self, name: &str) -> anyhow::Result<&DuckQuery> {
        self.queries
            .get(name)
            .context(format!("DuckDB answer {name}"))
    }
}

/// The rollup against DuckDB: every metric's total.
fn rollup_timed(
    cfg: &QueriesConfig,
    areas: &Areas,
    asked: &Asked,
    (times, rollup): &(Vec<f64>, pb::RollupReply),
    d: &DuckQuery,
) -> anyhow::Result<Timed> {
    let mut diff = None;
    for m in &asked.metrics {
        let hub_total = rollup
            .figures
            .iter()
            .find(|fig| &fig.metric == m)
            .and_then(|fig| fig.total);
        let duck_total = d.answer.get(m).and_then(serde_json::Value::as_i64);
        if hub_total != duck_total && diff.is_none() {
            diff = Some(format!("{m}: hub {hub_total:?}, DuckDB {duck_total:?}"));
        }
    }
    Ok(Timed {
        name: "rollup",
        what: format!(
            "{} {} rollup for {} (every metric's total)",
            cfg.province,
            areas.name(cfg.province.parse()?),
            asked.month
        ),
        hub_ms: times.clone(),
        duckdb_ms: d.times.clone(),
        rows: asked.metrics.len(),
        difference: diff,
    })
}

/// The national ranking against DuckDB: every township's rate and rank.
fn ranking_timed(
    name: &'static str,
    what: String,
    (times, ranking): &(Vec<f64>, pb::CompareReply),
    d: &DuckQuery,
) -> anyhow::Result<Timed> {
    let rows = d.answer.as_array().context("ranking rows")?;
    let duck: BTreeMap<&str, (Option<f64>, u32)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get(0)?.as_str()?,
                (f(r.get(1)?), r.get(2)?.as_u64().unwrap_or(0) as u32),
            ))
        })
        .collect();
    let mut diff = (ranking.rows.len() != duck.len()).then(|| {
        format!(
            "{} rows from the hub, {} from DuckDB",
            ranking.rows.len(),
            duck.len()
        )
    });
    for r in &ranking.rows {
        let ok = duck
            .get(r.code.as_str())
            .is_some_and(|(rate, rank)| close(r.rate, *rate) && r.rank == *rank);
        if !ok && diff.is_none() {
            diff = Some(format!(
                "{}: hub {:?} rank {}, DuckDB {:?}",
                r.code,
                r.rate,
                r.rank,
                duck.get(r.code.as_str())
            ));
        }
    }
    Ok(Timed {
        name,
        what,
        hub_ms: times.clone(),
        duckdb_ms: d.times.clone(),
        rows: ranking.rows.len(),
        difference: diff,
    })
}

/// A county's villages against DuckDB: value, the year-earlier base and 同比 %.
fn villages_timed(
    cfg: &QueriesConfig,
    areas: &Areas,
    asked: &Asked,
    (times, villages): &(Vec<f64>, pb::CompareReply),
    d: &DuckQuery,
) -> anyhow::Result<Timed> {
    let rows = d.answer.as_array().context("village rows")?;
    let duck: BTreeMap<&str, [Option<f64>; 3]> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get(0)?.as_str()?,
                [f(r.get(1)?), f(r.get(2)?), f(r.get(3)?)],
            ))
        })
        .collect();
    let mut diff = (villages.rows.len() != duck.len()).then(|| {
        format!(
            "{} villages from the hub, {} from DuckDB",
            villages.rows.len(),
            duck.len()
        )
    });
    for r in &villages.rows {
        let ok = duck.get(r.code.as_str()).is_some_and(|[v, b, y]| {
            close(r.value, *v) && close(r.yoy_base, *b) && close(r.yoy_pct, *y)
        });
        if !ok && diff.is_none() {
            diff = Some(format!(
                "{}: hub {:?}/{:?}/{:?}, DuckDB {:?}",
                r.code,
                r.value,
                r.yoy_base,
                r.yoy_pct,
                duck.get(r.code.as_str())
            ));
        }
    }
    Ok(Timed {
        name: "villages",
        what: format!(
            "every village of {} {} compared on {} for {}, with 同比",
            cfg.county,
            areas.name(cfg.county.parse()?),
            asked.village_metric,
            asked.month
        ),
        hub_ms: times.clone(),
        duckdb_ms: d.times.clone(),
        rows: villages.rows.len(),
        difference: diff,
    })
}

/// Every county's trend against DuckDB: each month's value and the year-earlier base.
fn county_trend_timed(
    asked: &Asked,
    (times, trend): &(Vec<f64>, pb::TrendReply),
    d: &DuckQuery,
) -> anyhow::Result<Timed> {
    let rows = d.answer.as_array().context("county trend rows")?;
    let duck: BTreeMap<(&str, &str), [Option<f64>; 2]> = rows
        .iter()
        .filter_map(|r| {
            Some((
                (r.get(0)?.as_str()?, r.get(1)?.as_str()?),
                [f(r.get(2)?), f(r.get(3)?)],
            ))
        })
        .collect();
    let points: usize = trend.series.iter().map(|s| s.points.len()).sum();
    let mut diff = (points != duck.len()).then(|| {
        format!(
            "{points} points ({} counties) from the hub, {} from DuckDB",
            trend.series.len(),
            duck.len()
        )
    });
    for s in &trend.series {
        for p in &s.points {
            let ok = duck
                .get(&(s.area.as_str(), p.period.as_str()))
                .is_some_and(|[v, b]| close(p.value, *v) && close(p.yoy_base, *b));
            if !ok && diff.is_none() {
                diff = Some(format!(
                    "{} {}: hub {:?}/{:?}, DuckDB {:?}",
                    s.area,
                    p.period,
                    p.value,
                    p.yoy_base,
                    duck.get(&(s.area.as_str(), p.period.as_str()))
                ));
            }
        }
    }
    Ok(Timed {
        name: "county_trend",
        what: format!(
            "every county of the country ({}): its {} over the {} months to {}, with 同比",
            trend.series.len(),
            asked.village_metric,
            asked.trend_months,
            asked.month
        ),
        hub_ms: times.clone(),
        duckdb_ms: d.times.clone(),
        rows: points,
        difference: diff,
    })
}

/// A province's completeness against DuckDB: expected, received and the missing reporters by
/// name.
fn completeness_timed(
    cfg: &QueriesConfig,
    asked: &Asked,
    (times, completeness): &(Vec<f64>, pb::CompletenessReply),
    d: &DuckQuery,
) -> Timed {
    let summary = completeness.summary.unwrap_or_default();
    let expected = d.answer.get("expected").and_then(serde_json::Value::as_u64);
    let received = d.answer.get("received").and_then(serde_json::Value::as_u64);
    let duck_missing: Vec<&str> = d
        .answer
        .get("missing")
        .and_then(serde_json::Value::as_array)
        .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
        .unwrap_or_default();
    let mut hub_missing: Vec<&str> = completeness
        .missing
        .iter()
        .map(|r| r.code.as_str())
        .collect();
    hub_missing.sort_unstable();
    let diff = if (Some(summary.expected), Some(summary.received)) != (expected, received) {
        Some(format!(
            "hub {}/{} received, DuckDB {received:?}/{expected:?}",
            summary.received, summary.expected
        ))
    } else if hub_missing != duck_missing {
        Some(format!(
            "{} missing named by the hub, {} by DuckDB",
            hub_missing.len(),
            duck_missing.len()
        ))
    } else {
        None
    };
    Timed {
        name: "completeness",
        what: format!(
            "completeness of {} for {} on 综治工作月报 ({} expected, {} missing named)",
            cfg.province, asked.month, summary.expected, summary.missing
        ),
        hub_ms: times.clone(),
        duckdb_ms: d.times.clone(),
        rows: hub_missing.len(),
        difference: diff,
    }
}

/// The hub's first start (rebuilding the rollups unless a snapshot is there), a graceful stop
/// (which saves them), and the restart that is measured: the restarted hub and both times.
fn start_twice(
    cfg: &QueriesConfig,
    population: &Path,
    rebuilds: bool,
) -> anyhow::Result<(Hub, Duration, Duration)> {
    eprintln!(
        "  starting the hub on {} ({})",
        cfg.data.display(),
        if rebuilds {
            "no saved rollups: rebuilding from the store"
        } else {
            "saved rollups"
        }
    );
    let run = HubRun {
        hub: &cfg.hub,
        data: &cfg.data,
        divisions: &cfg.divisions,
        population: Some(population),
        store: cfg.store.as_deref(),
    };
    let (hub, first_start) = Hub::start(&run)?;
    eprintln!("  serving after {first_start:.1?}; stopping it (it saves its rollups)");
    hub.stop()?;
    let (hub, restart) = Hub::start(&run)?;
    eprintln!(
        "  restarted in {restart:.1?}, {} MiB RSS",
        hub.rss().0 / 1024
    );
    Ok((hub, first_start, restart))
}

/// What a hub holding some months costs to keep: memory once serving, and on disk.
#[derive(Debug, Clone)]
pub struct Footprint {
    pub months: usize,
    /// RSS once serving after a restart from the saved rollups.
    pub rss_kib: u64,
    pub snapshot_bytes: u64,
    /// The store without the snapshot.
    pub store_bytes: u64,
    pub restart: Duration,
}

/// The footprint of the hub on `cfg.data` (which holds `months` months): started (rebuilding
/// its rollups when no snapshot is there), stopped (saving them) and restarted.
pub fn footprint(cfg: &QueriesConfig, months: usize) -> anyhow::Result<Footprint> {
    let population = cfg.dataset.join("population.csv");
    let snapshot = cfg.data.join(pingan_hub::query::snapshot::FILE);
    let (hub, _, restart) = start_twice(cfg, &population, !snapshot.exists())?;
    let (rss_kib, _) = hub.rss();
    hub.stop()?;
    let snapshot_bytes = std::fs::metadata(&snapshot).map_or(0, |m| m.len());
    Ok(Footprint {
        months,
        rss_kib,
        snapshot_bytes,
        store_bytes: cfg.store_bytes()? - snapshot_bytes,
        restart,
    })
}

impl QueriesResult {
    /// This run's hub as a footprint (its months, RSS after the restart, bytes).
    pub fn footprint(&self) -> Footprint {
        Footprint {
            months: self.months,
            rss_kib: self.rss_kib,
            snapshot_bytes: self.snapshot_bytes,
            store_bytes: self.store_bytes,
            restart: self.restart,
        }
    }
}

/// Runs the questions on the hub (first start, graceful stop, restart) and on DuckDB.
pub async fn run(cfg: &QueriesConfig, areas: &Areas) -> anyhow::Result<QueriesResult> {
    let catalogue = Catalogue::builtin();
    let population = cfg.dataset.join("population.csv");
    let (months, reports, corrections) = dataset_files(&cfg.dataset)?;

    let snapshot = cfg.data.join(pingan_hub::query::snapshot::FILE);
    let first_start_rebuilt = !snapshot.exists();
    let (hub, first_start, restart) = start_twice(cfg, &population, first_start_rebuilt)?;
    let (rss_kib, _) = hub.rss();
    let asked = Asked::new(cfg, &catalogue)?;
    let work = tempfile::tempdir()?;
    let (script, params) = duckdb_inputs(
        work.path(),
        cfg,
        areas,
        &catalogue,
        &asked,
        (&reports, &corrections, &population),
    )?;
    let before = crate::report::cpu_time();
    let hub_answers = ask_hub(&hub.url, cfg, &asked).await?;
    let hub_steal_pct = crate::report::steal_pct(before, crate::report::cpu_time());
    let (_, peak_rss_kib) = hub.rss();
    hub.stop()?;
    let duck = ask_duckdb(cfg, &script, &params)?;
    let queries = vec![
        rollup_timed(
            cfg,
            areas,
            &asked,
            &hub_answers.rollup,
            duck.query("rollup")?,
        )?,
        ranking_timed(
            "ranking",
            format!(
                "every township in the country ranked on 万人发案率 over {} (cumulative)",
                asked.range
            ),
            &hub_answers.ranking,
            duck.query("ranking")?,
        )?,
        ranking_timed(
            "ranking_as_rows",
            "the same ranking, its rows sent row by row (`CompareReply.rows`, as before \
             `as_columns`)"
                .to_owned(),
            &hub_answers.ranking_as_rows,
            duck.query("ranking")?,
        )?,
        ranking_timed(
            "province_villages",
            format!(
                "every village of {} {} ranked on 万人发案率 for {}",
                cfg.province,
                areas.name(cfg.province.parse()?),
                asked.month
            ),
            &hub_answers.province_villages,
            duck.query("province_villages")?,
        )?,
        villages_timed(
            cfg,
            areas,
            &asked,
            &hub_answers.villages,
            duck.query("villages")?,
        )?,
        completeness_timed(
            cfg,
            &asked,
            &hub_answers.completeness,
            duck.query("completeness")?,
        ),
        county_trend_timed(
            &asked,
            &hub_answers.county_trend,
            duck.query("county_trend")?,
        )?,
    ];

    let revisions = {
        let store = pingan_hub::store::StoreAt::new(&cfg.data, cfg.store.as_deref());
        pingan_hub::store::StoreReader::open_at(&store)?.revision_count()?
    };
    Ok(QueriesResult {
        ranking_by_span: hub_answers.ranking_by_span.clone(),
        queries,
        months: months.len(),
        revisions,
        first_start,
        first_start_rebuilt,
        restart,
        rss_kib,
        peak_rss_kib,
        store_bytes: cfg.store_bytes()? - std::fs::metadata(&snapshot).map_or(0, |m| m.len()),
        on_postgres: cfg.store.is_some(),
        snapshot_bytes: std::fs::metadata(&snapshot).map_or(0, |m| m.len()),
        duckdb_load_ms: duck.load_ms,
        duckdb_file_bytes: duck.file_bytes,
        duckdb_version: duck.version,
        duckdb_threads: duck.threads.to_string(),
        raw_rows: duck.raw_rows,
        hub_steal_pct,
    })
}
