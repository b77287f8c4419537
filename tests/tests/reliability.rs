//! Reliability: under crashes, outages, duplicates and bad input, nothing acked is lost or
//! counted twice. The quick versions run in the normal suite; `scripts/reliability` runs the
//! long ones (more kills, a bigger backlog) through the same tests, sized by environment
//! variables.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use pingan_domain::{AreaCode, Catalogue, Level, MetricKind, fixtures, pb};
use pingan_outbox::Outbox;
use pingan_tests::{
    AskWire, HubProcess, Proc, TestHub, bin, random_values, report, rss_kib, value, wait_until,
};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use tonic::{Code, transport::Channel};

/// A size from the environment (the long runs), or the quick default.
fn sized(var: &str, quick: usize) -> usize {
    match std::env::var(var) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{var} must be a number, not {v:?}")),
        Err(_) => quick,
    }
}

fn seed() -> u64 {
    sized("PINGAN_SEED", 20261123) as u64
}

/// Santai's villages, the areas the simulated nodes report for.
fn villages() -> Vec<AreaCode> {
    fixtures::santai_areas().descendants_at(fixtures::santai(), Level::Village)
}

/// The 24 months up to 2026-10, newest first.
fn months() -> Vec<String> {
    let mut out = Vec::new();
    let (mut y, mut m) = (2026, 10);
    for _ in 0..24 {
        out.push(format!("{y}-{m:02}"));
        (y, m) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    }
    out
}

fn lazy_client(url: &str) -> pb::report_service_client::ReportServiceClient<Channel> {
    let channel = Channel::from_shared(url.to_owned())
        .expect("url")
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(20))
        .connect_lazy();
    pb::report_service_client::ReportServiceClient::new(channel)
}

/// Submits until the hub acks, the way a node retries: the same submission id every time, a new
/// connection after every failure. Anything but "the hub is not there" is a test failure.
async fn submit_until_acked(url: &str, r: &pb::Report) -> pb::Receipt {
    loop {
        match lazy_client(url).submit(r.clone()).await {
            Ok(receipt) => return receipt.into_inner(),
            Err(s)
                if matches!(
                    s.code(),
                    Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded
                ) =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => panic!("the hub refused a valid report {}: {s}", r.submission_id),
        }
    }
}

/// A report's value of a metric, read plainly: the total, or the sum of the parts; zero for a
/// count in a zero report.
/// A report's figure; a zero report's is 0 for the count metrics its form (`asked`) has.
fn plain_value(r: &pb::Report, metric: &str, kind: MetricKind, asked: bool) -> Option<i64> {
    match r.values.iter().find(|v| v.metric == metric) {
        Some(v) => Some(v.total.unwrap_or_else(|| v.parts.values().sum())),
        None => (r.zero_report && asked && kind == MetricKind::Count).then_some(0),
    }
}

/// One key's acked submissions, in the order the load generator sent them.
type Truth = BTreeMap<(String, String), Vec<(pb::Report, pb::Receipt)>>;

/// Checks a hub's rollups of every township and the county, for every period in `truth`,
/// against sums over the last acked report of each village.
async fn check_rollups_against(truth: &Truth, url: &str) -> usize {
    let catalogue = Catalogue::builtin();
    let areas = fixtures::santai_areas();
    let mut targets = vec![fixtures::santai()];
    targets.extend(areas.descendants_at(fixtures::santai(), Level::Township));
    let periods: std::collections::BTreeSet<&String> = truth.keys().map(|(_, p)| p).collect();
    let channel = Channel::from_shared(url.to_owned())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut queries = pb::query_service_client::QueryServiceClient::new(channel);
    let mut checked = 0;
    for period in periods {
        for area in &targets {
            let reply = queries
                .rollup(pb::RollupRequest {
                    area: area.to_string(),
                    period: period.clone(),
                    ..Default::default()
                })
                .await
                .expect("rollup")
                .into_inner();
            let latest: Vec<&pb::Report> = truth
                .iter()
                .filter(|((a, p), _)| {
                    p == period && a.parse::<AreaCode>().unwrap().is_within(*area)
                })
                .map(|(_, subs)| &subs.last().expect("at least one").0)
                .collect();
            for m in catalogue.metrics() {
                // the reports are villages' monthly ones
                let asked = catalogue.default_form().asks(Level::Village, &m.id);
                let expected = latest
                    .iter()
                    .filter_map(|r| plain_value(r, m.id.as_str(), m.kind, asked))
                    .fold(None, |acc: Option<i64>, v| Some(acc.unwrap_or(0) + v));
                let got = reply
                    .figures
                    .iter()
                    .find(|f| f.metric == m.id.as_str())
                    .and_then(|f| f.total);
                assert_eq!(got, expected, "{area} {period} {}", m.id);
                checked += 1;
            }
            let completeness = reply.completeness.expect("completeness");
            assert_eq!(
                completeness.received,
                latest.len() as u64,
                "{area} {period}: villages reported"
            );
        }
    }
    checked
}

