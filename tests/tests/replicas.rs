//! Several hub processes on one PostgreSQL store: each answers with every process's reports,
//! soon after they are acked anywhere; locks set through one hold in the other. Runs when
//! `PINGAN_TEST_POSTGRES` names a server (`scripts/test` starts one); on SQLite alone there is
//! nothing to share, and the test says it did not run.

use std::time::{Duration, Instant};

use pingan_domain::{Level, fixtures};
use pingan_hub::store::StoreAt;
use pingan_tests::{TestHub, test_clock, value};
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
