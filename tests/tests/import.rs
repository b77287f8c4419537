//! `pingan-hub import`: historical CSV into the store, validated, idempotent.

use std::process::Command;

use pingan_proto::pb;
use pingan_tests::{TestHub, bin};

/// Runs the real `pingan-hub import` off the async threads.
async fn import(data: &std::path::Path, file: &std::path::Path) -> std::process::Output {
    let (data, file) = (data.to_owned(), file.to_owned());
    tokio::task::spawn_blocking(move || {
        Command::new(bin("pingan-hub"))
            .args(["import", "--data"])
            .arg(&data)
            .arg("--file")
            .arg(&file)
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
        stdout.contains("6 stored") && stdout.contains("2 refused"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 8: report rejected") && stdout.contains("disputes.resolved"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 9: column disputes.mediated"),
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
    // rows of one report must be contiguous
    let scattered = dir.path().join("scattered.csv");
    std::fs::write(
        &scattered,
        "area,period,metric,value\n510722101002,2026-05,cases.fraud,1\n510722101003,2026-05,cases.fraud,1\n510722101002,2026-05,cases.homicide,0\n",
    )
    .unwrap();
    let out = import(&data, &scattered).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not contiguous") && stderr.contains("2 stored"),
        "{stderr}"
    );

    // a hub started on the store answers from the imported figures
    let hub = TestHub::start_in(&data).await;
    // 6 wide, 2 long, and the 2 reports of the broken file read before its error
    assert_eq!(hub.revision_count(), 10);
    let rollup = |period: &str| {
        hub.state
            .engine
            .rollup(&pb::RollupRequest {
                area: "510722".into(),
                period: period.into(),
                metrics: vec![],
                by_category: true,
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