/// Every key's stored revisions are exactly the acked submissions, in order: nothing lost,
/// nothing twice.
fn check_store_against(truth: &Truth, data: &std::path::Path) -> usize {
    let reader = pingan_tests::reader_for(data);
    let mut stored = 0;
    for ((area, period), subs) in truth {
        let revisions = reader
            .revisions(area.parse().unwrap(), period.parse().unwrap())
            .unwrap();
        let ids: Vec<&str> = revisions.iter().map(|r| r.submission_id.as_str()).collect();
        let sent: Vec<&str> = subs.iter().map(|(r, _)| r.submission_id.as_str()).collect();
        assert_eq!(ids, sent, "{area} {period}: stored revisions");
        for (rev, (r, receipt)) in revisions.iter().zip(subs) {
            assert_eq!(rev.revision, receipt.revision);
            assert_eq!(rev.zero_report, r.zero_report);
        }
        stored += revisions.len();
    }
    assert_eq!(
        reader.revision_count().unwrap() as usize,
        stored,
        "no revision the load generator did not send"
    );
    stored
}

/// Crash conservation: the real hub is SIGKILLed at random moments during heavy ingest and
/// restarted, `PINGAN_CRASH_KILLS` times (5 here; `scripts/reliability` runs 60). Afterwards
/// every acked report is stored once, in order, and the rollups equal the load generator's own
/// sums.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hub_killed_again_and_again_during_ingest_loses_and_doubles_nothing() {
    let kills = sized("PINGAN_CRASH_KILLS", 5);
    let workers = 16;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let port = HubProcess::free_port();
    let mut hub = tokio::task::spawn_blocking({
        let data = data.clone();
        move || HubProcess::start(&data, port)
    })
    .await
    .unwrap();
    let url = hub.url.clone();

    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let villages = villages();
    let months = months();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let keys: Vec<(String, String)> = months
            .iter()
            .flat_map(|m| villages.iter().map(move |v| (v.to_string(), m.clone())))
            .skip(w)
            .step_by(workers)
            .collect();
        let (url, stop, acks) = (url.clone(), stop.clone(), acks.clone());
        tasks.push(tokio::spawn(async move {
            let catalogue = Catalogue::builtin();
            let mut rng = StdRng::seed_from_u64(seed() + w as u64);
            let mut truth = Truth::new();
            for (area, period) in keys {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                // a report and sometimes corrections, each only after the one before was acked
                for i in 0..rng.random_range(1..=3u32) {
                    let mut r = report(
                        &area,
                        &period,
                        random_values(&mut rng, &catalogue, &area, &period),
                    );
                    if rng.random_bool(0.1) {
                        r.values.clear();
                        r.zero_report = true;
                    }
                    let receipt = submit_until_acked(&url, &r).await;
                    assert_eq!(receipt.revision, i + 1, "{area} {period}");
                    acks.fetch_add(1, Ordering::SeqCst);
                    truth
                        .entry((area.clone(), period.clone()))
                        .or_default()
                        .push((r, receipt));
                }
            }
            truth
        }));
    }

    // the killer: each kill lands once this hub has acked reports since it started (so ingest is
    // under way, not over), at a random moment after that; then a restart on the same store
    let mut rng = StdRng::seed_from_u64(seed());
    let acked_since = |from: u64, more: u64| {
        let acks = acks.clone();
        async move {
            wait_until(Duration::from_secs(120), || async {
                acks.load(Ordering::SeqCst) >= from + more
            })
            .await;
        }
    };
    for k in 0..kills {
        let at_start = acks.load(Ordering::SeqCst);
        acked_since(at_start, rng.random_range(1..200)).await;
        assert!(
            tasks.iter().any(|t| !t.is_finished()),
            "the load ran out before kill {}: make it larger",
            k + 1
        );
        hub = tokio::task::spawn_blocking(move || {
            hub.kill();
            hub.restart();
            hub
        })
        .await
        .unwrap();
        if (k + 1) % 10 == 0 {
            eprintln!("{} kills, {} acks", k + 1, acks.load(Ordering::SeqCst));
        }
    }
    // the last hub takes reports too before the load winds down
    acked_since(acks.load(Ordering::SeqCst), 100).await;
    stop.store(true, Ordering::SeqCst);
    let mut truth = Truth::new();
    for t in tasks {
        truth.append(&mut t.await.unwrap());
    }

    let figures = check_rollups_against(&truth, &url).await;
    let stored = check_store_against(&truth, &data);
    // and a resend of any acked report is recognised, with its original revision
    for subs in truth.values().step_by(17) {
        for (r, receipt) in subs {
            let again = submit_until_acked(&url, r).await;
            assert!(again.duplicate, "{} was lost", r.submission_id);
            assert_eq!(again.revision, receipt.revision);
        }
    }
    eprintln!(
        "{kills} kills during ingest, {stored} revisions of {} keys stored once each, {figures} rollup figures equal the generator's sums",
        truth.len()
    );
    drop(hub);
}

