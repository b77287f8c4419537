//! Federation: county hubs forward their rollups to a prefecture hub over mutual TLS, and the
//! prefecture hub answers like a flat hub that received every form, at the depth forwarded.

use std::{collections::BTreeSet, time::Duration};

use chrono::{Datelike as _, TimeZone as _};
use pingan_domain::{AreaCode, Areas, Catalogue, Level, Period, fixtures, pb};
use pingan_hub::{access::tls::Role, clock::beijing, query::Engine};
use pingan_tests::{AskWire, Pki, Proc, TestHub, bin, report, value, wait_until};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};

const CITY: &str = "5107";
const COUNTIES: [&str; 2] = ["510722", "510705"];
const MONTHS: [&str; 4] = ["2025-09", "2025-10", "2026-09", "2026-10"];

fn at(y: i32, m: u32, d: u32) -> chrono::DateTime<chrono::FixedOffset> {
    beijing()
        .with_ymd_and_hms(y, m, d, 10, 0, 0)
        .single()
        .expect("valid")
}

/// Every question asked of both hubs, with its answer. `named` says whether the completeness
/// lists name a reporter (a flat hub names all; the prefecture hub only those it holds forms or
/// subtree rollups for), so the flat hub's lists are cut to what the prefecture can know.
fn answers(e: &Engine, areas: &Areas, depth: Level, named: &dyn Fn(&str) -> bool) -> Vec<String> {
    let city: AreaCode = CITY.parse().expect("code");
    let mut targets: Vec<AreaCode> = vec![city];
    for l in [Level::County, Level::Township, Level::Village] {
        if l <= depth {
            let mut codes = areas.descendants_at(city, l);
            if l == Level::Village {
                codes.truncate(40);
            }
            targets.extend(codes);
        }
    }
    let mut out = Vec::new();
    let spans = ["2026-10", "2026-09..2026-10", "2026-Q3", "2025-09..2026-10"];
    for span in spans {
        for area in &targets {
            let r = e
                .ask_rollup(&pb::RollupRequest {
                    area: area.to_string(),
                    period: span.into(),
                    by_category: true,
                    ..Default::default()
                })
                .expect("rollup");
            out.push(format!("rollup {area} {span}: {r:?}"));
        }
        for area in targets
            .iter()
            .filter(|a| a.level() < depth && a.level() <= Level::County)
        {
            for level in [Level::County, Level::Township, Level::Village] {
                if level <= area.level() || level > depth {
                    continue;
                }
                for metric in [
                    "cases.fraud",
                    "cases.criminal_per_10k",
                    "disputes.success_rate",
                    "grid.workers",
                ] {
                    let r = e
                        .ask_compare(&pb::CompareRequest {
                            area: area.to_string(),
                            period: span.into(),
                            metric: metric.into(),
                            level: level.as_str().into(),
                            ..Default::default()
                        })
                        .expect("compare");
                    out.push(format!("compare {area} {level} {metric} {span}: {r:?}"));
                }
            }
            let mut c = e
                .ask_completeness(&pb::CompletenessRequest {
                    area: area.to_string(),
                    period: span.into(),
                    ..Default::default()
                })
                .expect("completeness");
            let before = (c.missing.len(), c.late.len());
            c.missing.retain(|r| named(&r.code));
            c.late.retain(|r| named(&r.code));
            c.unnamed_missing += (before.0 - c.missing.len()) as u64;
            c.unnamed_late += (before.1 - c.late.len()) as u64;
            c.total_named = (c.missing.len() + c.late.len()) as u64;
            out.push(format!("completeness {area} {span}: {c:?}"));
        }
    }
    for area in targets.iter().filter(|a| a.level() <= Level::County) {
        for metric in ["cases.fraud", "cases.criminal_per_10k"] {
            let r = e
                .ask_trend(&pb::TrendRequest {
                    area: area.to_string(),
                    period: "2026-10".into(),
                    metric: metric.into(),
                    periods: 14,
                    approved_only: false,
                    level: String::new(),
                    as_columns: false,
                })
                .expect("trend");
            out.push(format!("trend {area} {metric}: {r:?}"));
        }
    }
    out
}

