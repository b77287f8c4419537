//! Leaders' answers cross-checked against the brute-force reference, on randomized hierarchies
//! and data: missing reports, corrections, zero reports, stocks, rates with zero denominators,
//! late reports, codes that appear and disappear, cumulative ranges crossing a year.

use std::process::Command;

use chrono::TimeZone as _;
use pingan_domain::{Area, AreaCode, Areas, Catalogue, Level, Period, Span, pb};
use pingan_hub::clock::beijing;
use pingan_tests::{
    AskWire, TestHub, bin,
    reference::{Reference, ranks, robust_z},
    test_clock, value,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn area(code: &str, name: &str) -> Area {
    Area {
        code: code.parse().unwrap(),
        name: name.into(),
        valid_from: None,
        valid_until: None,
        successor: None,
    }
}

/// A random prefecture: 1–2 counties, 1–4 townships each, 0–5 villages each; one village
/// abolished and one created at 2026-01; populations on villages (not all) and some townships.
fn random_areas(rng: &mut StdRng) -> Areas {
    let mut v = vec![area("51", "四川省"), area("5107", "绵阳市")];
    let mut villages = Vec::new();
    for c in 0..rng.random_range(1..=2) {
        let county = format!("5107{:02}", 22 + c);
        v.push(area(&county, &format!("县{c}")));
        for t in 0..rng.random_range(1..=4) {
            let town = format!("{county}{:03}", 100 + t);
            v.push(area(&town, &format!("镇{c}{t}")));
            for i in 0..rng.random_range(0..=5) {
                let code = format!("{town}{:03}", 200 + i);
                v.push(area(&code, &format!("村{c}{t}{i}")));
                villages.push(code);
            }
        }
    }
    let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    if let Some(first) = villages.first() {
        let a = v.iter_mut().find(|a| a.code.to_string() == *first).unwrap();
        a.valid_until = Some(day);
        let mut new = area(&format!("{}299", &first[..9]), "新村");
        new.valid_from = Some(day);
        villages.push(new.code.to_string());
        v.push(new);
    }
    let mut areas = Areas::from_areas(v).unwrap();
    let mut pop = String::from("code,year,population\n");
    for (i, code) in villages.iter().enumerate() {
        if i % 4 != 3 {
            for y in [2024, 2025, 2026] {
                pop += &format!("{code},{y},{}\n", rng.random_range(500..4000));
            }
        }
    }
    if let Some(t) = areas
        .iter()
        .find(|a| a.code.level() == Level::Township)
        .map(|a| a.code)
    {
        pop += &format!("{t},2026,20000\n");
    }
    areas.load_population(pop.as_bytes()).unwrap();
    areas
}

fn at(y: i32, m: u32, d: u32) -> chrono::DateTime<chrono::FixedOffset> {
    beijing()
        .with_ymd_and_hms(y, m, d, 10, 0, 0)
        .single()
        .unwrap()
}

/// Submits 24 months of random reports for every reporter; returns the months.
async fn load_random_data(hub: &TestHub, areas: &Areas, rng: &mut StdRng) -> Vec<pb::Report> {
    let catalogue = Catalogue::builtin();
    let mut sent = Vec::new();
    let mut client = hub.client().await;
    let first: Period = "2024-11".parse().unwrap();
    let months: Vec<Period> = (0..24).map(|i| first.shift(i)).collect();
    let mut reporters: Vec<AreaCode> = areas
        .iter()
        .filter(|a| {
            matches!(
                a.code.level(),
                Level::County | Level::Township | Level::Village
            )
        })
        .map(|a| a.code)
        .collect();
    reporters.sort();
    for &m in &months {
        let next = m.next().first_day();
        use chrono::Datelike as _;
        let mut late = Vec::new();
        for &code in &reporters {
            if !areas.get(code).unwrap().valid_for(m) || rng.random_bool(0.15) {
                continue; // missing
            }
            let mut r = pingan_tests::report(&code.to_string(), &m.to_string(), Vec::new());
            if rng.random_bool(0.1) {
                r.zero_report = true;
            } else {
                r.values = pingan_tests::random_values(rng, &catalogue, &r.area, &r.period);
                if r.values.is_empty() {
                    r.zero_report = true;
                }
            }
            if rng.random_bool(0.12) {
                late.push(r);
                continue;
            }
            hub.state.clock.set(at(next.year(), next.month(), 3));
            client.submit(r.clone()).await.unwrap();
            sent.push(r.clone());
            if rng.random_bool(0.1) {
                // a correction, possibly after the deadline: it never makes the report late
                hub.state.clock.set(at(next.year(), next.month(), 20));
                let mut c = pingan_tests::report(
                    &r.area,
                    &r.period,
                    pingan_tests::random_values(rng, &catalogue, &r.area, &r.period),
                );
                c.zero_report = c.values.is_empty();
                client.submit(c.clone()).await.unwrap();
                sent.push(c);
            }
        }
        hub.state.clock.set(at(next.year(), next.month(), 12));
        for r in late {
            client.submit(r.clone()).await.unwrap();
            sent.push(r);
        }
    }
    hub.state.clock.set(at(2026, 11, 22));
    sent
}

fn approx(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

thread_local! {
    /// How many checks compared a present value, so that a run comparing only blanks fails.
    static PRESENT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[track_caller]
fn same(what: &str, engine: Option<f64>, reference: Option<f64>) {
    assert!(
        approx(engine, reference),
        "{what}: engine {engine:?}, reference {reference:?}"
    );
    if reference.is_some() {
        PRESENT.with(|p| p.set(p.get() + 1));
    }
}

const SPANS: [&str; 6] = [
    "2026-10",
    "2026-Q3",
    "2025-11..2026-02",
    "2025",
    "2026-H1",
    "2024-11..2026-10",
];
const MEASURES: [&str; 5] = [
    "disputes.mediated",
    "grid.workers",
    "调处成功率",
    "万人发案率",
    "disputes.identified",
];

fn check_everything(hub: &TestHub, areas: &Areas, seed: u64) {
    PRESENT.with(|p| p.set(0));
    let (mut ranked, mut missing_seen, mut late_seen, mut undefined_rates) = (0, 0, 0, 0);
    let catalogue = Catalogue::builtin();
    let reference = Reference::new(&catalogue, areas, hub.all_revisions());
    let engine = &hub.state.engine;
    let mut inner: Vec<AreaCode> = areas
        .iter()
        .map(|a| a.code)
        .filter(|c| c.level() < Level::Village)
        .collect();
    inner.sort();
    let some_villages: Vec<AreaCode> = areas
        .iter()
        .map(|a| a.code)
        .filter(|c| c.level() == Level::Village)
        .take(3)
        .collect();
    for span_s in SPANS {
        let span: Span = span_s.parse().unwrap();
        // rollups: own and subtree of every metric and part, rates, completeness
        for &a in inner.iter().chain(&some_villages) {
            let ctx = format!("seed {seed} rollup {a} {span_s}");
            let r = engine
                .ask_rollup(&pb::RollupRequest {
                    area: a.to_string(),
                    period: span_s.into(),
                    metrics: vec![],
                    by_category: true,
                    approved_only: false,
                })
                .unwrap();
            for f in &r.figures {
                same(
                    &format!("{ctx} {} total", f.metric),
                    f.total.map(|v| v as f64),
                    reference
                        .value(a, &span, &f.metric, None, false)
                        .map(|v| v as f64),
                );
                same(
                    &format!("{ctx} {} own", f.metric),
                    f.own.map(|v| v as f64),
                    reference
                        .value(a, &span, &f.metric, None, true)
                        .map(|v| v as f64),
                );
                for p in &f.parts {
                    same(
                        &format!("{ctx} {}[{}]", f.metric, p.part),
                        p.value.map(|v| v as f64),
                        reference
                            .value(a, &span, &f.metric, Some(&p.part), false)
                            .map(|v| v as f64),
                    );
                }
            }
            for rate in &r.rates {
                same(
                    &format!("{ctx} {}", rate.indicator),
                    rate.value,
                    reference.figure(a, &span, &rate.indicator),
                );
            }
            let (e, rc, t) = reference.counts(a, &span, &reference.levels_below(a));
            let c = r.completeness.unwrap();
            assert_eq!(
                (c.expected, c.received, c.on_time),
                (e, rc, t),
                "{ctx} completeness"
            );
        }
        // comparisons of children and of villages
        for &a in &inner {
            for level in ["", "village"] {
                for measure in MEASURES {
                    let ctx = format!("seed {seed} compare {a} {span_s} {measure} level {level:?}");
                    let req = pb::CompareRequest {
                        area: a.to_string(),
                        period: span_s.into(),
                        metric: measure.into(),
                        level: level.into(),
                        complete_only: false,
                        ..Default::default()
                    };
                    let reply = engine.ask_compare(&req).unwrap();
                    // the same answer asked as columns reads back as the same rows
                    let columns = engine
                        .ask_compare(&pb::CompareRequest {
                            as_columns: true,
                            ..req
                        })
                        .unwrap()
                        .columns
                        .unwrap();
                    assert_eq!(
                        pingan_domain::compare_columns::rows_of(columns).unwrap(),
                        reply.rows,
                        "{ctx} as columns"
                    );
                    let rows: Vec<AreaCode> = match level {
                        "" => areas.children(a).to_vec(),
                        _ => areas.descendants_at(a, Level::Village),
                    };
                    assert_eq!(reply.rows.len(), rows.len(), "{ctx}");
                    let figures: Vec<Option<f64>> = rows
                        .iter()
                        .map(|r| reference.figure(*r, &span, measure))
                        .collect();
                    let rk = ranks(&figures);
                    let z = robust_z(&figures);
                    let parent_num = reference.num_den(a, &span, measure).0;
                    for (i, code) in rows.iter().enumerate() {
                        let row = reply
                            .rows
                            .iter()
                            .find(|r| r.code == code.to_string())
                            .unwrap();
                        let ctx = format!("{ctx} row {code}");
                        let (num, den, factor) = reference.num_den(*code, &span, measure);
                        same(&format!("{ctx} value"), row.value, num);
                        if factor.is_some() {
                            same(&format!("{ctx} rate"), row.rate, figures[i]);
                            same(&format!("{ctx} denominator"), row.denominator, den);
                        }
                        assert_eq!(row.rank, rk[i].unwrap_or(0), "{ctx} rank");
                        ranked += usize::from(row.rank > 0);
                        undefined_rates +=
                            usize::from(factor.is_some() && num.is_some() && figures[i].is_none());
                        let share = num
                            .zip(parent_num)
                            .and_then(|(n, p)| (p != 0.0).then(|| n / p * 100.0));
                        same(&format!("{ctx} share"), row.share, share);
                        let yoy = reference.figure(*code, &span.year_earlier(), measure);
                        same(&format!("{ctx} yoy base"), row.yoy_base, yoy);
                        let change = figures[i].zip(yoy).map(|(v, b)| v - b);
                        same(&format!("{ctx} yoy change"), row.yoy_change, change);
                        same(
                            &format!("{ctx} yoy pct"),
                            row.yoy_pct,
                            change
                                .zip(yoy)
                                .and_then(|(c, b)| (b != 0.0).then(|| c / b * 100.0)),
                        );
                        let mom = reference.figure(*code, &span.previous(), measure);
                        same(&format!("{ctx} mom base"), row.mom_base, mom);
                        same(&format!("{ctx} z"), row.z, z[i]);
                        assert_eq!(
                            row.outlier,
                            z[i].is_some_and(|z| z.abs() > 3.5),
                            "{ctx} outlier"
                        );
                        let levels: Vec<Level> = reference
                            .levels_below(a)
                            .into_iter()
                            .filter(|l| *l >= code.level())
                            .collect();
                        let (e, rc, t) = reference.counts(*code, &span, &levels);
                        let c = row.completeness.unwrap();
                        assert_eq!(
                            (c.expected, c.received, c.on_time),
                            (e, rc, t),
                            "{ctx} completeness"
                        );
                    }
                    // rank order: ranked rows first, by rank
                    let order: Vec<u32> = reply
                        .rows
                        .iter()
                        .map(|r| if r.rank == 0 { u32::MAX } else { r.rank })
                        .collect();
                    assert!(
                        order.windows(2).all(|w| w[0] <= w[1]),
                        "{ctx} order {order:?}"
                    );
                }
            }
        }
        // completeness lists
        for &a in &inner {
            for level in [None, Some(Level::Village)] {
                let ctx = format!("seed {seed} completeness {a} {span_s} {level:?}");
                let reply = engine
                    .ask_completeness(&pb::CompletenessRequest {
                        area: a.to_string(),
                        period: span_s.into(),
                        level: level.map(|l| l.to_string()).unwrap_or_default(),
                        ..Default::default()
                    })
                    .unwrap();
                let levels: Vec<Level> = reference
                    .levels_below(a)
                    .into_iter()
                    .filter(|l| level.is_none_or(|x| x == *l))
                    .collect();
                let (missing, late) = reference.missing_and_late(a, &span, &levels);
                let mut got_missing: Vec<(String, String)> = reply
                    .missing
                    .iter()
                    .map(|m| (m.code.clone(), m.period.clone()))
                    .collect();
                let mut got_late: Vec<(String, String)> = reply
                    .late
                    .iter()
                    .map(|m| (m.code.clone(), m.period.clone()))
                    .collect();
                got_missing.sort();
                got_late.sort();
                assert_eq!(got_missing, missing, "{ctx} missing");
                assert_eq!(got_late, late, "{ctx} late");
                missing_seen += missing.len();
                late_seen += late.len();
                let s = reply.summary.unwrap();
                assert_eq!(s.missing as usize, missing.len(), "{ctx}");
                assert_eq!(s.late as usize, late.len(), "{ctx}");
            }
        }
    }
    // trends: single months and quarters, with 同比
    for &a in &inner {
        for (period, n) in [("2026-10", 12u32), ("2026-Q3", 4)] {
            for measure in MEASURES {
                let reply = engine
                    .ask_trend(&pb::TrendRequest {
                        area: a.to_string(),
                        period: period.into(),
                        periods: n,
                        metric: measure.into(),
                        approved_only: false,
                        level: String::new(),
                        as_columns: false,
                    })
                    .unwrap();
                assert_eq!(reply.points.len(), n as usize);
                for p in &reply.points {
                    let span: Span = p.period.parse().unwrap();
                    let ctx = format!("seed {seed} trend {a} {} {measure}", p.period);
                    same(&ctx, p.value, reference.figure(a, &span, measure));
                    same(
                        &format!("{ctx} yoy"),
                        p.yoy_base,
                        reference.figure(a, &span.year_earlier(), measure),
                    );
                }
            }
        }
    }
    // trends of every area of a level below an area, one series each (villages' own figures
    // come from the store, the others' from the rollups)
    for &a in &inner {
        for level in Level::ALL.into_iter().filter(|l| *l > a.level()) {
            for measure in MEASURES {
                let req = pb::TrendRequest {
                    area: a.to_string(),
                    period: "2026-Q3".into(),
                    periods: 4,
                    metric: measure.into(),
                    approved_only: false,
                    level: level.to_string(),
                    as_columns: false,
                };
                let reply = engine.ask_trend(&req).unwrap();
                // the same series asked as columns read back as the same series
                let mut columns = engine
                    .ask_trend(&pb::TrendRequest {
                        as_columns: true,
                        ..req
                    })
                    .unwrap();
                // (an area with no areas of the level below has no series to send)
                let has_series = !reply.series.is_empty();
                assert!(
                    columns.series.is_empty() && columns.series_columns.is_some() == has_series,
                    "seed {seed} trend {a} {level} {measure}: no columns"
                );
                pingan_domain::trend_columns::columns_into_series(&mut columns).unwrap();
                assert_eq!(
                    columns, reply,
                    "seed {seed} trend {a} {level} {measure} as columns"
                );
                let mut rows = areas.descendants_at(a, level);
                rows.sort();
                let got: Vec<String> = reply.series.iter().map(|s| s.area.clone()).collect();
                let want: Vec<String> = rows.iter().map(ToString::to_string).collect();
                assert_eq!(got, want, "seed {seed} trend {a} {level} rows");
                for (i, s) in reply.series.iter().enumerate() {
                    let code: AreaCode = s.area.parse().unwrap();
                    assert_eq!(s.points.len(), 4);
                    for p in &s.points {
                        let span: Span = p.period.parse().unwrap();
                        let ctx = format!(
                            "seed {seed} trend {a} {level} {code} {} {measure}",
                            p.period
                        );
                        same(&ctx, p.value, reference.figure(code, &span, measure));
                        same(
                            &format!("{ctx} yoy"),
                            p.yoy_base,
                            reference.figure(code, &span.year_earlier(), measure),
                        );
                        // completeness does not depend on the measure (and the plain count
                        // reads every area): a few rows of one measure
                        if measure == MEASURES[0] && i < 5 {
                            let levels = reference.levels_below(code);
                            let (e, rc, _) = reference.counts(code, &span, &levels);
                            let c = p.completeness.unwrap();
                            assert_eq!((c.expected, c.received), (e, rc), "{ctx} completeness");
                        }
                    }
                }
            }
        }
    }
    // the data must exercise what is checked: values, ranks, gaps, lateness, undefined rates
    let present = PRESENT.with(|p| p.get());
    assert!(
        present > 2000,
        "seed {seed}: only {present} present values compared"
    );
    assert!(
        ranked > 100 && missing_seen > 0 && late_seen > 0,
        "seed {seed}: {ranked} ranked, {missing_seen} missing, {late_seen} late"
    );
    assert!(
        undefined_rates > 0,
        "seed {seed}: no rate with a zero denominator came up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_match_a_brute_force_reference_on_random_hierarchies() {
    for seed in [1u64, 2, 3] {
        let mut rng = StdRng::seed_from_u64(seed);
        let areas = random_areas(&mut rng);
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hub = TestHub::start_with(listener, dir.path(), test_clock(), areas.clone()).await;
        load_random_data(&hub, &areas, &mut rng).await;
        check_everything(&hub, &areas, seed);
        // the rollups rebuilt from every stored revision at start-up (the test hub saves no
        // snapshot) give the same answers
        hub.stop().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hub = TestHub::start_with(listener, dir.path(), test_clock(), areas.clone()).await;
        assert!(!hub.state.engine.loaded().rebuilt.is_empty(), "seed {seed}");
        check_everything(&hub, &areas, seed);
        hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_right_after_a_receipt_sees_the_report() {
    let hub = TestHub::start().await;
    let mut reports = hub.client().await;
    let mut expected = 0;
    let villages = pingan_domain::fixtures::santai_areas()
        .descendants_at(pingan_domain::fixtures::santai(), Level::Village);
    for (i, village) in (1..=20i64).zip(villages) {
        reports
            .submit(pingan_tests::report(
                &village.to_string(),
                "2026-10",
                vec![value("cases.fraud", i)],
            ))
            .await
            .unwrap();
        expected += i;
        let total = pingan_tests::rollup_total(&hub.url, "510722", "2026-10", "cases.fraud").await;
        assert_eq!(total, Some(expected));
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_data_is_missing_not_zero_and_bad_questions_are_refused() {
    let hub = TestHub::start().await;
    let mut queries = pb::query_service_client::QueryServiceClient::connect(hub.url.clone())
        .await
        .unwrap();
    let r = queries
        .rollup(pb::RollupRequest {
            area: "510722".into(),
            period: "2026-10".into(),
            metrics: vec![],
            by_category: false,
            approved_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        r.figures
            .iter()
            .all(|f| f.total.is_none() && f.own.is_none())
    );
    assert!(r.rates.iter().all(|x| x.value.is_none()));
    // the monthly form's county, townships and villages; the townships' two half-months
    assert_eq!(r.completeness.unwrap().missing, 496 + 2 * 33);
    for (req, code) in [
        (
            pb::CompareRequest {
                area: "510722".into(),
                period: "2026-13".into(),
                metric: "cases.fraud".into(),
                ..Default::default()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            pb::CompareRequest {
                area: "510799".into(),
                period: "2026-10".into(),
                metric: "cases.fraud".into(),
                ..Default::default()
            },
            tonic::Code::NotFound,
        ),
        (
            pb::CompareRequest {
                area: "510722".into(),
                period: "2026-10".into(),
                metric: "nope".into(),
                ..Default::default()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            pb::CompareRequest {
                area: "510722".into(),
                period: "2026-10".into(),
                metric: "cases.fraud".into(),
                level: "county".into(),
                ..Default::default()
            },
            tonic::Code::InvalidArgument,
        ),
    ] {
        let err = queries.compare(req.clone()).await.unwrap_err();
        assert_eq!(err.code(), code, "{req:?}: {err:?}");
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_csv_that_reads_back_as_the_grpc_answer() {
    let hub = TestHub::start().await;
    let mut client = hub.client().await;
    let areas = pingan_domain::fixtures::santai_areas();
    let county = pingan_domain::fixtures::santai();
    for (i, t) in areas
        .descendants_at(county, Level::Township)
        .iter()
        .enumerate()
    {
        let i = i as i64;
        for m in [
            "2026-07", "2026-08", "2026-09", "2025-07", "2025-08", "2025-09",
        ] {
            let vals = vec![
                value("disputes.mediated", 10 + i % 7),
                value("disputes.resolved", 5 + i % 5),
            ];
            // a township's disputes go on its half-monthly form; the month reads them
            client
                .submit(pingan_tests::report(
                    &t.to_string(),
                    &format!("{m}-H1"),
                    vals,
                ))
                .await
                .unwrap();
        }
    }
    let url = hub.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin("pingan-hub"))
            .args([
                "query",
                "compare",
                "--insecure",
                "--hub",
                &url,
                "--area",
                "510722",
                "--period",
                "2026-Q3",
                "--metric",
                "调处成功率",
                "--format",
                "csv",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let body = text
        .strip_prefix('\u{feff}')
        .expect("CSV starts with a UTF-8 BOM");
    let mut csv = csv::Reader::from_reader(body.as_bytes());
    let headers = csv.headers().unwrap().clone();
    let col = |h: &str| {
        headers
            .iter()
            .position(|x| x == h)
            .unwrap_or_else(|| panic!("no column {h}"))
    };
    let grpc = pb::query_service_client::QueryServiceClient::connect(hub.url.clone())
        .await
        .unwrap()
        .compare(pb::CompareRequest {
            area: "510722".into(),
            period: "2026-Q3".into(),
            metric: "调处成功率".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), grpc.rows.len());
    assert_eq!(rows.len(), 33);
    let num = |s: &str| (!s.is_empty()).then(|| s.parse::<f64>().unwrap());
    // the CSV holds what the table shows: rates to 2 decimals, changes in percent to 1
    let rounded = |v: Option<f64>, decimals: i32| {
        let k = 10f64.powi(decimals);
        v.map(|x| (x * k).round() / k)
    };
    for (csv_row, g) in rows.iter().zip(&grpc.rows) {
        assert_eq!(&csv_row[col("代码")], g.code);
        assert_eq!(&csv_row[col("名称")], g.name);
        assert_eq!(csv_row[col("排名")].parse::<u32>().unwrap(), g.rank);
        same("rate", num(&csv_row[col("比率(%)")]), rounded(g.rate, 2));
        same("value", num(&csv_row[col("分子")]), g.value);
        same("denominator", num(&csv_row[col("分母")]), g.denominator);
        same("yoy", num(&csv_row[col("同比%")]), rounded(g.yoy_pct, 1));
        assert_eq!(
            csv_row[col("应报")].parse::<u64>().unwrap(),
            g.completeness.unwrap().expected
        );
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weeks_and_days_roll_up_and_incomplete_rows_can_be_withheld() {
    let hub = TestHub::start().await;
    let mut client = hub.client().await;
    let areas = pingan_domain::fixtures::santai_areas();
    let town: AreaCode = "510722101".parse().unwrap();
    let villages = areas.descendants_at(town, Level::Village);
    // sensitive period: daily reports from two villages, one a zero report; weekly from all but one
    client
        .submit(pingan_tests::report(
            &villages[0].to_string(),
            "2026-10-01",
            vec![value("petitions.visitors", 3)],
        ))
        .await
        .unwrap();
    let mut zero = pingan_tests::report(&villages[1].to_string(), "2026-10-01", vec![]);
    zero.zero_report = true;
    client.submit(zero).await.unwrap();
    client
        .submit(pingan_tests::report(
            &villages[0].to_string(),
            "2026-10-02",
            vec![value("petitions.visitors", 4)],
        ))
        .await
        .unwrap();
    for (i, v) in villages.iter().enumerate().skip(1) {
        for w in ["2026-W40", "2026-W41"] {
            client
                .submit(pingan_tests::report(
                    &v.to_string(),
                    w,
                    vec![
                        value("patrol.sessions", i as i64),
                        value("patrol.person_times", 2 * i as i64),
                    ],
                ))
                .await
                .unwrap();
        }
    }
    let engine = &hub.state.engine;
    let total = |period: &str, metric: &str| {
        engine
            .ask_rollup(&pb::RollupRequest {
                area: town.to_string(),
                period: period.into(),
                metrics: vec![metric.into()],
                by_category: false,
                approved_only: false,
            })
            .unwrap()
            .figures[0]
            .total
    };
    assert_eq!(
        total("2026-10-01", "petitions.visitors"),
        Some(3),
        "a zero report adds 0, not missing"
    );
    assert_eq!(
        total("2026-10-01..2026-10-02", "petitions.visitors"),
        Some(7)
    );
    let n = villages.len() as i64;
    assert_eq!(
        total("2026-W40..2026-W41", "patrol.sessions"),
        Some(2 * (n - 1) * n / 2)
    );
    assert_eq!(
        total("2026-10", "patrol.sessions"),
        None,
        "weekly reports do not count as the month's"
    );
    // the township is incomplete for the week (its own report and one village are missing)
    let c = engine
        .ask_compare(&pb::CompareRequest {
            area: "510722".into(),
            period: "2026-W40".into(),
            metric: "patrol.sessions".into(),
            level: String::new(),
            complete_only: true,
            ..Default::default()
        })
        .unwrap();
    let row = c.rows.iter().find(|r| r.code == town.to_string()).unwrap();
    assert!(
        row.withheld && row.value.is_none() && row.rank == 0,
        "{row:?}"
    );
    let open = engine
        .ask_compare(&pb::CompareRequest {
            area: "510722".into(),
            period: "2026-W40".into(),
            metric: "patrol.sessions".into(),
            level: String::new(),
            complete_only: false,
            ..Default::default()
        })
        .unwrap();
    let row = open
        .rows
        .iter()
        .find(|r| r.code == town.to_string())
        .unwrap();
    assert_eq!(
        (row.value, row.rank, row.withheld),
        (Some(((n - 1) * n / 2) as f64), 1, false)
    );
    hub.stop().await;
}

/// Every answer a leader can get for an area, encoded: for byte-for-byte comparisons.
fn answers(hub: &TestHub, areas: &Areas) -> Vec<Vec<u8>> {
    use prost::Message as _;
    let e = &hub.state.engine;
    let mut out = Vec::new();
    let mut inner: Vec<AreaCode> = areas
        .iter()
        .map(|a| a.code)
        .filter(|c| c.level() < Level::Village)
        .collect();
    inner.sort();
    for a in inner {
        for period in ["2026-10", "2026-Q3", "2025-11..2026-02"] {
            let area = a.to_string();
            out.push(
                e.ask_rollup(&pb::RollupRequest {
                    area: area.clone(),
                    period: period.into(),
                    metrics: vec![],
                    by_category: true,
                    approved_only: false,
                })
                .unwrap()
                .encode_to_vec(),
            );
            for metric in ["调处成功率", "grid.workers"] {
                for level in ["", "village"] {
                    let req = pb::CompareRequest {
                        area: area.clone(),
                        period: period.into(),
                        metric: metric.into(),
                        level: level.into(),
                        complete_only: false,
                        ..Default::default()
                    };
                    out.push(e.ask_compare(&req).unwrap().encode_to_vec());
                }
            }
            out.push(
                e.ask_completeness(&pb::CompletenessRequest {
                    area: area.clone(),
                    period: period.into(),
                    level: String::new(),
                    ..Default::default()
                })
                .unwrap()
                .encode_to_vec(),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_every_submission_shuffled_changes_no_answer_by_a_byte() {
    // the first seed from 7 on whose random prefecture has at least 20 areas
    let (mut rng, areas) = (7..)
        .map(|seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let areas = random_areas(&mut rng);
            (rng, areas)
        })
        .find(|(_, a)| a.len() >= 20)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub = TestHub::start_with(listener, dir.path(), test_clock(), areas.clone()).await;
    let sent = load_random_data(&hub, &areas, &mut rng).await;
    assert!(
        sent.len() > 300,
        "only {} submissions ({} areas)",
        sent.len(),
        areas.len()
    );
    let before = answers(&hub, &areas);
    let revisions = hub.revision_count();
    // every submission three more times, in shuffled order, on several concurrent streams
    let mut replay: Vec<pb::Report> = sent
        .iter()
        .cloned()
        .chain(sent.iter().cloned())
        .chain(sent.iter().cloned())
        .collect();
    use rand::seq::SliceRandom as _;
    replay.shuffle(&mut rng);
    let mut tasks = Vec::new();
    for chunk in replay.chunks(replay.len().div_ceil(4)) {
        let mut client = hub.client().await;
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut stream = client
                .submit_batch(tokio_stream::iter(chunk))
                .await
                .unwrap()
                .into_inner();
            let mut n = 0;
            while let Some(r) = stream.message().await.unwrap() {
                match r.outcome {
                    Some(pb::batch_result::Outcome::Receipt(rc)) => assert!(rc.duplicate, "{rc:?}"),
                    other => panic!("a replay must get its original receipt, got {other:?}"),
                }
                n += 1;
            }
            n
        }));
    }
    let mut replayed = 0;
    for t in tasks {
        replayed += t.await.unwrap();
    }
    assert_eq!(replayed, 3 * sent.len());
    assert_eq!(hub.revision_count(), revisions, "nothing counted twice");
    assert!(
        answers(&hub, &areas) == before,
        "answers changed after the replay"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_takes_unchanged_periods_from_the_saved_rollups_and_rebuilds_the_rest() {
    let seed = 4;
    let mut rng = StdRng::seed_from_u64(seed);
    let areas = random_areas(&mut rng);
    let dir = tempfile::tempdir().unwrap();
    let start = |areas: Areas| {
        let data = dir.path().to_owned();
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            TestHub::start_with(listener, &data, test_clock(), areas).await
        }
    };
    let hub = start(areas.clone()).await;
    load_random_data(&hub, &areas, &mut rng).await;
    let periods = hub.state.engine.periods().len() as u64;
    assert_eq!(hub.state.engine.loaded().rebuilt, vec![], "an empty store");
    let before = answers(&hub, &areas);
    assert_eq!(hub.state.engine.save_snapshot().unwrap(), periods);
    assert_eq!(
        hub.state.engine.save_snapshot().unwrap(),
        0,
        "nothing changed since the last save"
    );
    hub.stop().await;

    // every period from the saved rollups, and the same answers to the byte
    let hub = start(areas.clone()).await;
    let loaded = hub.state.engine.loaded();
    assert_eq!(
        (
            loaded.unchanged.len() as u64,
            loaded.rebuilt.len(),
            loaded.revisions
        ),
        (periods, 0, 0)
    );
    assert_eq!(answers(&hub, &areas), before);
    check_everything(&hub, &areas, seed);

    // a correction after the save: its period alone is rebuilt, and the answers include it
    let village = areas
        .iter()
        .map(|a| a.code)
        .filter(|c| c.level() == Level::Village)
        .find(|c| hub.current(&c.to_string(), "2026-10").is_some())
        .unwrap();
    let mut client = hub.client().await;
    let mut c = pingan_tests::report(
        &village.to_string(),
        "2026-10",
        vec![value("disputes.identified", 977)],
    );
    c.zero_report = false;
    client.submit(c).await.unwrap();
    hub.stop().await;
    let hub = start(areas.clone()).await;
    let loaded = hub.state.engine.loaded();
    assert_eq!(loaded.rebuilt, vec!["2026-10".parse::<Period>().unwrap()]);
    assert_eq!(loaded.unchanged.len() as u64, periods - 1);
    assert_ne!(answers(&hub, &areas), before);
    check_everything(&hub, &areas, seed);
    let after = answers(&hub, &areas);
    hub.stop().await;

    // a damaged snapshot is ignored: everything rebuilt, the same answers
    let path = dir.path().join(pingan_hub::query::snapshot::FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&path, bytes).unwrap();
    let hub = start(areas.clone()).await;
    let loaded = hub.state.engine.loaded();
    assert_eq!(
        (loaded.unchanged.len(), loaded.rebuilt.len() as u64),
        (0, periods)
    );
    assert_eq!(answers(&hub, &areas), after);
    hub.stop().await;

    // another registry: the snapshot is not for it
    std::fs::remove_file(&path).ok();
    let hub = start(areas.clone()).await;
    assert_eq!(hub.state.engine.save_snapshot().unwrap(), periods);
    hub.stop().await;
    let mut fewer: Vec<Area> = areas.iter().cloned().collect();
    fewer.retain(|a| a.code != village);
    let hub = start(Areas::from_areas(fewer).unwrap()).await;
    let loaded = hub.state.engine.loaded();
    assert_eq!(
        (loaded.unchanged.len(), loaded.rebuilt.len() as u64),
        (0, periods)
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nation_ranks_every_area_of_a_level_across_provinces() {
    let seed = 5;
    let mut rng = StdRng::seed_from_u64(seed);
    // two provinces: the random hierarchy and a copy of it under another province code
    let one = random_areas(&mut rng);
    let mut all: Vec<Area> = one.iter().cloned().collect();
    for a in one.iter() {
        let code = a.code.to_string();
        let moved = format!("{}{}", (code[..2].parse::<u32>().unwrap() + 1), &code[2..]);
        let mut b = a.clone();
        b.code = moved.parse().unwrap();
        all.push(b);
    }
    let mut areas = Areas::from_areas(all).unwrap();
    let mut pop = String::from("code,year,population\n");
    for a in areas.iter().filter(|a| a.code.level() == Level::Village) {
        for y in [2025, 2026] {
            pop += &format!("{},{y},{}\n", a.code, rng.random_range(500..4000));
        }
    }
    areas.load_population(pop.as_bytes()).unwrap();
    assert_eq!(areas.roots().len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub = TestHub::start_with(listener, dir.path(), test_clock(), areas.clone()).await;
    load_random_data(&hub, &areas, &mut rng).await;
    let e = &hub.state.engine;
    for (level, metric, period) in [
        ("township", "万人发案率", "2026-01..2026-06"),
        ("village", "调处成功率", "2026-10"),
        ("", "disputes.identified", "2026-Q3"),
    ] {
        let req = |area: &str| pb::CompareRequest {
            area: area.into(),
            period: period.into(),
            metric: metric.into(),
            level: level.into(),
            complete_only: false,
            ..Default::default()
        };
        let nation = e
            .ask_compare(&req(pingan_hub::query::engine::NATION))
            .unwrap();
        // the same rows as each province's own comparison (each checked against the reference
        // elsewhere), ranked again over the union
        let mut rows = Vec::new();
        let mut total: Option<f64> = None;
        for root in areas.roots() {
            if level.is_empty() {
                // the nation's level below is the provinces themselves
                let whole = e
                    .ask_rollup(&pb::RollupRequest {
                        area: root.to_string(),
                        period: period.into(),
                        metrics: vec![metric.into()],
                        by_category: false,
                        approved_only: false,
                    })
                    .unwrap();
                let v = whole
                    .figures
                    .iter()
                    .find(|f| f.metric == metric)
                    .and_then(|f| f.total);
                rows.push((root.to_string(), v.map(|v| v as f64)));
                continue;
            }
            let r = e.ask_compare(&req(&root.to_string())).unwrap();
            rows.extend(
                r.rows
                    .iter()
                    .map(|x| (x.code.clone(), if r.is_rate { x.rate } else { x.value })),
            );
            if let Some(t) = r.parent_total {
                *total.get_or_insert(0.0) += t;
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut got: Vec<(String, Option<f64>, u32)> = nation
            .rows
            .iter()
            .map(|x| {
                (
                    x.code.clone(),
                    if nation.is_rate { x.rate } else { x.value },
                    x.rank,
                )
            })
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got.len(), rows.len(), "{level} {metric}");
        let values: Vec<Option<f64>> = rows.iter().map(|r| r.1).collect();
        let expected_ranks = ranks(&values);
        for ((code, v, rank), ((want_code, want), want_rank)) in
            got.iter().zip(rows.iter().zip(&expected_ranks))
        {
            assert_eq!(code, want_code);
            same(&format!("全国 {level} {metric} {code}"), *v, *want);
            assert_eq!(*rank, want_rank.unwrap_or(0), "{code}");
        }
        if !level.is_empty() {
            same("全国 total", nation.parent_total, total);
        }
        assert_eq!(nation.area, "全国");
    }
    hub.stop().await;
}
