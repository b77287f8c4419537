//! Departments (条) as reporters: they report their own form with their own certificates, their
//! figures never enter the divisions' (块) totals, and they are added up by the area they belong
//! to and by 系统 and ranked among themselves. Every figure is checked against a plain
//! computation over what was sent.

use std::collections::BTreeMap;

use pingan_domain::{Catalogue, Span, department::Departments, fixtures, pb};
use pingan_hub::access::tls::Role;
use pingan_tests::{AskWire, Pki, ServedHub, TestHub, node, reference::Reference, report, value};
use tonic::Code;

/// Two counties' departments as an office keeps the list in Excel: Chinese headers, saved as GBK.
const DEPARTMENTS: &str = "部门代码,部门名称,所属区划,系统
sw-510722,三台县商务局,510722,商务系统
gzw-510722,三台县国资委,510722,国资系统
sw-510705,安州区商务局,510705,商务系统
";

fn departments() -> Departments {
    let (gbk, _, _) = encoding_rs::GBK.encode(DEPARTMENTS);
    Departments::from_csv(&gbk, Some(&fixtures::mianyang_areas())).expect("the list reads")
}

/// A department's report on the departments' form.
fn department_report(id: &str, area: &str, period: &str, letters: i64) -> pb::Report {
    let mut r = report(
        area,
        period,
        vec![
            value("petitions.letters", letters),
            value("petitions.visitors", letters * 3),
        ],
    );
    r.department = id.into();
    r
}

type Client = pb::report_service_client::ReportServiceClient<tonic::transport::Channel>;

fn client_as(hub: &TestHub, pki: &Pki, stem: &str) -> Client {
    Client::new(hub.channel(pki.client(stem)))
}

fn ask(hub: &TestHub, area: &str, period: &str, group: &str, system: &str) -> pb::DepartmentsReply {
    let q = pingan_domain::question::DepartmentsQuery::try_from(&pb::DepartmentsRequest {
        area: area.into(),
        period: period.into(),
        metric: "受理信访件".into(),
        group: group.into(),
        system: system.into(),
    })
    .expect("a question");
    hub.state.engine.departments(&q).expect("answered").into()
}