/// Random reports for every reporter of 绵阳市's two counties over four months: some missing,
/// some late, some zero reports, some corrected. Each is submitted to its county hub and to the
/// flat hub at the same (manual) time. Returns the areas that reported anything.
async fn submit_random(
    rng: &mut StdRng,
    areas: &Areas,
    counties: &[TestHub],
    flat: &TestHub,
) -> BTreeSet<AreaCode> {
    let catalogue = Catalogue::builtin();
    let city: AreaCode = CITY.parse().expect("code");
    let mut reporters = Vec::new();
    for l in [Level::County, Level::Township, Level::Village] {
        reporters.extend(areas.descendants_at(city, l));
    }
    let mut flat_client = flat.client().await;
    let mut county_clients = Vec::new();
    for c in counties {
        county_clients.push(c.client().await);
    }
    let mut reported = BTreeSet::new();
    for m in MONTHS {
        let month: Period = m.parse().expect("period");
        let next = month.next().first_day();
        let mut late = Vec::new();
        let mut sends = Vec::new();
        for &code in &reporters {
            if rng.random_bool(0.3) {
                continue;
            }
            let mut r = report(&code.to_string(), m, Vec::new());
            r.values = pingan_tests::random_values(rng, &catalogue, &r.area, m);
            r.zero_report = r.values.is_empty() || rng.random_bool(0.08);
            if r.zero_report {
                r.values.clear();
            }
            reported.insert(code);
            // a township's disputes go on its half-monthly form: the parent hub must read the
            // month's half-months through the forwarded rollups as the flat hub reads them
            if code.level() == Level::Township && rng.random_bool(0.7) {
                let half = format!("{m}-H2");
                let mut h = report(&code.to_string(), &half, Vec::new());
                h.values = pingan_tests::random_values(rng, &catalogue, &h.area, &half);
                h.zero_report = h.values.is_empty();
                sends.push((at(next.year(), next.month(), 3), h));
            }
            // late: some at random, and every county in the first month (so a late reporter is
            // named at every depth whatever the random draw)
            if rng.random_bool(0.12) || (code.level() == Level::County && m == MONTHS[0]) {
                late.push(r);
                continue;
            }
            sends.push((at(next.year(), next.month(), 3), r.clone()));
            if rng.random_bool(0.1) {
                let mut c = report(
                    &r.area,
                    m,
                    pingan_tests::random_values(rng, &catalogue, &r.area, m),
                );
                c.zero_report = c.values.is_empty();
                sends.push((at(next.year(), next.month(), 20), c));
            }
        }
        for r in late {
            sends.push((at(next.year(), next.month(), 12), r));
        }
        for (when, r) in sends {
            let code: AreaCode = r.area.parse().expect("code");
            let i = COUNTIES
                .iter()
                .position(|c| code.is_within(c.parse().expect("code")))
                .expect("under one of the counties");
            counties[i].state.clock.set(when);
            flat.state.clock.set(when);
            county_clients[i]
                .submit(r.clone())
                .await
                .expect("county hub accepts");
            flat_client.submit(r).await.expect("flat hub accepts");
        }
    }
    reported
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_tier_tree_answers_like_a_flat_hub_at_every_depth() {
    for (seed, depth) in [
        (11, Level::County),
        (12, Level::Township),
        (13, Level::Village),
    ] {
        let pki = Pki::new();
        pki.issue(Role::Hub, CITY);
        pki.issue(Role::Hub, "510705");
        let areas = fixtures::mianyang_areas();
        let city = TestHub::start_mtls_as(&pki, CITY, areas.clone(), Vec::new()).await;
        let mut counties = Vec::new();
        let mut forwarders = Vec::new();
        for c in COUNTIES {
            let hub = TestHub::start_areas(areas.clone()).await;
            forwarders.push(hub.forward_to(&city.url, &pki, c, depth));
            counties.push(hub);
        }
        let flat = TestHub::start_areas(areas.clone()).await;
        let mut rng = StdRng::seed_from_u64(seed);
        let reported = submit_random(&mut rng, &areas, &counties, &flat).await;

        // a reporter below the depth is named at the prefecture only if its subtree was never
        // forwarded (nobody in it reported): then it is missing by name there as here
        let covered: BTreeSet<AreaCode> = reported
            .iter()
            .filter_map(|c| c.ancestor_at(depth))
            .collect();
        let named = |code: &str| {
            let code: AreaCode = code.parse().expect("code");
            code.level() <= depth
                || !covered.contains(&code.ancestor_at(depth).expect("below depth"))
        };
        let want = answers(&flat.state.engine, &areas, depth, &named);
        let everyone = |_: &str| true;
        wait_until(Duration::from_secs(60), || async {
            forwarders.iter().all(|f| f.pending().expect("outbox") == 0)
        })
        .await;
        // the last rollups may still be in flight: wait a little, then show the differences
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let got = loop {
            let got = answers(&city.state.engine, &areas, depth, &everyone);
            if got == want || std::time::Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "seed {seed}, depth {depth}");
        }
        assert_eq!(got.len(), want.len());
        // the comparison is not vacuous: figures, late and missing reporters all occur
        let text = want.join("\n");
        assert!(
            text.contains("total: Some(") && text.contains("late: [Reporter"),
            "seed {seed}: the data should carry figures and late reporters"
        );
        let unnamed = text
            .split("unnamed_missing: ")
            .skip(1)
            .any(|rest| !rest.starts_with("0,"));
        assert_eq!(
            unnamed,
            depth < Level::Village,
            "seed {seed}: reporters below the depth are counted without names, and only they"
        );
        // the prefecture holds rollups, not forms: nothing below the depth is stored there
        let reader = city.state.store.reader().expect("reader");
        let mut below = 0;
        reader
            .for_each_revision(|r| {
                let code: AreaCode = r.area.parse().expect("code");
                assert!(r.rollup.is_some(), "only rollups reach the prefecture");
                if code.level() > depth {
                    below += 1;
                }
            })
            .expect("read");
        assert_eq!(
            below, 0,
            "nothing below depth {depth} reaches the prefecture"
        );
        drop(forwarders);
    }
}

