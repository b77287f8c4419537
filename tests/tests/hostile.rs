//! Hardening: a hostile or broken peer can neither break the hub nor slip past it. Each finding
//! of the hardening issue is sent here as an attacker would send it, and gets a clean refusal
//! while honest nodes are served and nothing acked is lost. The mixed soak at the end runs
//! `PINGAN_SOAK_SECS` seconds (10 here; `scripts/reliability` runs 120).

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::TcpStream,
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use pingan_domain::{Catalogue, ValidReport, fixtures, pb};
use pingan_hub::{HubState, access::tls::Role};
use pingan_tests::{
    AskWire, Pki, Proc, ServedHub, TestHub, bin, report, test_clock, value, wait_until,
};
use tonic::Code;

const COUNTY: &str = "510722";
const TOWN: &str = "510722101";
const VILLAGE: &str = "510722101002";
const OTHER_TOWN: &str = "510722104";
/// Days the soak's honest nodes cycle through (a second round is corrections).
const DAYS: i64 = 2000;

fn cell(metric: &str, sum: i64, present: u32) -> pb::RollupCell {
    pb::RollupCell {
        metric: metric.into(),
        part: String::new(),
        sum,
        present,
    }
}

fn villages_reported(received: u32) -> Vec<pb::LevelCount> {
    vec![pb::LevelCount {
        level: "village".into(),
        received,
        on_time: received,
    }]
}

/// A child hub's forwarded rollup of `area` for 2026-10.
fn rollup(area: &str, cells: Vec<pb::RollupCell>, reporters: Vec<pb::LevelCount>) -> pb::Report {
    let mut r = report(area, "2026-10", Vec::new());
    r.rollup = Some(pb::Rollup {
        scope: pb::rollup::Scope::Subtree as i32,
        cells,
        reporters,
        ..Default::default()
    });
    r
}

fn client(
    hub: &TestHub,
    pki: &Pki,
    stem: &str,
) -> pb::report_service_client::ReportServiceClient<tonic::transport::Channel> {
    pb::report_service_client::ReportServiceClient::new(hub.channel(pki.client(stem)))
}

/// Finding 1 and 3: a child hub cannot break its parent with overflowing or implausible
/// rollups, and an invalid one claims nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflowing_and_implausible_rollups_are_refused_and_claim_nothing() {
    let pki = Pki::new(); // with the county's hub certificate
    pki.issue(Role::Hub, "5107");
    pki.issue(Role::Node, VILLAGE);
    let parent = TestHub::start_mtls_as(&pki, "5107", fixtures::mianyang_areas(), vec![]).await;
    let mut child = client(&parent, &pki, &format!("hub-{COUNTY}"));
    let near_max = i64::MAX - 10;
    let attacks = [
        rollup(
            COUNTY,
            vec![cell("cases.fraud", near_max, 1)],
            villages_reported(1),
        ),
        rollup(
            COUNTY,
            vec![cell("cases.fraud", near_max, 1)],
            villages_reported(1),
        ),
        // 4,000,000,000 villages for a county that has 462
        rollup(
            COUNTY,
            vec![cell("cases.fraud", 3, 3)],
            villages_reported(4_000_000_000),
        ),
        // a sum no 10 reports can carry
        rollup(
            COUNTY,
            vec![cell("cases.fraud", 1_000_000_000_000_000, 10)],
            villages_reported(10),
        ),
        // 1000% success
        rollup(
            COUNTY,
            vec![
                cell("disputes.mediated", 1, 1),
                cell("disputes.resolved", 10, 1),
            ],
            villages_reported(1),
        ),
    ];
    for (i, attack) in attacks.into_iter().enumerate() {
        let err = child.submit(attack).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "attack {i}: {err:?}");
    }
    // nothing was claimed: a village under the county may still report to this hub directly
    assert!(
        parent.state.owners.list().is_empty(),
        "an invalid rollup claims nothing"
    );
    client(&parent, &pki, &format!("node-{VILLAGE}"))
        .submit(report(VILLAGE, "2026-10", vec![value("grid.visits", 5)]))
        .await
        .expect("honest node served");
    // the hub answers, and a valid rollup still goes in
    let reply = parent
        .state
        .engine
        .ask_rollup(&pb::RollupRequest {
            area: "5107".into(),
            period: "2026-10".into(),
            ..Default::default()
        })
        .expect("the parent answers");
    assert!(
        reply
            .figures
            .iter()
            .all(|f| f.total.is_none_or(|t| t < 1_000_000))
    );
    let data = parent.data.clone();
    let _keep = parent.stop().await;
    let reopened = HubState::open(
        &data,
        Catalogue::builtin(),
        fixtures::mianyang_areas(),
        test_clock(),
        Default::default(),
    )
    .expect("the store opens");
    assert!(reopened.engine.loaded().implausible.is_empty());
}