/// The outbox of a node, filled through the library (fast) with one report per key.
fn fill_outbox(dir: &std::path::Path, n: usize) -> Vec<pb::Report> {
    add_to_outbox(dir, 0, n)
}

/// Adds `n` reports to the outbox, one per key, for the keys after the first `skip`.
fn add_to_outbox(dir: &std::path::Path, skip: usize, n: usize) -> Vec<pb::Report> {
    let mut outbox = Outbox::open(dir).unwrap();
    let villages = villages();
    // daily periods from 2024-01-01: 462 villages give 170,000 keys a year
    let first = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let reports: Vec<pb::Report> = first
        .iter_days()
        .take_while(|d| *d < chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap())
        .flat_map(|d| {
            let day = d.format("%Y-%m-%d").to_string();
            villages.iter().map(move |v| (v.to_string(), day.clone()))
        })
        .enumerate()
        .skip(skip)
        .take(n)
        .map(|(i, (area, period))| {
            // daily: the 重点人员稳控日报 form's 来访人次
            report(
                &area,
                &period,
                vec![value("petitions.visitors", i as i64 % 7)],
            )
        })
        .collect();
    assert_eq!(reports.len(), n, "not enough keys for {n} reports");
    for chunk in reports.chunks(5_000) {
        outbox.enqueue(chunk).unwrap();
    }
    reports
}

/// `pingan-node` as the real binary.
fn node(outbox: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(bin("pingan-node"));
    c.args(args)
        .arg("--outbox")
        .arg(outbox)
        .env("RUST_LOG", "error");
    if args[0] != "status" {
        c.arg("--insecure");
    }
    c
}

fn node_run(outbox: &std::path::Path, url: &str) -> Proc {
    Proc::spawn(
        node(
            outbox,
            &["run", "--hub", url, "--timeout", "5", "--interval", "1"],
        )
        .stdout(std::process::Stdio::null()),
    )
}

/// Waits until the outbox holds nothing pending.
async fn wait_drained(outbox: &std::path::Path, limit: Duration) {
    let dir = outbox.to_owned();
    wait_until(limit, || {
        let dir = dir.clone();
        async move { Outbox::open(&dir).unwrap().pending_count().unwrap() == 0 }
    })
    .await;
}

/// Delivery attempts the outbox has recorded, over all its entries.
fn attempts(outbox: &std::path::Path) -> u64 {
    Outbox::open(outbox)
        .unwrap()
        .list()
        .unwrap()
        .iter()
        .map(|e| u64::from(e.attempts))
        .sum()
}

