//! `pingan-hub import`: historical CSV into the store, validated, idempotent.

use std::process::Command;

use pingan_domain::pb;
use pingan_tests::{AskWire, TestHub, bin};

/// Runs the real `pingan-hub import` off the async threads.
async fn import(data: &std::path::Path, file: &std::path::Path) -> std::process::Output {
    let (data, file) = (data.to_owned(), file.to_owned());
    tokio::task::spawn_blocking(move || {
        Command::new(bin("pingan-hub"))
            .args(["import", "--data"])
            .arg(&data)
            .arg("--file")
            .arg(&file)
            .envs(pingan_tests::store_env(&data))
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_wide_and_long_csv_validated_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let wide = dir.path().join("history.csv");
    let mut text = String::from("\u{feff}area,period,disputes.mediated,调处成功,cases.fraud\n");
    let villages = ["510722101002", "510722101003", "510722104003"];
    let mut expected_mediated = 0;
    for (i, v) in villages.iter().enumerate() {
        for m in ["2026-08", "2026-09"] {
            let mediated = 3 + i as i64;
            expected_mediated += if m == "2026-09" { mediated } else { 0 };
            text += &format!("{v},{m},{mediated},{},\n", mediated - 1);
        }
    }
    let good = text.clone();
    text += "510722101002,2026-07,2,5,\n"; // resolved > mediated: a hard rule
    text += "510722101002,2026-06,x,,\n"; // not a number
    std::fs::write(&wide, &text).unwrap();

    let out = import(&data, &wide).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "refusals make the import fail: {stdout}"
    );
    assert!(
        stdout.contains("8 reports read: 6 stored, 0 already stored, 2 refused"),
        "{stdout}"
    );
    assert!(
        stdout.contains("第 8 行") && stdout.contains("调处成功 (disputes.resolved) 5 大于"),
        "{stdout}"
    );
    assert!(
        stdout.contains("第 9 行") && stdout.contains("disputes.mediated 列的数值「x」不是整数"),
        "{stdout}"
    );

    // the same good rows again: nothing new
    std::fs::write(&wide, &good).unwrap();
    let again = import(&data, &wide).await;
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{stdout}");
    assert!(stdout.contains("0 stored, 6 already stored"), "{stdout}");

    // long layout, with parts
    let long = dir.path().join("long.csv");
    std::fs::write(
        &long,
        "area,period,metric,part,value\n510722101002,2026-10,disputes.identified,劳动争议,2\n510722101002,2026-10,disputes.identified,医患,1\n510722101002,2026-10,cases.fraud,,4\n510722101003,2026-10,cases.fraud,,1\n",
    )
    .unwrap();
    let out = import(&data, &long).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // rows of one report must be contiguous: a scattered report is refused whole (both of its
    // blocks), the report between them goes in
    let scattered = dir.path().join("scattered.csv");
    std::fs::write(
        &scattered,
        "area,period,metric,value\n510722101002,2026-05,cases.fraud,1\n510722101003,2026-05,cases.fraud,1\n510722101002,2026-05,cases.homicide,0\n",
    )
    .unwrap();
    let out = import(&data, &scattered).await;
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("3 reports read: 1 stored, 0 already stored, 2 refused")
            && stdout.contains("行不连续"),
        "{stdout}"
    );

    // a hub started on the store answers from the imported figures
    let hub = TestHub::start_in(&data).await;
    // 6 wide, 2 long, and the one whole report of the scattered file
    assert_eq!(hub.revision_count(), 9);
    assert!(hub.current("510722101002", "2026-05").is_none());
    let rollup = |period: &str| {
        hub.state
            .engine
            .ask_rollup(&pb::RollupRequest {
                area: "510722".into(),
                period: period.into(),
                metrics: vec![],
                by_category: true,
                approved_only: false,
            })
            .unwrap()
    };
    let sept = rollup("2026-09");
    let mediated = sept
        .figures
        .iter()
        .find(|f| f.metric == "disputes.mediated")
        .unwrap();
    assert_eq!(mediated.total, Some(expected_mediated));
    let oct = rollup("2026-10");
    let fraud = oct
        .figures
        .iter()
        .find(|f| f.metric == "cases.fraud")
        .unwrap();
    assert_eq!(fraud.total, Some(5));
    let identified = oct
        .figures
        .iter()
        .find(|f| f.metric == "disputes.identified")
        .unwrap();
    assert_eq!(identified.total, Some(3));
    assert_eq!(
        identified
            .parts
            .iter()
            .find(|p| p.part == "医患")
            .unwrap()
            .value,
        Some(1)
    );
    assert_eq!(
        hub.current("510722101002", "2026-10").unwrap().sender,
        "import:long.csv"
    );
    hub.stop().await;
}

/// A report with one bad row is refused whole (none of its values stored), a ragged row refuses
/// its own report and the file goes on, and the summary adds up: read = stored + already
/// stored + refused. Before, the bad row was skipped and the rest of its report stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_with_a_bad_row_is_refused_whole_and_the_rest_goes_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let file = dir.path().join("long.csv");
    std::fs::write(
        &file,
        concat!(
            "area,period,metric,value\n",
            "510722101002,2026-10,cases.fraud,2\n",
            "510722101002,2026-10,巡逻次数,abc\n",
            "510722101002,2026-10,grid.visits,5\n",
            "510722101003,2026-10,cases.fraud,1\n",
            "510722101004,2026-10,cases.fraud,1,9\n",
            "510722101004,2026-10,grid.visits,3\n",
            "510722101005,2026-10,cases.fraud,4\n",
            "510722101006,2026-10,cases.fraud,6\n",
        ),
    )
    .unwrap();
    let out = import(&data, &file).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("5 reports read: 3 stored, 0 already stored, 2 refused"),
        "{stdout}"
    );
    assert!(
        stdout.contains("第 3 行：巡逻次数 的数值「abc」不是整数"),
        "{stdout}"
    );
    assert!(stdout.contains("这一行有 5 列，表头有 4 列"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("一个数也没有存入"), "{stderr}");
    let hub = TestHub::start_in(&data).await;
    assert_eq!(hub.revision_count(), 3);
    assert!(
        hub.current("510722101002", "2026-10").is_none(),
        "nothing of the report with the bad row"
    );
    assert!(hub.current("510722101004", "2026-10").is_none());
    for v in ["510722101003", "510722101005", "510722101006"] {
        assert!(hub.current(v, "2026-10").is_some(), "{v}");
    }
    hub.stop().await;
}

/// What Excel or WPS on Chinese Windows saves: GBK text, Chinese headers, periods as 2026/10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gbk_file_with_chinese_headers_imports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let file = dir.path().join("历史数据.csv");
    let text = "区划代码,期间,指标,类别,数值\n510722101002,2026/9,排查矛盾纠纷,劳动争议,2\n510722101002,2026/9,排查矛盾纠纷,医患,1\n510722101003,2026年9月,电信网络诈骗案件,,4\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(text);
    std::fs::write(&file, &gbk).unwrap();
    let out = import(&data, &file).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 reports read: 2 stored"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("GBK"));
    let hub = TestHub::start_in(&data).await;
    let stored = hub
        .current("510722101002", "2026-09")
        .expect("stored as 2026-09");
    assert_eq!(stored.values[0].total, Some(3));
    assert!(hub.current("510722101003", "2026-09").is_some());
    hub.stop().await;
}