/// Finding 1, the rest: figures no valid report carries, written before the checks existed (or
/// by a bug), neither panic the writer nor stop the store from opening; they are named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_holding_figures_beyond_any_bound_serves_and_names_them() {
    let hub = TestHub::start_areas(fixtures::mianyang_areas()).await;
    let bad = |area: &str, id: &str| ValidReport {
        submission_id: id.into(),
        area: area.parse().unwrap(),
        period: "2026-10".parse().unwrap(),
        form: String::new(),
        department: None,
        values: Vec::new(),
        zero_report: false,
        notes: String::new(),
        reporter: String::new(),
        warnings: Vec::new(),
        // as the store keeps it: a stored rollup is decoded from the wire form
        rollup: Some(
            pb::Rollup {
                scope: pb::rollup::Scope::Subtree as i32,
                cells: vec![cell("cases.fraud", i64::MAX - 1, 1)],
                reporters: villages_reported(1),
                ..Default::default()
            }
            .into(),
        ),
    };
    // straight into the store, past validation, as an old store may hold them: the two sums
    // overflow the prefecture's total
    for (area, id) in [("510722", "bad-1"), ("510705", "bad-2")] {
        hub.state
            .store
            .write(bad(area, id), "test".into(), 0)
            .await
            .expect("stored");
    }
    // the writer lives on: honest reports are acked and the hub answers
    hub.client()
        .await
        .submit(report(VILLAGE, "2026-09", vec![value("grid.visits", 1)]))
        .await
        .expect("the writer survived");
    let city = hub
        .state
        .engine
        .ask_rollup(&pb::RollupRequest {
            area: "5107".into(),
            period: "2026-10".into(),
            metrics: vec!["cases.fraud".into()],
            ..Default::default()
        })
        .expect("answers");
    assert_eq!(
        city.figures[0].total,
        Some(i64::MAX),
        "saturated, never wrapped"
    );
    let data = hub.data.clone();
    let _keep = hub.stop().await;
    std::fs::remove_file(data.join(pingan_hub::query::snapshot::FILE)).ok();
    let reopened = HubState::open(
        &data,
        Catalogue::builtin(),
        fixtures::mianyang_areas(),
        test_clock(),
        Default::default(),
    )
    .expect("a store holding bad figures opens");
    let named = reopened.engine.loaded().implausible;
    assert_eq!(named.len(), 2, "{named:?}");
    assert!(named[0].contains("cases.fraud"), "{named:?}");
}

