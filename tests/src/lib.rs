//! Helpers for pingan's integration tests: [`TestHub`] (a real hub server on loopback, port 0,
//! temporary store, shutdown handle), the real binaries ([`bin`]) run as [`Proc`]esses that are
//! killed when the test ends however it ends, report builders and polling with a deadline
//! instead of sleeps.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, OnceLock},
    time::Duration,
};

use chrono::TimeZone as _;
use pingan_domain::{Catalogue, fixtures, pb};
use pingan_hub::{
    Clock, HubState,
    clock::beijing,
    grpc::server,
    query::{Engine, QueryError},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// The date the tests' hubs believe it is: 2026-11-22 10:00 北京时间.
pub fn test_clock() -> Clock {
    Clock::manual(
        beijing()
            .with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .single()
            .expect("valid"),
    )
}

/// A hub serving on loopback.
#[derive(Debug)]
pub struct TestHub {
    pub addr: SocketAddr,
    pub url: String,
    pub data: PathBuf,
    pub state: HubState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _tmp: Option<Arc<tempfile::TempDir>>,
}

impl TestHub {
    /// A hub on a new temporary store, on `127.0.0.1:0`, with the test clock.
    pub async fn start() -> TestHub {
        let tmp = Arc::new(tempfile::tempdir().expect("temp dir"));
        let data = tmp.path().join("hub");
        let mut hub = TestHub::start_in(&data).await;
        hub._tmp = Some(tmp);
        hub
    }

    /// A hub on the store in `data` (kept after the hub stops).
    pub async fn start_in(data: &Path) -> TestHub {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        TestHub::start_on(listener, data, test_clock()).await
    }

    /// A hub serving an already bound listener.
    pub async fn start_on(listener: TcpListener, data: &Path, clock: Clock) -> TestHub {
        TestHub::start_with(listener, data, clock, fixtures::santai_areas()).await
    }

    /// A hub over any registry.
    pub async fn start_with(
        listener: TcpListener,
        data: &Path,
        clock: Clock,
        areas: pingan_domain::Areas,
    ) -> TestHub {
        TestHub::start_on_store(listener, data, store_for(data), clock, areas).await
    }

    /// A hub whose store is `store` (several hubs on one PostgreSQL database, say).
    pub async fn start_on_store(
        listener: TcpListener,
        data: &Path,
        store: pingan_hub::store::StoreAt,
        clock: Clock,
        areas: pingan_domain::Areas,
    ) -> TestHub {
        TestHub::start_with_catalogue(listener, data, store, clock, areas, Catalogue::builtin())
            .await
    }

    /// A hub of another catalogue than the built-in one.
    pub async fn start_with_catalogue(
        listener: TcpListener,
        data: &Path,
        store: pingan_hub::store::StoreAt,
        clock: Clock,
        areas: pingan_domain::Areas,
        catalogue: Catalogue,
    ) -> TestHub {
        let state = HubState::open_on(data, store, catalogue, areas, clock, Default::default())
            .expect("open hub");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        let url = format!("http://{addr}");
        wait_until(Duration::from_secs(10), || async {
            pb::report_service_client::ReportServiceClient::connect(url.clone())
                .await
                .is_ok()
        })
        .await;
        TestHub {
            addr,
            url,
            data: data.to_owned(),
            state,
            stop: Some(stop),
            task: Some(task),
            _tmp: None,
        }
    }

    /// A client of the report service.
    pub async fn client(
        &self,
    ) -> pb::report_service_client::ReportServiceClient<tonic::transport::Channel> {
        pb::report_service_client::ReportServiceClient::connect(self.url.clone())
            .await
            .expect("connect to test hub")
    }

    /// Graceful shutdown: in-flight requests finish, the store closes. Keeps the data directory
    /// alive as long as the returned guard lives.
    pub async fn stop(mut self) -> Option<Arc<tempfile::TempDir>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("hub task")
                .expect("hub served without error");
        }
        self._tmp.take()
    }

    /// Every stored revision, in store order (what the plain reference is built from).
    pub fn all_revisions(&self) -> Vec<pingan_hub::store::RevisionRecord> {
        let mut all = Vec::new();
        self.state
            .store
            .reader()
            .expect("store reader")
            .for_each_revision(|r| all.push(r))
            .expect("read revisions");
        all
    }

    /// The current revision of (area, period), if any.
    pub fn current(&self, area: &str, period: &str) -> Option<pingan_hub::store::RevisionRecord> {
        self.state
            .store
            .reader()
            .expect("reader")
            .current(
                area.parse().expect("area code"),
                period.parse().expect("period"),
            )
            .expect("read")
    }

    /// Number of stored revisions.
    pub fn revision_count(&self) -> u64 {
        self.state
            .store
            .reader()
            .expect("reader")
            .revision_count()
            .expect("count")
    }
}

