//! The reporting loop end to end with the real binaries, as the offices and leaders run it:
//! the village submits → the township returns it with a reason → the village corrects → the
//! township approves → the county closes the month (锁定) → a late correction is refused → the
//! county unlocks → the correction is taken and waits for review again.

use std::path::Path;

use pingan_hub::access::tls::Role;
use pingan_tests::{Pki, ServedHub, bin, node};

const VILLAGE: &str = "510722101002";
const TOWNSHIP: &str = "510722101";

/// `pingan-hub ARGS` as a leader of `area` (viewer certificate); (success, stdout, stderr).
fn leader(pki: &Pki, url: &str, area: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(bin("pingan-hub"))
        .args(args)
        .args(["--hub", url])
        .arg("--ca")
        .arg(pki.path("ca.pem"))
        .arg("--cert")
        .arg(pki.path(&format!("viewer-{area}.pem")))
        .arg("--key")
        .arg(pki.path(&format!("viewer-{area}.key")))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `pingan-node status --area VILLAGE` asking the hub where its reports stand; its stdout.
async fn village_status(pki: &Pki, url: &str, outbox: &Path) -> String {
    let (cert, key, ca) = (
        pki.path(&format!("node-{VILLAGE}.pem")),
        pki.path(&format!("node-{VILLAGE}.key")),
        pki.path("ca.pem"),
    );
    let out = node(
        outbox,
        &[
            "status",
            "--area",
            VILLAGE,
            "--hub",
            url,
            "--ca",
            ca.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The figure of 巡逻次数 in a rollup table's text (its last column, 合计).
fn patrols(table: &str) -> String {
    table
        .lines()
        .find(|l| l.contains("巡逻次数"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("巡逻次数 in {table}"))
        .to_owned()
}

/// The village's office submits with the real node binary; (exit code, stdout + stderr).
async fn village_submits(
    pki: &Pki,
    url: &str,
    outbox: &Path,
    period: &str,
    sessions: &str,
) -> (i32, String) {
    let (cert, key, ca) = (
        pki.path(&format!("node-{VILLAGE}.pem")),
        pki.path(&format!("node-{VILLAGE}.key")),
        pki.path("ca.pem"),
    );
    let out = node(
        outbox,
        &[
            "submit",
            "--hub",
            url,
            "--ca",
            ca.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--area",
            VILLAGE,
            "--period",
            period,
            "--wait",
            "20s",
            "--set",
            &format!("巡逻次数={sessions}"),
            "--set",
            "巡逻人次=30",
        ],
    )
    .await;
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_return_correct_approve_lock_refuse_unlock_with_the_real_binaries() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.issue(Role::Node, VILLAGE);
    pki.issue(Role::Viewer, TOWNSHIP);
    pki.issue(Role::Viewer, "510722");
    let served = ServedHub::start([
        "--data".as_ref(),
        tmp.path().join("hub").as_os_str(),
        "--ca".as_ref(),
        pki.path("ca.pem").as_os_str(),
        "--cert".as_ref(),
        pki.path("hub-510722.pem").as_os_str(),
        "--key".as_ref(),
        pki.path("hub-510722.key").as_os_str(),
    ]);
    let url = format!("https://localhost:{}", served.port());
    let outbox = tmp.path().join("outbox");
    let month = pingan_domain::Period::month_of(pingan_node::today_beijing())
        .previous()
        .to_string();
    let list = |area: &str| {
        leader(
            &pki,
            &url,
            area,
            &["review", "list", "--area", area, "--period", &month],
        )
    };

    // the village submits; its township sees it waiting
    let (code, said) = village_submits(&pki, &url, &outbox, &month, "12").await;
    assert_eq!(code, 0, "{said}");
    let (ok, out, err) = list(TOWNSHIP);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "{VILLAGE} 老西街社区居民委员会 {month} 第 1 版 待审核"
        )),
        "{out}"
    );

    // a return needs a reason; with one, the village's report is 退回 with it
    let (ok, _, err) = leader(
        &pki,
        &url,
        TOWNSHIP,
        &["review", "return", "--report", VILLAGE, "--period", &month],
    );
    assert!(!ok && err.contains("退回须写明原因"), "{err}");
    let (ok, out, err) = leader(
        &pki,
        &url,
        TOWNSHIP,
        &[
            "review",
            "return",
            "--report",
            VILLAGE,
            "--period",
            &month,
            "--reason",
            "巡逻次数与台账不符",
            "--by",
            "潼川镇综治中心",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("第 1 版 退回（潼川镇综治中心") && out.contains("巡逻次数与台账不符"),
        "{out}"
    );
    // the office sees the return and its reason (`pingan-node status`, as on its page)
    let said = village_status(&pki, &url, &outbox).await;
    assert!(
        said.contains("第 1 版被退回（潼川镇综治中心）")
            && said.contains("退回原因「巡逻次数与台账不符」"),
        "{said}"
    );
    // approving what was returned is refused; the village is not its own reviewer's
    let (ok, _, err) = leader(
        &pki,
        &url,
        TOWNSHIP,
        &["review", "approve", "--report", VILLAGE, "--period", &month],
    );
    assert!(!ok && err.contains("已由 潼川镇综治中心 退回"), "{err}");

    // the village corrects: revision 2, waiting again; the township approves it
    let (code, said) = village_submits(&pki, &url, &outbox, &month, "14").await;
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("第 2 版"), "{said}");
    let (_, out, _) = list(TOWNSHIP);
    assert!(out.contains("第 2 版 待审核"), "{out}");
    let (ok, out, err) = leader(
        &pki,
        &url,
        TOWNSHIP,
        &[
            "review",
            "approve",
            "--report",
            VILLAGE,
            "--period",
            &month,
            "--by",
            "潼川镇综治中心",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("第 2 版 已审核（潼川镇综治中心"), "{out}");
    // completeness shows 已审 beside 已报
    let completeness = |area: &str| {
        leader(
            &pki,
            &url,
            area,
            &[
                "query",
                "completeness",
                "--area",
                area,
                "--period",
                &month,
                "--form",
                "zongzhi_monthly",
            ],
        )
        .1
    };
    let said = completeness(TOWNSHIP);
    assert!(said.contains("审核：已报 1 份中已审 1 份"), "{said}");
    let said = village_status(&pki, &url, &outbox).await;
    assert!(
        said.contains("第 2 版") && said.contains(" · 已审核"),
        "{said}"
    );
    // the township's figures: current, or approved only (the same while nothing waits)
    let rollup = |approved_only: bool| {
        let mut args = vec![
            "query",
            "rollup",
            "--area",
            TOWNSHIP,
            "--period",
            &month,
            "--metric",
            "巡逻次数",
        ];
        if approved_only {
            args.push("--approved-only");
        }
        leader(&pki, &url, TOWNSHIP, &args).1
    };
    assert_eq!(patrols(&rollup(false)), "14");
    assert_eq!(patrols(&rollup(true)), "14");
    // approved twice is refused: two reviewers at once, the second is told who was first
    let (ok, _, err) = leader(
        &pki,
        &url,
        "510722",
        &["review", "approve", "--report", VILLAGE, "--period", &month],
    );
    assert!(!ok && err.contains("已由 潼川镇综治中心 审核通过"), "{err}");

    // the county closes the month (forced: most of the county has not reported), a late
    // correction is refused and parked at the node, the county unlocks, the correction goes
    let (ok, out, err) = leader(
        &pki,
        &url,
        "510722",
        &[
            "locks",
            "lock",
            "--area",
            "510722",
            "--period",
            &month,
            "--force",
            "--reason",
            "月度考核",
            "--by",
            "县综治中心",
        ],
    );
    assert!(ok && out.contains("已锁定"), "{out} {err}");
    let (code, said) = village_submits(&pki, &url, &outbox, &month, "15").await;
    assert_eq!(code, 1, "refused: {said}");
    assert!(
        said.contains("县综治中心") && said.contains("锁定"),
        "{said}"
    );
    let (ok, _, err) = leader(
        &pki,
        &url,
        "510722",
        &[
            "locks",
            "unlock",
            "--area",
            TOWNSHIP,
            "--period",
            &month,
            "--reason",
            "同意更正",
        ],
    );
    assert!(ok, "{err}");
    let (code, said) = village_submits(&pki, &url, &outbox, &month, "15").await;
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("第 3 版"), "{said}");
    let (_, out, _) = list(TOWNSHIP);
    assert!(
        out.contains("第 3 版 待审核"),
        "the correction is reviewed anew: {out}"
    );
    let said = completeness(TOWNSHIP);
    assert!(said.contains("审核：已报 1 份中已审 0 份"), "{said}");
    // the current figures take the correction and say they are provisional; approved figures
    // keep revision 2 until revision 3 is approved
    let current = rollup(false);
    assert_eq!(patrols(&current), "15");
    assert!(current.contains("含未审核数据（初步）"), "{current}");
    let approved = rollup(true);
    assert_eq!(patrols(&approved), "14");
    assert!(approved.contains("仅已审核数据"), "{approved}");
    // every step is kept and shown, oldest first
    let (ok, out, err) = leader(
        &pki,
        &url,
        "510722",
        &["review", "history", "--report", VILLAGE, "--period", &month],
    );
    assert!(ok, "{err}");
    let steps: Vec<String> = out
        .lines()
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            // "AREA NAME PERIOD 第 N 版 STATE（...）"
            format!(
                "{} {}",
                words[4],
                words[6].split('（').next().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        steps,
        ["1 上报", "1 退回", "2 上报", "2 已审核", "3 上报"],
        "{out}"
    );
    drop(served);
}