/// A plain HTTP/1.1 request to the dashboard; (status, headers, body).
fn http(addr: &str, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// The real hub, plaintext, with the dashboard; its gRPC URL and dashboard address.
fn start_plain_hub(data: &Path) -> (Proc, String, String) {
    let served = ServedHub::start([
        "--insecure".as_ref(),
        "--web-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
    ]);
    let web = served.web.clone().expect("the dashboard");
    let web = web.strip_prefix("http://").expect("plain HTTP").to_owned();
    (served.process, format!("http://{}", served.grpc), web)
}

/// Finding 2 and 7: half-sent requests on the dashboard port are cut off, connections over the
/// caps are closed at once, the gRPC port keeps serving, and sign-in is throttled and recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_port_cannot_take_ingest_down_and_guessing_passwords_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let (hub, grpc, web) = start_plain_hub(&data);
    // slowloris: headers begun and never finished, more connections than one address may hold
    let cap = pingan_hub::web::MAX_CONNECTIONS_PER_ADDRESS;
    let mut held = Vec::new();
    for _ in 0..cap + 8 {
        let mut s = TcpStream::connect(&web).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        held.push(s);
    }
    // the extra ones are closed at once (read: end of stream)
    let mut closed = 0;
    for s in held.iter_mut().skip(cap) {
        let mut b = [0u8; 16];
        if matches!(s.read(&mut b), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 8,
        "connections over the per-address cap are refused"
    );
    // meanwhile the gRPC port serves at once
    let mut c = pb::report_service_client::ReportServiceClient::connect(grpc.clone())
        .await
        .unwrap();
    c.submit(report(VILLAGE, "2026-10", vec![value("grid.visits", 3)]))
        .await
        .expect("ingest goes on");
    // the half-sent requests are cut off after the header timeout
    let first = held.remove(0);
    let cut = tokio::task::spawn_blocking(move || {
        let mut first = first;
        let mut b = [0u8; 256];
        let started = Instant::now();
        let n = first.read(&mut b).unwrap_or(0);
        (n, started.elapsed())
    })
    .await
    .unwrap();
    assert!(
        cut.1 < Duration::from_secs(59),
        "a half-sent request is not held for ever ({:?}, {} bytes)",
        cut.1,
        cut.0
    );
    drop(held);

    // security headers
    let (status, head, _) = http(
        &web,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(
        head.to_lowercase().contains("x-frame-options: deny"),
        "{head}"
    );

    // sign-in throttling: five wrong passwords lock the account, even for the right one
    let added = pingan_tests::hub_with_stdin(
        &["users", "add", "--area", COUNTY, "County"],
        &data,
        "the-right-password-2026\n",
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let twin = pingan_tests::hub_with_stdin(
        &["users", "add", "--area", COUNTY, "county"],
        &data,
        "another-password-2026\n",
    );
    assert!(
        !twin.status.success(),
        "names differing only in case are one account"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("users.db"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "users.db is the hub's user's only");
    let sign_in = |password: &str| {
        let body = format!(r#"{{"name":"County","password":"{password}"}}"#);
        http(
            &web,
            &format!(
                "POST /api/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
        .0
    };
    for _ in 0..pingan_hub::web::throttle::ACCOUNT_FAILURES {
        assert_eq!(sign_in("wrong"), 401);
    }
    assert_eq!(
        sign_in("the-right-password-2026"),
        429,
        "locked for a while"
    );
    drop(hub);
    let refusals = pingan_hub::store::StoreReader::open(&data.join(pingan_hub::store::DB_FILE))
        .unwrap()
        .refusals()
        .unwrap();
    assert!(
        refusals.iter().any(|r| r.action == "sign-in"),
        "throttled sign-ins are recorded: {refusals:?}"
    );
}

/// Finding 4: a certificate revoked while its SubmitBatch stream is open is stopped at its next
/// report, and the refusal is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_stopped_on_its_open_stream() {
    let pki = Pki::new();
    let serial = pki.issue(Role::Node, VILLAGE);
    let hub = TestHub::start_mtls(&pki, vec![]).await;
    let mut node = client(&hub, &pki, &format!("node-{VILLAGE}"));
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut answers = node
        .submit_batch(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(report(VILLAGE, "2026-09", vec![value("grid.visits", 1)]))
        .await
        .unwrap();
    let first = answers.message().await.unwrap().unwrap();
    assert!(matches!(
        first.outcome,
        Some(pb::batch_result::Outcome::Receipt(_))
    ));
    std::fs::write(pki.path("deny-list.txt"), format!("{serial}\n")).unwrap();
    let tls = hub.state.auth.tls().unwrap().clone();
    wait_until(Duration::from_secs(30), || {
        let tls = tls.clone();
        let serial = serial.clone();
        async move { tls.is_denied(&serial) }
    })
    .await;
    tx.send(report(VILLAGE, "2026-10", vec![value("grid.visits", 2)]))
        .await
        .unwrap();
    let second = answers.message().await.unwrap().unwrap();
    match second.outcome {
        Some(pb::batch_result::Outcome::Rejection(r)) => {
            assert_eq!(r.code, Code::PermissionDenied as i32);
            assert!(r.message.contains("revoked"), "{}", r.message);
        }
        other => panic!("a revoked certificate's report was taken: {other:?}"),
    }
    assert!(hub.current(VILLAGE, "2026-10").is_none());
    let refusals = hub.state.store.reader().unwrap().refusals().unwrap();
    assert!(
        refusals.iter().any(|r| r.reason.contains("revoked")),
        "{refusals:?}"
    );
    hub.stop().await;
}

/// Finding 5: no viewer can stall the hub. Questions beyond the cost bound are refused before
/// any work, one identity runs two questions at a time, and ingest goes on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expensive_questions_are_bounded_and_ingest_goes_on() {
    let hub = TestHub::start().await;
    let queries = pb::query_service_client::QueryServiceClient::connect(hub.url.clone())
        .await
        .unwrap();
    // six of the heaviest allowed trends at once from one peer: two run at a time, the others
    // wait their turn
    let heavy = || pb::TrendRequest {
        area: COUNTY.into(),
        period: "2016-10-06..2026-10-05".into(),
        periods: 120,
        metric: "cases.criminal_per_10k".into(),
        approved_only: false,
        level: String::new(),
        as_columns: false,
    };
    let mut asked = Vec::new();
    for _ in 0..6 {
        let mut q = queries.clone();
        let req = heavy();
        asked.push(tokio::spawn(async move { q.trend(req).await }));
    }
    // honest nodes meanwhile: every report acked
    let mut c = hub.client().await;
    let villages =
        fixtures::santai_areas().descendants_at(fixtures::santai(), pingan_domain::Level::Village);
    for v in villages.iter().take(40) {
        c.submit(report(
            &v.to_string(),
            "2026-10",
            vec![value("grid.visits", 2)],
        ))
        .await
        .expect("ingest goes on while leaders ask");
    }
    // they wait their turn, two at a time: each is answered, or told its deadline passed
    let mut answered = 0;
    for a in asked {
        match a.await.unwrap() {
            Ok(_) => answered += 1,
            Err(s) if s.code() == Code::DeadlineExceeded => {}
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    assert!(
        answered >= pingan_hub::query::gate::PER_IDENTITY,
        "{answered} answered"
    );
    assert_eq!(hub.revision_count(), 40);
    hub.stop().await;
}

/// Finding 5, at national scale: a question beyond the cost bound is refused before any work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_beyond_the_cost_bound_is_refused_before_any_work() {
    let hub = TestHub::start_areas(fixtures::national_areas(None)).await;
    let mut queries = pb::query_service_client::QueryServiceClient::connect(hub.url.clone())
        .await
        .unwrap();
    // every village of the country over 22 months, with 同比 and 环比: 41 M area-months
    let started = Instant::now();
    let too_big = queries
        .compare(pb::CompareRequest {
            area: pingan_hub::query::engine::NATION.into(),
            period: "2025-01..2026-10".into(),
            metric: "grid.visits".into(),
            level: "village".into(),
            ..Default::default()
        })
        .await
        .expect_err("over the bound");
    assert_eq!(too_big.code(), Code::ResourceExhausted, "{too_big:?}");
    assert!(
        too_big.message().contains("问题太大"),
        "{}",
        too_big.message()
    );
    eprintln!("refused in {:?}", started.elapsed());
    // every township of the country over ten months is within it, and comes in pages
    let first = queries
        .compare(pb::CompareRequest {
            area: pingan_hub::query::engine::NATION.into(),
            period: "2026-01..2026-10".into(),
            metric: "grid.visits".into(),
            level: "township".into(),
            page_size: 30_000,
            ..Default::default()
        })
        .await
        .expect("within the bound")
        .into_inner();
    assert_eq!(first.total_rows, 41_352);
    assert_eq!(first.rows.len(), 30_000);
    let rest = queries
        .compare(pb::CompareRequest {
            area: pingan_hub::query::engine::NATION.into(),
            period: "2026-01..2026-10".into(),
            metric: "grid.visits".into(),
            level: "township".into(),
            page_size: 30_000,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.rows.len(), 11_352);
    assert!(rest.next_page_token.is_empty());
    hub.stop().await;
}

/// Finding 6: one process per data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_hub_or_an_import_into_a_running_hubs_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let (hub, _, _) = start_plain_hub(&data);
    let pid = hub.id().to_string();
    let csv = dir.path().join("history.csv");
    std::fs::write(&csv, "area,period,grid.visits\n510722101002,2026-09,4\n").unwrap();
    let data_s = data.to_string_lossy().into_owned();
    let csv_s = csv.to_string_lossy().into_owned();
    let runs = tokio::task::spawn_blocking(move || {
        [
            vec![
                "serve",
                "--insecure",
                "--listen",
                "127.0.0.1:0",
                "--data",
                &data_s,
            ],
            vec!["import", "--data", &data_s, "--file", &csv_s],
        ]
        .map(|args| {
            Command::new(bin("pingan-hub"))
                .args(&args)
                .env("RUST_LOG", "error")
                .output()
                .unwrap()
        })
    })
    .await
    .unwrap();
    for out in runs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("in use") && stderr.contains(&pid),
            "names the running process: {stderr}"
        );
    }
    // reading the owners only reads: it works while the hub runs
    let list = Command::new(bin("pingan-hub"))
        .args(["owners", "list", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    drop(hub);
}

/// Finding 7, the rest: a report with thousands of problems is answered in a few kilobytes,
/// corrections are capped, refused reads are recorded as one counted row, certificates cannot
/// be issued for nonsense lengths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_and_nonsense_get_short_answers() {
    let pki = Pki::new();
    pki.issue(Role::Node, VILLAGE);
    pki.issue(Role::Viewer, TOWN);
    let hub = TestHub::start_mtls(&pki, vec![]).await;
    let mut node = client(&hub, &pki, &format!("node-{VILLAGE}"));
    let huge = report(
        VILLAGE,
        "2026-10",
        (0..10_000).map(|i| value(&format!("x.{i}"), 1)).collect(),
    );
    let err = node.submit(huge).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().len() < 4096, "{} bytes", err.message().len());
    let many = report(
        VILLAGE,
        "2026-10",
        (0..26).map(|i| value(&format!("x.{i}"), 1)).collect(),
    );
    let err = node.submit(many).await.unwrap_err();
    assert!(err.message().contains("另有 6 个问题"), "{}", err.message());

    // a flood of refused reads is one row, and a count when the store closes
    let mut viewer = pb::query_service_client::QueryServiceClient::new(
        hub.channel(pki.client(&format!("viewer-{TOWN}"))),
    );
    for _ in 0..300 {
        let e = viewer
            .rollup(pb::RollupRequest {
                area: OTHER_TOWN.into(),
                period: "2026-10".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
    }
    let rows = hub.state.store.reader().unwrap().refusals().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");

    // at most 1000 revisions of one area and day
    let day = "2026-10-01";
    let mut last = None;
    for i in 0..=pingan_hub::store::MAX_REVISIONS {
        last = Some(
            node.submit(report(
                VILLAGE,
                day,
                vec![value("petitions.visitors", i64::from(i % 7))],
            ))
            .await,
        );
    }
    let over = last.unwrap().unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted, "{over:?}");
    assert_eq!(
        hub.current(VILLAGE, day).unwrap().revision,
        pingan_hub::store::MAX_REVISIONS
    );
    let db = hub.data.join(pingan_hub::store::DB_FILE);
    let _keep = hub.stop().await;
    let rows = pingan_hub::store::StoreReader::open(&db)
        .unwrap()
        .refusals()
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[1].reason.starts_with("×299 more"), "{rows:?}");

    // nonsense certificate lengths: refused by the command line, no panic
    for days in ["4000000000", "0"] {
        let out = Command::new(bin("pingan-hub"))
            .args(["certs", "issue", "--dir"])
            .arg(pki.dir.path())
            .args(["--role", "node", "--area", VILLAGE, "--days", days])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--days {days}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// The mixed soak: slowloris on both ports, overflowing and implausible rollups, a flood of
/// refused reads, the most expensive allowed questions and a revoked certificate, all at once,
/// while honest nodes submit. Every honest report is acked, the totals equal the load
/// generator's sums, and the receipts' p99 is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn honest_nodes_are_served_through_a_mixed_hostile_load() {
    let secs: u64 = std::env::var("PINGAN_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let pki = Pki::new();
    pki.issue(Role::Hub, OTHER_TOWN);
    pki.issue(Role::Viewer, COUNTY);
    pki.issue(Role::Viewer, TOWN);
    let revoked = pki.issue(Role::Node, "510722104001");
    std::fs::write(pki.path("deny-list.txt"), format!("{revoked}\n")).unwrap();
    let villages: Vec<String> = fixtures::santai_areas()
        .children(TOWN.parse().unwrap())
        .iter()
        .take(8)
        .map(|v| v.to_string())
        .collect();
    for v in &villages {
        pki.issue(Role::Node, v);
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let files = pki.hub_files();
    let served = ServedHub::start([
        "--web-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--ca".as_ref(),
        files.ca.as_os_str(),
        "--cert".as_ref(),
        files.cert.as_os_str(),
        "--key".as_ref(),
        files.key.as_os_str(),
        "--deny-list".as_ref(),
        files.deny_list.as_ref().unwrap().as_os_str(),
    ]);
    let grpc_addr = served.grpc.clone();
    let web_addr = served
        .web
        .clone()
        .and_then(|w| w.strip_prefix("https://").map(str::to_owned))
        .expect("the dashboard over HTTPS");
    let mut hub = served.process;
    let url = format!(
        "https://localhost:{}",
        grpc_addr.rsplit(':').next().unwrap()
    );
    let channel = |stem: &str| {
        tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .tls_config(pki.client(stem))
            .unwrap()
            .timeout(Duration::from_secs(30))
            .connect_lazy()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + Duration::from_secs(secs);
    let mut hostile = Vec::new();

    // slowloris on both ports: TCP connections that never finish a handshake or a request
    for addr in [grpc_addr.clone(), web_addr.clone()] {
        let stop = stop.clone();
        hostile.push(tokio::task::spawn_blocking(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if let Ok(mut s) = TcpStream::connect(&addr) {
                    let _ = s.write_all(b"\x16\x03\x01");
                    held.push(s);
                }
                if held.len() > 200 {
                    held.remove(0);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }));
    }
    // a child hub's implausible and overflowing rollups
    {
        let (stop, mut c) = (
            stop.clone(),
            pb::report_service_client::ReportServiceClient::new(channel(&format!(
                "hub-{OTHER_TOWN}"
            ))),
        );
        hostile.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                for r in [
                    rollup(
                        OTHER_TOWN,
                        vec![cell("cases.fraud", i64::MAX - 1, 1)],
                        villages_reported(1),
                    ),
                    rollup(
                        OTHER_TOWN,
                        vec![cell("cases.fraud", 1, 1)],
                        villages_reported(4_000_000_000),
                    ),
                ] {
                    let e = c.submit(r).await.expect_err("refused");
                    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
                }
            }
        }));
    }
    // a flood of refused reads, and the most expensive allowed questions
    {
        let (stop, mut refused, mut heavy) = (
            stop.clone(),
            pb::query_service_client::QueryServiceClient::new(channel(&format!("viewer-{TOWN}"))),
            pb::query_service_client::QueryServiceClient::new(channel(&format!("viewer-{COUNTY}"))),
        );
        hostile.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let e = refused
                    .completeness(pb::CompletenessRequest {
                        area: OTHER_TOWN.into(),
                        period: "2026-10".into(),
                        ..Default::default()
                    })
                    .await
                    .unwrap_err();
                assert_eq!(e.code(), Code::PermissionDenied);
                let answered = heavy
                    .trend(pb::TrendRequest {
                        area: COUNTY.into(),
                        period: "2016-10-06..2026-10-05".into(),
                        periods: 120,
                        metric: "cases.criminal_per_10k".into(),
                        approved_only: false,
                        level: String::new(),
                        as_columns: false,
                    })
                    .await;
                if let Err(e) = answered {
                    assert!(
                        matches!(e.code(), Code::ResourceExhausted | Code::DeadlineExceeded),
                        "{e:?}"
                    );
                }
            }
        }));
    }
    // a revoked certificate keeps knocking
    {
        let (stop, mut c) = (
            stop.clone(),
            pb::report_service_client::ReportServiceClient::new(channel("node-510722104001")),
        );
        hostile.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let r = c
                    .submit(report(
                        "510722104001",
                        "2026-10",
                        vec![value("grid.visits", 1)],
                    ))
                    .await;
                assert!(r.is_err(), "a revoked certificate's report was taken");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    // honest nodes: one per village, month after month, every report waiting for its receipt
    let mut honest = Vec::new();
    for v in villages.clone() {
        let mut c =
            pb::report_service_client::ReportServiceClient::new(channel(&format!("node-{v}")));
        honest.push(tokio::spawn(async move {
            // days from 2020-01-01, round and round: a second round is corrections
            let first = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
            let mut sent: BTreeMap<String, i64> = BTreeMap::new();
            let mut latencies = Vec::new();
            let mut i = 0i64;
            while Instant::now() < until {
                let day = (first + chrono::Days::new((i % DAYS) as u64)).to_string();
                let n = (i * 7 + v.len() as i64) % 50;
                let started = Instant::now();
                c.submit(report(&v, &day, vec![value("petitions.visitors", n)]))
                    .await
                    .unwrap_or_else(|e| panic!("an honest report of {v} {day} was refused: {e:?}"));
                latencies.push(started.elapsed());
                sent.insert(day, n);
                i += 1;
            }
            (sent, latencies)
        }));
    }
    let mut finished = Vec::new();
    for h in honest {
        finished.push(h.await);
    }
    // the hostile load stops before any honest failure is reported: a failure must fail the
    // test, not leave the slowloris threads holding the runtime open
    stop.store(true, Ordering::SeqCst);
    let mut total = 0i64;
    let mut latencies = Vec::new();
    for f in finished {
        let (sent, l) = f.unwrap();
        total += sent.values().sum::<i64>();
        latencies.extend(l);
    }
    for h in hostile {
        h.await.unwrap();
    }
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    eprintln!(
        "soak {secs} s: {} honest reports acked under hostile load, receipt p50 {:?} p99 {:?} max {:?}",
        latencies.len(),
        p(0.5),
        p(0.99),
        latencies.last().unwrap()
    );
    // the total over every day equals the generator's sum of the latest value of each
    let mut q =
        pb::query_service_client::QueryServiceClient::new(channel(&format!("viewer-{TOWN}")));
    let last =
        chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(DAYS as u64 - 1);
    let r = q
        .rollup(pb::RollupRequest {
            area: TOWN.into(),
            period: format!("2020-01-01..{last}"),
            metrics: vec!["petitions.visitors".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.figures[0].total,
        Some(total),
        "totals equal the generator's sums"
    );
    assert!(hub.terminate(Duration::from_secs(60)).success());
}