/// A metric value with a total.
pub fn value(metric: &str, total: i64) -> pb::MetricValue {
    pb::MetricValue {
        metric: metric.into(),
        total: Some(total),
        parts: Default::default(),
    }
}

/// A report with a fresh submission id.
pub fn report(area: &str, period: &str, values: Vec<pb::MetricValue>) -> pb::Report {
    pb::Report {
        submission_id: pingan_node::new_submission_id(),
        area: area.into(),
        period: period.into(),
        values,
        reporter: "test".into(),
        ..Default::default()
    }
}

/// Polls `cond` until it holds; panics after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The store of the test hub whose data directory is `data`: SQLite in it, or, when
/// `PINGAN_TEST_POSTGRES` names a PostgreSQL server, a database of its own there (the same
/// one whenever this directory is opened again: a restart finds what it stored).
pub fn store_for(data: &Path) -> pingan_hub::store::StoreAt {
    let mut stores = STORES.lock().expect("not poisoned");
    stores
        .get_or_insert_with(Default::default)
        .entry(data.to_owned())
        .or_insert_with(|| {
            pingan_hub::store::StoreAt::fresh_test_database()
                .unwrap_or_else(|| pingan_hub::store::StoreAt::new(data, None))
        })
        .clone()
}

/// The stores [`store_for`] gave, by data directory.
static STORES: std::sync::Mutex<
    Option<std::collections::HashMap<PathBuf, pingan_hub::store::StoreAt>>,
> = std::sync::Mutex::new(None);

/// Makes `store` the store of the hub whose data directory is `data` (a database a test made).
pub fn set_store_for(data: &Path, store: pingan_hub::store::StoreAt) {
    STORES
        .lock()
        .expect("not poisoned")
        .get_or_insert_with(Default::default)
        .insert(data.to_owned(), store);
}

/// The environment a `pingan-hub` command on `data` needs to use [`store_for`]'s store:
/// `PINGAN_HUB_STORE` when it is a PostgreSQL database.
pub fn store_env(data: &Path) -> Vec<(&'static str, String)> {
    match store_for(data) {
        pingan_hub::store::StoreAt::Postgres(url) => vec![("PINGAN_HUB_STORE", url)],
        pingan_hub::store::StoreAt::Sqlite(_) => Vec::new(),
    }
}

/// A reader of the store of the hub whose data directory is `data` ([`store_for`]).
pub fn reader_for(data: &Path) -> pingan_hub::store::StoreReader {
    pingan_hub::store::StoreReader::open_at(&store_for(data)).expect("open the store to read")
}

/// Path of a real binary of this workspace (`pingan-node`, `pingan-hub`), built once per test
/// process in the profile the tests run in, so a crash or restart test runs what users run.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // target/<profile>/deps/<test binary>
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>")
            .to_owned();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "pingan-node",
            "-p",
            "pingan-hub",
            "--bins",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
        profile_dir
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Runs the real `pingan-hub ARGS --data DATA` with `stdin` as its standard input (a password,
/// say), as an administrator would; its output, whatever its exit status.
pub fn hub_with_stdin(args: &[&str], data: &Path, stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(bin("pingan-hub"))
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pingan-hub");
    let written = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    if let Err(e) = written {
        let _ = child.kill();
        let _ = child.wait();
        panic!("writing pingan-hub's standard input: {e}");
    }
    child.wait_with_output().expect("pingan-hub output")
}

/// `pingan-node ARGS --outbox OUTBOX`, as a clerk runs it, off the async threads.
pub async fn node(outbox: &Path, args: &[&str]) -> std::process::Output {
    let (outbox, args): (PathBuf, Vec<String>) = (
        outbox.to_owned(),
        args.iter().map(|a| a.to_string()).collect(),
    );
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin("pingan-node"))
            .args(&args)
            .arg("--outbox")
            .arg(&outbox)
            .env("RUST_LOG", "error")
            .output()
            .expect("run pingan-node")
    })
    .await
    .expect("join")
}

