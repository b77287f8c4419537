//! The ingest benchmark: a hub serving mutual TLS on loopback, one simulated node per province
//! (its own client certificate, granted the province's subtree, its own HTTP/2 connection) with
//! many submissions in flight, submitting one month for every county, township and village; each
//! submission waits for its durable receipt (after fsync). In the same run, on the same server and
//! connections: the rate of `Ping`, an RPC that does no work, so the cost of validation and
//! durability reads as a ratio; and freshness, the time from a receipt to the report being seen
//! by a query, measured by a separate viewer while the ingest runs.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use pingan_domain::{AreaCode, Areas, Catalogue, Level, Period, pb};
use pingan_hub::{
    Clock, HubState,
    access::{
        authz::{Authorizer, Grant},
        tls::{Role, ServerTls, TlsFiles, certs},
    },
    store::StoreAt,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::{
    dataset,
    wire::{Encoded, Submitter},
};

/// How the ingest is run.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// The month submitted.
    pub month: Period,
    /// Submissions in flight per simulated node (province).
    pub in_flight: usize,
    /// Submit only this many reports (spread over the provinces); `None`: every reporter.
    pub limit: Option<usize>,
    /// How long the `Ping` baseline runs, in all: split into [`rounds`](Self::rounds) + 1
    /// windows, one before the unary pass, one after each of its parts.
    pub ping_for: Duration,
    /// The unary pass in this many parts, with a `Ping` window before the first and after each:
    /// the two rates are compared under the same machine (on a VM whose speed drifts from
    /// minute to minute, a `Ping` measured only before a 30 s pass is not).
    pub rounds: usize,
    /// Reports a second offered in all (open loop): the n-th report of a part leaves at
    /// `n / pace` seconds after the part starts whether or not earlier receipts have come (many
    /// offices, each sending on its own), and its latency counts from then. `None`: closed loop,
    /// each submitter sends its next report when its receipt comes.
    pub pace: Option<f64>,
    /// Freshness probes taken during the ingest (at most; one every 50 ms).
    pub probes: usize,
    pub seed: u64,
    /// Rank every township of the registry, again and again, while the ingest runs: what
    /// questions cost the receipts.
    pub rank_during: bool,
    /// After the unary pass, the same reporters' next month over `SubmitBatch`, one stream per
    /// node (the path a node's backlog takes).
    pub batch: bool,
    /// The hub's store: `None` is SQLite in a temporary directory; else an empty database.
    pub store: Option<StoreAt>,
    /// Start from a copy of this hub's data directory (SQLite store and saved rollups): the
    /// ingest with that history already stored. Its months must lie before `month`.
    pub history: Option<std::path::PathBuf>,
    /// Totals by catalogue position (PackedValues), as `pingan-node` sends them to a hub of its
    /// catalogue; `false`: by metric name.
    pub packed: bool,
}

impl Default for IngestConfig {
    fn default() -> IngestConfig {
        IngestConfig {
            month: Period::Month {
                year: 2026,
                month: 10,
            },
            in_flight: 32,
            limit: None,
            ping_for: Duration::from_secs(5),
            rounds: 4,
            pace: None,
            probes: 200,
            seed: 20261123,
            rank_during: false,
            batch: true,
            store: None,
            history: None,
            packed: true,
        }
    }
}

/// The `SubmitBatch` pass: the same reporters' next month, one stream per node.
#[derive(Debug, Clone, Default)]
pub struct BatchPass {
    pub reports: u64,
    pub values: u64,
    pub elapsed: Duration,
    /// A report leaving the node → its result, sorted.
    pub latencies: Vec<Duration>,
}

impl BatchPass {
    pub fn reports_per_s(&self) -> f64 {
        self.reports as f64 / self.elapsed.as_secs_f64()
    }
}

/// What was measured.
#[derive(Debug, Clone, Default)]
pub struct IngestResult {
    pub nodes: usize,
    pub in_flight: usize,
    pub reports: u64,
    pub values: u64,
    pub elapsed: Duration,
    /// Submit → receipt, sorted.
    pub latencies: Vec<Duration>,
    pub pings: u64,
    pub ping_elapsed: Duration,
    pub ping_latencies: Vec<Duration>,
    /// The process's CPU time (every thread: hub, load generator, writer) over the unary pass
    /// and over the `Ping` pass: what a call costs the two cores, steadier than a rate on a
    /// machine whose speed varies from minute to minute.
    pub cpu: Duration,
    pub ping_cpu: Duration,
    /// Receipt → visible in a query, sorted.
    pub freshness: Vec<Duration>,
    /// With `rank_during`: each national township ranking's time during the ingest, sorted.
    pub rankings: Vec<Duration>,
    /// The store's files after the ingest.
    pub store_bytes: u64,
    /// With `batch`: the `SubmitBatch` pass.
    pub batch: Option<BatchPass>,
    /// Each part of the unary pass: its Submit rate ÷ the mean of the `Ping` rates of the
    /// windows before and after it.
    pub round_ratios: Vec<f64>,
    /// The writer's waits for the rollups' lock over the unary pass, one per committed group.
    pub lock_waits: pingan_hub::query::WaitsSeen,
    /// What the scheduler says of the process's threads over the unary pass.
    pub scheduled: Scheduled,
}

