//! 锁定: a leader locks a form's period for their subtree; reports and corrections for it are
//! refused FAILED_PRECONDITION naming who locked it and why, until it is unlocked (audited);
//! periods lock by themselves N days after their deadline when the hub is told to; a lock and
//! corrections arriving together never half-apply.

use pingan_domain::{fixtures, pb};
use pingan_hub::access::tls::Role;
use pingan_tests::{Pki, TestHub, bin, report, value};
use tonic::Code;

type Reports = pb::report_service_client::ReportServiceClient<tonic::transport::Channel>;
type Locks = pb::lock_service_client::LockServiceClient<tonic::transport::Channel>;

fn lock(area: &str, period: &str) -> pb::LockRequest {
    pb::LockRequest {
        area: area.into(),
        period: period.into(),
        reason: "月度考核".into(),
        by: "县综治中心".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_period_refuses_corrections_until_a_leader_unlocks_it() {
    let pki = Pki::new();
    let (village, other_village) = ("510722101002", "510722104003");
    for (role, area) in [
        (Role::Node, village),
        (Role::Node, other_village),
        (Role::Node, "510722101"),
        (Role::Viewer, "510722"),
        (Role::Viewer, "510722104"),
    ] {
        pki.issue(role, area);
    }
    let hub = TestHub::start_mtls(&pki, Vec::new()).await;
    let node = |a: &str| Reports::new(hub.channel(pki.client(&format!("node-{a}"))));
    let leader = |a: &str| Locks::new(hub.channel(pki.client(&format!("viewer-{a}"))));
    for v in [village, other_village] {
        node(v)
            .submit(report(v, "2026-10", vec![value("petitions.letters", 1)]))
            .await
            .expect("before any lock");
    }

    // a township's leader may not lock another township; the county's leader locks the county,
    // with the real command line
    let e = leader("510722104")
        .lock(lock("510722101", "2026-10"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // 关账 only when every report is in and approved: the county's are not, so the command line
    // refuses, then locks with --force, which the reason records
    let locks_cli = |force: bool| {
        let mut cmd = std::process::Command::new(bin("pingan-hub"));
        cmd.args(["locks", "lock", "--hub", &hub.url, "--area", "510722"])
            .args([
                "--period",
                "2026年10月",
                "--reason",
                "月度考核",
                "--by",
                "县综治中心",
            ])
            .arg("--ca")
            .arg(pki.path("ca.pem"))
            .arg("--cert")
            .arg(pki.path("viewer-510722.pem"))
            .arg("--key")
            .arg(pki.path("viewer-510722.key"));
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    };
    let refused = locks_cli(false);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("FailedPrecondition") && said.contains("个单位未报"),
        "{said}"
    );
    let out = locks_cli(true);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("510722 2026-10 zongzhi_monthly 已锁定：县综治中心"),
        "{said}"
    );
    assert!(
        said.contains("强制关账（") && said.contains("个单位未报，2 份未审核）：月度考核"),
        "{said}"
    );
    // a village that reported is complete once its report is approved (审核): before, 关账 is
    // refused saying so
    let e = leader("510722")
        .lock(lock(other_village, "2026-10"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("1 份报表待审核"), "{}", e.message());
    let approved = pb::review_service_client::ReviewServiceClient::new(
        hub.channel(pki.client("viewer-510722104")),
    )
    .decide(pb::DecideRequest {
        targets: vec![pb::ReviewTarget {
            area: other_village.into(),
            period: "2026-10".into(),
            revision: 1,
        }],
        approve: true,
        ..Default::default()
    })
    .await
    .expect("the township approves")
    .into_inner();
    assert_eq!(approved.items.len(), 1, "{:?}", approved.refused);
    let complete = leader("510722")
        .lock(lock(other_village, "2026-10"))
        .await
        .expect("a village that reported: complete")
        .into_inner();
    assert_eq!(complete.state.unwrap().reason, "月度考核");

    // a correction is refused, saying who locked it, why and what to do
    let e = node(village)
        .submit(report(
            village,
            "2026-10",
            vec![value("petitions.letters", 2)],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    for needed in ["县综治中心", "锁定", "月度考核", "unlock"] {
        assert!(e.message().contains(needed), "{needed}: {}", e.message());
    }
    // a resend of what was stored before the lock still gets its receipt; another form is open
    let mut half = report(
        "510722101",
        "2026-10-H2",
        vec![value("disputes.identified", 3)],
    );
    half.form = "disputes_half_monthly".into();
    node("510722101")
        .submit(half)
        .await
        .expect("the half-monthly form is not locked");

    // unlocked for 潼川镇 only: its village corrects; the other township's stays locked
    leader("510722")
        .unlock(pb::LockRequest {
            reason: "村里漏报，县里同意更正".into(),
            ..lock("510722101", "2026-10")
        })
        .await
        .expect("unlock");
    let receipt = node(village)
        .submit(report(
            village,
            "2026-10",
            vec![value("petitions.letters", 2)],
        ))
        .await
        .expect("after the unlock")
        .into_inner();
    assert_eq!(receipt.revision, 2);
    let e = node(other_village)
        .submit(report(
            other_village,
            "2026-10",
            vec![value("petitions.letters", 5)],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let listed = leader("510722")
        .locks(pb::LocksRequest {
            period: "2026-10".into(),
            history: true,
        })
        .await
        .unwrap()
        .into_inner();
    let states: Vec<(String, bool)> = listed
        .locks
        .iter()
        .map(|l| (l.area.clone(), l.locked))
        .collect();
    assert_eq!(
        states,
        [
            ("510722".to_owned(), true),
            ("510722101".to_owned(), false),
            (other_village.to_owned(), true)
        ]
    );

    // every change is in the audit trail, with the certificate that made it
    let events: Vec<(String, bool, String)> = hub
        .state
        .store
        .lock_events(None)
        .unwrap()
        .into_iter()
        .map(|e| (e.root, e.locked, e.identity))
        .collect();
    assert_eq!(
        events,
        [
            ("510722".into(), true, "pingan://viewer/510722".into()),
            (other_village.into(), true, "pingan://viewer/510722".into()),
            ("510722101".into(), false, "pingan://viewer/510722".into()),
        ]
    );
    // ... and a leader reads it back over gRPC (`pingan-hub locks list --history`)
    let history: Vec<(String, bool)> = listed
        .events
        .iter()
        .map(|l| (l.area.clone(), l.locked))
        .collect();
    let stored: Vec<(String, bool)> = events.iter().map(|e| (e.0.clone(), e.1)).collect();
    assert_eq!(history, stored);
    hub.stop().await;
}

/// With `--lock-after-days`, a period locks by itself that many days after its form's deadline
/// (the test clock says 2026-11-22: September's monthly form, due 2026-10-05, locked on the
/// 15th); a leader's unlock opens it for their subtree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periods_lock_by_themselves_after_their_deadline_when_told_to() {
    let hub = TestHub::start().await;
    hub.state.store.set_lock_rule(pingan_hub::store::LockRule {
        after_days: 10,
        deadlines: Default::default(),
        forms: hub
            .state
            .catalogue
            .forms()
            .iter()
            .map(|f| (f.id.clone(), f.deadline))
            .collect(),
    });
    let mut client = hub.client().await;
    let village = "510722101002";
    let e = client
        .submit(report(
            village,
            "2026-09",
            vec![value("petitions.letters", 1)],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("截止后 10 天自动锁定"),
        "{}",
        e.message()
    );
    // October's deadline was the 5th of November: open until the 15th; it is the 22nd
    assert!(
        client
            .submit(report(
                village,
                "2026-10",
                vec![value("petitions.letters", 1)]
            ))
            .await
            .is_err()
    );
    // November's is not yet past
    let mut weekly = report(village, "2026-W46", vec![value("disputes.identified", 1)]);
    weekly.form = "disputes_weekly".into();
    client
        .submit(weekly)
        .await
        .expect("a week whose deadline is recent");
    let mut locks = Locks::connect(hub.url.clone()).await.unwrap();
    locks
        .unlock(pb::LockRequest {
            reason: "补报".into(),
            ..lock("510722101", "2026-09")
        })
        .await
        .unwrap();
    client
        .submit(report(
            village,
            "2026-09",
            vec![value("petitions.letters", 1)],
        ))
        .await
        .expect("unlocked for 潼川镇");
    let _ = fixtures::santai();
    hub.stop().await;
}

/// Corrections racing a lock: each is stored before the lock or refused after it; nothing is
/// half-applied, and after the lock nothing more is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrections_racing_a_lock_are_either_stored_or_refused_whole() {
    let hub = TestHub::start().await;
    let areas = fixtures::santai_areas();
    let villages =
        areas.descendants_at("510722104".parse().unwrap(), pingan_domain::Level::Village);
    let mut tasks = tokio::task::JoinSet::new();
    for v in &villages {
        let (url, v) = (hub.url.clone(), v.to_string());
        tasks.spawn(async move {
            let mut c = Reports::connect(url).await.unwrap();
            let r = c
                .submit(report(&v, "2026-10", vec![value("petitions.letters", 3)]))
                .await;
            (v, r.map(|r| r.into_inner().revision))
        });
    }
    let mut locks = Locks::connect(hub.url.clone()).await.unwrap();
    locks
        .lock(pb::LockRequest {
            force: true,
            ..lock("510722104", "2026-10")
        })
        .await
        .unwrap();
    let mut stored = 0;
    while let Some(done) = tasks.join_next().await {
        let (v, outcome) = done.unwrap();
        let kept = hub.current(&v, "2026-10");
        match outcome {
            Ok(rev) => {
                stored += 1;
                assert_eq!(kept.map(|k| k.revision), Some(rev), "{v}: acked and stored");
            }
            Err(e) => {
                assert_eq!(e.code(), Code::FailedPrecondition, "{v}: {e:?}");
                assert!(kept.is_none(), "{v}: refused and not stored");
            }
        }
    }
    assert_eq!(hub.revision_count(), stored);
    let e = Reports::connect(hub.url.clone())
        .await
        .unwrap()
        .submit(report(
            &villages[0].to_string(),
            "2026-10",
            vec![value("petitions.letters", 9)],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    hub.stop().await;
}