/// Random plausible values for one report of `area` for `period`: about half the metrics its
/// form asks, small numbers (so zero denominators and ties are common), the catalogue's hard
/// rules kept, and sometimes a breakdown of disputes by type (with or without its total) and of
/// grid workers (a stock) by 专职/兼职.
pub fn random_values(
    rng: &mut rand::rngs::StdRng,
    catalogue: &Catalogue,
    area: &str,
    period: &str,
) -> Vec<pb::MetricValue> {
    use rand::Rng as _;
    let level = area
        .parse::<pingan_domain::AreaCode>()
        .expect("area")
        .level();
    let kind = period
        .parse::<pingan_domain::Period>()
        .expect("period")
        .kind();
    let form = catalogue
        .form_for(level, kind)
        .expect("a form for the level and period");
    let asked: Vec<String> = form.metrics_for(level).map(|m| m.to_string()).collect();
    let mut vals: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for m in &asked {
        if rng.random_bool(0.55) {
            // small numbers make zero denominators and ties common
            vals.insert(m.clone(), rng.random_range(0..6));
        }
    }
    // the catalogue's hard rules kept: a value beyond its bound is set to the bound
    for rule in catalogue.rules() {
        if rule.severity != pingan_domain::catalogue::Severity::Hard {
            continue;
        }
        let (a, b) = (rule.metric.as_str(), rule.other.as_str());
        if let (Some(&x), Some(&y)) = (vals.get(a), vals.get(b)) {
            let bound = rule.factor * y;
            let ok = match rule.op {
                pingan_domain::catalogue::RuleOp::Le => x <= bound,
                pingan_domain::catalogue::RuleOp::Ge => x >= bound,
            };
            if !ok {
                vals.insert(a.into(), bound);
            }
        }
    }
    // a hard rule's bounded side comes with its bound (the validator requires it)
    for rule in catalogue.rules() {
        if rule.severity != pingan_domain::catalogue::Severity::Hard {
            continue;
        }
        let (a, b) = (rule.metric.to_string(), rule.other.to_string());
        match rule.op {
            pingan_domain::catalogue::RuleOp::Le => {
                if let Some(&x) = vals.get(&a) {
                    vals.entry(b).or_insert(x);
                }
            }
            pingan_domain::catalogue::RuleOp::Ge => {
                if let Some(&y) = vals.get(&b) {
                    vals.entry(a).or_insert(rule.factor * y);
                }
            }
        }
    }
    vals.retain(|m, _| asked.contains(m));
    let mut out: Vec<pb::MetricValue> = vals.into_iter().map(|(m, v)| value(&m, v)).collect();
    if asked.iter().any(|m| m == "grid.workers") && rng.random_bool(0.3) {
        let (a, b) = (rng.random_range(0..4), rng.random_range(0..4));
        out.retain(|v| v.metric != "grid.workers");
        out.push(pb::MetricValue {
            metric: "grid.workers".into(),
            total: None,
            parts: [("专职".to_string(), a), ("兼职".to_string(), b)]
                .into_iter()
                .collect(),
        });
    }
    if asked.iter().any(|m| m == "disputes.identified") && rng.random_bool(0.4) {
        let a = rng.random_range(0..4);
        let b = rng.random_range(0..4);
        let given_total = rng.random_bool(0.5);
        out.retain(|v| v.metric != "disputes.identified");
        out.push(pb::MetricValue {
            metric: "disputes.identified".into(),
            total: given_total.then_some(a + b),
            parts: [("劳动争议".to_string(), a), ("医患".to_string(), b)]
                .into_iter()
                .collect(),
        });
    }
    out
}