/// (key, value, rank) of each row, in the answer's order.
fn rows(r: &pb::DepartmentsReply) -> Vec<(String, Option<i64>, u32)> {
    r.rows
        .iter()
        .map(|x| (x.key.clone(), x.value, x.rank))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departments_report_with_their_own_certificates_apart_from_the_territory_and_rank_among_themselves()
 {
    let pki = Pki::new();
    pki.issue(Role::Hub, "5107");
    let village = "510722101002";
    pki.issue(Role::Node, village);
    for (area, id) in [
        ("510722", "sw-510722"),
        ("510722", "gzw-510722"),
        ("510705", "sw-510705"),
    ] {
        pki.issue_department(area, id);
    }
    pki.issue(Role::Viewer, "510705");
    let hub = TestHub::start_departments(
        fixtures::mianyang_areas(),
        departments(),
        Some((&pki, "5107")),
    )
    .await;

    // the village reports its letters on its own form; the departments theirs (plain sums below)
    let mut sent: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    client_as(&hub, &pki, &format!("node-{village}"))
        .submit(report(
            village,
            "2026-10",
            vec![value("petitions.letters", 4)],
        ))
        .await
        .expect("the village's report");
    // on time by the 5th of the next month (the form's deadline), or late
    let on = |m: u32, d: u32| {
        use chrono::TimeZone as _;
        pingan_hub::clock::beijing()
            .with_ymd_and_hms(2026, m, d, 10, 0, 0)
            .single()
            .unwrap()
    };
    for (id, area, period, letters, at) in [
        ("sw-510722", "510722", "2026-09", 2, on(10, 3)),
        ("sw-510722", "510722", "2026-10", 10, on(11, 3)),
        ("gzw-510722", "510722", "2026-10", 7, on(11, 5)),
        ("sw-510705", "510705", "2026-10", 5, on(11, 22)),
    ] {
        hub.state.clock.set(at);
        let receipt = client_as(&hub, &pki, &format!("node-{id}"))
            .submit(department_report(id, area, period, letters))
            .await
            .unwrap_or_else(|e| panic!("{id} {period}: {e}"))
            .into_inner();
        assert_eq!((receipt.department.as_str(), receipt.revision), (id, 1));
        sent.insert((id, period), letters);
    }
    // a resend is the same submission; a correction the next revision
    let mut sw = client_as(&hub, &pki, "node-sw-510705");
    let first = department_report("sw-510705", "510705", "2026-09", 1);
    sw.submit(first.clone()).await.unwrap();
    let again = sw.submit(first).await.unwrap().into_inner();
    assert!(again.duplicate, "{again:?}");
    let corrected = sw
        .submit(department_report("sw-510705", "510705", "2026-09", 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(corrected.revision, 2);
    sent.insert(("sw-510705", "2026-09"), 3);

    // the divisions' totals hold the village's 4 and nothing of the departments' 27
    let catalogue = Catalogue::builtin();
    let areas = fixtures::mianyang_areas();
    let reference = Reference::new(&catalogue, &areas, hub.all_revisions());
    for area in ["510722", "5107"] {
        let rollup = hub
            .state
            .engine
            .ask_rollup(&pb::RollupRequest {
                area: area.into(),
                period: "2026-10".into(),
                metrics: vec!["petitions.letters".into()],
                by_category: false,
                approved_only: false,
            })
            .unwrap();
        let letters = rollup.figures[0].total;
        let plain = reference.value(
            area.parse().unwrap(),
            &"2026-10".parse::<Span>().unwrap(),
            "petitions.letters",
            None,
            false,
        );
        assert_eq!((letters, plain), (Some(4), Some(4)), "{area}");
    }

    // ranked among themselves, against the plain sums of what was sent
    let plain = |id: &str, periods: &[&str]| -> i64 {
        periods.iter().filter_map(|p| sent.get(&(id, *p))).sum()
    };
    let october = ask(&hub, "5107", "2026-10", "", "");
    assert_eq!(october.form, "部门平安建设月报");
    assert_eq!(
        rows(&october),
        [
            (
                "sw-510722".into(),
                Some(plain("sw-510722", &["2026-10"])),
                1
            ),
            (
                "gzw-510722".into(),
                Some(plain("gzw-510722", &["2026-10"])),
                2
            ),
            (
                "sw-510705".into(),
                Some(plain("sw-510705", &["2026-10"])),
                3
            ),
        ]
    );
    // added up by the area they belong to, and one 系统 across the two counties
    let by_area = ask(&hub, "5107", "2026-10", "area", "");
    assert_eq!(
        rows(&by_area),
        [
            ("510722".into(), Some(10 + 7), 1),
            ("510705".into(), Some(5), 2)
        ]
    );
    assert_eq!(by_area.rows[0].name, "三台县");
    let by_system = ask(&hub, "5107", "2026-09..2026-10", "system", "");
    let commerce = ["sw-510722", "sw-510705"]
        .iter()
        .map(|id| plain(id, &["2026-09", "2026-10"]))
        .sum::<i64>();
    assert_eq!(
        rows(&by_system),
        [
            ("商务系统".into(), Some(commerce), 1),
            ("国资系统".into(), Some(7), 2)
        ]
    );
    // 国资委 owed September and did not send it; 安州区商务局 sent both months late
    let state = &by_system.rows[1];
    assert_eq!((state.expected, state.received, state.on_time), (2, 1, 1));
    assert_eq!(state.missing, ["gzw-510722 三台县国资委 2026-09"]);
    let commerce = &by_system.rows[0];
    assert_eq!(
        (commerce.expected, commerce.received, commerce.on_time),
        (4, 4, 2)
    );
    assert!(commerce.missing.is_empty());
    let one_system = ask(&hub, "5107", "2026-10", "department", "商务系统");
    assert_eq!(one_system.rows.len(), 2);
    // a county's departments only
    let anzhou = ask(&hub, "510705", "2026-10", "", "");
    assert_eq!(rows(&anzhou), [("sw-510705".into(), Some(5), 1)]);
    // a zero report (零报告) is 0 for the counts of the departments' form, not missing
    let mut zero = report("510722", "2026-08", Vec::new());
    zero.zero_report = true;
    zero.department = "gzw-510722".into();
    client_as(&hub, &pki, "node-gzw-510722")
        .submit(zero)
        .await
        .expect("a zero report");
    let august = ask(&hub, "510722", "2026-08", "", "");
    assert_eq!(
        rows(&august),
        [
            ("gzw-510722".into(), Some(0), 1),
            ("sw-510722".into(), None, 0)
        ]
    );
    assert_eq!(august.rows[1].missing, ["sw-510722 三台县商务局 2026-08"]);

    // certificates: a village may not send a department's report, a department not a division's
    // nor another department's
    let refused = |r: Result<tonic::Response<pb::Receipt>, tonic::Status>| r.expect_err("refused");
    let e = refused(
        client_as(&hub, &pki, &format!("node-{village}"))
            .submit(department_report("sw-510722", "510722", "2026-10", 1))
            .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("sw-510722"), "{}", e.message());
    let mut commerce_node = client_as(&hub, &pki, "node-sw-510722");
    let e = refused(
        commerce_node
            .submit(report(
                "510722",
                "2026-10",
                vec![value("petitions.letters", 1)],
            ))
            .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("部门"), "{}", e.message());
    let e = refused(
        commerce_node
            .submit(department_report("gzw-510722", "510722", "2026-10", 1))
            .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // the departments' form: a figure it does not ask, a department not on the list
    let mut off_form = department_report("sw-510722", "510722", "2026-10", 1);
    off_form.values.push(value("cases.fraud", 1));
    let e = refused(commerce_node.submit(off_form).await);
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("部门平安建设月报"), "{}", e.message());
    let e = refused(
        commerce_node
            .submit(department_report("ga-510722", "510722", "2026-10", 1))
            .await,
    );
    assert!(
        e.message().contains("ga-510722"),
        "{:?} {}",
        e.code(),
        e.message()
    );
    // nothing refused was stored: the answers are the same
    assert_eq!(rows(&ask(&hub, "5107", "2026-10", "", "")), rows(&october));

    // a leader of 安州区 reads its departments, not 三台县's
    let mut viewer =
        pb::query_service_client::QueryServiceClient::new(hub.channel(pki.client("viewer-510705")));
    let request = |area: &str| pb::DepartmentsRequest {
        area: area.into(),
        period: "2026-10".into(),
        metric: "petitions.letters".into(),
        ..Default::default()
    };
    let own = viewer
        .departments(request("510705"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rows(&own), rows(&anzhou));
    let e = viewer.departments(request("510722")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    hub.stop().await;
}

/// What an operator and a department's clerk do: serve with a departments file, submit with
/// `pingan-node submit --department`, ask with `pingan-hub query departments`; a bad file is
/// refused at start with its line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_take_a_departments_file_a_department_report_and_a_departments_question() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("departments.csv");
    std::fs::write(&list, fixtures::SANTAI_DEPARTMENTS_CSV).unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "id,name,area,system\n510722,三台县商务局,510722,商务系统\n",
    )
    .unwrap();
    let refused = std::process::Command::new(pingan_tests::bin("pingan-hub"))
        .args([
            "serve",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--departments",
        ])
        .arg(&bad)
        .arg("--data")
        .arg(dir.path().join("refused"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("第 2 行") && stderr.contains("510722"),
        "{stderr}"
    );

    // last year's figures from Excel (GBK): a department's rows beside a village's
    let month = pingan_domain::Period::month_of(pingan_node::today_beijing()).previous();
    let earlier = month.previous();
    let history = dir.path().join("history.csv");
    let text = format!(
        "区划代码,期间,指标,数值\nsw-510722,{earlier},受理信访件,4\n510722101002,{earlier},受理信访件,9\n"
    );
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    std::fs::write(&history, gbk).unwrap();
    let imported = std::process::Command::new(pingan_tests::bin("pingan-hub"))
        .args(["import", "--departments"])
        .arg(&list)
        .arg("--data")
        .arg(dir.path().join("hub"))
        .arg("--file")
        .arg(&history)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&imported.stdout);
    assert!(
        imported.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(said.contains("新存 2"), "{said}");

    let hub = ServedHub::start([
        std::ffi::OsStr::new("--insecure"),
        "--data".as_ref(),
        dir.path().join("hub").as_os_str(),
        "--departments".as_ref(),
        list.as_os_str(),
    ]);
    let url = format!("http://{}", hub.grpc);
    let out = node(
        &dir.path().join("outbox-sw"),
        &[
            "submit",
            "--hub",
            &url,
            "--insecure",
            "--area",
            "510722",
            "--department",
            "sw-510722",
            "--period",
            &month.to_string(),
            "--set",
            "受理信访件=6",
            "--set",
            "来访人次=20",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = node(
        &dir.path().join("outbox-sw"),
        &[
            "submit",
            "--hub",
            &url,
            "--insecure",
            "--area",
            "510722",
            "--department",
            "sw-510722",
            "--period",
            &month.to_string(),
            "--set",
            "刑事案件立案=1",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "refused before sending");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("部门平安建设月报"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = std::process::Command::new(pingan_tests::bin("pingan-hub"))
        .args(["query", "departments", "--insecure", "--hub", &url])
        .args(["--area", "510722", "--period", &month.to_string()])
        .args(["--metric", "受理信访件", "--format", "csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&answer.stdout);
    assert!(
        answer.status.success(),
        "{}",
        String::from_utf8_lossy(&answer.stderr)
    );
    let line = |id: &str| {
        csv.lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} in {csv}"))
            .to_owned()
    };
    assert!(
        line("sw-510722").starts_with("1,sw-510722,三台县商务局,三台县,商务系统,6,1,1,"),
        "{csv}"
    );
    // 国资委 owes the month and has not sent it: unranked, named as missing
    assert!(
        line("gzw-510722").contains(&format!("gzw-510722 三台县国资委 {month}")),
        "{csv}"
    );
    // the imported month and this one: 4 + 6 for 商务局; the county's own total the village's 9
    let answer = std::process::Command::new(pingan_tests::bin("pingan-hub"))
        .args([
            "query",
            "departments",
            "--insecure",
            "--hub",
            &url,
            "--area",
            "510722",
        ])
        .args([
            "--period",
            &format!("{earlier}..{month}"),
            "--metric",
            "petitions.letters",
        ])
        .args(["--group", "area", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&answer.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&answer.stderr)));
    assert_eq!(json[0]["key"], "510722", "{json}");
    assert_eq!(json[0]["value"], 10, "{json}");
    let rollup = std::process::Command::new(pingan_tests::bin("pingan-hub"))
        .args([
            "query",
            "rollup",
            "--insecure",
            "--hub",
            &url,
            "--area",
            "510722",
        ])
        .args([
            "--period",
            &earlier.to_string(),
            "--metric",
            "受理信访件",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&rollup.stdout);
    let row = csv
        .lines()
        .find(|l| l.contains("petitions.letters"))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(
        row.ends_with(",9") || row.contains(",9,"),
        "the county's total is the village's: {csv}"
    );
    drop(hub);
}