fn status(outbox: &std::path::Path) -> Vec<serde_json::Value> {
    let out = node(outbox, &["status", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status prints JSON")
}

/// SIGTERM: the daemon stops cleanly.
fn sigterm(daemon: &mut Proc) {
    assert!(
        daemon.terminate(Duration::from_secs(30)).success(),
        "the node stops cleanly"
    );
}

/// Node crash: `pingan-node run` SIGKILLed again and again while it delivers a backlog; every
/// report reaches the hub exactly once. Each kill lands once delivery is seen under way (the
/// hub stored more since the daemon started) and not finished; should the backlog drain before
/// enough such kills (a fast machine), more reports are queued, so the required kills always
/// happen (`PINGAN_NODE_KILLS`, 3 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_delivery_delivers_every_report_exactly_once() {
    let n = sized("PINGAN_NODE_BACKLOG", 3_000);
    let wanted = sized("PINGAN_NODE_KILLS", 3);
    let hub = TestHub::start().await;
    let outbox = tempfile::tempdir().unwrap();
    let mut reports = fill_outbox(outbox.path(), n);

    let mut rng = StdRng::seed_from_u64(seed());
    let mut mid_delivery = 0;
    let mut runs = 0;
    while mid_delivery < wanted {
        runs += 1;
        assert!(
            runs <= 50 * wanted,
            "{runs} daemon runs for {mid_delivery} kills mid-delivery"
        );
        let before = hub.revision_count() as usize;
        if before == reports.len() {
            let more = add_to_outbox(outbox.path(), reports.len(), n / 2);
            reports.extend(more);
        }
        let mut daemon = node_run(outbox.path(), &hub.url);
        // delivery under way: this daemon got some reports stored (a random number of them)
        let progress = rng.random_range(1..=256);
        wait_until(Duration::from_secs(120), || async {
            hub.revision_count() as usize >= (before + progress).min(reports.len())
        })
        .await;
        daemon.kill();
        if (hub.revision_count() as usize) < reports.len() {
            mid_delivery += 1;
        }
    }
    let n = reports.len();
    let mut daemon = node_run(outbox.path(), &hub.url);
    wait_drained(outbox.path(), Duration::from_secs(120)).await;
    // the last daemon is stopped the hard way, like the others
    daemon.kill();

    assert_eq!(hub.revision_count() as usize, n, "each report stored once");
    let entries = status(outbox.path());
    assert_eq!(entries.len(), n);
    for (e, r) in entries.iter().zip(&reports) {
        assert_eq!(e["submission_id"], r.submission_id.as_str());
        assert_eq!(e["state"], "delivered", "{e}");
        assert_eq!(e["revision"], 1, "{e}");
        let stored = hub.current(&r.area, &r.period).expect("stored");
        assert_eq!(stored.submission_id, r.submission_id);
        assert_eq!(stored.revision, 1);
    }
    eprintln!(
        "{n} reports delivered exactly once across {mid_delivery} kills mid-delivery ({runs} daemon runs)"
    );
    hub.stop().await;
}

/// Long outage: the hub is away while the node keeps taking reports; the node answers at once
/// every time, and when the hub returns the whole backlog drains in bounded memory
/// (`PINGAN_OUTAGE_BACKLOG` reports: 3,000 here, 200,000 in `scripts/reliability`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_long_outage_the_backlog_drains_in_bounded_memory() {
    let n = sized("PINGAN_OUTAGE_BACKLOG", 3_000);
    let port = HubProcess::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let outbox = tempfile::tempdir().unwrap();
    // most of the backlog goes in through the library (fast); the binary takes the rest, and
    // must keep answering promptly while the hub is away
    let mut reports = fill_outbox(outbox.path(), n);
    for i in 0..3 {
        let mut submit = node(
            outbox.path(),
            &[
                "submit",
                "--hub",
                &url,
                "--area",
                "510722101002",
                "--period",
                &months()[i],
                "--set",
                "grid.visits=1",
                "--wait",
                "1",
                "--timeout",
                "1",
            ],
        );
        // timed from here: the binary exists (building it is not the node's answer time)
        let started = std::time::Instant::now();
        let out = submit.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(75),
            "kept in the outbox: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the node answered in {:?}",
            started.elapsed()
        );
    }
    let pending = status(outbox.path());
    assert_eq!(pending.len(), n + 3);
    assert!(pending.iter().all(|e| e["state"] == "pending"));
    reports.truncate(n);

    // the daemon retries against nothing (twice, as its outbox records), then the hub comes back
    let tried = attempts(outbox.path());
    let mut daemon = node_run(outbox.path(), &url);
    let pid = daemon.id();
    wait_until(Duration::from_secs(60), || async {
        attempts(outbox.path()) >= tried + 2
    })
    .await;
    let (idle_rss, _) = rss_kib(pid).expect("node is running");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_on(listener, hub_dir.path(), pingan_tests::test_clock()).await;
    let started = std::time::Instant::now();
    let mut peak = 0;
    loop {
        if let Some((_, hwm)) = rss_kib(pid) {
            peak = peak.max(hwm);
        }
        if hub.revision_count() as usize == n + 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1_800),
            "backlog not drained: {} of {}",
            hub.revision_count(),
            n + 3
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = started.elapsed();
    wait_drained(outbox.path(), Duration::from_secs(60)).await;
    sigterm(&mut daemon);
    // memory does not grow with the backlog: the daemon holds one batch at a time
    assert!(
        peak < idle_rss + 64 * 1024,
        "the node's peak RSS {peak} KiB grew far above its idle {idle_rss} KiB"
    );
    eprintln!(
        "{n} reports drained in {drained:?} ({:.0}/s); node RSS idle {idle_rss} KiB, peak {peak} KiB",
        n as f64 / drained.as_secs_f64()
    );
    assert!(
        status(outbox.path())
            .iter()
            .all(|e| e["state"] == "delivered")
    );
    hub.stop().await;
}