/// `metric`'s rollup total for `area` over `period`, asked over gRPC of the hub at `url` the
/// way a dashboard asks (nothing when no report counts).
pub async fn rollup_total(url: &str, area: &str, period: &str, metric: &str) -> Option<i64> {
    let mut q = pb::query_service_client::QueryServiceClient::connect(url.to_owned())
        .await
        .unwrap();
    q.rollup(pb::RollupRequest {
        area: area.into(),
        period: period.into(),
        metrics: vec![metric.into()],
        by_category: false,
        approved_only: false,
    })
    .await
    .unwrap()
    .into_inner()
    .figures[0]
        .total
}

pub mod process;
pub mod reference;

pub use process::Proc;

/// A deployment's certificates in a temporary directory: a CA, the hub's certificate, and
/// certificates issued on demand.
#[derive(Debug)]
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    /// A new CA and a hub certificate for localhost and 127.0.0.1.
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        pingan_hub::access::tls::certs::init(dir.path()).expect("CA");
        let pki = Pki { dir };
        pki.issue(pingan_hub::access::tls::Role::Hub, "510722");
        pki
    }

    /// Issues `ROLE-AREA.pem/.key`, valid now for 30 days; returns its serial.
    pub fn issue(&self, role: pingan_hub::access::tls::Role, area: &str) -> String {
        let req = pingan_hub::access::tls::certs::IssueRequest::valid_for_days(
            role,
            area.parse().expect("area"),
            30,
        );
        pingan_hub::access::tls::certs::issue(self.dir.path(), &req)
            .expect("issue")
            .2
            .serial
    }

    /// Issues `node-ID.pem/.key` for department `id` of `area` (`pingan://node/AREA/ID`),
    /// valid now for 30 days; returns its serial.
    pub fn issue_department(&self, area: &str, id: &str) -> String {
        let mut req = pingan_hub::access::tls::certs::IssueRequest::valid_for_days(
            pingan_hub::access::tls::Role::Node,
            area.parse().expect("area"),
            30,
        );
        req.department = Some(id.to_owned());
        pingan_hub::access::tls::certs::issue(self.dir.path(), &req)
            .expect("issue")
            .2
            .serial
    }

    /// Issues a second certificate for the same identity over the first one's files (a
    /// replacement, or an impostor); returns its serial.
    pub fn reissue(&self, role: pingan_hub::access::tls::Role, area: &str) -> String {
        let read = |n: &str| std::fs::read_to_string(self.path(n)).expect("CA file");
        let req = pingan_hub::access::tls::certs::IssueRequest::valid_for_days(
            role,
            area.parse().expect("area"),
            30,
        );
        let issued =
            pingan_hub::access::tls::certs::issue_with(&read("ca.pem"), &read("ca.key"), &req)
                .expect("issue");
        std::fs::write(self.path(&format!("{}.pem", req.stem())), &issued.cert_pem).expect("write");
        std::fs::write(self.path(&format!("{}.key", req.stem())), &issued.key_pem).expect("write");
        issued.serial
    }

    /// Path of a file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The hub's TLS files, with a deny list path (the file may not exist yet).
    pub fn hub_files(&self) -> pingan_hub::access::tls::TlsFiles {
        self.hub_files_for("510722")
    }

    /// The TLS files of the hub certificate for `area` (issue it first).
    pub fn hub_files_for(&self, area: &str) -> pingan_hub::access::tls::TlsFiles {
        pingan_hub::access::tls::TlsFiles {
            ca: self.path("ca.pem"),
            cert: self.path(&format!("hub-{area}.pem")),
            key: self.path(&format!("hub-{area}.key")),
            deny_list: Some(self.path("deny-list.txt")),
        }
    }

    /// Client TLS for the certificate `stem` (e.g. `node-510722101002`).
    pub fn client(&self, stem: &str) -> tonic::transport::ClientTlsConfig {
        let read = |n: String| std::fs::read(self.path(&n)).expect("cert file");
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(read(
                "ca.pem".into(),
            )))
            .identity(tonic::transport::Identity::from_pem(
                read(format!("{stem}.pem")),
                read(format!("{stem}.key")),
            ))
    }
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

