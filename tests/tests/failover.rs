//! PostgreSQL failing over under a hub taking reports: the test starts a primary and a streaming
//! replica (synchronous: a commit returns once the replica has it), the real `pingan-hub serve`
//! on both hosts (`target_session_attrs=read-write`), and submits reports; midway the primary
//! is stopped hard and the replica promoted. The hub reconnects by itself, the sender only
//! sees retryable errors, and every acked report is on the new primary, once.
//!
//! Runs when PostgreSQL's server programs are installed (`scripts/test` installs them); it says
//! so when they are not.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use pingan_domain::{Level, fixtures, pb};
use pingan_hub::store::StoreAt;
use pingan_tests::{HubProcess, value};
use tonic::Code;

/// The newest PostgreSQL server programs installed (Debian's layout).
fn pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    dirs.pop()
}

/// Runs a PostgreSQL program as the `postgres` user when this process is root (the server
/// refuses root), else as this user; panics unless it succeeds.
fn as_postgres(bin: &Path, program: &str, args: &[&str]) {
    let (line, status) = run_as_postgres(bin, program, args);
    assert!(status.success(), "{line}: {status}");
}

fn run_as_postgres(bin: &Path, program: &str, args: &[&str]) -> (String, std::process::ExitStatus) {
    let line = std::iter::once(bin.join(program).display().to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let status = if root {
        Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c", &line])
            .status()
    } else {
        Command::new("sh").args(["-c", &line]).status()
    }
    .unwrap();
    (line, status)
}

/// A primary and its synchronous streaming replica, stopped when dropped.
struct Pair {
    bin: PathBuf,
    dir: tempfile::TempDir,
    ports: (u16, u16),
}

impl Pair {
    fn start(bin: PathBuf) -> Pair {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let ports = (HubProcess::free_port(), HubProcess::free_port());
        let d = dir.path().display().to_string();
        let primary = format!("{d}/primary");
        as_postgres(
            &bin,
            "initdb",
            &[
                "-D", &primary, "-A", "trust", "-U", "postgres", "-E", "UTF8",
            ],
        );
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{d}'\n\
             wal_level = replica\nmax_wal_senders = 4\nsynchronous_standby_names = '*'\n",
            ports.0
        );
        append(&format!("{primary}/postgresql.conf"), &conf);
        let pair = Pair { bin, dir, ports };
        pair.ctl(&[
            "-D",
            &primary,
            "-l",
            &format!("{d}/primary.log"),
            "-w",
            "start",
        ]);
        let replica = format!("{d}/replica");
        as_postgres(
            &pair.bin,
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &ports.0.to_string(),
                "-U",
                "postgres",
                "-D",
                &replica,
                "-R",
                "-X",
                "stream",
            ],
        );
        // promoted, it has no standby of its own to wait for
        append(
            &format!("{replica}/postgresql.conf"),
            &format!("port = {}\nsynchronous_standby_names = ''\n", ports.1),
        );
        pair.ctl(&[
            "-D",
            &replica,
            "-l",
            &format!("{d}/replica.log"),
            "-w",
            "start",
        ]);
        pair
    }

    fn ctl(&self, args: &[&str]) {
        as_postgres(&self.bin, "pg_ctl", args);
    }

    fn data(&self, which: &str) -> String {
        format!("{}/{which}", self.dir.path().display())
    }

    fn url(&self, port: u16, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{db}")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for which in ["primary", "replica"] {
            let _ = run_as_postgres(
                &self.bin,
                "pg_ctl",
                &["-D", &self.data(which), "-m", "immediate", "stop"],
            );
        }
    }
}

fn append(path: &str, text: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_loses_no_acked_report_and_the_sender_only_retries() {
    let Some(bin) = pg_bin() else {
        eprintln!("not run: PostgreSQL's server programs are not installed");
        return;
    };
    let pair = tokio::task::spawn_blocking(move || Pair::start(bin))
        .await
        .unwrap();
    let admin =
        pingan_hub::store::db::Db::open(&StoreAt::Postgres(pair.url(pair.ports.0, "postgres")))
            .unwrap();
    admin.batch("CREATE DATABASE pingan").unwrap();
    drop(admin);
    let store = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/pingan?target_session_attrs=read-write&connect_timeout=2",
        pair.ports.0, pair.ports.1
    );
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("hub");
    pingan_tests::set_store_for(&data, StoreAt::Postgres(store));
    let hub = HubProcess::start(&data, HubProcess::free_port());

    let villages = fixtures::santai_areas().descendants_at(fixtures::santai(), Level::Village);
    let reports: Vec<pb::Report> = villages
        .iter()
        .take(300)
        .enumerate()
        .map(|(i, v)| {
            pingan_tests::report(
                &v.to_string(),
                "2026-10",
                vec![value("cases.fraud", i as i64 + 1)],
            )
        })
        .collect();
    let mut acked = Vec::new();
    let mut retried = 0;
    let mut failed_over = None;
    let started = Instant::now();
    for (i, report) in reports.iter().enumerate() {
        if i == 100 {
            // the primary stops hard; the replica becomes the primary
            let (bin, primary, replica) =
                (pair.bin.clone(), pair.data("primary"), pair.data("replica"));
            failed_over = Some(std::thread::spawn(move || {
                as_postgres(&bin, "pg_ctl", &["-D", &primary, "-m", "immediate", "stop"]);
                std::thread::sleep(Duration::from_millis(500));
                as_postgres(&bin, "pg_ctl", &["-D", &replica, "-w", "promote"]);
            }));
        }
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "reports not acked in 2 min"
            );
            let sent = async {
                let mut client =
                    pb::report_service_client::ReportServiceClient::connect(hub.url.clone())
                        .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    client.submit(report.clone()).await?.into_inner(),
                )
            }
            .await;
            match sent {
                Ok(receipt) => {
                    acked.push((report.submission_id.clone(), receipt.revision));
                    break;
                }
                Err(e) => {
                    if let Some(status) = e.downcast_ref::<tonic::Status>() {
                        assert!(
                            matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded),
                            "report {i}: not a retryable answer: {status:?}"
                        );
                    }
                    retried += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    failed_over.expect("failed over").join().unwrap();
    eprintln!(
        "{} reports acked, {retried} retries, {:?}",
        acked.len(),
        started.elapsed()
    );
    assert!(
        retried > 0,
        "the failover happened while reports were coming in"
    );

    // every acked report is on the new primary, once, as acked
    let reader = pingan_hub::store::StoreReader::open_at(&StoreAt::Postgres(
        pair.url(pair.ports.1, "pingan"),
    ))
    .unwrap();
    let mut stored = Vec::new();
    reader
        .for_each_revision(|r| stored.push((r.submission_id, r.revision)))
        .unwrap();
    stored.sort();
    acked.sort();
    assert_eq!(stored, acked);
    // the hub answers from the new primary too
    let total = pingan_tests::rollup_total(&hub.url, "510722", "2026-10", "cases.fraud").await;
    assert_eq!(total, Some((1..=300).sum::<i64>()));
    drop(hub);
    drop(pair);
}