impl IngestResult {
    pub fn reports_per_s(&self) -> f64 {
        self.reports as f64 / self.elapsed.as_secs_f64()
    }

    pub fn values_per_s(&self) -> f64 {
        self.values as f64 / self.elapsed.as_secs_f64()
    }

    pub fn pings_per_s(&self) -> f64 {
        self.pings as f64 / self.ping_elapsed.as_secs_f64()
    }

    /// CPU time per unary `Submit` and per `Ping`, in microseconds.
    pub fn cpu_per_call_us(&self) -> (f64, f64) {
        (
            self.cpu.as_secs_f64() * 1e6 / self.reports.max(1) as f64,
            self.ping_cpu.as_secs_f64() * 1e6 / self.pings.max(1) as f64,
        )
    }
}

/// The CPU time this process has used so far, every thread's, user and system (Linux; zero
/// where /proc cannot be read).
pub fn process_cpu() -> Duration {
    // fields 14 and 15 of /proc/self/stat, after the command name in parentheses, in clock
    // ticks of 1/100 s (USER_HZ, 100 on every Linux architecture we run on)
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    let Some((_, after)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// The name of the thread that runs national rankings beside an ingest (`rank_during`).
const RANKINGS_THREAD: &str = "rankings";

/// What the scheduler says of this process's threads over a pass (Linux schedstat): how long
/// the threads that serve the ingest (hub, writer, load generator: every thread but the
/// rankings') waited in the run queue for a core and how long they ran; and the CPU the
/// rankings took: the process's beyond those threads' (a ranking's rows are gathered on
/// threads of its own that come and go within the pass). A receipt that waits while a ranking
/// runs waits here (for a core) or for the rollups' lock (`IngestResult::lock_waits`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scheduled {
    pub waited: Duration,
    pub ran: Duration,
    pub rankings_ran: Duration,
}

impl std::ops::AddAssign for Scheduled {
    fn add_assign(&mut self, o: Scheduled) {
        self.waited += o.waited;
        self.ran += o.ran;
        self.rankings_ran += o.rankings_ran;
    }
}

/// Each live thread of this process but the rankings' ([`RANKINGS_THREAD`], and the threads
/// it starts, which take its name): its id → (ns run, ns waited for a core); empty where /proc
/// cannot be read.
fn threads() -> BTreeMap<u64, (u64, u64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return BTreeMap::new();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let tid = t.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim() == RANKINGS_THREAD {
                return None;
            }
            let stat = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            let mut f = stat.split_whitespace().map(|x| x.parse::<u64>().ok());
            Some((tid, (f.next()??, f.next()??)))
        })
        .collect()
}

/// What the threads of `after` did since `before` (a thread new since then, from its start).
fn scheduled_since(
    before: &BTreeMap<u64, (u64, u64)>,
    after: &BTreeMap<u64, (u64, u64)>,
) -> Scheduled {
    let mut s = Scheduled::default();
    for (tid, &(ran, waited)) in after {
        let (ran0, waited0) = before.get(tid).copied().unwrap_or_default();
        s.ran += Duration::from_nanos(ran.saturating_sub(ran0));
        s.waited += Duration::from_nanos(waited.saturating_sub(waited0));
    }
    s
}

/// The `q`-quantile (0..=1) of sorted durations, in milliseconds.
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// A report for `code` with the dataset's values for the month.
pub(crate) fn report(catalogue: &Catalogue, cfg: &IngestConfig, code: AreaCode) -> pb::Report {
    let values = dataset::report_values(catalogue, cfg.seed, code, 0);
    report_of(catalogue, cfg, code, values, uuid::Uuid::new_v4())
}

/// A report for `code` with `values` (the catalogue's metrics in order, `None`: not reported).
fn report_of(
    catalogue: &Catalogue,
    cfg: &IngestConfig,
    code: AreaCode,
    values: impl IntoIterator<Item = Option<i64>>,
    id: uuid::Uuid,
) -> pb::Report {
    let given = values
        .into_iter()
        .zip(catalogue.metrics())
        .enumerate()
        .filter_map(|(at, (v, m))| v.map(|total| (at, m, total)));
    let (values, packed) = if cfg.packed {
        let width = catalogue.metrics().len();
        let mut packed = pb::PackedValues {
            catalogue: catalogue.fingerprint(),
            metrics: Vec::with_capacity(width),
            totals: Vec::with_capacity(width),
        };
        for (at, _, total) in given {
            packed.metrics.push(at as u32);
            packed.totals.push(total);
        }
        (Vec::new(), Some(packed))
    } else {
        let values = given
            .map(|(_, m, total)| pb::MetricValue {
                metric: m.id.to_string(),
                total: Some(total),
                parts: Default::default(),
            })
            .collect();
        (values, None)
    };
    pb::Report {
        submission_id: id.to_string(),
        area: code.to_string(),
        period: cfg.month.to_string(),
        values,
        packed,
        reporter: "pingan-bench".into(),
        ..Default::default()
    }
}

/// How many values a report carries, named and compact.
pub(crate) fn values_in(r: &pb::Report) -> u64 {
    (r.values.len() + r.packed.as_ref().map_or(0, |p| p.metrics.len())) as u64
}

