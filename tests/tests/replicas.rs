//! Several hub processes on one PostgreSQL store: each answers with every process's reports,
//! soon after they are acked anywhere; locks set through one hold in the other. Runs when
//! `PINGAN_TEST_POSTGRES` names a server (`scripts/test` starts one); on SQLite alone there is
//! nothing to share, and the test says it did not run.

use std::time::{Duration, Instant};

use pingan_domain::{Level, fixtures};
use pingan_hub::store::StoreAt;
use pingan_tests::{AskWire as _, TestHub, test_clock, value};
use tokio::net::TcpListener;

async fn hub_on(store: &StoreAt, dir: &std::path::Path) -> TestHub {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    TestHub::start_on_store(
        listener,
        dir,
        store.clone(),
        test_clock(),
        fixtures::santai_areas(),
    )
    .await
}

async fn fraud_total(hub: &TestHub, area: &str) -> Option<i64> {
    pingan_tests::rollup_total(&hub.url, area, "2026-10", "cases.fraud").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hub_processes_on_one_database_answer_alike_within_a_second() {
    let Some(store) = StoreAt::fresh_test_database() else {
        eprintln!("not run: PINGAN_TEST_POSTGRES names no PostgreSQL server");
        return;
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = hub_on(&store, da.path()).await;
    let b = hub_on(&store, db.path()).await;
    let hubs = [&a, &b];
    let villages = fixtures::santai_areas().descendants_at(fixtures::santai(), Level::Village);
    let mut expected = 0i64;
    let mut lags = Vec::new();
    // reports alternate between the two; after each receipt, the other answers with it
    for (i, village) in (1..=60i64).zip(&villages) {
        let (to, other) = (hubs[(i % 2) as usize], hubs[1 - (i % 2) as usize]);
        let mut client = to.client().await;
        // every tenth is a correction of the report before it (revision 2 replaces revision 1)
        let figure = if i % 10 == 0 { i * 100 } else { i };
        let area = if i % 10 == 0 {
            villages[(i - 2) as usize].to_string()
        } else {
            village.to_string()
        };
        if i % 10 == 0 {
            expected -= i - 1;
        }
        client
            .submit(pingan_tests::report(
                &area,
                "2026-10",
                vec![value("cases.fraud", figure)],
            ))
            .await
            .unwrap();
        expected += figure;
        // the hub that acked answers at once
        assert_eq!(
            fraud_total(to, "510722").await,
            Some(expected),
            "report {i}"
        );
        let acked = Instant::now();
        loop {
            if fraud_total(other, "510722").await == Some(expected) {
                break;
            }
            assert!(
                acked.elapsed() < Duration::from_secs(5),
                "report {i} not seen by the other hub after 5 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        lags.push(acked.elapsed());
    }
    lags.sort();
    let p99 = lags[lags.len() * 99 / 100 - 1];
    eprintln!(
        "freshness across hub processes: p50 {:?}, p99 {:?}, max {:?} ({} reports)",
        lags[lags.len() / 2],
        p99,
        lags[lags.len() - 1],
        lags.len()
    );
    assert!(p99 <= Duration::from_secs(1), "p99 {p99:?}");

    // the same answer, township by township, from both
    for town in fixtures::santai_areas().descendants_at(fixtures::santai(), Level::Township) {
        let code = town.to_string();
        assert_eq!(
            fraud_total(&a, &code).await,
            fraud_total(&b, &code).await,
            "{code}"
        );
    }
    // one store: both hold the same revisions, each once
    assert_eq!(a.all_revisions(), b.all_revisions());
    assert_eq!(a.revision_count(), 60);

    // a lock set through one hub is kept by the other within a moment
    let lock = pingan_hub::store::LockRecord {
        form: "zongzhi_monthly".into(),
        period: "2026-10".into(),
        root: "510722".into(),
        locked: true,
        by: "县综治中心".into(),
        identity: "pingan://viewer/510722".into(),
        at_ms: 1,
        reason: "月度考核".into(),
    };
    a.state.store.set_lock(lock).unwrap();
    let village = villages[0].to_string();
    let set = Instant::now();
    loop {
        if b.state
            .store
            .final_lock(
                "zongzhi_monthly",
                "2026-10".parse().unwrap(),
                village.parse().unwrap(),
                0,
            )
            .is_some()
        {
            break;
        }
        assert!(
            set.elapsed() < Duration::from_secs(5),
            "the lock did not reach the other hub"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = b
        .client()
        .await
        .submit(pingan_tests::report(
            &village,
            "2026-10",
            vec![value("cases.fraud", 999)],
        ))
        .await;
    assert!(
        refused.is_err(),
        "a locked period takes no correction through either hub"
    );
    a.stop().await;
    b.stop().await;
}

/// The parent's revisions of the county, each with the forwarding outbox it came from (the
/// instance in `fwd-INSTANCE-...`), in the order the parent stored them.
fn forwarded_by(parent: &TestHub) -> Vec<(String, String)> {
    parent
        .state
        .store
        .reader()
        .unwrap()
        .revisions("510722".parse().unwrap(), "2026-10".parse().unwrap())
        .unwrap()
        .into_iter()
        .map(|r| {
            let instance = r
                .submission_id
                .strip_prefix("fwd-")
                .and_then(|s| s.split('-').next())
                .expect("a forwarded submission id")
                .to_owned();
            (instance, r.submission_id)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_two_hub_processes_forwards_and_the_other_takes_over_when_it_stops() {
    use pingan_hub::{
        access::tls::identity::Role,
        store::lease::{Duty, Lease},
    };
    use pingan_outbox::CancellationToken;
    use pingan_tests::{Pki, wait_until};
    let Some(store) = StoreAt::fresh_test_database() else {
        eprintln!("not run: PINGAN_TEST_POSTGRES names no PostgreSQL server");
        return;
    };
    let pki = Pki::new();
    pki.issue(Role::Hub, "5107");
    let city = TestHub::start_mtls_as(&pki, "5107", fixtures::mianyang_areas(), Vec::new()).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let hubs = [
        hub_on(&store, da.path()).await,
        hub_on(&store, db.path()).await,
    ];
    let stops = [CancellationToken::new(), CancellationToken::new()];
    let leases = [
        Lease::take(&store, Duty::Forwarding, stops[0].clone()).unwrap(),
        Lease::take(&store, Duty::Forwarding, stops[1].clone()).unwrap(),
    ];
    let mut forwarders: Vec<_> = (0..2)
        .map(|i| {
            Some(hubs[i].forward_while(
                &city.url,
                &pki,
                "510722",
                Level::County,
                pingan_domain::question::Figures::Current,
                leases[i].clone(),
            ))
        })
        .collect();
    let city_fraud = || {
        city.state
            .engine
            .ask_rollup(&pingan_domain::pb::RollupRequest {
                area: "510722".into(),
                period: "2026-10".into(),
                metrics: vec!["cases.fraud".into()],
                ..Default::default()
            })
            .unwrap()
            .figures[0]
            .total
    };
    let submit = |i: usize, village: &'static str, n: i64| {
        let hub = &hubs[i];
        async move {
            hub.client()
                .await
                .submit(pingan_tests::report(
                    village,
                    "2026-10",
                    vec![value("cases.fraud", n)],
                ))
                .await
                .unwrap();
        }
    };
    // a report through each process: the parent gets both, from one of them
    submit(0, "510722101002", 5).await;
    submit(1, "510722104003", 3).await;
    wait_until(Duration::from_secs(30), || async {
        city_fraud() == Some(8)
    })
    .await;
    let held: Vec<bool> = leases.iter().map(Lease::is_held).collect();
    assert_eq!(
        held.iter().filter(|h| **h).count(),
        1,
        "one holder: {held:?}"
    );
    let holder = held.iter().position(|h| *h).unwrap();
    let first = forwarded_by(&city);
    let instances: std::collections::BTreeSet<_> = first.iter().map(|(i, _)| i.clone()).collect();
    assert_eq!(instances.len(), 1, "forwarded by both processes: {first:?}");

    // the holder stops (its session ends with it); the other takes forwarding over and a
    // correction through it reaches the parent
    stops[holder].cancel();
    forwarders[holder].take();
    let other = 1 - holder;
    wait_until(Duration::from_secs(20), || async {
        leases[other].is_held()
    })
    .await;
    submit(other, "510722101002", 2).await;
    wait_until(Duration::from_secs(30), || async {
        city_fraud() == Some(5)
    })
    .await;
    let after = forwarded_by(&city);
    let new: Vec<_> = after[first.len()..].iter().collect();
    assert!(!new.is_empty());
    assert!(
        new.iter().all(|(i, _)| !instances.contains(i)),
        "after the take-over only the other process forwards: {new:?}"
    );
    stops[other].cancel();
}
