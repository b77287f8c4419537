//! A node's backlog drained by the real binaries: an outbox of N reports (26 values each, the
//! dataset's villages for one month) delivered by `pingan-node run` to `pingan-hub serve` on
//! loopback, timed from the node's start until its outbox holds nothing pending; the node's
//! memory is read while it drains.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use pingan_domain::{Areas, Catalogue, Level};
use pingan_outbox::Outbox;

use crate::{
    ingest::{IngestConfig, report},
    queries::{Hub, HubRun},
};

/// What the drain measured.
#[derive(Debug, Clone)]
pub struct DrainResult {
    pub reports: usize,
    /// From the node's start to an empty outbox.
    pub took: Duration,
    /// The node's peak RSS (KiB) while it drained.
    pub node_peak_rss_kib: u64,
    /// Revisions the hub stored (every report once).
    pub stored: u64,
}

impl DrainResult {
    pub fn reports_per_s(&self) -> f64 {
        self.reports as f64 / self.took.as_secs_f64()
    }
}

/// `pingan-node` beside `pingan-hub`.
fn node_binary(hub: &Path) -> PathBuf {
    hub.with_file_name("pingan-node")
}

/// Fills an outbox with `n` village reports, starts a hub on an empty store (SQLite in a new
/// directory, or the empty database `store`) and the node's daemon, and waits until the
/// outbox is empty.
pub fn run(
    hub_bin: &Path,
    divisions: &Path,
    population: Option<&Path>,
    areas: &Areas,
    n: usize,
    store: Option<&str>,
) -> anyhow::Result<DrainResult> {
    let work = tempfile::tempdir()?;
    let (outbox_dir, data) = (work.path().join("outbox"), work.path().join("hub"));
    std::fs::create_dir_all(&outbox_dir)?;
    let catalogue = Catalogue::builtin();
    // named, as an office's reports wait in its outbox; `pingan-node run` sends their totals
    // by catalogue position, the hub's catalogue being the built-in one
    let cfg = IngestConfig {
        packed: false,
        ..Default::default()
    };
    let mut villages: Vec<_> = areas
        .iter()
        .map(|a| a.code)
        .filter(|c| c.level() == Level::Village)
        .collect();
    villages.sort();
    anyhow::ensure!(villages.len() >= n, "only {} villages", villages.len());
    {
        let mut outbox = Outbox::open(&outbox_dir)?;
        let mut queued = 0;
        for chunk in villages[..n].chunks(5_000) {
            let reports: Vec<_> = chunk.iter().map(|v| report(&catalogue, &cfg, *v)).collect();
            outbox.enqueue(&reports)?;
            queued += reports.len();
            eprint!("\r  {queued} of {n} reports queued in the node's outbox");
        }
        eprintln!();
    }
    let (hub, _) = Hub::start(&HubRun {
        hub: hub_bin,
        data: &data,
        divisions,
        population,
        store,
    })?;
    let node = node_binary(hub_bin);
    let started = Instant::now();
    let mut daemon = Command::new(&node)
        .args(["run", "--insecure", "--hub", &hub.url, "--outbox"])
        .arg(&outbox_dir)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (cargo build --release -p pingan-node)",
                node.display()
            )
        })?;
    let mut peak = 0u64;
    let took = loop {
        let pending = Outbox::open(&outbox_dir)?.pending_count()?;
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", daemon.id())).unwrap_or_default();
        if let Some(hwm) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        {
            peak = peak.max(hwm);
        }
        eprint!(
            "\r  {} of {n} reports delivered",
            n as u64 - pending.min(n as u64)
        );
        if pending == 0 {
            break started.elapsed();
        }
        if let Some(status) = daemon.try_wait()? {
            anyhow::bail!("pingan-node run exited ({status}) with {pending} reports pending");
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1_800),
            "the outbox did not drain in 30 minutes ({pending} pending)"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!();
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    daemon.wait()?;
    hub.stop()?;
    let stored =
        pingan_hub::store::StoreReader::open_at(&pingan_hub::store::StoreAt::new(&data, store))?
            .revision_count()?;
    anyhow::ensure!(
        stored == n as u64,
        "the hub stored {stored} revisions for {n} reports"
    );
    Ok(DrainResult {
        reports: n,
        took,
        node_peak_rss_kib: peak,
        stored,
    })
}