/// The dataset's values of every queued reporter, drawn before the clock starts: a node's
/// reports wait in its outbox, they are not sampled from a distribution while it sends, and the
/// load generator shares the hub's two cores.
struct Prepared {
    /// The catalogue's metric count: one row of `values` per queued report.
    width: usize,
    /// Row by row in queue order; `i64::MIN`: the metric is not reported.
    values: Vec<i64>,
    /// Makes the submission ids of this run unique (with the queue position).
    run: u64,
}

impl Prepared {
    /// Draws the values of `queue` on every core.
    fn new(catalogue: &Catalogue, seed: u64, queue: &[(usize, AreaCode)]) -> Prepared {
        // at least one column, so that rows can be cut (a catalogue always has metrics)
        let width = catalogue.metrics().len().max(1);
        let mut values = vec![i64::MIN; queue.len() * width];
        let per = queue.len().div_ceil(pingan_domain::cores()).max(1);
        std::thread::scope(|s| {
            for (rows, codes) in values.chunks_mut(per * width).zip(queue.chunks(per)) {
                s.spawn(move || {
                    for (row, (_, code)) in rows.chunks_mut(width).zip(codes) {
                        let drawn = dataset::report_values(catalogue, seed, *code, 0);
                        for (cell, v) in row.iter_mut().zip(drawn) {
                            *cell = v.unwrap_or(i64::MIN);
                        }
                    }
                });
            }
        });
        Prepared {
            width,
            values,
            run: uuid::Uuid::new_v4().as_u64_pair().0,
        }
    }

    /// The `i`-th queued report, for `code`.
    fn report(
        &self,
        catalogue: &Catalogue,
        cfg: &IngestConfig,
        pass: u64,
        i: usize,
        code: AreaCode,
    ) -> pb::Report {
        let row = &self.values[i * self.width..(i + 1) * self.width];
        // a v4 UUID from the run, the pass and the position: unique, no system call per report
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&splitmix(self.run ^ pass).to_le_bytes());
        bytes[8..].copy_from_slice(&splitmix(self.run.rotate_left(17) ^ i as u64).to_le_bytes());
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let values = row.iter().map(|&v| (v != i64::MIN).then_some(v));
        report_of(catalogue, cfg, code, values, id)
    }
}

/// SplitMix64's output function: spreads a counter over 64 bits.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Copies a hub's data directory (its store with any write-ahead log, and its saved rollups)
/// into `to`, leaving out what belongs to the process that ran it (its lease, the WAL's
/// shared-memory index).
fn copy_history(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    let mut copied = 0;
    for entry in std::fs::read_dir(from).map_err(|e| anyhow::anyhow!("{}: {e}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !entry.file_type()?.is_file() || name.ends_with(".lock") || name.ends_with("-shm") {
            continue;
        }
        let target = to.join(&*name);
        std::fs::copy(entry.path(), &target)
            .map_err(|e| anyhow::anyhow!("copying {}: {e}", entry.path().display()))?;
        // on disk before the clock starts: the copy's gigabytes written back during the run
        // would slow the hub's fsyncs for a reason of the benchmark's own
        std::fs::File::open(&target)?.sync_all()?;
        copied += 1;
    }
    anyhow::ensure!(copied > 0, "{} holds no hub data", from.display());
    Ok(())
}

/// Bytes of the files under `dir`, subdirectories included.
/// The store's size: its database's on PostgreSQL (`pg_database_size`), else the data
/// directory's.
pub(crate) fn store_bytes(store: &StoreAt, data: &Path) -> anyhow::Result<u64> {
    Ok(match store {
        StoreAt::Postgres(_) => {
            let db = pingan_hub::store::db::Db::open(store)?;
            db.one(
                "SELECT pg_database_size(current_database())::BIGINT",
                &[],
                |r| r.int(0),
            )?
            .unwrap_or(0) as u64
        }
        StoreAt::Sqlite(_) => dir_bytes(data),
    })
}

pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The reporters by province (cut to the configured limit), and a few villages of the first
/// province kept apart for the freshness probes.
type Reporters = (
    BTreeMap<AreaCode, Vec<AreaCode>>,
    AreaCode,
    Vec<AreaCode>,
    usize,
);

fn reporters(areas: &Areas, cfg: &IngestConfig) -> anyhow::Result<Reporters> {
    let mut by_province: BTreeMap<AreaCode, Vec<AreaCode>> = BTreeMap::new();
    for a in areas.iter() {
        if a.code.level() >= Level::County && a.valid_for(cfg.month) {
            let province = a.code.ancestor_at(Level::Province).unwrap_or(a.code);
            by_province.entry(province).or_default().push(a.code);
        }
    }
    let total: usize = by_province.values().map(Vec::len).sum();
    let keep = cfg.limit.unwrap_or(total).min(total);
    for codes in by_province.values_mut() {
        codes.sort();
        let share = (codes.len() * keep).div_ceil(total.max(1));
        codes.truncate(share);
    }
    let (&probe_province, first) = by_province
        .iter_mut()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the registry has no reporters"))?;
    let probe_villages: Vec<AreaCode> = {
        let villages: Vec<usize> = (0..first.len())
            .filter(|&i| first[i].level() == Level::Village)
            // at most a tenth of the province's reporters
            .take(cfg.probes.min(first.len() / 10))
            .collect();
        villages.iter().rev().map(|&i| first.remove(i)).collect()
    };
    Ok((by_province, probe_province, probe_villages, keep))
}

