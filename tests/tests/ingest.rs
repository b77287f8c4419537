//! Ingest: a village's figures reach the hub, durable, validated, counted once.

use std::{collections::HashSet, process::Command, time::Duration};

use pingan_domain::{Catalogue, PACKED_CATALOGUE_DIFFERS, pb};
use pingan_outbox::{Deliverer, EntryState, Outbox};
use pingan_tests::{HubProcess, Proc, TestHub, bin, report, test_clock, value, wait_until};
use tonic::Code;

const VILLAGE: &str = "510722101002";
const OTHER_VILLAGE: &str = "510722101003";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_delivers_through_its_outbox_and_the_hub_stores_it() {
    let hub = TestHub::start().await;
    let outbox_dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(outbox_dir.path()).unwrap();
    let r = report(
        VILLAGE,
        "2026-10",
        vec![value("disputes.mediated", 4), value("disputes.resolved", 3)],
    );
    outbox.enqueue(std::slice::from_ref(&r)).unwrap();
    let pass = Deliverer::new(hub.url.clone(), Duration::from_secs(5))
        .pass(&mut outbox)
        .await
        .unwrap();
    assert_eq!((pass.delivered, pass.parked, pass.retry), (1, 0, None));
    let entry = outbox.get(&r.submission_id).unwrap().unwrap();
    assert_eq!(
        (entry.state, entry.revision),
        (EntryState::Delivered, Some(1))
    );

    let stored = hub.current(VILLAGE, "2026-10").unwrap();
    assert_eq!(stored.submission_id, r.submission_id);
    let totals: Vec<(String, Option<i64>)> = stored
        .values
        .iter()
        .map(|v| (v.metric.clone(), v.total))
        .collect();
    assert_eq!(
        totals,
        [
            ("disputes.mediated".to_string(), Some(4)),
            ("disputes.resolved".to_string(), Some(3))
        ]
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_node_binary_submits_and_exits_zero_once_acked() {
    let hub = TestHub::start().await;
    let outbox = tempfile::tempdir().unwrap();
    let form = outbox.path().join("form.csv");
    std::fs::write(&form, "metric,part,value\n排查矛盾纠纷,,3\n排查矛盾纠纷,劳动争议,1\n排查矛盾纠纷,医患,2\ncases.fraud,,0\n").unwrap();
    let hub_url = hub.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin("pingan-node"))
            .args([
                "submit",
                "--insecure",
                "--hub",
                &hub_url,
                "--area",
                VILLAGE,
                "--period",
                "2026-10",
                "--set",
                "patrol.sessions=9",
                "--set",
                "patrol.person_times=20",
            ])
            .arg("--file")
            .arg(&form)
            .arg("--outbox")
            .arg(outbox.path())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("revision 1"), "{stdout}");
    let stored = hub.current(VILLAGE, "2026-10").unwrap();
    let identified = stored
        .values
        .iter()
        .find(|v| v.metric == "disputes.identified")
        .unwrap();
    assert_eq!(identified.total, Some(3));
    assert_eq!(identified.parts.get("医患"), Some(&2));
    assert!(
        stored
            .values
            .iter()
            .any(|v| v.metric == "patrol.sessions" && v.total == Some(9))
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_returns_the_original_receipt_and_never_counts_twice() {
    let hub = TestHub::start().await;
    let mut client = hub.client().await;
    let r = report(VILLAGE, "2026-10", vec![value("cases.fraud", 2)]);
    let first = client.submit(r.clone()).await.unwrap().into_inner();
    assert!(!first.duplicate);
    for _ in 0..3 {
        let again = client.submit(r.clone()).await.unwrap().into_inner();
        assert!(again.duplicate);
        assert_eq!(
            (again.revision, again.accepted_at_ms),
            (first.revision, first.accepted_at_ms)
        );
    }
    // the same resend on a batch stream, twice in one stream
    let results: Vec<pb::BatchResult> = {
        let mut stream = client
            .submit_batch(tokio_stream::iter(vec![r.clone(), r.clone()]))
            .await
            .unwrap()
            .into_inner();
        let mut v = Vec::new();
        while let Some(x) = stream.message().await.unwrap() {
            v.push(x);
        }
        v
    };
    assert_eq!(results.len(), 2);
    for res in results {
        match res.outcome {
            Some(pb::batch_result::Outcome::Receipt(rc)) => {
                assert!(rc.duplicate && rc.revision == 1)
            }
            other => panic!("expected a duplicate receipt, got {other:?}"),
        }
    }
    assert_eq!(hub.revision_count(), 1);
    // the same id with different content is refused, not stored
    let mut changed = r.clone();
    changed.values = vec![value("cases.fraud", 3)];
    let err = client.submit(changed).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(hub.revision_count(), 1);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_makes_revision_two_and_keeps_revision_one() {
    let hub = TestHub::start().await;
    let mut client = hub.client().await;
    let first = client
        .submit(report(
            VILLAGE,
            "2026-10",
            vec![value("disputes.mediated", 5)],
        ))
        .await
        .unwrap()
        .into_inner();
    let mut corrected = report(VILLAGE, "2026-10", vec![value("disputes.mediated", 6)]);
    corrected.notes = "更正".into();
    let second = client.submit(corrected).await.unwrap().into_inner();
    // another area's report does not disturb the numbering
    client
        .submit(report(
            OTHER_VILLAGE,
            "2026-10",
            vec![value("disputes.mediated", 1)],
        ))
        .await
        .unwrap();
    assert_eq!((first.revision, second.revision), (1, 2));
    let revs = hub
        .state
        .store
        .reader()
        .unwrap()
        .revisions(VILLAGE.parse().unwrap(), "2026-10".parse().unwrap())
        .unwrap();
    assert_eq!(revs.len(), 2);
    assert_eq!((revs[0].revision, revs[0].values[0].total), (1, Some(5)));
    assert_eq!(
        (
            revs[1].revision,
            revs[1].values[0].total,
            revs[1].notes.as_str()
        ),
        (2, Some(6), "更正")
    );
    let current = hub.current(VILLAGE, "2026-10").unwrap();
    assert_eq!(current.revision, 2);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_report_is_rejected_with_all_its_reasons_and_stores_nothing() {
    let hub = TestHub::start().await;
    let mut client = hub.client().await;
    let mut bad = report(
        "510722999999",
        "2026-12",
        vec![
            value("disputes.mediated", 2),
            value("disputes.resolved", 5),
            value("cases.fraud", -1),
            value("no.such.metric", 1),
        ],
    );
    bad.values.push(pb::MetricValue {
        metric: "disputes.identified".into(),
        total: Some(9),
        parts: [("劳动争议".to_string(), 3)].into_iter().collect(),
    });
    let err = client.submit(bad.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let msg = err.message();
    for needle in [
        "区划代码 510722999999 不存在 [area]",
        "期间 2026-12 尚未结束（今天是 2026-11-22），结束后才能上报 [period]",
        "[values[disputes.resolved]]",
        "[values[cases.fraud].total]",
        "未知指标「no.such.metric」",
        "各类别之和为 3，与合计 9 不符",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from {msg:?}");
    }
    // a malformed period is named too
    bad.period = "2026-13".into();
    let err = client.submit(bad).await.unwrap_err();
    assert!(
        err.message()
            .contains("期间「2026-13」无法识别：月份应为 01 到 12"),
        "{}",
        err.message()
    );
    assert_eq!(hub.revision_count(), 0);
    // soft rules: stored, with the warning in the receipt and in the store
    let receipt = client
        .submit(report(
            VILLAGE,
            "2026-10",
            vec![
                value("cases.criminal_filed", 1),
                value("cases.criminal_solved", 3),
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(receipt.warnings.len(), 1, "{:?}", receipt.warnings);
    let stored = hub.current(VILLAGE, "2026-10").unwrap();
    assert_eq!(stored.warnings, receipt.warnings);
    hub.stop().await;
}

/// The compact form (totals by catalogue position) is stored as the named one is; a report
/// packed against another catalogue is refused FAILED_PRECONDITION; a node sends by position to
/// a hub of its catalogue and by name to a hub of another, and both arrive whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_by_catalogue_position_are_stored_as_named_ones_are() {
    let hub = TestHub::start().await;
    let mut client = hub.client().await;
    let catalogue = Catalogue::builtin();
    let reordered = pingan_domain::fixtures::reordered_catalogue();
    assert_ne!(reordered.fingerprint(), catalogue.fingerprint());
    let ping = client.ping(pb::PingRequest {}).await.unwrap().into_inner();
    assert_eq!(ping.catalogue, catalogue.fingerprint());

    let named = vec![
        value("disputes.mediated", 4),
        value("disputes.resolved", 3),
        value("cases.fraud", 2),
    ];
    let totals = |area: &str| {
        let stored = hub.current(area, "2026-10").expect("stored");
        stored
            .values
            .iter()
            .map(|v| (v.metric.clone(), v.total))
            .collect::<Vec<_>>()
    };
    let expected: Vec<(String, Option<i64>)> = [
        ("cases.fraud", 2),
        ("disputes.mediated", 4),
        ("disputes.resolved", 3),
    ]
    .iter()
    .map(|(m, t)| (m.to_string(), Some(*t)))
    .collect();

    let mut r = report(VILLAGE, "2026-10", named.clone());
    pingan_domain::pack(&mut r, &catalogue);
    assert!(r.values.is_empty() && r.packed.is_some());
    let receipt = client.submit(r.clone()).await.unwrap().into_inner();
    assert_eq!((receipt.revision, receipt.duplicate), (1, false));
    assert_eq!(totals(VILLAGE), expected);
    // the same submission sent again by name is the same report: its original receipt
    let mut again = r.clone();
    pingan_domain::unpack(&mut again, &catalogue);
    assert_eq!(again.values.len(), 3);
    let dup = client.submit(again).await.unwrap().into_inner();
    assert_eq!((dup.revision, dup.duplicate), (1, true));

    // positions taken from another catalogue are not read: refused as such, nothing stored
    let mut other = report(OTHER_VILLAGE, "2026-10", named.clone());
    pingan_domain::pack(&mut other, &reordered);
    let err = client.submit(other).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains(PACKED_CATALOGUE_DIFFERS),
        "{}",
        err.message()
    );
    assert_eq!(hub.revision_count(), 1);

    // a node's outbox: by position to a hub of its catalogue, by name to one of another
    for (village, node_catalogue, by_position) in [
        (OTHER_VILLAGE, Catalogue::builtin(), true),
        ("510722101004", reordered, false),
    ] {
        let outbox_dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(outbox_dir.path()).unwrap();
        outbox
            .enqueue(&[report(village, "2026-10", named.clone())])
            .unwrap();
        let mut deliverer =
            Deliverer::new(hub.url.clone(), Duration::from_secs(5)).with_catalogue(node_catalogue);
        let pass = deliverer.pass(&mut outbox).await.unwrap();
        assert_eq!((pass.delivered, pass.parked, pass.retry), (1, 0, None));
        assert_eq!(deliverer.sends_by_position(), by_position, "{village}");
        assert_eq!(totals(village), expected, "{village}");
    }
    // a report that sits in an outbox already packed against another catalogue (not this
    // node's doing) is refused for good and parked with the reason, not retried for ever
    let outbox_dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(outbox_dir.path()).unwrap();
    let mut foreign = report("510722101005", "2026-10", named.clone());
    pingan_domain::pack(
        &mut foreign,
        &pingan_domain::fixtures::reordered_catalogue(),
    );
    outbox.enqueue(std::slice::from_ref(&foreign)).unwrap();
    let pass = Deliverer::new(hub.url.clone(), Duration::from_secs(5))
        .pass(&mut outbox)
        .await
        .unwrap();
    assert_eq!((pass.delivered, pass.parked, pass.retry), (0, 1, None));
    let entry = outbox.get(&foreign.submission_id).unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Failed);
    assert!(
        entry.last_error.as_deref().is_some_and(
            |e| e.contains("FailedPrecondition") && e.contains(PACKED_CATALOGUE_DIFFERS)
        ),
        "{:?}",
        entry.last_error
    );
    hub.stop().await;
}

/// A hub restarted with its catalogue's metrics in another order while a node stays connected:
/// the node's next report, sent by the old positions, is refused as such, and the node sends it
/// again by name in the same pass; nothing is parked or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_sends_by_name_when_the_hubs_catalogue_changed_under_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let start = |listener, catalogue| {
        TestHub::start_with_catalogue(
            listener,
            &data,
            pingan_tests::store_for(&data),
            test_clock(),
            pingan_domain::fixtures::santai_areas(),
            catalogue,
        )
    };
    let hub = start(listener, Catalogue::builtin()).await;
    let outbox_dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(outbox_dir.path()).unwrap();
    let mut deliverer = Deliverer::new(hub.url.clone(), Duration::from_secs(5))
        .with_catalogue(Catalogue::builtin());
    let first = report(VILLAGE, "2026-10", vec![value("cases.fraud", 1)]);
    outbox.enqueue(&[first]).unwrap();
    let pass = deliverer.pass(&mut outbox).await.unwrap();
    assert_eq!((pass.delivered, pass.parked, pass.retry), (1, 0, None));
    assert!(deliverer.sends_by_position());
    hub.stop().await;

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let hub = start(listener, pingan_domain::fixtures::reordered_catalogue()).await;
    let second = report(
        OTHER_VILLAGE,
        "2026-10",
        vec![value("cases.fraud", 2), value("disputes.mediated", 5)],
    );
    outbox.enqueue(&[second]).unwrap();
    // the connection comes back by itself (no retry, no new Ping): the refusal turns positions off
    let pass = deliverer.pass(&mut outbox).await.unwrap();
    assert_eq!((pass.delivered, pass.parked, pass.retry), (1, 0, None));
    assert!(!deliverer.sends_by_position());
    let stored = hub.current(OTHER_VILLAGE, "2026-10").expect("stored");
    let totals: Vec<_> = stored
        .values
        .iter()
        .map(|v| (v.metric.as_str(), v.total))
        .collect();
    assert_eq!(
        totals,
        [("cases.fraud", Some(2)), ("disputes.mediated", Some(5))]
    );
    assert_eq!(hub.revision_count(), 2);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer() {
    let hub = TestHub::start().await;
    let channel = tonic::transport::Channel::from_shared(hub.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "pingan.v1.ReportService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = reflection
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        resp.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: HashSet<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains("pingan.v1.ReportService"), "{names:?}");
    assert!(names.contains("grpc.health.v1.Health"), "{names:?}");

    // the older v1alpha protocol (Python's grpcio-reflection, older grpcurl and Postman)
    use tonic_reflection::pb::v1alpha as alpha;
    let mut old = alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let req = alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut resp = old
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("v1alpha reflection is served")
        .into_inner();
    let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        resp.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list over v1alpha");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "pingan.v1.QueryService"),
        "{:?}",
        list.service
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gracefully_restarted_hub_keeps_every_acked_report() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_in(dir.path()).await;
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let client = hub.client().await;
        tasks.push(tokio::spawn(async move {
            let mut client = client;
            let r = report(VILLAGE, "2026-10", vec![value("grid.visits", i64::from(i))]);
            client.submit(r.clone()).await.map(|_| r)
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.push(t.await.unwrap().unwrap());
    }
    hub.stop().await;
    let hub = TestHub::start_in(dir.path()).await;
    assert_eq!(hub.revision_count(), 100);
    let mut client = hub.client().await;
    for r in acked {
        assert!(client.submit(r).await.unwrap().into_inner().duplicate);
    }
    assert_eq!(hub.revision_count(), 100);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_mid_ingest_keeps_every_report_it_acked() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = tokio::task::spawn_blocking({
        let d = dir.path().to_owned();
        move || HubProcess::start(&d, HubProcess::free_port())
    })
    .await
    .unwrap();
    let url = hub.url.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let villages = pingan_domain::fixtures::santai_areas().descendants_at(
        pingan_domain::fixtures::santai(),
        pingan_domain::Level::Village,
    );
    for (i, v) in villages.iter().enumerate().take(400) {
        let (url, tx, area) = (url.clone(), tx.clone(), v.to_string());
        tokio::spawn(async move {
            let Ok(mut client) = pb::report_service_client::ReportServiceClient::connect(url).await
            else {
                return;
            };
            let r = report(&area, "2026-10", vec![value("grid.visits", i as i64)]);
            if client.submit(r.clone()).await.is_ok() {
                let _ = tx.send(r);
            }
        });
    }
    drop(tx);
    let mut acked = Vec::new();
    while acked.len() < 100 {
        acked.push(rx.recv().await.expect("at least 100 acks before the kill"));
    }
    hub.kill(); // SIGKILL
    while let Some(r) = rx.recv().await {
        acked.push(r);
    }
    let hub = tokio::task::spawn_blocking(move || {
        hub.restart();
        hub
    })
    .await
    .unwrap();
    let mut client = pb::report_service_client::ReportServiceClient::connect(url)
        .await
        .unwrap();
    for r in &acked {
        let receipt = client.submit(r.clone()).await.unwrap().into_inner();
        assert!(
            receipt.duplicate,
            "acked report {} {} was lost",
            r.area, r.submission_id
        );
        assert_eq!(receipt.revision, 1);
    }
    drop(hub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeps_its_report_across_its_restart_while_the_hub_is_down_and_delivers_it_once() {
    // the hub's address is taken now, but nothing answers on it until the hub starts
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let node_dir = tempfile::tempdir().unwrap();
    let outbox = node_dir.path().to_owned();
    let node = |args: &[&str]| {
        let mut c = Command::new(bin("pingan-node"));
        c.args(args)
            .arg("--outbox")
            .arg(&outbox)
            .env("RUST_LOG", "warn");
        if args[0] != "status" {
            c.arg("--insecure");
        }
        c
    };

    let submit = node(&[
        "submit",
        "--hub",
        &url,
        "--area",
        VILLAGE,
        "--period",
        "2026-10",
        "--set",
        "cases.fraud=2",
        "--wait",
        "2",
        "--timeout",
        "1",
    ])
    .output()
    .unwrap();
    assert_eq!(
        submit.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    let status = node(&["status", "--format", "json"]).output().unwrap();
    assert_eq!(states(&status.stdout), ["pending"]);

    // the node daemon starts, tries the hub that is still down (its outbox records the attempt),
    // crashes (SIGKILL), and starts again
    let attempts = || {
        pingan_outbox::Outbox::open(&outbox)
            .unwrap()
            .list()
            .unwrap()
            .iter()
            .map(|e| e.attempts)
            .sum::<u32>()
    };
    let run = || {
        Proc::spawn(&mut node(&[
            "run",
            "--hub",
            &url,
            "--timeout",
            "1",
            "--interval",
            "1",
        ]))
    };
    let tried = attempts();
    let mut daemon = run();
    wait_until(Duration::from_secs(60), || async { attempts() > tried }).await;
    daemon.kill();
    let mut daemon = run();

    // the hub comes up on the address the node has been trying
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_on(listener, hub_dir.path(), test_clock()).await;
    wait_until(Duration::from_secs(60), || async {
        hub.revision_count() == 1
    })
    .await;
    wait_until(Duration::from_secs(30), || {
        let out = node(&["status", "--format", "json"]).output().unwrap();
        async move { states(&out.stdout) == ["delivered"] }
    })
    .await;
    assert!(
        daemon.terminate(Duration::from_secs(30)).success(),
        "the daemon stops cleanly on SIGTERM"
    );
    assert_eq!(hub.revision_count(), 1, "delivered exactly once");
    let stored = hub.current(VILLAGE, "2026-10").unwrap();
    assert_eq!(stored.values[0].total, Some(2));
    hub.stop().await;
}

/// The states in `pingan-node status --format json`, oldest first.
fn states(stdout: &[u8]) -> Vec<String> {
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(stdout).expect("status prints JSON");
    entries
        .iter()
        .map(|e| e["state"].as_str().expect("state").to_owned())
        .collect()
}