impl TestHub {
    /// A hub serving mutual TLS with these grants, on a new temporary store.
    pub async fn start_mtls(pki: &Pki, grants: Vec<pingan_hub::access::authz::Grant>) -> TestHub {
        TestHub::start_mtls_as(pki, "510722", fixtures::santai_areas(), grants).await
    }

    /// A hub serving mutual TLS as the hub certificate for `area`, over `areas`.
    pub async fn start_mtls_as(
        pki: &Pki,
        area: &str,
        areas: pingan_domain::Areas,
        grants: Vec<pingan_hub::access::authz::Grant>,
    ) -> TestHub {
        let tmp = Arc::new(tempfile::tempdir().expect("temp dir"));
        let data = tmp.path().join("hub");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let tls =
            pingan_hub::access::tls::ServerTls::load(pki.hub_files_for(area)).expect("hub TLS");
        let state = HubState::open_on(
            &data,
            store_for(&data),
            Catalogue::builtin(),
            areas,
            test_clock(),
            Default::default(),
        )
        .expect("open hub")
        .with_auth(pingan_hub::access::authz::Authorizer::mtls(tls, grants));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        TestHub {
            addr,
            url: format!("https://localhost:{}", addr.port()),
            data,
            state,
            stop: Some(stop),
            task: Some(task),
            _tmp: Some(tmp),
        }
    }

    /// A hub over `areas` taking these departments' (条) reports, on a new temporary store
    /// with the test clock: mutual TLS as the hub certificate for `hub_area` when `pki` is
    /// given, plaintext otherwise.
    pub async fn start_departments(
        areas: pingan_domain::Areas,
        departments: pingan_domain::department::Departments,
        pki: Option<(&Pki, &str)>,
    ) -> TestHub {
        let tmp = Arc::new(tempfile::tempdir().expect("temp dir"));
        let data = tmp.path().join("hub");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let mut state = HubState::open_on(
            &data,
            store_for(&data),
            Catalogue::builtin(),
            areas,
            test_clock(),
            Default::default(),
        )
        .expect("open hub")
        .with_departments(departments);
        let url = match pki {
            Some((pki, area)) => {
                let tls = pingan_hub::access::tls::ServerTls::load(pki.hub_files_for(area))
                    .expect("hub TLS");
                state = state.with_auth(pingan_hub::access::authz::Authorizer::mtls(tls, vec![]));
                format!("https://localhost:{}", addr.port())
            }
            None => format!("http://{addr}"),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        TestHub {
            addr,
            url,
            data,
            state,
            stop: Some(stop),
            task: Some(task),
            _tmp: Some(tmp),
        }
    }

    /// A plaintext hub over `areas` on a new temporary store, with the test clock.
    pub async fn start_areas(areas: pingan_domain::Areas) -> TestHub {
        let tmp = Arc::new(tempfile::tempdir().expect("temp dir"));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let mut hub =
            TestHub::start_with(listener, &tmp.path().join("hub"), test_clock(), areas).await;
        hub._tmp = Some(tmp);
        hub
    }

    /// Starts forwarding this hub's rollups of `root` at `depth` to the hub at `parent_url`,
    /// as the hub certificate for `root` from `pki`, retrying at least every second.
    pub fn forward_to(
        &self,
        parent_url: &str,
        pki: &Pki,
        root: &str,
        depth: pingan_domain::Level,
    ) -> pingan_hub::federation::forward::Forwarder {
        self.forward_figures_to(
            parent_url,
            pki,
            root,
            depth,
            pingan_domain::question::Figures::Current,
        )
    }

    /// [`TestHub::forward_to`], forwarding these figures (`--forward-approved-only`).
    pub fn forward_figures_to(
        &self,
        parent_url: &str,
        pki: &Pki,
        root: &str,
        depth: pingan_domain::Level,
        figures: pingan_domain::question::Figures,
    ) -> pingan_hub::federation::forward::Forwarder {
        use pingan_hub::store::lease::{Duty, Lease};
        self.forward_while(
            parent_url,
            pki,
            root,
            depth,
            figures,
            Lease::always(Duty::Forwarding),
        )
    }

    /// [`TestHub::forward_figures_to`] while `lease` is held (several hub processes on one
    /// store: the database lets one forward at a time).
    pub fn forward_while(
        &self,
        parent_url: &str,
        pki: &Pki,
        root: &str,
        depth: pingan_domain::Level,
        figures: pingan_domain::question::Figures,
        lease: pingan_hub::store::lease::Lease,
    ) -> pingan_hub::federation::forward::Forwarder {
        let cfg = pingan_hub::federation::forward::ForwardConfig {
            parent: parent_url.to_owned(),
            plan: pingan_hub::federation::forward::Plan::new(root.parse().expect("area"), depth)
                .expect("plan")
                .with_figures(figures),
            tls: Some(pki.client(&format!("hub-{root}"))),
            dir: self.data.join("forward"),
            sweep_every: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(1),
        };
        pingan_hub::federation::forward::start(
            self.state.forwarding(),
            cfg,
            lease,
            pingan_outbox::CancellationToken::new(),
        )
        .expect("start forwarding")
    }

    /// A TLS channel to this hub with a client certificate (connects lazily).
    pub fn channel(&self, tls: tonic::transport::ClientTlsConfig) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(self.url.clone())
            .expect("url")
            .tls_config(tls)
            .expect("tls")
            .timeout(Duration::from_secs(10))
            .connect_lazy()
    }
}