/// Certificates: the hub's, a node per province with a grant over it, a viewer for the probes.
/// Returns the hub's access rules.
fn issue_certificates(
    pki: &Path,
    provinces: impl Iterator<Item = AreaCode>,
    probe_province: AreaCode,
) -> anyhow::Result<Authorizer> {
    certs::init(pki)?;
    let mut hub_cert = certs::IssueRequest::valid_for_days(Role::Hub, probe_province, 30);
    hub_cert.hosts = vec!["localhost".into()];
    let stem = hub_cert.stem();
    certs::issue(pki, &hub_cert)?;
    let mut grants = Vec::new();
    for province in provinces {
        let req = certs::IssueRequest::valid_for_days(Role::Node, province, 30);
        certs::issue(pki, &req)?;
        grants.push(Grant {
            identity: pingan_hub::access::tls::identity::identity_uri(Role::Node, province),
            subtree: province,
        });
    }
    certs::issue(
        pki,
        &certs::IssueRequest::valid_for_days(Role::Viewer, probe_province, 30),
    )?;
    let tls = ServerTls::load(TlsFiles {
        ca: pki.join("ca.pem"),
        cert: pki.join(format!("{stem}.pem")),
        key: pki.join(format!("{stem}.key")),
        deny_list: None,
    })?;
    Ok(Authorizer::mtls(tls, grants))
}

/// A lazily connecting TLS channel to the hub as `who` (the stem of its certificate files).
fn channel(pki: &Path, url: &str, who: &str) -> anyhow::Result<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(pki.join("ca.pem"))?))
        .identity(Identity::from_pem(
            std::fs::read(pki.join(format!("{who}.pem")))?,
            std::fs::read(pki.join(format!("{who}.key")))?,
        ));
    Ok(Channel::from_shared(url.to_owned())?
        .tls_config(tls)?
        .timeout(Duration::from_secs(120))
        .connect_lazy())
}

/// `Ping` on every connection with the ingest's concurrency for `cfg.ping_for`: how many, how
/// long it took, and each one's latency (sorted).
async fn ping_window(
    channels: &[Channel],
    cfg: &IngestConfig,
    window: Duration,
    fingerprint: u64,
) -> anyhow::Result<(u64, Duration, Vec<Duration>)> {
    let pings = Arc::new(AtomicU64::new(0));
    let ping_lat = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for ch in channels {
        for _ in 0..cfg.in_flight {
            let (ch, pings, lat, until) = (
                ch.clone(),
                pings.clone(),
                ping_lat.clone(),
                started + window,
            );
            tasks.push(tokio::spawn(async move {
                let mut client = pb::report_service_client::ReportServiceClient::new(ch);
                let mut mine = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    let reply = client.ping(pb::PingRequest {}).await?.into_inner();
                    mine.push(t.elapsed());
                    // the compact form is sent only to a hub of the same catalogue
                    anyhow::ensure!(
                        reply.catalogue == fingerprint,
                        "the hub's catalogue differs"
                    );
                    pings.fetch_add(1, Ordering::Relaxed);
                }
                lat.lock().expect("not poisoned").extend(mine);
                anyhow::Ok(())
            }));
        }
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    Ok((pings.load(Ordering::Relaxed), elapsed, sorted(&ping_lat)))
}

/// The `Ping` windows of a run, added up.
#[derive(Default)]
struct Pinged {
    pings: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    cpu: Duration,
    /// Each window's calls/s.
    rates: Vec<f64>,
}

impl Pinged {
    /// Pings for `window` and adds it up.
    async fn window(
        &mut self,
        channels: &[Channel],
        cfg: &IngestConfig,
        window: Duration,
        fingerprint: u64,
    ) -> anyhow::Result<()> {
        let cpu_before = process_cpu();
        let (pings, elapsed, latencies) = ping_window(channels, cfg, window, fingerprint).await?;
        self.cpu += process_cpu().saturating_sub(cpu_before);
        self.pings += pings;
        self.elapsed += elapsed;
        self.latencies.extend(latencies);
        self.rates.push(pings as f64 / elapsed.as_secs_f64());
        Ok(())
    }
}

/// How often the freshness probe's viewer asks again until its report shows.
const PROBE_POLL: Duration = Duration::from_millis(2);