/// Poison data: a report the hub refuses and an outbox entry that cannot be read are parked with
/// their reasons; the reports behind them are delivered, and `pingan-node status` shows why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_report_and_a_corrupt_entry_are_parked_and_never_block_the_queue() {
    let hub = TestHub::start().await;
    let outbox_dir = tempfile::tempdir().unwrap();
    let village = "510722101002";
    let reports = vec![
        report(village, "2026-10", vec![value("grid.visits", 1)]),
        // not in the catalogue: the node's library lets it through, the hub refuses it
        report(village, "2026-09", vec![value("cases.unheard_of", 1)]),
        report(village, "2026-08", vec![value("grid.visits", 2)]),
        report(village, "2026-07", vec![value("grid.visits", 3)]),
        report(village, "2026-06", vec![value("grid.visits", 4)]),
    ];
    {
        let mut outbox = Outbox::open(outbox_dir.path()).unwrap();
        outbox.enqueue(&reports).unwrap();
        // the fourth entry's bytes are damaged on disk
        rusqlite::Connection::open(outbox.path())
            .unwrap()
            .execute(
                "UPDATE outbox SET report = x'0aff' WHERE submission_id = ?1",
                [&reports[3].submission_id],
            )
            .unwrap();
    }
    let mut daemon = node_run(outbox_dir.path(), &hub.url);
    wait_until(Duration::from_secs(60), || async {
        hub.revision_count() == 3
    })
    .await;
    wait_drained(outbox_dir.path(), Duration::from_secs(30)).await;
    sigterm(&mut daemon);

    let entries = status(outbox_dir.path());
    let states: Vec<&str> = entries
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["delivered", "failed", "delivered", "failed", "delivered"]
    );
    let refused = entries[1]["last_error"].as_str().unwrap();
    assert!(
        refused.contains("InvalidArgument") && refused.contains("cases.unheard_of"),
        "{refused}"
    );
    let corrupt = entries[3]["last_error"].as_str().unwrap();
    assert!(corrupt.contains("corrupt outbox entry"), "{corrupt}");
    for (i, r) in reports.iter().enumerate() {
        let stored = hub.current(village, &r.period);
        assert_eq!(stored.is_some(), [0, 2, 4].contains(&i), "{}", r.period);
    }
    // what the operator reads: the table names both parked entries and why
    let table = node(outbox_dir.path(), &["status"]).output().unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("cases.unheard_of"), "{table}");
    assert!(table.contains("corrupt outbox entry"), "{table}");
    hub.stop().await;
}

