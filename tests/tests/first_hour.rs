//! A newcomer's first hour: what a village clerk, a leader and an operator type, and what they
//! read back. Files as Excel and WPS save them (GBK, Chinese headers, .xlsx), periods typed
//! loosely, typos, a key that is not the certificate's, a wrong port, a refused report to
//! resend or drop, `status | head`, a backtrace setting, the query client's own certificate
//! variables, and a county hub given the national divisions.

use std::{
    path::Path,
    process::{Command, Output},
    time::Duration,
};

use pingan_domain::pb;
use pingan_hub::access::tls::Role;
use pingan_tests::{Pki, ServedHub, TestHub, bin, node, report, value, wait_until};

const VILLAGE: &str = "510722101002";
const TOWN: &str = "510722101";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `pingan-node submit --insecure --hub URL --area VILLAGE ARGS`.
async fn submit(outbox: &Path, url: &str, args: &[&str]) -> Output {
    let mut all = vec![
        "submit",
        "--insecure",
        "--hub",
        url,
        "--area",
        VILLAGE,
        "--wait",
        "20",
    ];
    all.extend_from_slice(args);
    node(outbox, &all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gbk_csv_with_chinese_headers_and_a_period_typed_as_2026年10月_is_delivered() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let form = dir.path().join("十月报表.csv");
    // what Excel on Chinese Windows writes for 另存为 CSV: GBK, the clerk's own headers
    let (gbk, _, _) = encoding_rs::GBK.encode(
        "指标,类别,数值\r\n排查矛盾纠纷,劳动争议,2\r\n排查矛盾纠纷,医患,1\r\n调处矛盾纠纷,,3\r\n调处成功,,3\r\n巡逻次数,,\r\n",
    );
    std::fs::write(&form, &gbk).unwrap();
    let out = submit(
        &dir.path().join("outbox"),
        &hub.url,
        &["--period", "2026年10月", "--file", form.to_str().unwrap()],
    )
    .await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("已上报"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).contains("GBK"), "{}", text(&out.stderr));
    let stored = hub.current(VILLAGE, "2026-10").expect("stored for 2026-10");
    let total = |m: &str| {
        stored
            .values
            .iter()
            .find(|v| v.metric == m)
            .and_then(|v| v.total)
    };
    assert_eq!(total("disputes.identified"), Some(3));
    assert_eq!(total("disputes.mediated"), Some(3));
    assert_eq!(total("patrol.sessions"), None, "a blank cell is not a zero");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_excel_workbook_is_a_form_and_its_bad_cell_is_named() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, patrols: &str| {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write(0, 0, "潼川镇老西街社区 综治工作月报").unwrap();
        sheet.write(1, 0, "指标").unwrap();
        sheet.write(1, 1, "数值").unwrap();
        sheet.write(2, 0, "电信网络诈骗案件").unwrap();
        sheet.write(2, 1, 2).unwrap();
        sheet.write(3, 0, "走访户次").unwrap();
        sheet.write(3, 1, patrols).unwrap();
        let path = dir.path().join(name);
        book.save(&path).unwrap();
        path
    };
    let outbox = dir.path().join("outbox");
    let bad = write("bad.xlsx", "十二");
    let out = submit(
        &outbox,
        &hub.url,
        &["--period", "2026-10", "--file", bad.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("B4"), "{}", text(&out.stderr));
    let good = write("good.xlsx", "12");
    let out = submit(
        &outbox,
        &hub.url,
        &["--period", "2026-10", "--file", good.to_str().unwrap()],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stored = hub.current(VILLAGE, "2026-10").expect("stored");
    assert_eq!(stored.values.len(), 2);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typos_and_bad_periods_get_chinese_answers_that_say_what_to_type() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let typo = submit(
        &outbox,
        &hub.url,
        &["--period", "2026-10", "--set", "调解矛盾纠纷=3"],
    )
    .await;
    assert_eq!(typo.status.code(), Some(2));
    let stderr = text(&typo.stderr);
    assert!(
        stderr.contains("未知指标「调解矛盾纠纷」，是否是 调处矛盾纠纷 (disputes.mediated)？"),
        "{stderr}"
    );
    let rule = submit(
        &outbox,
        &hub.url,
        &[
            "--period",
            "2026-10",
            "--set",
            "调处矛盾纠纷=3",
            "--set",
            "调处成功=9",
        ],
    )
    .await;
    assert_eq!(rule.status.code(), Some(2));
    assert!(
        text(&rule.stderr)
            .contains("调处成功 (disputes.resolved) 9 大于 调处矛盾纠纷 (disputes.mediated) 3"),
        "{}",
        text(&rule.stderr)
    );
    let month = submit(
        &outbox,
        &hub.url,
        &["--period", "2026-13", "--set", "走访户次=1"],
    )
    .await;
    assert_eq!(month.status.code(), Some(2));
    let stderr = text(&month.stderr);
    assert!(stderr.contains("月份应为 01 到 12"), "{stderr}");
    assert!(stderr.contains("上报期间写作"), "{stderr}");
    assert!(
        !stderr.contains("Q3"),
        "quarters are not reported: {stderr}"
    );
    for typed in ["2026/10", "2026.10", "２０２６年１０月"] {
        let ok = submit(
            &outbox,
            &hub.url,
            &["--period", typed, "--set", "走访户次=1"],
        )
        .await;
        assert!(ok.status.success(), "{typed}: {}", text(&ok.stderr));
    }
    assert_eq!(
        hub.current(VILLAGE, "2026-10").expect("stored").revision,
        3,
        "three spellings of one month"
    );
    assert_eq!(hub.revision_count(), 3, "nothing refused was stored");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_not_the_certificates_is_said_at_once_and_nothing_is_queued() {
    let pki = Pki::new();
    pki.issue(Role::Node, VILLAGE);
    pki.issue(Role::Node, "510722101003");
    let hub = TestHub::start_mtls(&pki, vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let p = |n: &str| pki.path(n).to_string_lossy().into_owned();
    let out = node(
        &outbox,
        &[
            "submit",
            "--hub",
            &hub.url,
            "--area",
            VILLAGE,
            "--period",
            "2026-10",
            "--set",
            "走访户次=1",
            "--ca",
            &p("ca.pem"),
            "--cert",
            &p(&format!("node-{VILLAGE}.pem")),
            "--key",
            &p("node-510722101003.key"),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("不匹配"),
        "{}",
        text(&out.stderr)
    );
    let status = node(&outbox, &["status", "--format", "json"]).await;
    assert_eq!(text(&status.stdout).trim(), "[]", "nothing queued");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_port_says_the_connection_was_refused_and_keeps_the_report() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // released at once: nothing listens there
    let dir = tempfile::tempdir().unwrap();
    // the last month, whatever today is
    let month = pingan_domain::Period::month_of(pingan_node::today_beijing()).previous();
    let label = |p: pingan_domain::Period| {
        let t = p.to_string();
        format!("{}年{}月", &t[..4], t[5..].trim_start_matches('0'))
    };
    let out = node(
        &dir.path().join("outbox"),
        &[
            "submit",
            "--insecure",
            "--hub",
            &format!("http://127.0.0.1:{port}"),
            "--area",
            VILLAGE,
            "--period",
            &month.to_string(),
            "--set",
            "走访户次=1",
            "--wait",
            "1",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("连接被拒绝"), "{stderr}");
    assert!(stderr.contains("安全保存在发件箱"), "{stderr}");

    // status says what the office owes, and that the last month waits in the outbox
    let out = node(&dir.path().join("outbox"), &["status", "--area", VILLAGE]).await;
    let said = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(said.contains("老西街社区居民委员会 的报表"), "{said}");
    assert!(
        said.lines().any(|l| l.contains("综治工作月报")
            && l.contains(&label(month))
            && l.contains("已保存，待发送")),
        "{said}"
    );
    let before = label(month.previous());
    assert!(
        said.lines()
            .any(|l| l.contains(&before) && (l.contains("待填报") || l.contains("已逾期"))),
        "{before}: {said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_report_can_be_sent_again_or_dropped() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    // an area the node cannot check (it has no registry) and the hub does not know
    let out = node(
        &outbox,
        &[
            "submit",
            "--insecure",
            "--hub",
            &hub.url,
            "--area",
            "510722999999",
            "--period",
            "2026-10",
            "--set",
            "走访户次=1",
            "--submission-id",
            "parked-1",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("510722999999 不存在"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("pingan-node retry parked-1"));
    let states = |o: &Output| -> Vec<String> {
        serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout)
            .expect("status JSON")
            .iter()
            .map(|e| e["state"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        states(&node(&outbox, &["status", "--format", "json"]).await),
        ["failed"]
    );
    // sent again: back in the queue (the hub refuses it again when it goes)
    let retried = node(&outbox, &["retry", "parked-1"]).await;
    assert!(retried.status.success(), "{}", text(&retried.stderr));
    assert_eq!(
        states(&node(&outbox, &["status", "--format", "json"]).await),
        ["pending"]
    );
    let not_parked = node(&outbox, &["drop", "parked-1"]).await;
    assert!(!not_parked.status.success());
    assert!(
        text(&not_parked.stderr).contains("待发送"),
        "{}",
        text(&not_parked.stderr)
    );
    // the next submission delivers the queue: the good one goes in, the bad one is parked again
    let good = submit(
        &outbox,
        &hub.url,
        &["--period", "2026-10", "--set", "走访户次=2"],
    )
    .await;
    assert!(good.status.success(), "{}", text(&good.stderr));
    assert_eq!(
        states(&node(&outbox, &["status", "--format", "json"]).await),
        ["failed", "delivered"]
    );
    let dropped = node(&outbox, &["drop", "parked-1"]).await;
    assert!(dropped.status.success(), "{}", text(&dropped.stderr));
    assert_eq!(
        states(&node(&outbox, &["status", "--format", "json"]).await),
        ["dropped", "delivered"]
    );
    let table = node(&outbox, &["status"]).await;
    assert!(
        text(&table.stdout).contains("已作废"),
        "{}",
        text(&table.stdout)
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_piped_into_head_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    // far more than a pipe holds, so the writer meets the closed pipe
    let reports: Vec<pb::Report> = (0..3_000)
        .map(|i| {
            report(
                VILLAGE,
                &format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
                vec![value("grid.visits", i)],
            )
        })
        .collect();
    pingan_outbox::Outbox::open(&outbox)
        .unwrap()
        .enqueue(&reports)
        .unwrap();
    let script = format!(
        "set -o pipefail; {} status --outbox {} | head -n 1",
        bin("pingan-node").display(),
        outbox.display()
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash").args(["-c", &script]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{:?} {}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("待发送 3000"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_errors_print_their_causes_and_no_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.pem");
    let missing = missing.to_string_lossy().into_owned();
    let out = node(
        &dir.path().join("outbox"),
        &[
            "run",
            "--hub",
            "https://localhost:1",
            "--ca",
            &missing,
            "--cert",
            &missing,
            "--key",
            &missing,
        ],
    )
    .await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("错误") && stderr.contains("no-such-ca.pem"),
        "{stderr}"
    );
    let hub_out = tokio::task::spawn_blocking(|| {
        Command::new(bin("pingan-hub"))
            .args([
                "query",
                "rollup",
                "--insecure",
                "--hub",
                "http://127.0.0.1:1",
                "--area",
                "510722",
                "--period",
                "2026-10",
            ])
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    for (who, o) in [("node", &out), ("hub", &hub_out)] {
        let stderr = text(&o.stderr);
        assert!(!o.status.success(), "{who}");
        assert!(
            !stderr.contains("stack backtrace") && !stderr.contains("Stack backtrace"),
            "{who}: {stderr}"
        );
    }
    assert!(
        text(&hub_out.stderr).contains("连接被拒绝"),
        "{}",
        text(&hub_out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_client_reads_the_viewers_certificate_variables_not_the_nodes() {
    let pki = Pki::new();
    pki.issue(Role::Node, VILLAGE);
    pki.issue(Role::Viewer, TOWN);
    let hub = TestHub::start_mtls(&pki, vec![]).await;
    let mut client = pingan_domain::pb::report_service_client::ReportServiceClient::new(
        hub.channel(pki.client(&format!("node-{VILLAGE}"))),
    );
    client
        .submit(report(
            VILLAGE,
            "2026-10",
            vec![value("disputes.mediated", 4), value("disputes.resolved", 3)],
        ))
        .await
        .unwrap();
    let (url, p) = (hub.url.clone(), |n: &str| pki.path(n));
    let (ca, node_cert, node_key, viewer_cert, viewer_key) = (
        p("ca.pem"),
        p(&format!("node-{VILLAGE}.pem")),
        p(&format!("node-{VILLAGE}.key")),
        p(&format!("viewer-{TOWN}.pem")),
        p(&format!("viewer-{TOWN}.key")),
    );
    let out = tokio::task::spawn_blocking(move || {
        // the README's node exports are still set in this shell
        Command::new(bin("pingan-hub"))
            .args([
                "query",
                "rollup",
                "--hub",
                &url,
                "--area",
                TOWN,
                "--period",
                "2026年10月",
            ])
            .args(["--metric", "调处成功率", "--metric", "调处矛盾纠纷"])
            .env("PINGAN_CA", &ca)
            .env("PINGAN_CERT", &node_cert)
            .env("PINGAN_KEY", &node_key)
            .env("PINGAN_VIEWER_CERT", &viewer_cert)
            .env("PINGAN_VIEWER_KEY", &viewer_key)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    // an indicator is a valid --metric of rollup; the rate reads as a percentage
    assert!(
        stdout.contains("调处成功率") && stdout.contains("75.00%"),
        "{stdout}"
    );
    assert!(stdout.contains("调处矛盾纠纷"), "{stdout}");
    assert!(
        !stdout.contains("巡逻次数"),
        "only what was asked: {stdout}"
    );
    hub.stop().await;
}

/// A county hub given the whole country's divisions holds its county: the registry is cut to
/// its jurisdiction (its certificate's area), so memory, the saved rollups and start-up scale
/// with the county. Before, 12 reports made a 341 MB snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_hub_given_the_national_divisions_holds_only_its_county() {
    let pki = Pki::new();
    pki.issue(Role::Node, VILLAGE);
    pki.issue(Role::Viewer, "510722");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let files = pki.hub_files();
    let served = ServedHub::start([
        "--divisions".as_ref(),
        "national".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--ca".as_ref(),
        files.ca.as_os_str(),
        "--cert".as_ref(),
        files.cert.as_os_str(),
        "--key".as_ref(),
        files.key.as_os_str(),
    ]);
    let port = served.port().to_owned();
    let mut hub = served.process;
    let url = format!("https://localhost:{port}");
    let channel = |stem: &str| {
        tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .tls_config(pki.client(stem))
            .unwrap()
            .connect_lazy()
    };
    let mut nodes =
        pb::report_service_client::ReportServiceClient::new(channel(&format!("node-{VILLAGE}")));
    wait_until(Duration::from_secs(60), || {
        let mut nodes = nodes.clone();
        async move { nodes.ping(pb::PingRequest {}).await.is_ok() }
    })
    .await;
    nodes
        .submit(report(VILLAGE, "2026-10", vec![value("grid.visits", 7)]))
        .await
        .expect("a village of the county reports");
    let mut queries = pb::query_service_client::QueryServiceClient::new(channel("viewer-510722"));
    let county = queries
        .rollup(pb::RollupRequest {
            area: "510722".into(),
            period: "2026-10".into(),
            ..Default::default()
        })
        .await
        .expect("the county's rollup")
        .into_inner();
    assert_eq!(
        county.completeness.unwrap().expected,
        496 + 2 * 33,
        "county, townships, villages on the monthly form; townships' two half-months"
    );
    assert!(hub.terminate(Duration::from_secs(60)).success());
    let snapshot = std::fs::metadata(data.join(pingan_hub::query::snapshot::FILE))
        .expect("rollups saved at shutdown")
        .len();
    assert!(
        snapshot < 2 * 1024 * 1024,
        "the saved rollups are a county's, not the nation's: {snapshot} bytes"
    );
}

/// An operator told "our report did not go in" finds it in the hub's log at its default level
/// (INFO): each refused report named by area, period and submission id, whether it came alone
/// (`Submit`) or in a node's batch (`SubmitBatch`, the path `pingan-node run` takes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_log_names_each_refused_report_sent_alone_or_in_a_batch() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hub.log");
    let mut hub = pingan_tests::Proc::spawn(
        Command::new(bin("pingan-hub"))
            .args(["serve", "--insecure", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("hub"))
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let mut line = String::new();
    std::io::BufReader::new(hub.take_stdout().expect("stdout"))
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("pingan-hub listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let mut client =
        pb::report_service_client::ReportServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
    // no such village in 三台县; a month that does not exist
    let alone = report(
        "510722101999",
        "2026-10",
        vec![value("disputes.identified", 1)],
    );
    let batched = report(VILLAGE, "2026-13", vec![value("disputes.identified", 1)]);
    // an attacker's fields: a forged log line after a newline, and 100,000 characters
    let forged = report(
        &format!("{VILLAGE}\nFORGED refused"),
        &"2".repeat(100_000),
        vec![value("disputes.identified", 1)],
    );
    let refused = client.submit(alone.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let mut results = client
        .submit_batch(tokio_stream::iter([batched.clone(), forged.clone()]))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..2 {
        let result = results.message().await.unwrap().expect("a result for each");
        assert!(
            matches!(
                result.outcome,
                Some(pb::batch_result::Outcome::Rejection(_))
            ),
            "{result:?}"
        );
    }
    // the hub's graceful stop waits for open connections
    drop((results, client));
    hub.terminate(Duration::from_secs(10));
    let said = std::fs::read_to_string(&log).unwrap();
    for r in [&alone, &batched] {
        let line = said
            .lines()
            .find(|l| l.contains("refused") && l.contains(&r.submission_id))
            .unwrap_or_else(|| panic!("{} is not in the log:\n{said}", r.submission_id));
        assert!(line.contains(&r.area) && line.contains(&r.period), "{line}");
    }
    // the forged report is one short line of the log, its newline escaped
    let line = said
        .lines()
        .find(|l| l.contains(&forged.submission_id))
        .unwrap_or_else(|| panic!("the forged report is not in the log:\n{said}"));
    assert!(line.contains(r"\nFORGED"), "{line}");
    assert!(
        line.chars().count() < 1_500,
        "{} chars",
        line.chars().count()
    );
    assert!(!said.lines().any(|l| l.starts_with("FORGED")), "{said}");
}