/// The real `pingan-hub serve --insecure` binary on a fixed loopback port, so that clients keep
/// one address across kills and restarts.
#[derive(Debug)]
pub struct HubProcess {
    pub url: String,
    pub port: u16,
    pub data: PathBuf,
    child: Option<Proc>,
}

impl HubProcess {
    /// A free loopback port (bound, then released for the hub to take).
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port()
    }

    /// Starts the hub on `data` and `port` and returns once it listens.
    pub fn start(data: &Path, port: u16) -> HubProcess {
        let mut hub = HubProcess {
            url: format!("http://127.0.0.1:{port}"),
            port,
            data: data.to_owned(),
            child: None,
        };
        hub.restart();
        hub
    }

    /// Starts the hub again on the same store and port (after [`HubProcess::kill`]).
    pub fn restart(&mut self) {
        use std::io::BufRead as _;
        assert!(self.child.is_none(), "the hub is still running");
        // the port may still be held for a moment by the killed process's socket
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Proc::spawn(
                Command::new(bin("pingan-hub"))
                    .args(["serve", "--insecure", "--listen"])
                    .arg(format!("127.0.0.1:{}", self.port))
                    .arg("--data")
                    .arg(&self.data)
                    .envs(store_env(&self.data))
                    .env("RUST_LOG", "error")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::inherit()),
            );
            let mut line = String::new();
            std::io::BufReader::new(child.take_stdout().expect("stdout"))
                .read_line(&mut line)
                .expect("read the hub's first line");
            if line.starts_with("pingan-hub listening on ") {
                self.child = Some(child);
                return;
            }
            let status = child.wait_for(Duration::from_secs(30));
            assert!(
                std::time::Instant::now() < deadline,
                "pingan-hub did not start: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// The running hub's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Proc::id)
    }
}

/// The real `pingan-hub serve`, started as a user starts it, on ports the system picks.
#[derive(Debug)]
pub struct ServedHub {
    pub process: Proc,
    /// The gRPC address, `127.0.0.1:PORT`.
    pub grpc: String,
    /// The dashboard's URL (`https://...` or `http://...`), when `--web-listen` was given.
    pub web: Option<String>,
}