/// Submits each probe village while the ingest runs and times how long until a viewer's rollup
/// shows it (freshness), one every 50 ms, until `done`. The viewer asks again every
/// [`PROBE_POLL`] (the figure's resolution), not back to back: a viewer spinning on queries
/// would take a core from the ingest it measures.
fn spawn_probe(
    viewer: Channel,
    node: Channel,
    probe_villages: Vec<AreaCode>,
    catalogue: Arc<Catalogue>,
    cfg: IngestConfig,
    phase: Arc<Phase>,
    freshness: Arc<Mutex<Vec<Duration>>>,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        let mut queries = pb::query_service_client::QueryServiceClient::new(viewer);
        let mut reports = pb::report_service_client::ReportServiceClient::new(node);
        for village in probe_villages {
            while phase.paused() {
                tokio::time::sleep(PAUSED).await;
            }
            if phase.done.load(Ordering::Relaxed) {
                break;
            }
            let r = report(&catalogue, &cfg, village);
            // the first value, by name (the report's totals may be by catalogue position)
            let mut named = r.clone();
            pingan_domain::unpack(&mut named, &catalogue);
            let want = named.values.first().cloned();
            reports.submit(r).await?;
            let t = Instant::now();
            loop {
                let seen = queries
                    .rollup(pb::RollupRequest {
                        area: village.to_string(),
                        period: cfg.month.to_string(),
                        metrics: want.iter().map(|v| v.metric.clone()).collect(),
                        by_category: false,
                        approved_only: false,
                    })
                    .await?
                    .into_inner();
                let own = seen.figures.first().and_then(|f| f.own);
                if own == want.as_ref().and_then(|v| v.total) {
                    break;
                }
                tokio::time::sleep(PROBE_POLL).await;
            }
            freshness.lock().expect("not poisoned").push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::Ok(())
    })
}

/// Where a run is, for the probe and the rankings beside the unary pass: they stay out of the
/// `Ping` windows between its parts, and stop when it is `done`.
#[derive(Default)]
struct Phase {
    submitting: AtomicBool,
    done: AtomicBool,
}

impl Phase {
    /// Between two parts of the unary pass.
    fn paused(&self) -> bool {
        !self.submitting.load(Ordering::Relaxed) && !self.done.load(Ordering::Relaxed)
    }
}

/// How often the probe and the rankings look whether the unary pass goes on.
const PAUSED: Duration = Duration::from_millis(5);

/// With [`IngestConfig::rank_during`]: every township of the registry ranked on 万人发案率 for
/// the month, again and again while `submitting` until `done`, on a blocking thread as the hub
/// runs questions; each ranking's time.
fn spawn_rankings(
    engine: Arc<pingan_hub::query::Engine>,
    month: Period,
    phase: Arc<Phase>,
) -> tokio::task::JoinHandle<anyhow::Result<Vec<Duration>>> {
    // a thread of its own, named, so the scheduler's figures tell it apart ([`Scheduled`])
    let rankings = std::thread::Builder::new()
        .name(RANKINGS_THREAD.into())
        .spawn(move || {
            let q = pingan_hub::query::CompareQuery {
                root: pingan_hub::query::Root::Nation,
                span: pingan_domain::Span {
                    from: month,
                    to: month,
                },
                metric: "cases.criminal_per_10k".into(),
                level: Some(Level::Township),
                complete_only: false,
                page: pingan_hub::query::Paging::everything(),
                figures: pingan_hub::query::Figures::Current,
                as_columns: false,
            };
            let mut times = Vec::new();
            while !phase.done.load(Ordering::Relaxed) {
                if phase.paused() {
                    std::thread::sleep(PAUSED);
                    continue;
                }
                let t = Instant::now();
                engine
                    .compare(&q)
                    .map_err(|e| anyhow::anyhow!("the ranking during the ingest: {e}"))?;
                times.push(t.elapsed());
            }
            times.sort();
            Ok(times)
        });
    tokio::task::spawn_blocking(move || {
        rankings?
            .join()
            .map_err(|_| anyhow::anyhow!("the rankings' thread panicked"))?
    })
}

/// One queue of every reporter, provinces interleaved, so that every connection stays busy to
/// the end: (connection index, code).
fn interleaved(by_province: &BTreeMap<AreaCode, Vec<AreaCode>>) -> Vec<(usize, AreaCode)> {
    let mut queue = Vec::new();
    let mut lists: Vec<std::vec::IntoIter<AreaCode>> = by_province
        .values()
        .map(|v| v.clone().into_iter())
        .collect();
    loop {
        let before = queue.len();
        for (i, list) in lists.iter_mut().enumerate() {
            if let Some(code) = list.next() {
                queue.push((i, code));
            }
        }
        if queue.len() == before {
            return queue;
        }
    }
}

/// What the submitters count.
#[derive(Default)]
struct Counters {
    acked: AtomicU64,
    values: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
}

/// The reports of `part` (each with its place in the whole queue) as their nodes hold them, encoded,
/// ready to send: (connection index, report). Made before the part's clock starts, as a node's
/// outbox holds its reports before it sends them; the load generator shares the hub's cores.
fn ready(
    prepared: &Prepared,
    catalogue: &Catalogue,
    cfg: &IngestConfig,
    part: &[(usize, (usize, AreaCode))],
) -> Vec<(usize, Encoded)> {
    part.iter()
        .map(|&(i, (node, code))| {
            let r = prepared.report(catalogue, cfg, 0, i, code);
            (node, Encoded::of(&r))
        })
        .collect()
}

