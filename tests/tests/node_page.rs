//! The node's entry page (填报) in headless Chromium against the real `pingan-node serve` and a
//! real hub: fill a form in, see a rule broken in Chinese and fix it, keep a draft across a
//! node restart, submit while the hub is down and see it delivered exactly once when the hub
//! returns, print the receipt, correct with a reason, round-trip an .xlsx template with a bad
//! cell and then a good one, and look at it on a phone-sized screen.
//!
//! Needs Node.js, `npm ci` in tests/e2e and Debian's chromium (`.ci/run` installs them).

use std::{
    io::BufRead as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use pingan_domain::pb;
use pingan_tests::{HubProcess, Proc, bin, wait_until};
use serde_json::Value;

const KEY: &str = "510722101002";
const FORM: &str = "zongzhi_monthly";

/// `pingan-node serve` for the village on a port the system picks; its page's URL.
fn start_node(outbox: &Path, hub: &str) -> (Proc, String) {
    let (node, url, _) = start_node_on(outbox, hub, "127.0.0.1:0", KEY);
    (node, url)
}

/// The same on `listen`; also the certificate fingerprint it printed (beyond loopback).
fn start_node_on(
    outbox: &Path,
    hub: &str,
    listen: &str,
    areas: &str,
) -> (Proc, String, Option<String>) {
    let mut node = Proc::spawn(
        Command::new(bin("pingan-node"))
            .args([
                "serve",
                "--insecure",
                "--listen",
                listen,
                "--interval",
                "1s",
            ])
            .args([
                "--hub",
                hub,
                "--area",
                areas,
                "--reporter",
                "老西街社区 张会计",
            ])
            .arg("--outbox")
            .arg(outbox)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped()),
    );
    let mut lines = std::io::BufReader::new(node.take_stdout().expect("stdout")).lines();
    let mut fingerprint = None;
    loop {
        let line = lines.next().expect("a line").expect("the node's output");
        if let Some(f) = line.strip_prefix("pingan-node page certificate SHA-256 ") {
            fingerprint = Some(f.to_owned());
            continue;
        }
        let url = line
            .trim()
            .strip_prefix("pingan-node page on ")
            .unwrap_or_else(|| panic!("the node printed {line:?}"))
            // listening on every address: the browser comes by name
            .replace("0.0.0.0", "localhost");
        return (node, url, fingerprint);
    }
}

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e")
}

