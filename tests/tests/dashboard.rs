//! The leaders' dashboard end to end: the real `pingan-hub serve --web-listen` over mutual TLS
//! with figures imported by `pingan-hub import` and an account added by `pingan-hub users add`
//! while it runs,
//! driven in headless Chromium by `tests/e2e/dashboard.mjs` (Playwright). Every number the page
//! shows and the .xlsx and CSV it downloads are checked against the gRPC answer for the same
//! question, and the values against a plain sum of the imported rows.
//!
//! Needs Node.js, `npm ci` in tests/e2e and Debian's chromium (`.ci/run` installs them).
//! Screenshots and downloads are kept in tests/e2e/artifacts.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use calamine::{Data, Reader as _, Xlsx, open_workbook};
use pingan_domain::{Catalogue, fixtures, pb};
use pingan_tests::{Pki, Proc, ServedHub, random_values};
use rand::{Rng as _, SeedableRng as _};
use serde_json::Value;

const COUNTY: &str = "510722";
const TOWNSHIP: &str = "510722104";
const QUARTER: &str = "2026-Q3";
const METRIC: &str = "disputes.success_rate";
const USER: &str = "三台县政法委";
const PASSWORD: &str = "平安-2026-correct horse";

/// Months whose figures are imported: the quarter, the one before (环比) and a year earlier (同比).
const MONTHS: [&str; 9] = [
    "2025-07", "2025-08", "2025-09", "2026-04", "2026-05", "2026-06", "2026-07", "2026-08",
    "2026-09",
];

/// Writes the township's villages' figures as a long CSV for `pingan-hub import`; returns the
/// values by (village, month, metric), totals only. A few villages miss September 2026.
fn write_figures(path: &Path) -> BTreeMap<(String, String, String), i64> {
    let areas = fixtures::santai_areas();
    let catalogue = Catalogue::builtin();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let villages = areas.children(TOWNSHIP.parse().expect("township"));
    assert!(villages.len() > 5, "the township has villages");
    let mut out = BTreeMap::new();
    // with 分类 where a value comes broken down (网格员 by 专职/兼职, 纠纷 by type)
    let mut csv = String::from("area,period,metric,value,part\n");
    for (i, village) in villages.iter().enumerate() {
        for month in MONTHS {
            if month == "2026-09" && i % 7 == 3 {
                continue; // not reported: the completeness view names them
            }
            let mut values = random_values(&mut rng, &catalogue, &village.to_string(), month);
            // in the quarter every village settles nearly all of its disputes but one, which
            // settles a fifth: the table has an outlier to mark
            if month.starts_with("2026-0") && month >= "2026-07" {
                values.retain(|v| !v.metric.starts_with("disputes."));
                let mediated = rng.random_range(10..20);
                let resolved = if i == 1 {
                    mediated / 5
                } else {
                    mediated - rng.random_range(0..2)
                };
                values.push(pingan_tests::value("disputes.mediated", mediated));
                values.push(pingan_tests::value("disputes.resolved", resolved));
            }
            for v in values {
                let total = v.total.unwrap_or_else(|| v.parts.values().sum());
                if let Some(t) = v.total {
                    csv.push_str(&format!("{village},{month},{},{t},\n", v.metric));
                }
                for (part, n) in &v.parts {
                    csv.push_str(&format!("{village},{month},{},{n},{part}\n", v.metric));
                }
                if v.total.is_none() && v.parts.is_empty() {
                    csv.push_str(&format!("{village},{month},{},{total},\n", v.metric));
                }
                out.insert((village.to_string(), month.to_owned(), v.metric), total);
            }
        }
    }
    std::fs::write(path, csv).expect("write the import file");
    out
}

/// `pingan-hub ARGS` with `stdin` on standard input; panics with its output when it fails.
fn hub_command(args: &[&str], data: &Path, stdin: &str) -> String {
    let out = pingan_tests::hub_with_stdin(args, data, stdin);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pingan-hub {args:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The hub as a user starts it: mutual TLS for gRPC, the dashboard on its own port.
struct Hub {
    _process: Proc,
    grpc: String,
    web: String,
}

fn start_hub(data: &Path, pki: &Pki, webhook: &str, contact: &str) -> Hub {
    let departments = data.with_file_name("departments.csv");
    std::fs::write(&departments, fixtures::SANTAI_DEPARTMENTS_CSV).expect("write the list");
    // whom to call in one village of the township, for the reminders (催报)
    let contacts = data.with_file_name("contacts.csv");
    std::fs::write(
        &contacts,
        format!("区划代码,联系人,电话,企业微信,钉钉\n{contact},王书记,13900000004,,ding-wang\n"),
    )
    .expect("write the contacts");
    // map boundaries for the county's townships: a made-up grid of squares (real boundaries
    // are the deployment's own GeoJSON), one file, plus a feature of no registry code
    let boundaries = data.with_file_name("boundaries");
    std::fs::create_dir_all(&boundaries).expect("boundaries dir");
    let mut towns = fixtures::santai_areas()
        .children(COUNTY.parse().expect("county"))
        .to_vec();
    towns.sort();
    let features: Vec<Value> = towns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (x, y) = ((i % 6) as f64 * 0.1 + 104.8, (i / 6) as f64 * 0.1 + 30.9);
            serde_json::json!({"type": "Feature", "properties": {"code": t.to_string()},
                "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + 0.1, y], [x + 0.1, y + 0.1], [x, y + 0.1], [x, y]]]}})
        })
        .chain(std::iter::once(serde_json::json!({"type": "Feature", "properties": {"code": "999999999"},
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}})))
        .collect();
    std::fs::write(
        boundaries.join("510722-townships.geojson"),
        serde_json::json!({"type": "FeatureCollection", "features": features}).to_string(),
    )
    .expect("write the boundaries");
    let served = ServedHub::start([
        "--boundaries".as_ref(),
        boundaries.as_os_str(),
        "--remind-webhook".as_ref(),
        webhook.as_ref(),
        "--remind-format".as_ref(),
        "dingtalk".as_ref(),
        "--contacts".as_ref(),
        contacts.as_os_str(),
        "--departments".as_ref(),
        departments.as_os_str(),
        "--web-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--ca".as_ref(),
        pki.path("ca.pem").as_os_str(),
        "--cert".as_ref(),
        pki.path("hub-510722.pem").as_os_str(),
        "--key".as_ref(),
        pki.path("hub-510722.key").as_os_str(),
    ]);
    let web = served.web.clone().expect("the dashboard's address");
    assert!(
        web.starts_with("https://"),
        "the dashboard serves HTTPS: {web}"
    );
    Hub {
        grpc: format!("https://localhost:{}", served.port()),
        web,
        _process: served.process,
    }
}

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e")
}