/// 绵阳市's fraud cases in 2026-10, as a hub answers.
fn city_fraud(hub: &TestHub) -> Option<i64> {
    hub.state
        .engine
        .ask_rollup(&pb::RollupRequest {
            area: CITY.into(),
            period: "2026-10".into(),
            metrics: vec!["cases.fraud".into()],
            ..Default::default()
        })
        .expect("rollup")
        .figures[0]
        .total
}

/// Queries a hub over mTLS with a viewer certificate.
async fn rollup_over_grpc(
    url: &str,
    tls: tonic::transport::ClientTlsConfig,
    area: &str,
    period: &str,
) -> Result<pb::RollupReply, tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(url.to_owned())
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    pb::query_service_client::QueryServiceClient::new(channel)
        .rollup(pb::RollupRequest {
            area: area.into(),
            period: period.into(),
            by_category: true,
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The real `pingan-hub serve` binary as the parent, on a fixed port.
fn start_parent(pki: &Pki, data: &std::path::Path, port: u16) -> Proc {
    let files = pki.hub_files_for("51");
    Proc::spawn(
        std::process::Command::new(bin("pingan-hub"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .arg("--ca")
            .arg(&files.ca)
            .arg("--cert")
            .arg(&files.cert)
            .arg("--key")
            .arg(&files.key)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parent_killed_mid_forwarding_loses_nothing_and_never_blocks_the_county() {
    let pki = Pki::new();
    pki.issue(Role::Hub, "51");
    pki.issue(Role::Viewer, "51");
    let parent_data = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("https://localhost:{port}");
    let mut parent = start_parent(&pki, parent_data.path(), port);
    let viewer = pki.client("viewer-51");

    let county = TestHub::start().await;
    let forwarder = county.forward_to(&url, &pki, "510722", Level::Township);
    let areas = fixtures::santai_areas();
    let villages = areas.descendants_at(fixtures::santai(), Level::Village);
    let mut client = county.client().await;
    let mut rng = StdRng::seed_from_u64(7);
    let catalogue = Catalogue::builtin();
    let mut submit_month = async |client: &mut pb::report_service_client::ReportServiceClient<
        tonic::transport::Channel,
    >,
                                  month: &str| {
        for v in &villages {
            let mut r = report(
                &v.to_string(),
                month,
                pingan_tests::random_values(&mut rng, &catalogue, &v.to_string(), month),
            );
            r.zero_report = r.values.is_empty();
            client.submit(r).await.expect("the county accepts");
        }
    };
    wait_until(Duration::from_secs(60), || async {
        rollup_over_grpc(&url, viewer.clone(), "51", "2026-10")
            .await
            .is_ok()
    })
    .await;
    submit_month(&mut client, "2026-09").await;
    // killed while the first month is being forwarded
    parent.kill();
    // the county keeps taking reports while its parent is down
    let started = std::time::Instant::now();
    submit_month(&mut client, "2026-10").await;
    let ingest_while_down = started.elapsed();
    wait_until(Duration::from_secs(10), || async {
        forwarder.pending().expect("outbox") > 0
    })
    .await;
    let backlog = forwarder.pending().expect("outbox");
    assert!(
        backlog > 0,
        "rollups wait in the outbox while the parent is down"
    );

    let mut parent = start_parent(&pki, parent_data.path(), port);
    for month in ["2026-09", "2026-10", "2026-09..2026-10"] {
        let want = county
            .state
            .engine
            .ask_rollup(&pb::RollupRequest {
                area: "510722".into(),
                period: month.into(),
                by_category: true,
                ..Default::default()
            })
            .expect("rollup");
        wait_until(Duration::from_secs(60), || async {
            rollup_over_grpc(&url, viewer.clone(), "510722", month)
                .await
                .is_ok_and(|got| got == want)
        })
        .await;
        let got = rollup_over_grpc(&url, viewer.clone(), "510722", month)
            .await
            .expect("parent answers");
        assert_eq!(
            got, want,
            "{month}: the parent holds exactly the county's rollup"
        );
        assert_eq!(
            got.completeness.as_ref().map(|c| c.received),
            Some(villages.len() as u64 * if month.contains("..") { 2 } else { 1 }),
            "{month}: every village counted once"
        );
    }
    wait_until(Duration::from_secs(10), || async {
        forwarder.pending().expect("outbox") == 0
    })
    .await;
    println!("county ingest while the parent was down: {ingest_while_down:?}, backlog {backlog}");
    parent.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_county_correction_reaches_the_parent_as_a_new_revision() {
    let pki = Pki::new();
    pki.issue(Role::Hub, CITY);
    let areas = fixtures::mianyang_areas();
    let city = TestHub::start_mtls_as(&pki, CITY, areas.clone(), Vec::new()).await;
    let county = TestHub::start_areas(areas).await;
    let _forwarder = county.forward_to(&city.url, &pki, "510722", Level::County);
    let mut client = county.client().await;
    let first = report("510722101002", "2026-10", vec![value("cases.fraud", 5)]);
    client.submit(first).await.expect("accepted");
    let other = report("510722104003", "2026-10", vec![value("cases.fraud", 3)]);
    client.submit(other).await.expect("accepted");
    wait_until(Duration::from_secs(30), || async {
        city_fraud(&city) == Some(8)
    })
    .await;
    let before = city
        .state
        .store
        .reader()
        .expect("reader")
        .revisions("510722".parse().unwrap(), "2026-10".parse().unwrap())
        .expect("read")
        .len();

    // 老西街社区 corrects 5 to 2: the parent's total becomes 5, never 10
    let correction = report("510722101002", "2026-10", vec![value("cases.fraud", 2)]);
    client.submit(correction).await.expect("accepted");
    wait_until(Duration::from_secs(30), || async {
        city_fraud(&city) == Some(5)
    })
    .await;
    assert_eq!(city_fraud(&city), city_fraud(&county));
    let revisions = city
        .state
        .store
        .reader()
        .expect("reader")
        .revisions("510722".parse().unwrap(), "2026-10".parse().unwrap())
        .expect("read");
    assert_eq!(
        revisions.len(),
        before + 1,
        "the correction is the county's next revision at the parent"
    );
    let last = revisions.last().expect("a revision");
    assert_eq!(last.sender, "pingan://hub/510722");
    let cell = last
        .rollup
        .as_ref()
        .expect("a rollup")
        .cells
        .iter()
        .find(|c| c.metric == "cases.fraud" && c.part.is_empty())
        .expect("fraud cell");
    assert_eq!((cell.sum, cell.present), (5, 2));
    let c = city
        .state
        .engine
        .ask_completeness(&pb::CompletenessRequest {
            area: "510722".into(),
            period: "2026-10".into(),
            level: "village".into(),
            ..Default::default()
        })
        .expect("completeness");
    assert_eq!(c.summary.expect("summary").received, 2);
    assert_eq!(
        c.unnamed_missing, 460,
        "the villages are counted, not named"
    );
    assert!(c.missing.is_empty());
}

/// Below a child hub's forwarding depth the parent has totals and counts, not the areas'
/// figures: asking it for them is refused with where to ask instead, never answered as "every
/// village missing" (before: 应报 1 / 已报 0 for each village while the township's own
/// completeness said all 24 had reported). The completeness table says how many it cannot name.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn below_the_forwarding_depth_the_parent_says_ask_the_county_instead_of_missing() {
    let pki = Pki::new();
    pki.issue(Role::Hub, CITY);
    let areas = fixtures::mianyang_areas();
    let city = TestHub::start_mtls_as(&pki, CITY, areas.clone(), Vec::new()).await;
    let county = TestHub::start_areas(areas.clone()).await;
    let _forwarder = county.forward_to(&city.url, &pki, "510722", Level::Township);
    let mut client = county.client().await;
    let town: AreaCode = "510722101".parse().expect("code");
    let villages = areas.descendants_at(town, Level::Village);
    // every village of the township but the first reports
    for v in &villages[1..] {
        client
            .submit(report(
                &v.to_string(),
                "2026-10",
                vec![value("cases.fraud", 1)],
            ))
            .await
            .expect("accepted");
    }
    let n = villages.len() as i64 - 1;
    wait_until(Duration::from_secs(30), || async {
        city.state
            .engine
            .ask_rollup(&pb::RollupRequest {
                area: town.to_string(),
                period: "2026-10".into(),
                ..Default::default()
            })
            .is_ok_and(|r| {
                r.figures
                    .iter()
                    .any(|f| f.metric == "cases.fraud" && f.total == Some(n))
            })
    })
    .await;
    let engine = &city.state.engine;
    // the township's villages compared at the prefecture: refused, saying where to ask
    let err = engine
        .ask_compare(&pb::CompareRequest {
            area: town.to_string(),
            period: "2026-10".into(),
            metric: "cases.fraud".into(),
            ..Default::default()
        })
        .expect_err("the villages' figures are at the county hub");
    let status = tonic::Status::from(pingan_hub::error::HubError::from(err));
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(
        status.message().contains("下级平台") && status.message().contains("510722101"),
        "{}",
        status.message()
    );
    for village_question in [
        engine
            .ask_rollup(&pb::RollupRequest {
                area: villages[0].to_string(),
                period: "2026-10".into(),
                ..Default::default()
            })
            .map(|_| ()),
        engine
            .ask_completeness(&pb::CompletenessRequest {
                area: villages[0].to_string(),
                period: "2026-10".into(),
                ..Default::default()
            })
            .map(|_| ()),
    ] {
        assert!(matches!(
            village_question,
            Err(pingan_hub::query::QueryError::BelowForwarding { .. })
        ));
    }
    // the townships themselves compare fine, and the county's completeness counts the
    // villages it cannot name and says so
    engine
        .ask_compare(&pb::CompareRequest {
            area: "510722".into(),
            period: "2026-10".into(),
            metric: "cases.fraud".into(),
            ..Default::default()
        })
        .expect("the townships are known here");
    let c = engine
        .ask_completeness(&pb::CompletenessRequest {
            area: "510722".into(),
            period: "2026-10".into(),
            level: "village".into(),
            ..Default::default()
        })
        .expect("completeness");
    assert_eq!(c.summary.expect("summary").received, n as u64);
    let table = pingan_hub::tables::completeness_table(&c, Some(Level::Village));
    let notes = table.notes.join("\n");
    // the township's missing village is counted, not named (its name is at the county hub);
    // the villages of townships that sent nothing are named as missing
    assert_eq!(c.unnamed_missing, 1);
    assert!(c.missing.iter().all(|m| !m.code.starts_with("510722101")));
    assert_eq!(c.missing.len() as i64, 462 - (n + 1));
    assert!(
        notes.contains("另有未报 1、"),
        "the unnamed are counted in the table: {notes}"
    );
}

fn rollup_report(area: &str) -> pb::Report {
    let mut r = report(area, "2026-10", Vec::new());
    r.rollup = Some(pb::Rollup {
        scope: pb::rollup::Scope::Subtree as i32,
        cells: vec![pb::RollupCell {
            metric: "cases.fraud".into(),
            part: String::new(),
            sum: 4,
            present: 2,
        }],
        reporters: vec![pb::LevelCount {
            level: "village".into(),
            received: 2,
            on_time: 0,
        }],
        ..Default::default()
    });
    r
}

#[tokio::test]
async fn a_second_child_hub_for_an_owned_subtree_is_refused() {
    let pki = Pki::new();
    pki.issue(Role::Hub, CITY);
    pki.issue(Role::Hub, "51");
    pki.issue(Role::Node, "510722101002");
    let city = TestHub::start_mtls_as(&pki, CITY, fixtures::mianyang_areas(), Vec::new()).await;
    let submit = async |stem: &str, r: pb::Report| {
        pb::report_service_client::ReportServiceClient::new(city.channel(pki.client(stem)))
            .submit(r)
            .await
    };
    // the first child hub claims 三台县 with its rollup
    let first = submit("hub-510722", rollup_report("510722")).await;
    assert!(first.is_ok(), "{first:?}");
    assert_eq!(city.state.owners.list().len(), 1);

    // a replacement certificate for the same county is a second writer until released
    let old_serial = city.state.owners.list()[0].serial.clone();
    let new_serial = pki.reissue(Role::Hub, "510722");
    assert_ne!(old_serial, new_serial);
    let second = submit("hub-510722", rollup_report("510722"))
        .await
        .expect_err("a second owner is refused");
    assert_eq!(second.code(), tonic::Code::PermissionDenied);
    assert!(
        second.message().contains("already owned") && second.message().contains(&old_serial),
        "{}",
        second.message()
    );
    // so is a hub whose jurisdiction contains the owned subtree
    let wider = submit("hub-51", rollup_report("510722"))
        .await
        .expect_err("an overlapping claim is refused");
    assert_eq!(wider.code(), tonic::Code::PermissionDenied, "{wider:?}");
    // and a village's own form, which belongs to the county hub now
    let direct = submit(
        "node-510722101002",
        report("510722101002", "2026-10", vec![value("cases.fraud", 1)]),
    )
    .await
    .expect_err("forms under an owned subtree go to the child hub");
    assert_eq!(direct.code(), tonic::Code::FailedPrecondition, "{direct:?}");
    // a node certificate may not forward rollups at all
    let node_rollup = submit("node-510722101002", rollup_report("510722101002"))
        .await
        .expect_err("nodes do not forward");
    assert_eq!(node_rollup.code(), tonic::Code::PermissionDenied);

    let refusals = city
        .state
        .store
        .reader()
        .expect("reader")
        .refusals()
        .expect("read");
    assert_eq!(refusals.len(), 4, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .any(|r| r.action == "forward" && r.identity == "pingan://hub/51")
    );
    // nothing of the refused writes was counted
    assert_eq!(city_fraud(&city), Some(4));

    // released by the operator, the replacement takes over
    assert!(
        city.state
            .owners
            .release(&city.state.store, "510722".parse().unwrap())
            .unwrap()
    );
    let mut again = rollup_report("510722");
    again.rollup.as_mut().unwrap().cells[0].sum = 6;
    submit("hub-510722", again)
        .await
        .expect("the new owner forwards");
    assert_eq!(city.state.owners.list()[0].serial, new_serial);
}

/// Departments (条) report to their county's hub; the county hubs forward their reports as they
/// are, so the city's hub compares one 系统 across its counties, and a correction at a county
/// replaces the department's figure at the city. The city's territorial totals never see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn departments_reach_the_city_through_their_county_hubs_and_stay_out_of_its_totals() {
    use pingan_domain::department::Departments;
    let list = "id,name,area,system\n\
                sw-510722,三台县商务局,510722,商务系统\n\
                gzw-510722,三台县国资委,510722,国资系统\n\
                sw-510705,安州区商务局,510705,商务系统\n";
    let areas = fixtures::mianyang_areas();
    let departments = || Departments::from_csv(list.as_bytes(), Some(&areas)).expect("list");
    let pki = Pki::new();
    pki.issue(Role::Hub, CITY);
    let city = TestHub::start_departments(areas.clone(), departments(), Some((&pki, CITY))).await;
    let mut counties = Vec::new();
    let mut forwarders = Vec::new();
    for c in COUNTIES {
        if !pki.path(&format!("hub-{c}.pem")).exists() {
            pki.issue(Role::Hub, c);
        }
        let hub = TestHub::start_departments(areas.clone(), departments(), Some((&pki, c))).await;
        forwarders.push(hub.forward_to(&city.url, &pki, c, Level::County));
        counties.push(hub);
    }
    let send = |county: usize, id: &'static str, letters: i64| {
        let area = COUNTIES[county];
        if !pki.path(&format!("node-{id}.pem")).exists() {
            pki.issue_department(area, id);
        }
        let channel = counties[county].channel(pki.client(&format!("node-{id}")));
        async move {
            let mut r = report(area, "2026-10", vec![value("petitions.letters", letters)]);
            r.department = id.into();
            pb::report_service_client::ReportServiceClient::new(channel)
                .submit(r)
                .await
                .unwrap_or_else(|e| panic!("{id}: {e}"))
        }
    };
    send(0, "sw-510722", 10).await;
    send(0, "gzw-510722", 7).await;
    send(1, "sw-510705", 5).await;
    // a village's letters too: the city's territorial total is the village's alone
    pki.issue(Role::Node, "510722101002");
    pb::report_service_client::ReportServiceClient::new(
        counties[0].channel(pki.client("node-510722101002")),
    )
    .submit(report(
        "510722101002",
        "2026-10",
        vec![value("petitions.letters", 4)],
    ))
    .await
    .expect("the village");
    let by_system = |hub: &TestHub| -> Vec<(String, Option<i64>)> {
        let q = pingan_domain::question::DepartmentsQuery::try_from(&pb::DepartmentsRequest {
            area: CITY.into(),
            period: "2026-10".into(),
            metric: "petitions.letters".into(),
            group: "system".into(),
            ..Default::default()
        })
        .expect("question");
        let a = hub.state.engine.departments(&q).expect("answer");
        a.rows.into_iter().map(|r| (r.key, r.value)).collect()
    };
    let city_letters = |hub: &TestHub| {
        let r = hub
            .state
            .engine
            .ask_rollup(&pb::RollupRequest {
                area: CITY.into(),
                period: "2026-10".into(),
                metrics: vec!["petitions.letters".into()],
                by_category: false,
                approved_only: false,
            })
            .expect("rollup");
        r.figures[0].total
    };
    let expected = vec![
        ("商务系统".to_owned(), Some(10 + 5)),
        ("国资系统".to_owned(), Some(7)),
    ];
    wait_until(Duration::from_secs(30), || async {
        by_system(&city) == expected
    })
    .await;
    wait_until(Duration::from_secs(30), || async {
        city_letters(&city) == Some(4)
    })
    .await;
    // 安州区商务局 corrects 5 to 8 at its county: the city's 商务系统 becomes 18, never 23
    send(1, "sw-510705", 8).await;
    let corrected = vec![
        ("商务系统".to_owned(), Some(10 + 8)),
        ("国资系统".to_owned(), Some(7)),
    ];
    wait_until(Duration::from_secs(30), || async {
        by_system(&city) == corrected
    })
    .await;
    let at_city = city
        .state
        .store
        .reader()
        .expect("reader")
        .department_revisions("sw-510705", "2026-10".parse().unwrap())
        .expect("read");
    assert_eq!(
        at_city.len(),
        2,
        "the correction is the next revision at the city"
    );
    assert_eq!(at_city[1].sender, "pingan://hub/510705");
    assert_eq!(city_letters(&city), Some(4));
    // each county answers for its own departments only
    let santai = by_system(&counties[0]);
    assert_eq!(
        santai,
        [
            ("商务系统".to_owned(), Some(10)),
            ("国资系统".to_owned(), Some(7))
        ]
    );
    drop(forwarders);
}

/// `--forward-approved-only`: the city sees a village's figures once the county's township has
/// approved them (a correction waiting for review leaves the approved figure up there), and a
/// county's lock travels with its rollup: the city lists the month as final until the county
/// unlocks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approved_figures_and_the_countys_lock_travel_up() {
    let pki = Pki::new();
    pki.issue(Role::Hub, CITY);
    pki.issue(Role::Viewer, CITY);
    let areas = fixtures::mianyang_areas();
    let city = TestHub::start_mtls_as(&pki, CITY, areas.clone(), Vec::new()).await;
    let county = TestHub::start_areas(areas).await;
    let _forwarder = county.forward_figures_to(
        &city.url,
        &pki,
        "510722",
        Level::County,
        pingan_domain::question::Figures::Approved,
    );
    let mut client = county.client().await;
    let mut review = pb::review_service_client::ReviewServiceClient::connect(county.url.clone())
        .await
        .expect("connect");
    let mut locks = pb::lock_service_client::LockServiceClient::connect(county.url.clone())
        .await
        .expect("connect");
    let decide = |area: &str, revision: u32| pb::DecideRequest {
        targets: vec![pb::ReviewTarget {
            area: area.into(),
            period: "2026-10".into(),
            revision,
        }],
        approve: true,
        by: "潼川镇综治中心".into(),
        ..Default::default()
    };
    let (approved, waiting) = ("510722101002", "510722104003");
    for (v, n) in [(approved, 5), (waiting, 3)] {
        client
            .submit(report(v, "2026-10", vec![value("cases.fraud", n)]))
            .await
            .expect("accepted");
    }
    review.decide(decide(approved, 1)).await.expect("approved");
    // only the approved 5 goes up: the waiting village's 3 never reaches the city
    wait_until(Duration::from_secs(30), || async {
        city_fraud(&city) == Some(5)
    })
    .await;
    assert_eq!(
        city_fraud(&county),
        Some(8),
        "the county's own figures are all current ones"
    );
    // a correction waits for review: the city keeps the approved 5, then takes the approved 2
    client
        .submit(report(approved, "2026-10", vec![value("cases.fraud", 2)]))
        .await
        .expect("accepted");
    review.decide(decide(approved, 2)).await.expect("approved");
    wait_until(Duration::from_secs(30), || async {
        city_fraud(&city) == Some(2)
    })
    .await;

    // the county closes October (forced: villages are missing), the city learns it is final
    let lock = |area: &str| pb::LockRequest {
        area: area.into(),
        period: "2026-10".into(),
        reason: "月度考核".into(),
        by: "三台县综治中心".into(),
        force: true,
        ..Default::default()
    };
    locks.lock(lock("510722")).await.expect("locked");
    let city_locks = pb::lock_service_client::LockServiceClient::new(
        city.channel(pki.client(&format!("viewer-{CITY}"))),
    );
    let listed = || {
        let mut c = city_locks.clone();
        async move {
            c.locks(pb::LocksRequest {
                period: "2026-10".into(),
                history: false,
            })
            .await
            .expect("the city lists locks")
            .into_inner()
            .locks
        }
    };
    wait_until(Duration::from_secs(30), || async {
        listed().await.iter().any(|l| l.area == "510722")
    })
    .await;
    let from_county = listed().await;
    let l = from_county
        .iter()
        .find(|l| l.area == "510722")
        .expect("the county's lock");
    assert!(l.locked);
    assert_eq!(l.via, "pingan://hub/510722");
    assert_eq!(l.by, "三台县综治中心");
    assert!(l.reason.contains("强制关账"), "{}", l.reason);
    assert_eq!(l.form, "zongzhi_monthly");
    // 潼川镇 is opened again: the county's month is no longer final, and the city says so
    locks.unlock(lock("510722101")).await.expect("unlocked");
    wait_until(Duration::from_secs(30), || async {
        !listed().await.iter().any(|l| l.area == "510722")
    })
    .await;
}
