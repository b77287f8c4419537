//! Mutual TLS and jurisdiction: no one writes or reads outside their area.

use std::{process::Command, sync::Arc, time::Duration};

use pingan_domain::pb::{
    self, query_service_client::QueryServiceClient, report_service_client::ReportServiceClient,
};
use pingan_hub::access::{
    authz::Grant,
    tls::{
        Identity, Role,
        certs::{IssueRequest, issue_with},
    },
};
use pingan_tests::{Pki, TestHub, bin, report, value, wait_until};
use tonic::{
    Code,
    transport::{Certificate, ClientTlsConfig},
};

const VILLAGE_A: &str = "510722101002";
const VILLAGE_B: &str = "510722101003";
const TOWN: &str = "510722101";
const OTHER_TOWN: &str = "510722104";
const OTHER_TOWN_VILLAGE: &str = "510722104001";

async fn ping(hub: &TestHub, tls: ClientTlsConfig) -> Result<(), tonic::Status> {
    ReportServiceClient::new(hub.channel(tls))
        .ping(pb::PingRequest {})
        .await
        .map(|_| ())
}

fn write_pair(pki: &Pki, stem: &str, issued: &pingan_hub::access::tls::certs::Issued) {
    std::fs::write(pki.path(&format!("{stem}.pem")), &issued.cert_pem).unwrap();
    std::fs::write(pki.path(&format!("{stem}.key")), &issued.key_pem).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_valid_unrevoked_certificates_of_our_ca_get_in() {
    let pki = Pki::new();
    pki.issue(Role::Node, VILLAGE_A);
    let hub = TestHub::start_mtls(&pki, vec![]).await;
    ping(&hub, pki.client(&format!("node-{VILLAGE_A}")))
        .await
        .expect("a valid certificate gets in");

    // no client certificate
    let ca_only = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(
        std::fs::read(pki.path("ca.pem")).unwrap(),
    ));
    assert!(
        ping(&hub, ca_only).await.is_err(),
        "no client certificate must be refused"
    );

    // a certificate from another CA (the client still trusts our hub)
    let other = Pki::new();
    other.issue(Role::Node, VILLAGE_A);
    let foreign = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            std::fs::read(pki.path("ca.pem")).unwrap(),
        ))
        .identity(tonic::transport::Identity::from_pem(
            std::fs::read(other.path(&format!("node-{VILLAGE_A}.pem"))).unwrap(),
            std::fs::read(other.path(&format!("node-{VILLAGE_A}.key"))).unwrap(),
        ));
    assert!(
        ping(&hub, foreign).await.is_err(),
        "another CA's certificate must be refused"
    );

    // an expired certificate of our CA
    let mut req = IssueRequest::valid_for_days(Role::Node, VILLAGE_B.parse().unwrap(), 1);
    req.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    req.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let expired = issue_with(
        &std::fs::read_to_string(pki.path("ca.pem")).unwrap(),
        &std::fs::read_to_string(pki.path("ca.key")).unwrap(),
        &req,
    )
    .unwrap();
    write_pair(&pki, "expired", &expired);
    assert!(
        ping(&hub, pki.client("expired")).await.is_err(),
        "an expired certificate must be refused"
    );

    // a serial put on the deny list while the hub runs: refused without a restart, both on new
    // connections and on a connection opened before the revocation
    let serial = pki.issue(Role::Node, VILLAGE_B);
    let stem = format!("node-{VILLAGE_B}");
    let open = ReportServiceClient::new(hub.channel(pki.client(&stem)));
    open.clone()
        .ping(pb::PingRequest {})
        .await
        .expect("valid before revocation");
    std::fs::write(
        pki.path("deny-list.txt"),
        format!("# revoked: lost laptop\n{serial}\n"),
    )
    .unwrap();
    wait_until(Duration::from_secs(20), || {
        let tls = pki.client(&stem);
        let hub = &hub;
        async move { ping(hub, tls).await.is_err() }
    })
    .await;
    let err = open.clone().ping(pb::PingRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("revoked"), "{}", err.message());

    // through all of this the hub kept serving
    ping(&hub, pki.client(&format!("node-{VILLAGE_A}")))
        .await
        .expect("the hub still serves");
    assert_eq!(hub.revision_count(), 0);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_submit_only_for_their_own_area_or_a_granted_subtree() {
    let pki = Pki::new();
    for (role, area) in [
        (Role::Node, VILLAGE_A),
        (Role::Node, TOWN),
        (Role::Node, OTHER_TOWN),
        (Role::Viewer, TOWN),
    ] {
        pki.issue(role, area);
    }
    let grants = vec![Grant {
        identity: format!("pingan://node/{TOWN}"),
        subtree: TOWN.parse().unwrap(),
    }];
    let hub = TestHub::start_mtls(&pki, grants).await;
    let mut village =
        ReportServiceClient::new(hub.channel(pki.client(&format!("node-{VILLAGE_A}"))));
    let fraud = || vec![value("cases.fraud", 1)];

    village
        .submit(report(VILLAGE_A, "2026-10", fraud()))
        .await
        .expect("its own area");
    for area in [VILLAGE_B, TOWN] {
        let err = village
            .submit(report(area, "2026-10", fraud()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{area}: {err:?}");
        assert!(
            err.message()
                .contains(&format!("pingan://node/{VILLAGE_A}")),
            "{}",
            err.message()
        );
        assert!(err.message().contains(area), "{}", err.message());
    }
    // the payload cannot claim another identity: the batch path refuses the same way
    let mut stream = village
        .submit_batch(tokio_stream::iter(vec![report(
            VILLAGE_B,
            "2026-10",
            fraud(),
        )]))
        .await
        .unwrap()
        .into_inner();
    let result = stream.message().await.unwrap().unwrap();
    match result.outcome {
        Some(pb::batch_result::Outcome::Rejection(r)) => {
            assert_eq!(r.code, Code::PermissionDenied as i32)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // a township granted its subtree enters its villages' paper forms
    let mut town = ReportServiceClient::new(hub.channel(pki.client(&format!("node-{TOWN}"))));
    town.submit(report(VILLAGE_B, "2026-10", fraud()))
        .await
        .expect("granted subtree");
    town.submit(report(TOWN, "2026-10", fraud()))
        .await
        .expect("its own area");
    let err = town
        .submit(report(OTHER_TOWN_VILLAGE, "2026-10", fraud()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // a township without a grant may not
    let mut other =
        ReportServiceClient::new(hub.channel(pki.client(&format!("node-{OTHER_TOWN}"))));
    assert_eq!(
        other
            .submit(report(OTHER_TOWN_VILLAGE, "2026-10", fraud()))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    // a viewer may not submit at all
    let mut viewer = ReportServiceClient::new(hub.channel(pki.client(&format!("viewer-{TOWN}"))));
    assert_eq!(
        viewer
            .submit(report(TOWN, "2026-10", fraud()))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );

    assert_eq!(hub.revision_count(), 3);
    let reader = hub.state.store.reader().unwrap();
    assert_eq!(
        reader
            .current(VILLAGE_A.parse().unwrap(), "2026-10".parse().unwrap())
            .unwrap()
            .unwrap()
            .sender,
        format!("pingan://node/{VILLAGE_A}")
    );
    // six refusals: the repeat of one (the same identity, action and area within a minute) is
    // counted, and written as one "×1 more" row when the store closes
    let refusals = reader.refusals().unwrap();
    assert_eq!(refusals.len(), 5, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .any(|r| r.identity == format!("pingan://node/{VILLAGE_A}")
                && r.area == VILLAGE_B
                && r.action == "submit")
    );
    let db = hub.data.join(pingan_hub::store::DB_FILE);
    let _keep = hub.stop().await;
    let refusals = pingan_hub::store::StoreReader::open(&db)
        .unwrap()
        .refusals()
        .unwrap();
    assert_eq!(refusals.len(), 6, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .any(|r| r.area == VILLAGE_B && r.reason.starts_with("×1 more since")),
        "{refusals:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_read_only_their_subtree() {
    let pki = Pki::new();
    pki.issue(Role::Viewer, TOWN);
    pki.issue(Role::Node, VILLAGE_A);
    let hub = TestHub::start_mtls(&pki, vec![]).await;
    let mut node = ReportServiceClient::new(hub.channel(pki.client(&format!("node-{VILLAGE_A}"))));
    node.submit(report(VILLAGE_A, "2026-10", vec![value("cases.fraud", 4)]))
        .await
        .unwrap();
    let mut viewer = QueryServiceClient::new(hub.channel(pki.client(&format!("viewer-{TOWN}"))));
    let rollup = |area: &str| pb::RollupRequest {
        area: area.into(),
        period: "2026-10".into(),
        metrics: vec!["cases.fraud".into()],
        by_category: false,
        approved_only: false,
    };
    let own = viewer.rollup(rollup(TOWN)).await.unwrap().into_inner();
    assert_eq!(own.figures[0].total, Some(4));
    viewer
        .rollup(rollup(VILLAGE_A))
        .await
        .expect("a village of its township");
    for area in [OTHER_TOWN, "510722"] {
        let err = viewer.rollup(rollup(area)).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{area}");
        assert!(
            err.message().contains(&format!("pingan://viewer/{TOWN}"))
                && err.message().contains(area),
            "{}",
            err.message()
        );
    }
    let err = viewer
        .compare(pb::CompareRequest {
            area: OTHER_TOWN.into(),
            period: "2026-10".into(),
            metric: "cases.fraud".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // a node certificate does not read
    let mut as_node =
        QueryServiceClient::new(hub.channel(pki.client(&format!("node-{VILLAGE_A}"))));
    assert_eq!(
        as_node.rollup(rollup(VILLAGE_A)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    hub.stop().await;
}

/// The serial of the certificate the hub presents on a new connection.
async fn served_serial(hub: &TestHub, pki: &Pki) -> String {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject as _};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.path("ca.pem")).unwrap())
        .unwrap();
    let chain =
        vec![CertificateDer::from_pem_file(pki.path(&format!("node-{VILLAGE_A}.pem"))).unwrap()];
    let key = PrivateKeyDer::from_pem_file(pki.path(&format!("node-{VILLAGE_A}.key"))).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let der = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    Identity::from_der(&der).unwrap().serial
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_certificate_rotates_without_a_restart_or_dropped_connections() {
    let pki = Pki::new();
    pki.issue(Role::Node, VILLAGE_A);
    let hub = TestHub::start_mtls(&pki, vec![]).await;
    let before = served_serial(&hub, &pki).await;
    let open = ReportServiceClient::new(hub.channel(pki.client(&format!("node-{VILLAGE_A}"))));
    open.clone().ping(pb::PingRequest {}).await.unwrap();

    let fresh = issue_with(
        &std::fs::read_to_string(pki.path("ca.pem")).unwrap(),
        &std::fs::read_to_string(pki.path("ca.key")).unwrap(),
        &IssueRequest::valid_for_days(Role::Hub, "510722".parse().unwrap(), 30),
    )
    .unwrap();
    // key first, then the certificate: a reload between the two fails to load and keeps the old pair
    std::fs::write(pki.path("hub-510722.key"), &fresh.key_pem).unwrap();
    std::fs::write(pki.path("hub-510722.pem"), &fresh.cert_pem).unwrap();
    assert_ne!(before, fresh.serial);
    // new connections get the new certificate once the hub has noticed the files changed
    wait_until(Duration::from_secs(60), || async {
        served_serial(&hub, &pki).await == fresh.serial
    })
    .await;
    open.clone()
        .ping(pb::PingRequest {})
        .await
        .expect("a connection opened before the rotation still works");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_input_gets_a_clear_error_and_the_hub_keeps_serving() {
    let pki = Pki::new();
    pki.issue(Role::Node, VILLAGE_A);
    let hub = TestHub::start_mtls(&pki, vec![]).await;
    let mut node = ReportServiceClient::new(hub.channel(pki.client(&format!("node-{VILLAGE_A}"))));
    let mut big = report(VILLAGE_A, "2026-10", vec![value("cases.fraud", 1)]);
    big.notes = "很".repeat(2 * 1024 * 1024);
    let err = node.submit(big).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{err:?}"
    );
    assert!(
        err.message().contains("message length too large") || err.message().contains("too large"),
        "{}",
        err.message()
    );
    // not TLS at all
    use tokio::io::AsyncWriteExt as _;
    let mut raw = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    drop(raw);
    node.submit(report(VILLAGE_A, "2026-10", vec![value("cases.fraud", 1)]))
        .await
        .expect("the hub keeps serving");
    assert_eq!(hub.revision_count(), 1);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_and_the_query_cli_work_end_to_end_over_mutual_tls() {
    let pki = Pki::new();
    pki.issue(Role::Node, VILLAGE_A);
    pki.issue(Role::Viewer, TOWN);
    let hub = TestHub::start_mtls(&pki, vec![]).await;
    let outbox = tempfile::tempdir().unwrap();
    let (url, dir, out_dir) = (
        hub.url.clone(),
        pki.dir.path().to_owned(),
        outbox.path().to_owned(),
    );
    let (submit, refused, query) = tokio::task::spawn_blocking(move || {
        let node = |extra: &[&str]| {
            Command::new(bin("pingan-node"))
                .args([
                    "submit",
                    "--hub",
                    &url,
                    "--area",
                    VILLAGE_A,
                    "--period",
                    "2026-10",
                    "--set",
                    "电信网络诈骗案件=3",
                ])
                .args(extra)
                .arg("--outbox")
                .arg(&out_dir)
                .output()
                .unwrap()
        };
        let p = |n: String| dir.join(n).to_string_lossy().into_owned();
        let (ca, cert, key) = (
            p("ca.pem".into()),
            p(format!("node-{VILLAGE_A}.pem")),
            p(format!("node-{VILLAGE_A}.key")),
        );
        let submit = node(&["--ca", &ca, "--cert", &cert, "--key", &key]);
        let refused = node(&[]);
        let query = Command::new(bin("pingan-hub"))
            .args([
                "query",
                "rollup",
                "--hub",
                &url,
                "--area",
                TOWN,
                "--period",
                "2026-10",
                "--metric",
                "cases.fraud",
                "--format",
                "json",
            ])
            .args([
                "--ca",
                &ca,
                "--cert",
                &p(format!("viewer-{TOWN}.pem")),
                "--key",
                &p(format!("viewer-{TOWN}.key")),
            ])
            .output()
            .unwrap();
        (submit, refused, query)
    })
    .await
    .unwrap();
    assert!(
        submit.status.success(),
        "{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--ca"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        query.status.success(),
        "{}",
        String::from_utf8_lossy(&query.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&query.stdout).unwrap();
    let fraud = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "cases.fraud")
        .unwrap();
    assert_eq!(fraud["total"], 3);
    hub.stop().await;
}

/// The dashboard over HTTPS tells browsers to keep to HTTPS (HSTS), with the other security
/// headers; served plain (`--insecure`), it does not claim HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_dashboard_sends_hsts_and_the_plain_one_does_not() {
    use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject as _};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let served = pingan_tests::ServedHub::start([
        "--ca".as_ref(),
        pki.path("ca.pem").as_os_str(),
        "--cert".as_ref(),
        pki.path("hub-510722.pem").as_os_str(),
        "--key".as_ref(),
        pki.path("hub-510722.key").as_os_str(),
        "--web-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data".as_ref(),
        data.path().as_os_str(),
    ]);
    let web = served.web.clone().expect("the dashboard");
    let addr = web.strip_prefix("https://").expect("HTTPS").to_owned();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.path("ca.pem")).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("the dashboard's certificate chains to the deployment's CA");
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.unwrap();
    let head = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head:.200}");
    for header in [
        "strict-transport-security: max-age=31536000",
        "x-frame-options: deny",
        "x-content-type-options: nosniff",
    ] {
        assert!(head.contains(header), "{header} missing: {head:.600}");
    }
    drop(served);

    let plain = pingan_tests::ServedHub::start([
        "--insecure".as_ref(),
        "--web-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data".as_ref(),
        data.path().join("plain").as_os_str(),
    ]);
    let addr = plain.web.clone().expect("the dashboard");
    let addr = addr.strip_prefix("http://").expect("plain HTTP").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    let head = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head:.200}");
    assert!(head.contains("x-frame-options: deny"), "{head:.600}");
    assert!(!head.contains("strict-transport-security"), "{head:.600}");
}