/// Clock skew: a node whose clock runs a day ahead of the hub's cannot report a period that is
/// not open yet by the hub's clock; once it has, its report and correction are ordered by the hub's
/// revisions and stamped with the hub's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_a_day_ahead_cannot_report_an_unfinished_period_and_the_hub_orders_its_reports() {
    use chrono::TimeZone as _;
    let beijing = pingan_hub::clock::beijing();
    // the node runs on this machine's clock; the hub's clock is a day behind it
    let node_today = pingan_node::today_beijing();
    let yesterday = node_today.pred_opt().unwrap();
    let noon = |d: chrono::NaiveDate| {
        beijing
            .from_local_datetime(&d.and_hms_opt(12, 0, 0).unwrap())
            .single()
            .unwrap()
    };
    let clock = pingan_hub::Clock::manual(noon(yesterday));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_on(listener, dir.path(), clock.clone()).await;
    let outbox = tempfile::tempdir().unwrap();
    let village = "510722101002";
    // a day is open for reports from the day itself on: the node's today is the hub's tomorrow
    let day = node_today.format("%Y-%m-%d").to_string();
    let submit = |n: i64| {
        node(
            outbox.path(),
            &[
                "submit",
                "--hub",
                &hub.url,
                "--area",
                village,
                "--period",
                &day,
                "--set",
                &format!("petitions.visitors={n}"),
                "--wait",
                "10",
            ],
        )
        .output()
        .unwrap()
    };

    // the node believes the day has come; the hub, by its own clock, does not
    let early = submit(1);
    let stderr = String::from_utf8_lossy(&early.stderr);
    assert!(
        !early.status.success(),
        "refused: {stderr} {:?}",
        early.status
    );
    assert_ne!(early.status.code(), Some(75), "not left pending: {stderr}");
    assert!(stderr.contains("尚未结束"), "{stderr}");
    assert_eq!(hub.revision_count(), 0);

    // the hub's day ends; a report and its correction arrive in that order
    let later = noon(node_today) + chrono::Duration::minutes(7);
    clock.set(later);
    for (n, revision) in [(2, 1), (3, 2)] {
        let out = submit(n);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stored = hub.current(village, &day).unwrap();
        assert_eq!(stored.revision, revision);
        assert_eq!(stored.values[0].total, Some(n));
        assert_eq!(
            stored.received_at_ms,
            later.timestamp_millis(),
            "stamped by the hub's clock"
        );
    }
    let entries = status(outbox.path());
    let revisions: Vec<&serde_json::Value> = entries.iter().map(|e| &e["revision"]).collect();
    assert_eq!(revisions, [&serde_json::Value::Null, &1.into(), &2.into()]);
    hub.stop().await;
}