/// One phase of the browser script; what it saw.
fn browse(url: &str, phase: &str, extra: &[(&str, String)]) -> Value {
    let dir = e2e_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/e2e`, as .ci/run does"
    );
    let month = pingan_domain::Period::month_of(pingan_node::today_beijing()).previous();
    let mut cmd = Command::new("node");
    cmd.arg("node.mjs")
        .current_dir(&dir)
        .env("PINGAN_NODE_URL", url)
        .env("PINGAN_PHASE", phase)
        .env("PINGAN_KEY", KEY)
        .env("PINGAN_PERIOD", month.to_string())
        .env("PINGAN_ARTIFACTS", dir.join("artifacts"))
        .env(
            "CHROMIUM",
            std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        )
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run node (install Node.js)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser script ({phase}) failed: {stdout}"
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// The hub's revisions of the village for `period`: (revision, notes).
fn stored(hub_data: &Path, period: &str) -> Vec<(u32, String)> {
    let reader = pingan_hub::store::StoreReader::open(&hub_data.join(pingan_hub::store::DB_FILE))
        .expect("open the hub's store");
    reader
        .revisions(KEY.parse().unwrap(), period.parse().unwrap())
        .expect("read")
        .into_iter()
        .map(|r| (r.revision, r.notes))
        .collect()
}

/// A filled template as Excel saves it: the template's first rows, then two values.
fn filled(path: &Path, period: &str, persons: &str) {
    use rust_xlsxwriter::Workbook;
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let rows: [[&str; 3]; 3] = [
        ["报表", FORM, "综治工作月报"],
        ["填报单位", KEY, "老西街社区居民委员会"],
        ["期间", period, ""],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *v).unwrap();
        }
    }
    for (c, h) in ["指标代码", "指标名称", "类别", "单位", "数值"]
        .iter()
        .enumerate()
    {
        sheet.write_string(4, c as u16, *h).unwrap();
    }
    sheet.write_string(5, 0, "patrol.sessions").unwrap();
    sheet.write_string(5, 1, "巡逻次数").unwrap();
    sheet.write_number(5, 4, 12).unwrap();
    sheet.write_string(6, 0, "patrol.person_times").unwrap();
    sheet.write_string(6, 1, "巡逻人次").unwrap();
    match persons.parse::<i64>() {
        Ok(n) => sheet.write_number(6, 4, n as f64).unwrap(),
        Err(_) => sheet.write_string(6, 4, persons).unwrap(),
    };
    book.save(path).unwrap();
}

fn texts(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_fills_in_saves_submits_offline_and_uploads_a_template_in_the_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let (hub_data, outbox) = (tmp.path().join("hub"), tmp.path().join("outbox"));
    let mut hub = HubProcess::start(&hub_data, HubProcess::free_port());
    let month = pingan_domain::Period::month_of(pingan_node::today_beijing()).previous();
    let (period, earlier) = (month.to_string(), month.previous().to_string());

    // fill in: a rule broken is named in Chinese, then fixed; a non-number named; a draft kept
    let (node, url) = start_node(&outbox, &hub.url);
    let old = month.shift(-3).to_string();
    let seen = browse(&url, "fill", &[("PINGAN_OLD_PERIOD", old.clone())]);
    assert!(
        seen["listStatus"].as_str().unwrap().contains("待填报"),
        "{seen}"
    );
    let broken = "调处成功 (disputes.resolved) 9 大于 调处矛盾纠纷 (disputes.mediated) 3";
    assert!(
        texts(&seen["ruleProblems"]).iter().any(|p| p == broken),
        "{seen}"
    );
    assert!(
        seen["fieldProblem"].as_str().unwrap().contains(broken),
        "{seen}"
    );
    assert!(texts(&seen["afterFix"]).is_empty(), "{seen}");
    assert!(
        texts(&seen["notANumber"])
            .iter()
            .any(|p| p == "「十二」不是整数"),
        "{seen}"
    );
    assert!(texts(&seen["clean"]).is_empty(), "{seen}");
    assert!(
        seen["saved"].as_str().unwrap().contains("草稿已保存"),
        "{seen}"
    );
    assert_eq!(
        seen["offsite"],
        serde_json::json!([]),
        "nothing fetched from elsewhere"
    );
    // what the page's API refuses: a negative count, soft warnings not confirmed with a note,
    // an upload over the limit, an area this node does not report for
    assert!(
        texts(&seen["negative"])
            .iter()
            .any(|p| p.contains("-3 不在 0 到")),
        "{seen}"
    );
    assert_eq!(seen["softStatus"], 409, "{seen}");
    assert!(!texts(&seen["softWarnings"]).is_empty(), "{seen}");
    assert_eq!(seen["confirmedStatus"], 200, "{seen}");
    assert_eq!(seen["hugeUpload"], 413, "{seen}");
    assert_eq!(seen["stranger"][0], 400, "{seen}");
    assert!(
        seen["stranger"][1]
            .as_str()
            .unwrap()
            .contains("510722101003"),
        "{seen}"
    );
    wait_until(Duration::from_secs(30), || async {
        stored(&hub_data, &old).len() == 1
    })
    .await;
    let confirmed = &stored(&hub_data, &old)[0].1;
    assert_eq!(confirmed, "含上月转来的 3 件，已核实");

    // the node restarts and the hub goes down: the draft is there, the report waits
    drop(node);
    hub.kill();
    let (node, url) = start_node(&outbox, &hub.url);
    let seen = browse(&url, "draft", &[]);
    assert!(
        seen["listStatus"].as_str().unwrap().contains("草稿"),
        "{seen}"
    );
    assert_eq!(seen["values"]["disputes.mediated"], "3", "{seen}");
    assert_eq!(seen["values"]["disputes.resolved"], "2", "{seen}");
    assert_eq!(seen["values"]["patrol.sessions"], "12", "{seen}");
    assert_eq!(seen["status"], "已保存，待发送", "{seen}");

    // the hub returns: delivered exactly once
    hub.restart();
    wait_until(Duration::from_secs(60), || async {
        stored(&hub_data, &period).len() == 1
    })
    .await;
    let seen = browse(&url, "delivered", &[]);
    assert!(
        seen["listStatus"]
            .as_str()
            .unwrap()
            .contains("已上报 第 1 版"),
        "{seen}"
    );
    let receipt = seen["receipt"].as_str().unwrap();
    for needed in [
        "上报回执",
        "老西街社区居民委员会",
        "第 1 版",
        "调处矛盾纠纷",
        "老西街社区 张会计",
        &period,
    ] {
        assert!(
            receipt.contains(needed),
            "{needed} in the receipt: {receipt}"
        );
    }
    assert!(
        texts(&seen["correctionNeedsReason"])
            .iter()
            .any(|p| p.contains("更正请写明原因")),
        "{seen}"
    );
    assert!(
        seen["corrected"].as_str().unwrap().contains("第 2 版"),
        "{seen}"
    );
    let revisions = stored(&hub_data, &period);
    assert_eq!(
        revisions.len(),
        2,
        "the first report once, then its correction: {revisions:?}"
    );
    assert_eq!(revisions[1].1, "更正：漏报一次巡逻");

    // the township returns the corrected month (审核): the node's page shows it, with the reason
    let returned = pb::review_service_client::ReviewServiceClient::connect(hub.url.clone())
        .await
        .unwrap()
        .decide(pb::DecideRequest {
            targets: vec![pb::ReviewTarget {
                area: KEY.into(),
                period: period.clone(),
                revision: 2,
            }],
            approve: false,
            reason: "巡逻人次与台账不符".into(),
            by: "潼川镇综治中心".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(returned.refused.is_empty(), "{returned:?}");

    // the Excel path: a template with a bad cell is refused by cell, a good one fills the form
    let (bad, good) = (tmp.path().join("bad.xlsx"), tmp.path().join("good.xlsx"));
    let other = tmp.path().join("other.xlsx");
    filled(&bad, &earlier, "十二");
    filled(&good, &earlier, "30");
    filled(&other, &period, "30");
    let seen = browse(
        &url,
        "upload",
        &[
            ("PINGAN_UPLOAD_PERIOD", earlier.clone()),
            ("PINGAN_BAD_XLSX", bad.display().to_string()),
            ("PINGAN_OTHER_XLSX", other.display().to_string()),
            ("PINGAN_GOOD_XLSX", good.display().to_string()),
        ],
    );
    let returned = seen["returned"].as_str().unwrap();
    assert!(
        returned.contains("第 2 版被退回（潼川镇综治中心）")
            && returned.contains("巡逻人次与台账不符"),
        "{seen}"
    );
    assert!(
        seen["templateName"].as_str().unwrap().ends_with(".xlsx"),
        "{seen}"
    );
    assert!(
        texts(&seen["notAForm"]).join(" ").contains("表头"),
        "{seen}"
    );
    assert!(
        texts(&seen["otherTemplate"]).join(" ").contains("不是本表"),
        "{seen}"
    );
    let bad_said = texts(&seen["bad"]).join(" ");
    assert!(
        bad_said.contains("E7") && bad_said.contains("不是整数"),
        "{seen}"
    );
    assert_eq!(seen["uploaded"]["sessions"], "12", "{seen}");
    assert_eq!(seen["uploaded"]["persons"], "30", "{seen}");
    assert!(
        seen["status"].as_str().unwrap().contains("已上报"),
        "{seen}"
    );
    assert_eq!(stored(&hub_data, &earlier).len(), 1);

    // a phone-sized screen: nothing wider than the screen
    let zero_period = month.shift(-2).to_string();
    let seen = browse(
        &url,
        "phone",
        &[("PINGAN_ZERO_PERIOD", zero_period.clone())],
    );
    assert!(seen["width"].as_u64().unwrap() <= 390, "{seen}");
    assert!(seen["zero"].as_str().unwrap().contains("已上报"), "{seen}");
    let reader =
        pingan_hub::store::StoreReader::open(&hub_data.join(pingan_hub::store::DB_FILE)).unwrap();
    let zero = reader
        .current(KEY.parse().unwrap(), zero_period.parse().unwrap())
        .unwrap()
        .expect("the zero report");
    assert!(zero.zero_report && zero.values.is_empty(), "{zero:?}");
    eprintln!("screenshots: {}", e2e_dir().join("artifacts").display());
    drop(node);
}

/// Beyond loopback (the office Wi-Fi) the page is HTTPS with the node's own certificate, whose
/// fingerprint it prints, and asks for an account's password; without an account it does not
/// start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_the_page_asks_for_a_password_over_https() {
    let tmp = tempfile::tempdir().unwrap();
    let outbox = tmp.path().join("outbox");
    let hub = "http://127.0.0.1:9"; // unreachable: the page works all the same
    let refused = Command::new(bin("pingan-node"))
        .args([
            "serve",
            "--insecure",
            "--listen",
            "0.0.0.0:0",
            "--hub",
            hub,
            "--area",
            KEY,
        ])
        .arg("--outbox")
        .arg(&outbox)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("pingan-node users add"),
        "{said}"
    );

    let mut add = Command::new(bin("pingan-node"))
        .args(["users", "add", "张会计", "--outbox"])
        .arg(&outbox)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    add.stdin
        .take()
        .unwrap()
        .write_all("老西街社区2026\n".as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success());

    // 潼川镇's node entering its village's paper form too (its certificate granted the subtree)
    let (node, url, fingerprint) =
        start_node_on(&outbox, hub, "0.0.0.0:0", &format!("{KEY},510722101"));
    assert!(url.starts_with("https://"), "{url}");
    // the fingerprint printed is the certificate's the node keeps
    use rustls_pki_types::{CertificateDer, pem::PemObject as _};
    let der = CertificateDer::from_pem_file(outbox.join(pingan_node::web::tls::CERT_FILE)).unwrap();
    assert_eq!(
        fingerprint.as_deref(),
        Some(pingan_node::web::tls::fingerprint(&der).as_str())
    );

    let seen = browse(
        &url,
        "signin",
        &[
            ("PINGAN_USER", "张会计".into()),
            ("PINGAN_PASSWORD", "老西街社区2026".into()),
        ],
    );
    assert_eq!(seen["anonymousApi"], 401, "{seen}");
    assert_eq!(seen["wrongPassword"], "用户名或密码错误", "{seen}");
    assert_eq!(seen["protocol"], "https:", "{seen}");
    assert!(
        seen["listStatus"].as_str().unwrap().contains("待填报"),
        "{seen}"
    );
    let cookie = &seen["cookie"][0];
    assert_eq!(
        (cookie["httpOnly"].as_bool(), cookie["secure"].as_bool()),
        (Some(true), Some(true)),
        "{seen}"
    );
    assert_eq!(cookie["sameSite"], "Strict", "{seen}");
    // the areas it reports for, and nothing else, to pick from
    assert_eq!(
        texts(&seen["reporters"]),
        [
            "老西街社区居民委员会（510722101002）",
            "潼川镇（510722101）"
        ],
        "{seen}"
    );
    assert_eq!(seen["picked"], "潼川镇（510722101）", "{seen}");
    assert!(
        texts(&seen["pickedForms"])
            .iter()
            .any(|f| f.contains("矛盾纠纷排查化解半月报")),
        "a township's own forms: {seen}"
    );
    drop(node);
}