/// Submits the reports with `in_flight` submissions per connection, each waiting for its
/// receipt; `progress` about once a second with the reports acknowledged so far and these.
/// Returns how long it took.
async fn submit_all(
    reports: Vec<(usize, Encoded)>,
    channels: &[Channel],
    cfg: &IngestConfig,
    counters: &Arc<Counters>,
    progress: impl FnMut(u64, u64),
) -> anyhow::Result<Duration> {
    let total = reports.len() as u64;
    let queue = Arc::new(Mutex::new(reports.into_iter().enumerate()));
    let clients: Arc<Vec<Channel>> = Arc::new(channels.to_vec());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..channels.len() * cfg.in_flight {
        let (clients, queue, cfg, counters) = (
            clients.clone(),
            queue.clone(),
            cfg.clone(),
            counters.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            // this submitter's client of each connection, made when it first sends on it
            let mut made: Vec<Option<Submitter>> = vec![None; clients.len()];
            loop {
                let next = queue.lock().expect("not poisoned").next();
                let Some((nth, (node, r))) = next else {
                    break;
                };
                let client =
                    made[node].get_or_insert_with(|| Submitter::new(clients[node].clone()));
                let n = r.values;
                let t = match cfg.pace {
                    Some(pace) => {
                        let turn = started + Duration::from_secs_f64(nth as f64 / pace);
                        tokio::time::sleep_until(turn.into()).await;
                        turn
                    }
                    None => Instant::now(),
                };
                client.submit(r).await?;
                mine.push(t.elapsed());
                counters.values.fetch_add(n, Ordering::Relaxed);
                counters.acked.fetch_add(1, Ordering::Relaxed);
            }
            counters
                .latencies
                .lock()
                .expect("not poisoned")
                .extend(mine);
            anyhow::Ok(())
        }));
    }
    finish(tasks, counters, total, started, progress).await
}

/// Submits every queued report over one `SubmitBatch` stream per node, reading each result in
/// order (the hub works on many of a stream's reports at once, so one stream fills group
/// commits); a latency is from the report leaving the node to its result. Any refusal fails the
/// run.
async fn submit_batches(
    queue: Vec<(usize, AreaCode)>,
    prepared: &Arc<Prepared>,
    channels: &[Channel],
    catalogue: &Arc<Catalogue>,
    cfg: &IngestConfig,
    counters: &Arc<Counters>,
    progress: impl FnMut(u64, u64),
) -> anyhow::Result<Duration> {
    use futures_util::StreamExt as _;
    let total = queue.len() as u64;
    let mut per_node: Vec<Vec<(usize, AreaCode)>> = vec![Vec::new(); channels.len()];
    for (i, (node, code)) in queue.into_iter().enumerate() {
        per_node[node].push((i, code));
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (node, codes) in per_node.into_iter().enumerate() {
        let (channel, catalogue, cfg, counters, prepared) = (
            channels[node].clone(),
            catalogue.clone(),
            cfg.clone(),
            counters.clone(),
            prepared.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let sent = Arc::new(Mutex::new(std::collections::VecDeque::new()));
            let leaving = sent.clone();
            let outgoing = futures_util::stream::iter(codes).map(move |(i, code)| {
                let r = prepared.report(&catalogue, &cfg, 1, i, code);
                leaving
                    .lock()
                    .expect("not poisoned")
                    .push_back((Instant::now(), values_in(&r)));
                r
            });
            let mut client = pb::report_service_client::ReportServiceClient::new(channel);
            let mut results = client.submit_batch(outgoing).await?.into_inner();
            let mut mine = Vec::new();
            while let Some(res) = results.message().await? {
                let (t, n) = sent
                    .lock()
                    .expect("not poisoned")
                    .pop_front()
                    .ok_or_else(|| anyhow::anyhow!("a result for a report not sent"))?;
                match res.outcome {
                    Some(pb::batch_result::Outcome::Receipt(_)) => {}
                    other => anyhow::bail!("{} refused: {other:?}", res.submission_id),
                }
                mine.push(t.elapsed());
                counters.values.fetch_add(n, Ordering::Relaxed);
                counters.acked.fetch_add(1, Ordering::Relaxed);
            }
            counters
                .latencies
                .lock()
                .expect("not poisoned")
                .extend(mine);
            anyhow::Ok(())
        }));
    }
    finish(tasks, counters, total, started, progress).await
}

/// Waits for the submitting tasks, calling `progress` about once a second; the time since
/// `started` when the last one is done, or the first task's error.
async fn finish(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    counters: &Counters,
    total: u64,
    started: Instant,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<Duration> {
    let all = futures_util::future::try_join_all(tasks);
    tokio::pin!(all);
    let results = loop {
        tokio::select! {
            r = &mut all => break r?,
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                progress(counters.acked.load(Ordering::Relaxed), total);
            }
        }
    };
    let elapsed = started.elapsed();
    for r in results {
        r?;
    }
    Ok(elapsed)
}

fn sorted(m: &Mutex<Vec<Duration>>) -> Vec<Duration> {
    let mut v = std::mem::take(&mut *m.lock().expect("not poisoned"));
    v.sort();
    v
}