/// A small tmpfs, unmounted when dropped. Needs root (CI runs as root).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a file until the filesystem is full.
fn fill(path: &std::path::Path) -> u64 {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    let mut written = 0;
    loop {
        match f.write(&chunk) {
            Ok(0) => return written,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => return written, // ENOSPC
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
}

/// Disk full: on a filesystem with no room left, the hub refuses with UNAVAILABLE and says why,
/// acks nothing it did not write, keeps answering queries, and takes the refused reports once
/// there is room again, as new revisions, across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_refused_clearly_and_recovered_from() {
    let disk = SmallDisk::mount("4m");
    let data = disk.path().join("hub");
    let hub = TestHub::start_in(&data).await;
    let mut client = hub.client().await;
    let keys: Vec<(String, String)> = months()
        .iter()
        .flat_map(|m| {
            villages()
                .into_iter()
                .map(move |v| (v.to_string(), m.clone()))
        })
        .collect();
    let mut keys = keys.into_iter();
    let mut next = || {
        let (area, period) = keys.next().expect("enough keys");
        report(&area, &period, vec![value("grid.visits", 3)])
    };
    let mut acked = Vec::new();
    for _ in 0..50 {
        let r = next();
        client.submit(r.clone()).await.expect("room on the disk");
        acked.push(r);
    }

    let ballast = disk.path().join("ballast");
    let filled = fill(&ballast);
    assert!(filled > 0);
    // what fits in space SQLite already holds may still be written (and then it is durable);
    // the first report that needs new space is refused
    let mut refused = Vec::new();
    for _ in 0..5_000 {
        let r = next();
        match client.submit(r.clone()).await {
            Ok(_) => acked.push(r),
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(
                    status.message().contains("full"),
                    "says why: {}",
                    status.message()
                );
                refused.push(r);
                if refused.len() == 5 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused.len(), 5, "the hub never noticed the full disk");
    eprintln!(
        "disk filled ({filled} bytes of ballast); {} acked before the first refusal",
        acked.len()
    );
    assert_eq!(
        hub.revision_count() as usize,
        acked.len(),
        "nothing refused was stored"
    );
    // queries still work on a full disk
    let reply = hub
        .state
        .engine
        .ask_rollup(&pb::RollupRequest {
            area: fixtures::santai().to_string(),
            period: "2026-10".into(),
            ..Default::default()
        })
        .expect("rollup on a full disk");
    let visits = reply
        .figures
        .iter()
        .find(|f| f.metric == "grid.visits")
        .and_then(|f| f.total);
    let in_october = acked.iter().filter(|r| r.period == "2026-10").count() as i64;
    assert_eq!(visits, Some(3 * in_october));

    // room again: the refused reports go in as first revisions, not as duplicates
    std::fs::remove_file(&ballast).unwrap();
    for r in &refused {
        let receipt = client.submit(r.clone()).await.expect("room again");
        let receipt = receipt.into_inner();
        assert!(!receipt.duplicate);
        assert_eq!(receipt.revision, 1);
    }
    let keep = hub.stop().await;
    let hub = TestHub::start_in(&data).await;
    assert_eq!(
        hub.revision_count() as usize,
        acked.len() + refused.len(),
        "after a restart: everything acked, once"
    );
    for r in acked.iter().chain(&refused) {
        let stored = hub.current(&r.area, &r.period).expect("acked report kept");
        assert_eq!(stored.submission_id, r.submission_id);
    }
    hub.stop().await;
    drop(keep);
}

/// One SIGTERM stops everything a serving hub runs: gRPC, the dashboard (an idle keep-alive
/// connection is closed, not waited out), forwarding to an unreachable parent and the rollup
/// saver; what was acked is stored, the rollup for the parent waits in the forwarding outbox, and
/// the rollups are saved for the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_signal_stops_grpc_the_dashboard_forwarding_and_the_saver_and_loses_nothing() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    // a parent nobody listens on: forwarding keeps retrying until the hub stops
    let parent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let parent_url = format!("http://{}", parent.local_addr().unwrap());
    drop(parent);
    let served = pingan_tests::ServedHub::start([
        "--insecure".as_ref(),
        "--web-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--area".as_ref(),
        "510722".as_ref(),
        "--parent".as_ref(),
        parent_url.as_ref(),
        "--parent-insecure".as_ref(),
    ]);
    let web = served.web.clone().expect("the dashboard");
    let web = web.strip_prefix("http://").expect("plain HTTP").to_owned();
    let mut hub = served.process;
    let url = format!("http://{}", served.grpc);

    let village = "510722101002";
    let mut client = pb::report_service_client::ReportServiceClient::connect(url.clone())
        .await
        .expect("connect");
    let receipt = client
        .submit(report(village, "2026-10", vec![value("grid.visits", 7)]))
        .await
        .expect("acked")
        .into_inner();
    assert_eq!(receipt.revision, 1);
    let forward = data.join("forward");
    wait_until(Duration::from_secs(30), || {
        let forward = forward.clone();
        async move {
            Outbox::open(&forward)
                .and_then(|o| o.pending_count())
                .is_ok_and(|n| n >= 1)
        }
    })
    .await;

    // a dashboard connection kept alive and idle after one answered request
    let mut idle = std::net::TcpStream::connect(&web).unwrap();
    idle.write_all(format!("GET / HTTP/1.1\r\nHost: {web}\r\n\r\n").as_bytes())
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    let status = hub.terminate(Duration::from_secs(60));
    assert!(status.success(), "the hub exits cleanly: {status}");
    // the idle connection was closed by the hub: reading reaches its end
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest)
        .expect("the hub closed the connection");

    let reader = pingan_tests::reader_for(&data);
    let stored = reader
        .current(village.parse().unwrap(), "2026-10".parse().unwrap())
        .unwrap()
        .expect("the acked report is stored");
    assert_eq!(stored.submission_id, receipt.submission_id);
    let waiting = Outbox::open(&forward).unwrap().list().unwrap();
    assert!(
        waiting
            .iter()
            .any(|e| e.area == "510722" && e.period == "2026-10"),
        "the county's rollup waits for the parent: {waiting:?}"
    );
    assert!(
        data.join(pingan_hub::query::snapshot::FILE).exists(),
        "the rollups were saved at shutdown"
    );
}