impl ServedHub {
    /// `pingan-hub serve --listen 127.0.0.1:0 ARGS` (with `--web-listen 127.0.0.1:0` among
    /// `ARGS` for the dashboard); returns once it listens.
    pub fn start<I, S>(args: I) -> ServedHub
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        use std::io::BufRead as _;
        let args: Vec<std::ffi::OsString> =
            args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let dashboard = args.iter().any(|a| a == "--web-listen");
        let mut process = Proc::spawn(
            Command::new(bin("pingan-hub"))
                .args(["serve", "--listen", "127.0.0.1:0"])
                .args(&args)
                .env("RUST_LOG", "error")
                .stdout(std::process::Stdio::piped()),
        );
        let mut lines = std::io::BufReader::new(process.take_stdout().expect("stdout")).lines();
        let mut next = |prefix: &str| {
            let line = lines
                .next()
                .expect("the hub printed a line")
                .expect("read the hub's output");
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("expected {prefix:?}, the hub printed {line:?}"))
                .to_owned()
        };
        let grpc = next("pingan-hub listening on ");
        let web = dashboard.then(|| next("pingan-hub dashboard on "));
        ServedHub { process, grpc, web }
    }

    /// The gRPC port.
    pub fn port(&self) -> &str {
        self.grpc.rsplit(':').next().expect("host:port")
    }
}

/// A process's resident set size now and at its peak (VmRSS, VmHWM), in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The engine asked with wire requests and answering wire replies, converted as the gRPC front
/// door converts them: the tests that asked the engine directly before it took typed questions
/// and gave domain answers ask and read the same way.
pub trait AskWire {
    fn ask_rollup(&self, r: &pb::RollupRequest) -> Result<pb::RollupReply, QueryError>;
    fn ask_compare(&self, r: &pb::CompareRequest) -> Result<pb::CompareReply, QueryError>;
    fn ask_trend(&self, r: &pb::TrendRequest) -> Result<pb::TrendReply, QueryError>;
    fn ask_completeness(
        &self,
        r: &pb::CompletenessRequest,
    ) -> Result<pb::CompletenessReply, QueryError>;
}

impl AskWire for Engine {
    fn ask_rollup(&self, r: &pb::RollupRequest) -> Result<pb::RollupReply, QueryError> {
        self.rollup(&r.try_into()?).map(Into::into)
    }
    fn ask_compare(&self, r: &pb::CompareRequest) -> Result<pb::CompareReply, QueryError> {
        self.compare(&r.try_into()?).map(Into::into)
    }
    fn ask_trend(&self, r: &pb::TrendRequest) -> Result<pb::TrendReply, QueryError> {
        let q: pingan_domain::question::TrendQuery = r.try_into()?;
        self.trend(&q)
            .map(|a| pingan_domain::trend_columns::trend_reply(a, q.as_columns))
    }
    fn ask_completeness(
        &self,
        r: &pb::CompletenessRequest,
    ) -> Result<pb::CompletenessReply, QueryError> {
        self.completeness(&r.try_into()?).map(Into::into)
    }
}

/// How the test's webhook answers each request, in order (the last one repeats).
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    /// 200 with `{"errcode":0}`, as the robots answer.
    Ok,
    /// 500.
    Fail,
    /// Never answers.
    Hang,
}

/// A local HTTP server standing in for a group robot (企业微信, 钉钉): its URL, and every JSON
/// body it receives.
pub async fn webhook(
    script: Vec<Reply>,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/cgi-bin/webhook/send?key=test",
        listener.local_addr().unwrap()
    );
    let got: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
    let seen = got.clone();
    tokio::spawn(async move {
        let mut n = 0usize;
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let reply = script[n.min(script.len() - 1)];
            n += 1;
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let k = tokio::io::AsyncReadExt::read(&mut tcp, &mut chunk)
                        .await
                        .unwrap_or(0);
                    if k == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..k]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break body.to_owned();
                        }
                    }
                };
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                let answer = match reply {
                    Reply::Ok => {
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 27\r\n\r\n{\"errcode\":0,\"errmsg\":\"ok\"}"
                    }
                    Reply::Fail => {
                        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops"
                    }
                    Reply::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                };
                let _ = tokio::io::AsyncWriteExt::write_all(&mut tcp, answer.as_bytes()).await;
            });
        }
    });
    (url, got)
}