/// Runs the browser script; its JSON report.
fn run_browser(hub: &Hub, artifacts: &Path) -> Value {
    let dir = e2e_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/e2e` (and install Debian's chromium), as .ci/run does"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} not found: install Debian's chromium (`apt-get install chromium`), as .ci/run does"
    );
    let out = Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&dir)
        .env("PINGAN_WEB_URL", &hub.web)
        .env("PINGAN_USER", USER)
        .env("PINGAN_PASSWORD", PASSWORD)
        .env("PINGAN_TOWNSHIP", TOWNSHIP)
        .env("PINGAN_QUARTER", QUARTER)
        .env("PINGAN_METRIC", METRIC)
        // the prefecture above the user's county: it exists, and it is not the user's to read
        .env("PINGAN_OUTSIDE", "5107")
        .env("PINGAN_ARTIFACTS", artifacts)
        .env("CHROMIUM", &chromium)
        .stderr(Stdio::inherit())
        .output()
        .expect("run node (install Node.js)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the browser script failed: {stdout}");
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the browser script's report is not JSON ({e}): {stdout}"))
}

/// 三台县商务局's September on the departments' form, with its own certificate.
async fn submit_department(hub: &Hub, pki: &Pki) {
    pki.issue_department(COUNTY, "sw-510722");
    let channel = tonic::transport::Channel::from_shared(hub.grpc.clone())
        .expect("url")
        .tls_config(pki.client("node-sw-510722"))
        .expect("tls")
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .expect("connect to the hub");
    let mut report = pingan_tests::report(
        COUNTY,
        "2026-09",
        vec![
            pingan_tests::value("disputes.identified", 3),
            pingan_tests::value("petitions.letters", 6),
        ],
    );
    report.department = "sw-510722".into();
    pb::report_service_client::ReportServiceClient::new(channel)
        .submit(report)
        .await
        .expect("the department's report");
}

/// The county leader's gRPC connection to the hub.
async fn grpc_viewer(hub: &Hub, pki: &Pki) -> tonic::transport::Channel {
    if !pki.path(&format!("viewer-{COUNTY}.pem")).exists() {
        pki.issue(pingan_hub::access::tls::Role::Viewer, COUNTY);
    }
    tonic::transport::Channel::from_shared(hub.grpc.clone())
        .expect("url")
        .tls_config(pki.client(&format!("viewer-{COUNTY}")))
        .expect("tls")
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .expect("connect to the hub")
}

/// 考核 of the county's townships for September (the hub's own scheme), over gRPC.
async fn grpc_assess(hub: &Hub, pki: &Pki) -> pb::AssessReply {
    pb::query_service_client::QueryServiceClient::new(grpc_viewer(hub, pki).await)
        .assess(pb::AssessRequest {
            area: COUNTY.into(),
            period: "2026-09".into(),
            ..Default::default()
        })
        .await
        .expect("gRPC assess")
        .into_inner()
}

/// How many reports the county misses for September, over gRPC.
async fn completeness_missing(hub: &Hub, pki: &Pki) -> u64 {
    pb::query_service_client::QueryServiceClient::new(grpc_viewer(hub, pki).await)
        .completeness(pb::CompletenessRequest {
            area: COUNTY.into(),
            period: "2026-09".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("gRPC completeness")
        .into_inner()
        .summary
        .expect("summary")
        .missing
}

/// The children of `area` ranked on `metric`, over gRPC.
async fn grpc_rank(
    hub: &Hub,
    pki: &Pki,
    area: &str,
    period: &str,
    metric: &str,
) -> pb::CompareReply {
    pb::query_service_client::QueryServiceClient::new(grpc_viewer(hub, pki).await)
        .compare(pb::CompareRequest {
            area: area.into(),
            period: period.into(),
            metric: metric.into(),
            ..Default::default()
        })
        .await
        .expect("gRPC compare")
        .into_inner()
}

/// An area's rollup for a period, over gRPC.
async fn grpc_rollup(hub: &Hub, pki: &Pki, area: &str, period: &str) -> pb::RollupReply {
    pb::query_service_client::QueryServiceClient::new(grpc_viewer(hub, pki).await)
        .rollup(pb::RollupRequest {
            area: area.into(),
            period: period.into(),
            ..Default::default()
        })
        .await
        .expect("gRPC rollup")
        .into_inner()
}

async fn grpc_compare(hub: &Hub, pki: &Pki) -> pb::CompareReply {
    pb::query_service_client::QueryServiceClient::new(grpc_viewer(hub, pki).await)
        .compare(pb::CompareRequest {
            area: TOWNSHIP.into(),
            period: QUARTER.into(),
            metric: METRIC.into(),
            level: String::new(),
            complete_only: false,
            ..Default::default()
        })
        .await
        .expect("gRPC compare")
        .into_inner()
}

/// `pingan-hub bulletin` for the county's September as its leader: the .docx's bytes.
fn bulletin_docx(hub: &Hub, pki: &Pki, dir: &Path) -> Vec<u8> {
    let out = dir.join("通报.docx");
    let run = std::process::Command::new(pingan_tests::bin("pingan-hub"))
        .args([
            "bulletin", "--hub", &hub.grpc, "--area", COUNTY, "--period", "2026-09",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--ca")
        .arg(pki.path("ca.pem"))
        .arg("--cert")
        .arg(pki.path(&format!("viewer-{COUNTY}.pem")))
        .arg("--key")
        .arg(pki.path(&format!("viewer-{COUNTY}.key")))
        .output()
        .expect("run pingan-hub bulletin");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read(&out).expect("the bulletin")
}

/// The text of every `<w:t>` run in a piece of WordprocessingML, joined.
fn texts(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<w:t") {
        rest = &rest[i + 4..];
        // the text element itself, not <w:tbl>, <w:tc>, <w:tr> ...
        if !(rest.starts_with('>') || rest.starts_with(' ')) {
            continue;
        }
        let (Some(open), Some(close)) = (rest.find('>'), rest.find("</w:t>")) else {
            break;
        };
        out.push_str(&rest[open + 1..close]);
        rest = &rest[close..];
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Every table of a document.xml: rows of cell texts.
fn docx_tables(xml: &str) -> Vec<Vec<Vec<String>>> {
    xml.split("<w:tbl>")
        .skip(1)
        .map(|t| {
            let t = t.split("</w:tbl>").next().unwrap_or_default();
            t.split("</w:tr>")
                .filter(|r| r.contains("<w:tc>"))
                .map(|r| r.split("<w:tc>").skip(1).map(texts).collect())
                .collect()
        })
        .collect()
}

/// Two optional numbers equal to within rounding (of the printed JSON, of the spreadsheet).
fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        _ => false,
    }
}

/// A page cell's raw value (null when missing) equal to a gRPC figure.
fn same(page: &Value, grpc: Option<f64>) -> bool {
    (page.is_null() || page.is_number()) && close(page.as_f64(), grpc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_reads_compares_and_downloads_within_the_jurisdiction_only() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("hub");
    let figures_csv = tmp.path().join("figures.csv");
    let figures = write_figures(&figures_csv);
    let pki = Pki::new();

    let imported = hub_command(
        &[
            "import",
            "--file",
            figures_csv.to_str().expect("utf-8 path"),
        ],
        &data,
        "",
    );
    assert!(imported.contains("0 refused"), "{imported}");
    let (hook, robot) = pingan_tests::webhook(vec![pingan_tests::Reply::Ok]).await;
    // a village of the township without September figures: its contact is named and @-ed
    let missing_village = fixtures::santai_areas()
        .descendants_at(TOWNSHIP.parse().unwrap(), pingan_domain::Level::Village)
        .into_iter()
        .find(|v| {
            !figures
                .keys()
                .any(|(a, m, _)| *a == v.to_string() && m == "2026-09")
        })
        .expect("the fixture leaves some villages out of September");
    let hub = start_hub(&data, &pki, &hook, &missing_village.to_string());
    // 三台县商务局 reports the latest month on its own form; 国资委 does not
    submit_department(&hub, &pki).await;
    // the account is added while the hub runs, as an administrator would
    let added = hub_command(
        &["users", "add", "--area", COUNTY, USER],
        &data,
        &format!("{PASSWORD}\n"),
    );
    assert!(added.contains("三台县"), "{added}");
    let artifacts = e2e_dir().join("artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    let seen = run_browser(&hub, &artifacts);
    let grpc = grpc_compare(&hub, &pki).await;
    let assessed = grpc_assess(&hub, &pki).await;
    eprintln!("screenshots and downloads: {}", artifacts.display());

    // 考核 on the first screen: the county's townships in the same order with the same totals
    // as the gRPC answer (the figures behind them are the same rollups as every table's)
    let page: Vec<(String, String, String)> = seen["assessRows"]
        .as_array()
        .expect("assess rows")
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or_default().to_owned(),
                r[1].as_str().unwrap_or_default().to_owned(),
                r[3].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = assessed
        .rows
        .iter()
        .map(|r| {
            (
                if r.rank > 0 {
                    r.rank.to_string()
                } else {
                    "—".into()
                },
                r.code.clone(),
                r.total.map_or("—".into(), |t| format!("{t:.2}")),
            )
        })
        .collect();
    assert_eq!(page, want);
    assert!(assessed.rows.len() > 20, "every township of the county");
    // the township that reported is the one scored from figures; the others miss reports
    let scored = assessed
        .rows
        .iter()
        .find(|r| r.code == TOWNSHIP)
        .expect("the township");
    assert!(scored.items.iter().any(|i| i.value.is_some()), "{scored:?}");

    // 通报 as Word: opened as a zip, its document read back: the 考核 table and the ranking of
    // 调处成功率 hold the gRPC answers' numbers, both charts are PNG pictures it shows, and a
    // period with missing reports that nobody locked is 初步 and says how many are missing
    let docx = bulletin_docx(&hub, &pki, tmp.path());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(docx)).expect("a .docx is a zip");
    let mut part = |name: &str| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name(name).expect(name), &mut bytes).expect(name);
        bytes
    };
    let document = String::from_utf8(part("word/document.xml")).expect("utf-8");
    let rels = String::from_utf8(part("word/_rels/document.xml.rels")).expect("utf-8");
    let styles = String::from_utf8(part("word/styles.xml")).expect("utf-8");
    for n in 1..=2 {
        let png = part(&format!("word/media/chart{n}.png"));
        assert_eq!(&png[..4], b"\x89PNG", "chart {n}");
        assert!(
            rels.contains(&format!("Id=\"rIdImg{n}\""))
                && document.contains(&format!("r:embed=\"rIdImg{n}\""))
        );
    }
    assert!(
        styles.contains("w:eastAsia=\"仿宋_GB2312\""),
        "Chinese fonts declared"
    );
    let all_text = texts(&document);
    assert!(
        all_text.contains("三台县平安建设工作通报（初步）"),
        "{all_text}"
    );
    let missing = completeness_missing(&hub, &pki).await;
    assert!(missing > 0);
    assert!(
        all_text.contains(&format!("尚有 {missing} 份未报")),
        "{missing} missing: {all_text}"
    );
    for words in [
        "一、总体情况",
        "同比",
        "环比",
        "通报表扬",
        "通报批评",
        "图1",
        "图2",
    ] {
        assert!(all_text.contains(words), "{words}: {all_text}");
    }
    let tables = docx_tables(&document);
    let assess_table = tables
        .iter()
        .find(|t| t[0].first().is_some_and(|h| h == "名次"))
        .expect("the 考核 table");
    let from_docx: Vec<(String, String, String)> = assess_table[1..]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[3].clone()))
        .collect();
    assert_eq!(from_docx, want, "the 考核 table as gRPC answered");
    let rate = grpc_rank(&hub, &pki, COUNTY, "2026-09", METRIC).await;
    let rate_table = &tables[0];
    assert_eq!(rate_table.len(), rate.rows.len() + 1);
    for (row, x) in rate_table[1..].iter().zip(&rate.rows) {
        assert_eq!(row[1], x.code);
        let shown = x.rate.map_or("—".to_owned(), |v| {
            if v.fract() == 0.0 {
                format!("{}", v as i64)
            } else {
                format!("{v:.2}")
            }
        });
        assert_eq!(row[3], shown, "{} {METRIC}", x.code);
    }
    assert!(
        rate.rows.iter().any(|x| x.rate.is_some()),
        "some township has a rate"
    );
    // the print view in the browser (its title, and a screenshot)
    assert!(
        seen["bulletinTitle"]
            .as_str()
            .is_some_and(|t| t.starts_with("三台县平安建设工作通报")),
        "{seen}"
    );

    // signing in: a wrong password is refused, the right one shows who is signed in
    assert_eq!(seen["wrongPassword"], "用户名或密码错误");
    assert_eq!(seen["who"], format!("{USER} · 三台县"));
    assert!(seen["trail"].as_str().expect("trail").contains("塔山镇"));

    // the comparison table: the same rows, in the same order, with the same numbers as gRPC
    let page_rows = seen["compare"]["rows"].as_array().expect("rows");
    assert_eq!(page_rows.len(), grpc.rows.len(), "one row per village");
    assert!(grpc.rows.len() > 5);
    let order = |rows: Vec<String>| rows.join(" ");
    let page_order = order(
        page_rows
            .iter()
            .map(|p| format!("{}:{}", p["code"], p["rank"]))
            .collect(),
    );
    let grpc_order = order(
        grpc.rows
            .iter()
            .map(|g| format!("{}:{}", g.code, g.rank))
            .collect(),
    );
    for (p, g) in page_rows.iter().zip(&grpc.rows) {
        assert_eq!(
            p["code"],
            g.code.as_str(),
            "row order: page {page_order} gRPC {grpc_order}"
        );
        assert_eq!(p["name"], g.name.as_str());
        let rank = if g.rank == 0 {
            Value::Null
        } else {
            Value::from(g.rank)
        };
        assert_eq!(p["rank"], rank, "{}", g.code);
        let c = g.completeness.expect("completeness");
        for (key, want) in [
            ("value", g.value),
            ("rate", g.rate),
            ("share", g.share),
            ("yoy_base", g.yoy_base),
            ("yoy_change", g.yoy_change),
            ("yoy_pct", g.yoy_pct),
            ("mom_base", g.mom_base),
            ("mom_change", g.mom_change),
            ("mom_pct", g.mom_pct),
            ("expected", Some(c.expected as f64)),
            ("received", Some(c.received as f64)),
            ("on_time", Some(c.on_time as f64)),
        ] {
            assert!(
                same(&p[key], want),
                "{} {key}: page {} gRPC {want:?}",
                g.code,
                p[key]
            );
        }
        assert_eq!(p["outlier"], g.outlier, "{}", g.code);
        // and a plain computation from the imported rows: resolved / mediated over the quarter
        let sum = |metric: &str| {
            let vals: Vec<i64> = ["2026-07", "2026-08", "2026-09"]
                .iter()
                .filter_map(|m| figures.get(&(g.code.clone(), (*m).to_owned(), metric.to_owned())))
                .copied()
                .collect();
            (!vals.is_empty()).then(|| vals.iter().sum::<i64>() as f64)
        };
        let (resolved, mediated) = (sum("disputes.resolved"), sum("disputes.mediated"));
        assert_eq!(g.value, resolved, "{}: the numerator's sum", g.code);
        let rate = match (resolved, mediated) {
            (Some(r), Some(m)) if m > 0.0 => Some(r / m * 100.0),
            _ => None,
        };
        assert!(
            same(&p["rate"], rate),
            "{} rate: page {} plain {rate:?}",
            g.code,
            p["rate"]
        );
    }
    assert!(
        grpc.rows.iter().any(|r| r.yoy_pct.is_some()),
        "同比 is shown"
    );
    assert!(
        grpc.rows.iter().any(|r| r.mom_pct.is_some()),
        "环比 is shown"
    );
    assert!(
        grpc.rows.iter().any(|r| r.outlier),
        "the village that settles a fifth is marked"
    );
    let shown = seen["compare"]["shown"].as_array().expect("shown");
    assert!(
        shown
            .iter()
            .filter_map(Value::as_array)
            .flatten()
            .any(|s| s == "⚠ 异常"),
        "outliers are marked on the page"
    );
    assert!(
        seen["trendPoints"].as_u64() >= Some(8),
        "{}",
        seen["trendPoints"]
    );
    // the first screen's cards: each headline figure is the township's rollup for the quarter
    // (gRPC's), its 同比 coloured by which way is better (rising 发案 red, falling green)
    let now = grpc_rollup(&hub, &pki, TOWNSHIP, QUARTER).await;
    let before = grpc_rollup(&hub, &pki, TOWNSHIP, "2025-Q3").await;
    let cards = seen["cards"].as_array().expect("cards");
    let catalogue = Catalogue::builtin();
    let headline: Vec<&str> = catalogue
        .metrics()
        .iter()
        .filter(|m| m.headline)
        .map(|m| m.id.as_str())
        .chain(
            catalogue
                .indicators()
                .iter()
                .filter(|i| i.headline)
                .map(|i| i.id.as_str()),
        )
        .collect();
    assert_eq!(cards.len(), headline.len() + 1, "{cards:?}");
    let number = |v: Option<f64>| {
        v.map_or("—".to_owned(), |v| {
            if v.fract() == 0.0 {
                format!("{}", v as i64)
            } else {
                format!("{}", (v * 100.0).round() / 100.0)
            }
        })
    };
    let figure = |r: &pb::RollupReply, id: &str| {
        r.figures
            .iter()
            .find(|f| f.metric == id)
            .map(|f| f.total.map(|v| v as f64))
            .or_else(|| r.rates.iter().find(|x| x.indicator == id).map(|x| x.value))
            .flatten()
    };
    for id in &headline {
        let card = cards
            .iter()
            .find(|c| c["id"] == *id)
            .unwrap_or_else(|| panic!("{id} card"));
        let shown = card["value"].as_str().unwrap_or_default().replace(',', "");
        assert_eq!(shown, number(figure(&now, id)), "{id}: {card}");
    }
    let crime = cards
        .iter()
        .find(|c| c["id"] == "cases.criminal_filed")
        .expect("发案 card");
    let (n, b) = (
        figure(&now, "cases.criminal_filed"),
        figure(&before, "cases.criminal_filed"),
    );
    let class = crime["yoy"].as_str().unwrap_or_default();
    match (n, b) {
        (Some(n), Some(b)) if n > b => assert!(class.contains("bad"), "{crime}"),
        (Some(n), Some(b)) if n < b => assert!(class.contains("good"), "{crime}"),
        _ => assert!(class.contains("flat"), "{crime}"),
    }
    // clicking the chart's first bar went down to that area; on a phone the page fits the width
    // the bar goes down to a village: drawn without the ranking and map it cannot have, and
    // without an error
    let drilled = &seen["chartDrill"];
    assert!(
        drilled["ready"]
            .as_str()
            .zip(drilled["code"].as_str())
            .is_some_and(|(ready, code)| code.len() == 12 && ready.starts_with(&format!("{code}|"))),
        "{drilled}"
    );
    assert_eq!(drilled["error"].as_str(), Some(""), "{drilled}");
    assert_eq!(
        (
            drilled["rankingHidden"].as_bool(),
            drilled["mapHidden"].as_bool(),
            drilled["trendHidden"].as_bool()
        ),
        (Some(true), Some(true), Some(false)),
        "{drilled}"
    );
    let phone = &seen["phone"];
    assert!(
        phone["scroll"].as_u64() <= phone["width"].as_u64().map(|w| w + 1),
        "the phone page scrolls sideways: {phone}"
    );
    assert!(phone["cards"].as_u64() > Some(1), "{phone}");
    assert_eq!(
        seen["projectorFont"], "19px",
        "larger type on a wall screen"
    );
    // the breakdown's pie: 网格员 by 专职/兼职 as the township's rollup by category says
    let by_category =
        pb::query_service_client::QueryServiceClient::new(grpc_viewer(&hub, &pki).await)
            .rollup(pb::RollupRequest {
                area: TOWNSHIP.into(),
                period: QUARTER.into(),
                metrics: vec!["grid.workers".into()],
                by_category: true,
                ..Default::default()
            })
            .await
            .expect("gRPC rollup")
            .into_inner();
    let want: Vec<(String, i64)> = by_category.figures[0]
        .parts
        .iter()
        .filter_map(|p| Some((p.part.clone(), p.value?)))
        .collect();
    assert!(
        !want.is_empty(),
        "the township's villages broke 网格员 down"
    );
    let pie: Vec<(String, i64)> = seen["parts"]
        .as_array()
        .expect("pie")
        .iter()
        .map(|d| {
            (
                d[0].as_str().unwrap_or_default().to_owned(),
                d[1].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(pie, want);
    // the charts draw the tables' numbers: the ranking's bars are the ranked rows' rates in
    // rank order with the county-wide rate (gRPC's) as the line; the trend's two lines are the
    // trend table's 本期 and 去年同期 columns
    let chart = &seen["rankChart"];
    let ranked: Vec<&pb::CompareRow> = grpc.rows.iter().filter(|r| r.rate.is_some()).collect();
    assert!(!ranked.is_empty());
    assert_eq!(
        texts_of(&chart["codes"]),
        ranked.iter().map(|r| r.code.clone()).collect::<Vec<_>>()
    );
    let bars: Vec<Option<f64>> = chart["values"]
        .as_array()
        .expect("bars")
        .iter()
        .map(Value::as_f64)
        .collect();
    for (bar, row) in bars.iter().zip(&ranked) {
        assert!(close(*bar, row.rate), "{} {bar:?} {:?}", row.code, row.rate);
    }
    assert!(
        close(chart["reference"].as_f64(), grpc.parent_rate),
        "{chart}"
    );
    let trend = &seen["trendChart"];
    let table = seen["trendTable"].as_array().expect("trend table");
    assert!(table.len() >= 8);
    assert_eq!(trend["now"].as_array().map(Vec::len), Some(table.len()));
    for (i, row) in table.iter().enumerate() {
        assert_eq!(trend["periods"][i], row[0], "{i}");
        assert!(
            same(&trend["now"][i], row[1].as_f64()),
            "{i}: {trend} {row}"
        );
        assert!(
            same(&trend["before"][i], row[2].as_f64()),
            "{i}: {trend} {row}"
        );
    }
    let missing: Vec<&Value> = seen["completenessRows"]
        .as_array()
        .expect("completeness rows")
        .iter()
        .filter(|r| r[3] == "未报")
        .collect();
    assert!(
        !missing.is_empty(),
        "the villages that missed September are named"
    );
    // every form together names months and half-months; the half-monthly form alone names the
    // township's six half-months of the quarter (it sent none), no month
    let all_rows = seen["completenessRows"].as_array().expect("rows");
    assert!(
        all_rows
            .iter()
            .any(|r| r[2].as_str().is_some_and(|p| p.contains("-H")))
    );
    let half: Vec<&Value> = seen["halfMonthRows"]
        .as_array()
        .expect("half-month rows")
        .iter()
        .collect();
    assert_eq!(half.len(), 6, "{half:?}");
    assert!(
        half.iter().all(|r| r[0] == TOWNSHIP
            && r[2].as_str().is_some_and(|p| p.contains("-H"))
            && r[3] == "未报"),
        "{half:?}"
    );
    // the departments (条) of the county, apart from its totals: the one that reported, ranked
    // on the metric shown (排查矛盾纠纷, the first), and the one that owes September
    let departments = seen["departmentsRows"]
        .as_array()
        .expect("departments rows");
    let row = |id: &str| {
        departments
            .iter()
            .find(|r| r[1] == id)
            .unwrap_or_else(|| panic!("{id} in {departments:?}"))
    };
    assert_eq!(row("sw-510722")[0], "1", "{departments:?}");
    assert_eq!(row("sw-510722")[5], "3", "{departments:?}");
    assert!(
        row("gzw-510722")[9]
            .as_str()
            .is_some_and(|m| m.contains("gzw-510722 三台县国资委 2026-09")),
        "{departments:?}"
    );
    assert!(
        seen["departmentsTitle"]
            .as_str()
            .is_some_and(|t| t.contains("排查矛盾纠纷")),
        "{}",
        seen["departmentsTitle"]
    );
    // 审核 from the page: every village with September figures waits for review (a plain count of
    // the imported rows); two approved, one returned with its reason, as the store records them
    let imported: std::collections::BTreeSet<&String> = figures
        .keys()
        .filter(|(_, m, _)| m == "2026-09")
        .map(|(a, _, _)| a)
        .collect();
    assert_eq!(seen["reviewPending"], imported.len(), "{seen}");
    let reviewed = texts_of(&seen["reviewAreas"]);
    assert_eq!(reviewed.len(), 3, "{seen}");
    assert_eq!(
        texts_of(&seen["approvedNotes"]),
        ["已审核通过 2 份"],
        "{seen}"
    );
    let states = &seen["reviewStates"];
    for a in &reviewed[..2] {
        assert_eq!(states[a][0], "已审核", "{a}: {seen}");
        assert_eq!(states[a][1], USER, "{a}: {seen}");
    }
    assert_eq!(states[&reviewed[2]][0], "退回", "{seen}");
    assert_eq!(states[&reviewed[2]][3], "数字与台账不符", "{seen}");
    assert!(
        seen["reviewTitle"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("待审核 {} 份", imported.len() - 3))),
        "{seen}"
    );
    // the map: every township of the county has a boundary (the made-up one of no registry code
    // is left out), and each is coloured by its 调处矛盾纠纷 in the ranking table beside it
    let map = &seen["map"];
    let townships = fixtures::santai_areas()
        .children(COUNTY.parse().expect("county"))
        .len();
    assert_eq!(map["regions"].as_u64(), Some(townships as u64), "{map}");
    assert_eq!(map["hidden"], false);
    let table: Vec<(String, Value)> = seen["compareFirst"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r[0].as_str().unwrap_or_default().to_owned(), r[1].clone()))
        .collect();
    let drawn = map["data"].as_array().expect("map data");
    assert_eq!(drawn.len(), table.len(), "{map}");
    assert!(
        drawn.iter().any(|d| d[1].is_number()),
        "some township has a figure: {map}"
    );
    for d in drawn {
        let code = d[0].as_str().unwrap_or_default();
        let row = table
            .iter()
            .find(|(c, _)| c == code)
            .expect("a row per region");
        assert_eq!(d[1], row.1, "{code}");
    }
    // 审核记录: the returned report's steps, oldest first
    let history = texts_of(&seen["history"]);
    assert_eq!(history.len(), 2, "{seen}");
    assert!(history[0].starts_with("第 1 版 上报"), "{history:?}");
    assert!(
        history[1].starts_with("第 1 版 退回") && history[1].contains("数字与台账不符"),
        "{history:?}"
    );
    // 锁定 from the page: 关账 is refused while villages are missing and says how to override;
    // 强制关账 locks with the override in its reason; 解锁 opens it; each step is listed
    assert_eq!(seen["lockClose"], "refused", "{seen}");
    let refusal = seen["lockRefusal"].as_str().unwrap_or_default();
    assert!(
        refusal.contains("个单位未报") && refusal.contains("强制关账"),
        "{refusal}"
    );
    assert_eq!(seen["lockForce"], "done", "{seen}");
    assert_eq!(
        seen["lockState"],
        format!("{COUNTY}|2026-09|locked|1"),
        "{seen}"
    );
    assert!(
        seen["lockTitle"]
            .as_str()
            .is_some_and(|t| t.contains("本区域已锁定")),
        "{seen}"
    );
    assert_eq!(seen["lockOpen"], "done", "{seen}");
    let lock_events = texts_of(&seen["lockEvents"]);
    assert_eq!(lock_events.len(), 2, "{lock_events:?}");
    assert!(
        lock_events[0].contains("已锁定")
            && lock_events[0].contains("强制关账")
            && lock_events[0].contains(USER),
        "{lock_events:?}"
    );
    assert!(lock_events[1].contains("已解锁"), "{lock_events:?}");
    // 仅已审核 in the page: the county's ranking of 调处矛盾纠纷 counts the two approved villages
    // only (a plain sum of their imported figures), every other township has no approved
    // figure; ticked off, the figures are every current one again
    let metric = "disputes.mediated";
    let month = seen["firstReady"]
        .as_str()
        .and_then(|r| r.split('|').nth(1))
        .expect("the period shown");
    assert_eq!(month, "2026-09", "{seen}");
    // the first screen (cards, ranking, trend) said it was drawn for the same view, before the rest
    assert_eq!(seen["firstScreen"], seen["firstReady"], "{seen}");
    let approved_sum = |township: &str| -> Option<i64> {
        reviewed[..2]
            .iter()
            .filter(|v| v.starts_with(township))
            .filter_map(|v| figures.get(&(v.clone(), month.to_owned(), metric.to_owned())))
            .copied()
            .reduce(|a, b| a + b)
    };
    let rows = seen["approvedCompare"]
        .as_array()
        .expect("approved ranking");
    assert!(!rows.is_empty(), "{seen}");
    assert!(
        approved_sum(TOWNSHIP).is_some_and(|n| n > 0),
        "the approved villages reported the metric"
    );
    for row in rows {
        let code = row[1].as_str().expect("code");
        let shown = row[3].as_str().expect("value");
        let plain = approved_sum(code).map_or("—".to_owned(), |n| n.to_string());
        assert_eq!(shown, plain, "{code} approved only: {row:?}");
    }
    assert!(
        texts_of(&seen["approvedCompareNotes"])
            .iter()
            .any(|n| n.starts_with("仅已审核数据")),
        "{seen}"
    );
    assert!(
        !texts_of(&seen["currentCompareNotes"])
            .iter()
            .any(|n| n.starts_with("仅已审核数据")),
        "{seen}"
    );
    let db = rusqlite::Connection::open_with_flags(
        data.join(pingan_hub::store::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("the store");
    let events: Vec<(String, bool, String)> = db
        .prepare("SELECT area, approved, identity FROM review_events ORDER BY rowid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let viewer = format!("pingan://viewer/{COUNTY}");
    assert_eq!(
        events,
        [
            (reviewed[0].clone(), true, viewer.clone()),
            (reviewed[1].clone(), true, viewer.clone()),
            (reviewed[2].clone(), false, viewer.clone()),
        ]
    );
    let locks: Vec<(String, bool, String)> = db
        .prepare("SELECT root, locked, identity FROM lock_events ORDER BY rowid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        locks,
        [
            (COUNTY.to_owned(), true, viewer.clone()),
            (COUNTY.to_owned(), false, viewer),
        ]
    );

    // 催报 from the page: every township of the county owing September hears of it; the
    // township's message names exactly its villages without September figures
    let reminded = seen["remind"].as_str().expect("the reminder's answer");
    assert!(reminded.starts_with("已向 33 个乡镇发送催报"), "{reminded}");
    assert!(
        texts_of(&seen["completenessHeader"])
            .iter()
            .any(|h| h == "联系人"),
        "{seen}"
    );
    let messages = robot.lock().unwrap().clone();
    let ours: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["markdown"]["text"].as_str())
        .filter(|t| t.contains("综治工作月报 2026-09") && t.contains(&format!("（{TOWNSHIP}）")))
        .collect();
    assert_eq!(ours.len(), 1, "{messages:?}");
    let areas = fixtures::santai_areas();
    for v in areas.descendants_at(TOWNSHIP.parse().unwrap(), pingan_domain::Level::Village) {
        let reported = figures
            .keys()
            .any(|(a, m, _)| *a == v.to_string() && m == "2026-09");
        assert_eq!(
            !ours[0].contains(&format!("（{v}）")),
            reported,
            "{v}: reported {reported}: {}",
            ours[0]
        );
    }
    assert!(
        ours[0].contains(&format!(
            "（{missing_village}）：王书记 13900000004 @13900000004"
        )),
        "{}",
        ours[0]
    );
    let options = seen["formOptions"].as_array().expect("form options");
    assert!(
        !options
            .iter()
            .any(|o| o.as_str().is_some_and(|o| o.contains("部门"))),
        "the departments' form is not a division's completeness: {options:?}"
    );
    assert!(
        options
            .iter()
            .any(|o| o == "矛盾纠纷排查化解半月报（半月报）"),
        "{options:?}"
    );
    let groups = seen["breakdownGroups"].as_array().expect("groups");
    assert!(
        !groups.iter().any(|x| x == "重点人员稳控"),
        "a quarter shows no daily-only metrics: {groups:?}"
    );
    for g in ["矛盾纠纷排查化解", "刑事治安案件", "信访", "巡逻防控"] {
        assert!(
            groups.iter().any(|x| x == g),
            "breakdown shows {g}: {groups:?}"
        );
    }

    // the .xlsx, read back: Chinese headers, numbers as numbers, percentages as fractions
    let titles: Vec<String> = seen["compare"]["titles"]
        .as_array()
        .expect("titles")
        .iter()
        .map(|t| t.as_str().expect("title").to_owned())
        .collect();
    let xlsx_path = seen["xlsx"]["path"].as_str().expect("xlsx path");
    assert!(
        seen["xlsx"]["suggested"]
            .as_str()
            .expect("name")
            .ends_with(".xlsx")
    );
    let mut book: Xlsx<_> = open_workbook(xlsx_path).expect("open the downloaded .xlsx");
    let sheet = book.worksheet_range("数据").expect("sheet 数据");
    let header: Vec<String> = (0..titles.len() as u32)
        .map(|c| {
            sheet
                .get_value((1, c))
                .map(|d| d.to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(header, titles);
    let col = |key: &str| titles.iter().position(|t| *t == key).expect(key) as u32;
    for (i, g) in grpc.rows.iter().enumerate() {
        let cell = |title: &str| sheet.get_value((2 + i as u32, col(title))).cloned();
        assert_eq!(cell("代码"), Some(Data::String(g.code.clone())));
        let number = |title: &str| match cell(title) {
            Some(Data::Float(x)) => Some(x),
            Some(Data::Int(x)) => Some(x as f64),
            None | Some(Data::Empty) => None,
            other => panic!("{title} of {} is not a number: {other:?}", g.code),
        };
        assert!(close(number("分子"), g.value), "{} 分子", g.code);
        assert!(close(number("分母"), g.denominator), "{} 分母", g.code);
        // the rate and its bases are in percent (unit %): the spreadsheet holds the fraction
        assert!(
            close(number("去年同期(%)"), g.yoy_base.map(|r| r / 100.0)),
            "{} 去年同期",
            g.code
        );
        assert!(
            close(number("比率(%)"), g.rate.map(|r| r / 100.0)),
            "{} 比率",
            g.code
        );
        assert!(
            close(number("同比%"), g.yoy_pct.map(|r| r / 100.0)),
            "{} 同比%",
            g.code
        );
        assert!(
            close(number("环比%"), g.mom_pct.map(|r| r / 100.0)),
            "{} 环比%",
            g.code
        );
        assert!(
            close(number("占比%"), g.share.map(|r| r / 100.0)),
            "{} 占比%",
            g.code
        );
        assert!(close(
            number("应报"),
            Some(g.completeness.expect("c").expected as f64)
        ));
    }

    // every other table's .xlsx: the page's headers and as many rows as the page shows
    let others = seen["otherDownloads"].as_array().expect("other downloads");
    assert_eq!(others.len(), 3);
    for d in others {
        let mut book: Xlsx<_> =
            open_workbook(d["path"].as_str().expect("path")).expect("open a downloaded .xlsx");
        let sheet = book.worksheet_range("数据").expect("sheet 数据");
        let titles = d["titles"].as_array().expect("titles");
        for (c, t) in titles.iter().enumerate() {
            assert_eq!(
                sheet.get_value((1, c as u32)).map(|v| v.to_string()),
                t.as_str().map(str::to_owned),
                "{} header {c}",
                d["view"]
            );
        }
        let rows = d["rows"].as_u64().expect("rows") as u32;
        assert!(rows > 0, "{} shows rows", d["view"]);
        let code_or_first = |r: u32| sheet.get_value((r, 0)).cloned().unwrap_or(Data::Empty);
        assert_ne!(
            code_or_first(1 + rows),
            Data::Empty,
            "{}: last row",
            d["view"]
        );
        assert_eq!(
            code_or_first(2 + rows),
            Data::Empty,
            "{}: nothing more",
            d["view"]
        );
    }

    // the CSV: a BOM, the same headers, the same codes in order
    let csv_text = std::fs::read_to_string(seen["csv"]["path"].as_str().expect("csv path"))
        .expect("read the CSV");
    let csv_text = csv_text
        .strip_prefix('\u{feff}')
        .expect("a UTF-8 BOM for Excel and WPS");
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(
        reader
            .headers()
            .expect("headers")
            .iter()
            .collect::<Vec<_>>(),
        titles.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let codes: Vec<String> = reader
        .records()
        .map(|r| r.expect("record")[col("代码") as usize].to_owned())
        .collect();
    let want: Vec<String> = grpc.rows.iter().map(|r| r.code.clone()).collect();
    assert_eq!(codes, want);

    // a year and a cumulative range read the same villages
    assert_eq!(seen["yearRows"].as_u64(), Some(grpc.rows.len() as u64));
    assert_eq!(seen["rangeRows"].as_u64(), Some(grpc.rows.len() as u64));
    let range_title = seen["rangeTitle"].as_str().expect("range title");
    assert!(range_title.contains("2026-01..2026-09"), "{range_title}");

    // outside the jurisdiction: refused on the page and by the API, nothing shown
    let outside = &seen["outside"];
    assert_eq!(outside["status"], 403);
    assert_eq!(outside["compareHidden"], true);
    let message = outside["message"].as_str().expect("message");
    assert!(
        message.contains("无权查看") && message.contains("绵阳市"),
        "{message}"
    );
    // signed out: the old session no longer reads anything
    assert_eq!(seen["afterSignOut"], 401);
    assert_eq!(
        seen["offsiteRequests"],
        Value::Array(vec![]),
        "no request leaves the hub"
    );
}

/// The strings of a JSON array.
fn texts_of(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