/// Runs the ingest benchmark over `areas` in a temporary directory; `progress` is called with
/// the reports acknowledged so far, about once a second.
pub async fn run(
    areas: Areas,
    catalogue: Catalogue,
    cfg: &IngestConfig,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<IngestResult> {
    let tmp = tempfile::tempdir()?;
    let pki = tmp.path().join("pki");
    let (by_province, probe_province, probe_villages, _) = reporters(&areas, cfg)?;
    let auth = issue_certificates(&pki, by_province.keys().copied(), probe_province)?;
    let data = tmp.path().join("hub");
    if let Some(history) = &cfg.history {
        copy_history(history, &data)?;
    }
    let queue = interleaved(&by_province);
    let prepared = Arc::new(Prepared::new(&catalogue, cfg.seed, &queue));
    let catalogue = Arc::new(catalogue);
    let store = cfg
        .store
        .clone()
        .unwrap_or_else(|| StoreAt::new(&data, None));
    let state = HubState::open_on(
        &data,
        store.clone(),
        (*catalogue).clone(),
        areas,
        Clock::System,
        Default::default(),
    )?
    .with_auth(auth);
    let engine = state.engine.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://localhost:{}", listener.local_addr()?.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(pingan_hub::grpc::server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let channels: Vec<Channel> = by_province
        .keys()
        .map(|p| channel(&pki, &url, &format!("node-{p}")))
        .collect::<anyhow::Result<_>>()?;
    let rounds = cfg.rounds.max(1);
    let window = cfg.ping_for / (rounds as u32 + 1);
    let mut pinged = Pinged::default();
    pinged
        .window(&channels, cfg, window, catalogue.fingerprint())
        .await?;

    let phase = Arc::new(Phase::default());
    let freshness = Arc::new(Mutex::new(Vec::new()));
    let probe = spawn_probe(
        channel(&pki, &url, &format!("viewer-{probe_province}"))?,
        channels[0].clone(),
        probe_villages,
        catalogue.clone(),
        cfg.clone(),
        phase.clone(),
        freshness.clone(),
    );
    let rankings = cfg
        .rank_during
        .then(|| spawn_rankings(engine.clone(), cfg.month, phase.clone()));
    let waits_before = engine.lock_waits();
    let counters = Arc::new(Counters::default());
    let (mut elapsed, mut cpu) = (Duration::ZERO, Duration::ZERO);
    let mut scheduled = Scheduled::default();
    let mut round_ratios = Vec::new();
    let numbered: Vec<_> = queue.iter().copied().enumerate().collect();
    let total = numbered.len() as u64;
    for part in numbered.chunks(numbered.len().div_ceil(rounds).max(1)) {
        let reports = ready(&prepared, &catalogue, cfg, part);
        let before = (counters.acked.load(Ordering::Relaxed), process_cpu());
        let threads_before = threads();
        phase.submitting.store(true, Ordering::Relaxed);
        let took = submit_all(reports, &channels, cfg, &counters, |acked, _| {
            progress(acked, total)
        })
        .await?;
        phase.submitting.store(false, Ordering::Relaxed);
        let part_cpu = process_cpu().saturating_sub(before.1);
        cpu += part_cpu;
        let mut part_scheduled = scheduled_since(&threads_before, &threads());
        if cfg.rank_during {
            part_scheduled.rankings_ran = part_cpu.saturating_sub(part_scheduled.ran);
        }
        scheduled += part_scheduled;
        elapsed += took;
        pinged
            .window(&channels, cfg, window, catalogue.fingerprint())
            .await?;
        let rate = (counters.acked.load(Ordering::Relaxed) - before.0) as f64 / took.as_secs_f64();
        let around = &pinged.rates[pinged.rates.len() - 2..];
        round_ratios.push(rate / ((around[0] + around[1]) / 2.0));
    }
    let lock_waits = engine.lock_waits().since(&waits_before);
    phase.done.store(true, Ordering::Relaxed);
    probe.await??;
    let rankings = match rankings {
        Some(r) => r.await??,
        None => Vec::new(),
    };
    let batch = if cfg.batch {
        let next = IngestConfig {
            month: cfg.month.next(),
            ..cfg.clone()
        };
        let batched = Arc::new(Counters::default());
        let elapsed = submit_batches(
            queue,
            &prepared,
            &channels,
            &catalogue,
            &next,
            &batched,
            &mut progress,
        )
        .await?;
        Some(BatchPass {
            reports: batched.acked.load(Ordering::Relaxed),
            values: batched.values.load(Ordering::Relaxed),
            elapsed,
            latencies: sorted(&batched.latencies),
        })
    } else {
        None
    };
    let _ = stop.send(());
    server.await??;
    Ok(IngestResult {
        nodes: channels.len(),
        in_flight: cfg.in_flight,
        reports: counters.acked.load(Ordering::Relaxed),
        values: counters.values.load(Ordering::Relaxed),
        elapsed,
        latencies: sorted(&counters.latencies),
        pings: pinged.pings,
        ping_elapsed: pinged.elapsed,
        ping_latencies: {
            pinged.latencies.sort();
            pinged.latencies
        },
        cpu,
        ping_cpu: pinged.cpu,
        freshness: sorted(&freshness),
        rankings,
        store_bytes: store_bytes(&store, &data)?,
        batch,
        lock_waits,
        scheduled,
        round_ratios,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ingest over the built-in 三台县 extract.
    async fn run_santai(cfg: &IngestConfig) -> IngestResult {
        run(
            pingan_domain::fixtures::santai_areas(),
            Catalogue::builtin(),
            cfg,
            |_, _| {},
        )
        .await
        .expect("the ingest runs")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_report_is_acknowledged_and_measured() {
        let cfg = IngestConfig {
            in_flight: 4,
            limit: Some(120),
            ping_for: Duration::from_millis(200),
            probes: 5,
            ..Default::default()
        };
        let r = run_santai(&cfg).await;
        // five probe villages are taken out of the 120; the probe submits them while the ingest
        // runs (at least the first, which starts before it)
        assert_eq!(r.nodes, 1, "三台县 lies in one province");
        assert_eq!(r.reports, 115);
        assert!(
            (1..=5).contains(&r.freshness.len()),
            "{}",
            r.freshness.len()
        );
        assert_eq!(r.latencies.len() as u64, r.reports);
        // the dataset's 26 metrics; a township's 4 dispute metrics go on its half-monthly form
        assert!(
            r.values <= r.reports * 26 && r.values >= r.reports * 22,
            "{} values in {} reports",
            r.values,
            r.reports
        );
        assert!(r.pings > 0 && r.ping_latencies.len() as u64 == r.pings);
        // the unary pass in four parts, Ping windows around each: a ratio per part
        assert_eq!(r.round_ratios.len(), 4);
        assert!(r.round_ratios.iter().all(|&x| x > 0.0 && x.is_finite()));
        assert!(r.ping_latencies.windows(2).all(|w| w[0] <= w[1]), "sorted");
        assert!(!r.freshness.is_empty());
        assert!(r.store_bytes > 0);
        assert!(r.latencies.windows(2).all(|w| w[0] <= w[1]), "sorted");
        // the same reporters' next month over SubmitBatch: every report acknowledged once
        let batch = r.batch.expect("the batch pass ran");
        assert_eq!(batch.reports, 115);
        assert_eq!(batch.latencies.len(), 115);
        assert!(batch.values <= batch.reports * 26 && batch.values >= batch.reports * 22);
        assert!(batch.reports_per_s() > 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paced_ingest_sends_each_report_at_its_turn() {
        let cfg = IngestConfig {
            in_flight: 4,
            limit: Some(60),
            ping_for: Duration::from_millis(50),
            rounds: 1,
            pace: Some(100.0),
            probes: 0,
            batch: false,
            ..Default::default()
        };
        let r = run_santai(&cfg).await;
        assert_eq!(r.reports, 60);
        // the 60th leaves 0.59 s after the first, however fast the hub answers (a closed loop
        // of 4 in flight takes a fraction of that here)
        assert!(r.elapsed >= Duration::from_millis(590), "{:?}", r.elapsed);
        assert!(r.reports_per_s() <= 102.0, "{}", r.reports_per_s());
        assert_eq!(r.latencies.len(), 60);
        assert!(r.batch.is_none());
    }

    #[test]
    fn a_history_is_copied_without_the_processes_lease_and_shared_memory() {
        let from = tempfile::tempdir().unwrap();
        for (name, body) in [
            ("pingan-hub.db", "store"),
            ("pingan-hub.db-wal", "log"),
            ("pingan-hub.db-shm", "index"),
            ("pingan-hub.lock", "lease"),
            ("rollups.snapshot", "rollups"),
        ] {
            std::fs::write(from.path().join(name), body).unwrap();
        }
        let to = tempfile::tempdir().unwrap();
        let data = to.path().join("hub");
        copy_history(from.path(), &data).unwrap();
        let mut copied: Vec<String> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        copied.sort();
        assert_eq!(
            copied,
            ["pingan-hub.db", "pingan-hub.db-wal", "rollups.snapshot"]
        );
        assert_eq!(
            std::fs::read_to_string(data.join("rollups.snapshot")).unwrap(),
            "rollups"
        );
        let empty = tempfile::tempdir().unwrap();
        let err = copy_history(empty.path(), &to.path().join("other")).unwrap_err();
        assert!(err.to_string().contains("holds no hub data"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ingest_onto_a_hub_with_history_starts_from_a_copy_of_its_store() {
        let areas = pingan_domain::fixtures::santai_areas();
        let month = Period::Month {
            year: 2026,
            month: 9,
        };
        // a hub holding September's 400 reports: the first ingest's store, kept
        let kept = tempfile::tempdir().unwrap();
        let first = IngestConfig {
            month,
            in_flight: 4,
            limit: Some(400),
            ping_for: Duration::from_millis(100),
            probes: 0,
            batch: false,
            store: Some(StoreAt::new(kept.path(), None)),
            ..Default::default()
        };
        let r = run(areas.clone(), Catalogue::builtin(), &first, |_, _| {})
            .await
            .expect("the first ingest runs");
        assert_eq!(r.reports, 400);
        // ten reports of October, onto a copy of it and onto an empty hub
        let october = |history: Option<&Path>| IngestConfig {
            month: month.next(),
            limit: Some(10),
            store: None,
            history: history.map(Path::to_owned),
            ..first.clone()
        };
        let onto_history = run(
            areas.clone(),
            Catalogue::builtin(),
            &october(Some(kept.path())),
            |_, _| {},
        )
        .await
        .expect("the ingest onto the history runs");
        let onto_nothing = run(areas, Catalogue::builtin(), &october(None), |_, _| {})
            .await
            .expect("the ingest onto an empty hub runs");
        assert_eq!((onto_history.reports, onto_nothing.reports), (10, 10));
        // the copy holds September's 400 reports besides October's ten
        assert!(
            onto_history.store_bytes > onto_nothing.store_bytes + 20_000,
            "{} bytes with the history, {} without",
            onto_history.store_bytes,
            onto_nothing.store_bytes
        );
    }
}
