//! Report forms (报表): half-monthly reports adding into months, stocks broken down by a
//! category over a span, per-form completeness, and catalogue changes that would orphan stored
//! figures refused at start-up. Every figure is checked against the plain reference.

use std::{collections::BTreeMap, time::Duration};

use pingan_domain::{AreaCode, Catalogue, Level, Span, fixtures, pb};
use pingan_hub::HubState;
use pingan_tests::{AskWire, TestHub, bin, node, reference::Reference, report, test_clock, value};

fn parts(metric: &str, parts: &[(&str, i64)]) -> pb::MetricValue {
    pb::MetricValue {
        metric: metric.into(),
        total: None,
        parts: parts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_months_add_into_months_and_each_form_has_its_own_completeness() {
    let hub = TestHub::start().await;
    let mut client = hub.client().await;
    let areas = fixtures::santai_areas();
    let county = fixtures::santai();
    let towns = areas.descendants_at(county, Level::Township);
    let (town, other_town) = (towns[0], towns[1]);
    let villages = areas.descendants_at(town, Level::Village);
    // villages: disputes monthly; grid workers (a stock) by 专职/兼职 and their 平安村 rating
    for (i, v) in villages.iter().enumerate() {
        let i = i as i64;
        for (month, extra) in [("2026-09", 0), ("2026-10", 1)] {
            let stars = ["★", "★★", "★★★"][(i as usize + extra as usize) % 3];
            client
                .submit(report(
                    &v.to_string(),
                    month,
                    vec![
                        value("disputes.identified", 1 + i),
                        parts("grid.workers", &[("专职", 1 + extra), ("兼职", i % 3)]),
                        parts("creation.safe_villages", &[(stars, 1)]),
                    ],
                ))
                .await
                .unwrap();
        }
    }
    // the township: disputes half-monthly (one half late, the other town only the first half),
    // the rest on its monthly form; a wrong form is refused with the form that asks the figure
    for (t, halves) in [
        (town, vec!["2026-10-H1", "2026-10-H2"]),
        (other_town, vec!["2026-10-H1"]),
    ] {
        for (k, h) in halves.iter().enumerate() {
            let mut r = report(
                &t.to_string(),
                h,
                vec![value("disputes.identified", 10 + k as i64)],
            );
            r.form = "disputes_half_monthly".into();
            client.submit(r).await.unwrap();
        }
    }
    let mut wrong = report(
        &town.to_string(),
        "2026-10",
        vec![value("disputes.identified", 5)],
    );
    let refused = client.submit(wrong.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("矛盾纠纷排查化解半月报 (disputes_half_monthly)"),
        "{}",
        refused.message()
    );
    wrong.values = vec![parts("grid.workers", &[("专职", 4)])];
    client.submit(wrong).await.unwrap();

    let catalogue = Catalogue::builtin();
    let reference = Reference::new(&catalogue, &areas, hub.all_revisions());
    let engine = &hub.state.engine;
    let rollup = |area: AreaCode, period: &str, metric: &str| {
        engine
            .ask_rollup(&pb::RollupRequest {
                area: area.to_string(),
                period: period.into(),
                metrics: vec![metric.into()],
                by_category: true,
                approved_only: false,
            })
            .unwrap()
            .figures
            .remove(0)
    };
    let n = villages.len() as i64;
    for (area, span) in [
        (town, "2026-10"),
        (town, "2026-09..2026-10"),
        (town, "2026-Q4"),
        (county, "2026-10"),
        (town, "2026-10-H2"),
        (other_town, "2026-10"),
    ] {
        let s: Span = span.parse().unwrap();
        for metric in [
            "disputes.identified",
            "grid.workers",
            "creation.safe_villages",
        ] {
            let f = rollup(area, span, metric);
            assert_eq!(
                f.total,
                reference.value(area, &s, metric, None, false),
                "{area} {span} {metric}"
            );
            for p in &f.parts {
                assert_eq!(
                    p.value,
                    reference.value(area, &s, metric, Some(&p.part), false),
                    "{area} {span} {metric} {}",
                    p.part
                );
            }
        }
    }
    // by hand: the villages' month plus the township's two halves
    let villages_oct: i64 = (0..n).map(|i| 1 + i).sum();
    assert_eq!(
        rollup(town, "2026-10", "disputes.identified").total,
        Some(villages_oct + 10 + 11)
    );
    assert_eq!(
        rollup(town, "2026-10-H2", "disputes.identified").total,
        Some(11)
    );
    // a stock over a span: October's, not September's added to it; the township's own 4 专职
    // (monthly) added to its villages'
    let workers = rollup(town, "2026-09..2026-10", "grid.workers");
    let by_part: BTreeMap<String, i64> = workers
        .parts
        .iter()
        .map(|p| (p.part.clone(), p.value.unwrap()))
        .collect();
    assert_eq!(by_part["专职"], 2 * n + 4);
    assert_eq!(by_part["兼职"], (0..n).map(|i| i % 3).sum::<i64>());
    // a township's rollup counts its villages by stars
    let stars = rollup(town, "2026-10", "creation.safe_villages");
    assert_eq!(stars.total, Some(n));
    assert_eq!(stars.parts.iter().filter_map(|p| p.value).sum::<i64>(), n);

    // completeness per form: the half-monthly form expects every township twice in October
    let complete = |form: &str| {
        engine
            .ask_completeness(&pb::CompletenessRequest {
                area: county.to_string(),
                period: "2026-10".into(),
                form: form.into(),
                ..Default::default()
            })
            .unwrap()
    };
    let half = complete("disputes_half_monthly");
    let c = half.summary.unwrap();
    assert_eq!(c.expected, 2 * towns.len() as u64);
    assert_eq!(c.received, 3);
    assert!(
        half.missing
            .iter()
            .all(|r| r.period.contains("-H") && r.form == "矛盾纠纷排查化解半月报")
    );
    assert!(
        half.missing
            .iter()
            .any(|r| r.code == other_town.to_string() && r.period == "2026-10-H2")
    );
    let monthly = complete("综治工作月报");
    let all_levels = reference.levels_below(county);
    let (expected, received, _) =
        reference.counts(county, &"2026-10".parse().unwrap(), &all_levels);
    let m = monthly.summary.unwrap();
    let h = half.summary.unwrap();
    // the month's completeness is the two forms' together, as the reference counts it
    assert_eq!(
        (m.expected + h.expected, m.received + h.received),
        (expected, received)
    );
    let every = complete("").summary.unwrap();
    assert_eq!((every.expected, every.received), (expected, received));
    let daily = engine
        .ask_completeness(&pb::CompletenessRequest {
            area: county.to_string(),
            period: "2026-10".into(),
            form: "keypersons_daily".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(daily.to_string().contains("日报"), "{daily}");
    let typo = engine
        .ask_completeness(&pb::CompletenessRequest {
            area: county.to_string(),
            period: "2026-10".into(),
            form: "矛盾纠纷排查半月报".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        typo.to_string()
            .contains("是否是 矛盾纠纷排查化解半月报 (disputes_half_monthly)？"),
        "{typo}"
    );
    // the daily form is expected in its 敏感节点 only: every office on a day of it, none after
    let day = |period: &str| {
        engine
            .ask_completeness(&pb::CompletenessRequest {
                area: county.to_string(),
                period: period.into(),
                ..Default::default()
            })
            .unwrap()
            .summary
            .unwrap()
    };
    let offices =
        1 + towns.len() as u64 + areas.descendants_at(county, Level::Village).len() as u64;
    assert_eq!(day("2026-10-01").expected, offices);
    assert_eq!(day("2026-11-10").expected, 0);
    let days = reference.counts(
        county,
        &"2026-10-07..2026-10-09".parse().unwrap(),
        &all_levels,
    );
    assert_eq!(day("2026-10-07..2026-10-09").expected, days.0);
    assert_eq!(
        days.0,
        2 * offices,
        "the 7th and 8th are in the window, the 9th is not"
    );
    hub.stop().await;
}

/// `pingan-hub serve` with a catalogue, as an operator starts it; returns its exit and stderr
/// when it stops within the limit (a refusal), or None when it serves.
fn serve_with_catalogue(
    data: &std::path::Path,
    catalogue: &std::path::Path,
) -> Option<(bool, String)> {
    let mut child = std::process::Command::new(bin("pingan-hub"))
        .args(["serve", "--listen", "127.0.0.1:0", "--insecure", "--data"])
        .arg(data)
        .arg("--catalogue")
        .arg(catalogue)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pingan-hub");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            use std::io::Read as _;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return Some((status.success(), err));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalogue_change_that_would_orphan_stored_figures_is_refused_at_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let hub = TestHub::start_in(&data).await;
    let mut client = hub.client().await;
    let village = fixtures::santai_areas().descendants_at(fixtures::santai(), Level::Village)[0];
    client
        .submit(report(
            &village.to_string(),
            "2026-10",
            vec![
                parts("grid.workers", &[("专职", 2), ("兼职", 1)]),
                value("risk.assessments", 1),
            ],
        ))
        .await
        .unwrap();
    hub.stop().await;
    // a township's paper half-month forms imported into the stopped hub's store, the period as
    // a clerk types it
    let town = village.parent().unwrap();
    let csv = tmp.path().join("half.csv");
    std::fs::write(
        &csv,
        format!("区划代码,期间,指标,数值\n{town},2026年10月上半月,排查矛盾纠纷,6\n{town},2026-10-H2,排查矛盾纠纷,4\n"),
    )
    .unwrap();
    let out = std::process::Command::new(bin("pingan-hub"))
        .args(["import", "--data"])
        .arg(&data)
        .arg("--file")
        .arg(&csv)
        .output()
        .expect("run pingan-hub import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shipped = fixtures::CATALOGUE_TOML;
    let write = |name: &str, text: String| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // a category value renamed (专职 → 全职)
    let renamed = write(
        "renamed.toml",
        shipped.replace("[\"专职\", \"兼职\"]", "[\"全职\", \"兼职\"]"),
    );
    let (ok, err) = serve_with_catalogue(&data, &renamed).expect("refused, not served");
    assert!(
        !ok && err.contains("网格员人数 (grid.workers) 的类别值「专职」"),
        "{err}"
    );
    // the operator's check before a restart says the same, and passes the shipped catalogue
    let forms = |catalogue: &std::path::Path| {
        std::process::Command::new(bin("pingan-hub"))
            .args(["forms", "--data"])
            .arg(&data)
            .arg("--catalogue")
            .arg(catalogue)
            .output()
            .expect("run pingan-hub forms")
    };
    let out = forms(&renamed);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("类别值「专职」"),
        "{err}"
    );
    let out = forms(&write("shipped.toml", shipped.to_owned()));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && listed.contains("矛盾纠纷排查化解半月报")
            && listed.contains("保留了"),
        "{listed}"
    );
    // a metric removed (from its form and the metrics)
    let removed_text = shipped
        .replace(
            "[[metric]]\nid = \"risk.assessments\"",
            "[[metric]]\nid = \"risk.assessments_gone\"",
        )
        .replace("\"risk.assessments\"]", "\"risk.assessments_gone\"]");
    let removed = write("removed.toml", removed_text.clone());
    let (ok, err) = serve_with_catalogue(&data, &removed).expect("refused, not served");
    assert!(
        !ok && err.contains("指标 risk.assessments 已从目录中删除"),
        "{err}"
    );
    assert!(err.contains("retired = true"), "{err}");
    // the same metric kept as retired: no form asks it, the store opens and its figure is read
    let retired_text = removed_text.replace(
        "[[metric]]\nid = \"risk.assessments_gone\"",
        "[[metric]]\nid = \"risk.assessments\"\nzh = \"社会稳定风险评估（旧）\"\nen = \"old\"\nretired = true\n\n[[metric]]\nid = \"risk.assessments_gone\"",
    );
    let retired = Catalogue::from_toml(&retired_text).expect("a catalogue with a retired metric");
    let state = HubState::open(
        &data,
        retired,
        fixtures::santai_areas(),
        test_clock(),
        Default::default(),
    )
    .expect("a retired metric keeps the store openable");
    let f = state
        .engine
        .ask_rollup(&pb::RollupRequest {
            area: village.parent().unwrap().to_string(),
            period: "2026-10".into(),
            metrics: vec!["risk.assessments".into()],
            by_category: false,
            approved_only: false,
        })
        .unwrap();
    assert_eq!(f.figures[0].total, Some(1));
    let disputes = state
        .engine
        .ask_rollup(&pb::RollupRequest {
            area: town.to_string(),
            period: "2026-10".into(),
            metrics: vec!["disputes.identified".into()],
            by_category: false,
            approved_only: false,
        })
        .unwrap();
    assert_eq!(
        disputes.figures[0].total,
        Some(10),
        "the imported half-months add up"
    );
    // ... and no new report may carry it
    let refused = state
        .validator()
        .validate(&report(
            &village.to_string(),
            "2026-10",
            vec![value("risk.assessments", 1)],
        ))
        .unwrap_err();
    assert!(
        refused.to_string().contains("不在村社区的综治工作月报"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_township_node_reports_its_half_month_by_the_form_s_title() {
    let hub = TestHub::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let areas = fixtures::santai_areas();
    let town = areas.descendants_at(fixtures::santai(), Level::Township)[0].to_string();
    let village = areas.descendants_at(fixtures::santai(), Level::Village)[0].to_string();
    // `pingan-node submit --insecure --hub URL --wait 20 --area AREA EXTRA...`
    let submit = async |outbox: &str, area: &str, extra: &[&str]| {
        let mut args = vec![
            "submit",
            "--insecure",
            "--hub",
            &hub.url,
            "--wait",
            "20",
            "--area",
            area,
        ];
        args.extend_from_slice(extra);
        node(&tmp.path().join(outbox), &args).await
    };
    // typed as a clerk types it: the half-month in Chinese, the form by its title
    let out = submit(
        "town",
        &town,
        &[
            "--period",
            "2026年10月下半月",
            "--form",
            "矛盾纠纷排查化解半月报",
            "--set",
            "排查矛盾纠纷=3",
            "--set",
            "调处矛盾纠纷=2",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = hub
        .current(&town, "2026-10-H2")
        .expect("stored for the half-month");
    assert_eq!(stored.revision, 1);
    // a village has no half-monthly form: refused on the node, nothing queued (exit 2)
    let out = submit(
        "village",
        &village,
        &["--period", "2026-10-H1", "--set", "排查矛盾纠纷=3"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("村社区 不按半月报上报"), "{err}");
    hub.stop().await;
}
