//! Federation, the child hub's side: the rollups of this hub's jurisdiction go to its parent hub
//! (`--parent`), through the same durable outbox and delivery as a node's reports.
//!
//! What is forwarded is set by the depth: for every area at the depth under the hub's root, its
//! whole subtree as one rollup; for the root and the areas between it and the depth, their own
//! report only (their children are forwarded separately). Every commit marks the records it
//! changes; a task recomputes them from the rollups, writes the changed ones to the outbox (one
//! new submission per change, so a correction reaches the parent as its next revision) and a
//! second task delivers the outbox. A full sweep at start-up and on a schedule catches anything a
//! crash may have left unmarked. Ingest never waits for any of this: the commit hook only marks.

use std::{
    collections::BTreeSet,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use anyhow::Context as _;
use pingan_node::{deliver::Deliverer, outbox::Outbox};
use pingan_proto::{AreaCode, Areas, Level, Period, pb, pb::rollup::Scope};
use prost::Message as _;
use rusqlite::{OptionalExtension as _, params};
use sha2::{Digest as _, Sha256};
use tokio::{sync::Notify, task::JoinHandle};

use crate::{state::HubState, store::Committed};

/// Changes arriving within this long are forwarded together.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// Most records written to the outbox in one transaction.
const CHUNK: usize = 2000;

/// Which records a hub forwards: its root area and the depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub root: AreaCode,
    pub depth: Level,
}

impl Plan {
    /// A plan; the depth must be the root's level or below it.
    pub fn new(root: AreaCode, depth: Level) -> anyhow::Result<Plan> {
        anyhow::ensure!(
            depth >= root.level(),
            "forwarding depth {depth} is above the hub's area {root} ({})",
            root.level()
        );
        Ok(Plan { root, depth })
    }

    /// The scope a record for `key` carries.
    pub fn scope(&self, key: AreaCode) -> Scope {
        if key.level() == self.depth {
            Scope::Subtree
        } else {
            Scope::Own
        }
    }

    /// The forwarded record that a change to `area` affects.
    pub fn key(&self, area: AreaCode) -> Option<AreaCode> {
        if !area.is_within(self.root) {
            return None;
        }
        area.ancestor_at(self.depth).or(Some(area))
    }

    /// Every record's area, per the registry: the root and the areas down to the depth.
    pub fn keys(&self, areas: &Areas) -> Vec<AreaCode> {
        let mut out = vec![self.root];
        for l in Level::ALL {
            if l > self.root.level() && l <= self.depth {
                out.extend(areas.descendants_at(self.root, l));
            }
        }
        out
    }
}

/// The records changed since they were last forwarded. Shared with the commit hook.
#[derive(Debug, Default)]
pub struct Dirty {
    plan: OnceLock<Plan>,
    keys: Mutex<BTreeSet<(AreaCode, Period)>>,
    notify: Notify,
}

impl Dirty {
    /// Marks the records these commits change (nothing unless the hub forwards).
    pub fn mark(&self, committed: &[Committed]) {
        let Some(plan) = self.plan.get() else { return };
        let mut keys = self.keys.lock().expect("not poisoned");
        let before = keys.len();
        for c in committed {
            if let Some(k) = plan.key(c.area) {
                keys.insert((k, c.period));
            }
        }
        if keys.len() > before {
            self.notify.notify_one();
        }
    }

    fn take(&self) -> Vec<(AreaCode, Period)> {
        std::mem::take(&mut *self.keys.lock().expect("not poisoned"))
            .into_iter()
            .collect()
    }
}

/// How to forward.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// The parent hub's URL, e.g. `https://mianyang.example:7400`.
    pub parent: String,
    pub plan: Plan,
    /// This hub's certificate as a client of the parent (`None`: plaintext).
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    /// Directory of the forwarding outbox.
    pub dir: PathBuf,
    /// How often every record is checked against what was last forwarded.
    pub sweep_every: Duration,
    /// How long the parent has to answer one stream.
    pub timeout: Duration,
    /// Longest wait between two attempts while the parent is unreachable.
    pub max_backoff: Duration,
}

/// The running forwarder; stops when dropped (everything it wrote stays in its outbox).
#[derive(Debug)]
pub struct Forwarder {
    tasks: Vec<JoinHandle<()>>,
    dir: PathBuf,
}

impl Forwarder {
    /// Rollups written for the parent and not yet acknowledged by it.
    pub fn pending(&self) -> anyhow::Result<u64> {
        Ok(Outbox::open(&self.dir)?.pending_count()?)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

const BOOK_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS forward_meta (
    key    TEXT NOT NULL PRIMARY KEY,
    value  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS forward_state (
    area    TEXT    NOT NULL,
    period  TEXT    NOT NULL,
    generation     INTEGER NOT NULL,
    digest  BLOB    NOT NULL,
    PRIMARY KEY (area, period)
) WITHOUT ROWID;
";

/// The outbox, with what was last written to it per record.
struct Book {
    outbox: Outbox,
    /// Random per outbox database: submission ids never repeat, even after a reinstall.
    instance: String,
}

impl Book {
    fn open(dir: &std::path::Path) -> anyhow::Result<Book> {
        let outbox = Outbox::open(dir)
            .with_context(|| format!("opening the forwarding outbox in {}", dir.display()))?;
        let conn = outbox.connection();
        conn.execute_batch(BOOK_SCHEMA)?;
        let instance: Option<String> = conn
            .query_row(
                "SELECT value FROM forward_meta WHERE key = 'instance'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let instance = match instance {
            Some(i) => i,
            None => {
                let i = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
                conn.execute(
                    "INSERT INTO forward_meta (key, value) VALUES ('instance', ?1)",
                    [&i],
                )?;
                i
            }
        };
        Ok(Book { outbox, instance })
    }

    fn last(&self, area: &str, period: &str) -> anyhow::Result<(u32, Option<Vec<u8>>)> {
        Ok(self
            .outbox
            .connection()
            .query_row(
                "SELECT generation, digest FROM forward_state WHERE area = ?1 AND period = ?2",
                [area, period],
                |r| Ok((r.get(0)?, Some(r.get(1)?))),
            )
            .optional()?
            .unwrap_or((0, None)))
    }
}

/// Recomputes `keys` and writes the changed records to the outbox. Returns how many were
/// written.
fn forward_keys(
    state: &HubState,
    plan: &Plan,
    book: &mut Book,
    keys: &[(AreaCode, Period)],
) -> anyhow::Result<usize> {
    let mut written = 0;
    for chunk in keys.chunks(CHUNK) {
        let mut reports = Vec::new();
        let mut marks = Vec::new();
        for &(area, period) in chunk {
            let scope = plan.scope(area);
            let rollup = match state.engine.forward_rollup(area, period, scope) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(%area, %period, error = %e, "cannot forward this rollup");
                    continue;
                }
            };
            let (a, p) = (area.to_string(), period.to_string());
            let (generation, last_digest) = book.last(&a, &p)?;
            let mut report = match rollup {
                Some(r) => pb::Report {
                    area: a.clone(),
                    period: p.clone(),
                    values: r.values,
                    zero_report: r.zero_report,
                    rollup: Some(r.rollup),
                    ..Default::default()
                },
                // nothing forwarded before, nothing to say
                None if generation == 0 => continue,
                // everything under it was withdrawn: an empty rollup replaces the last one
                None => pb::Report {
                    area: a.clone(),
                    period: p.clone(),
                    rollup: Some(pb::Rollup {
                        scope: scope as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            };
            let digest = Sha256::digest(report.encode_to_vec()).to_vec();
            if last_digest.as_deref() == Some(digest.as_slice()) {
                continue;
            }
            let generation = generation + 1;
            report.submission_id = format!("fwd-{}-{a}-{p}-{generation}", book.instance);
            report.reporter = format!("pingan-hub {}", plan.root);
            reports.push(report);
            marks.push((a, p, generation, digest));
        }
        if reports.is_empty() {
            continue;
        }
        book.outbox.enqueue_with(&reports, |tx| {
            let mut drop_old = tx.prepare_cached(
                "DELETE FROM outbox WHERE area = ?1 AND period = ?2 AND state IN ('pending', 'delivered')",
            )?;
            let mut remember = tx.prepare_cached(
                "INSERT OR REPLACE INTO forward_state (area, period, generation, digest) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (a, p, generation, digest) in &marks {
                // an older revision not yet sent is superseded: the backlog stays one entry per
                // record however long the parent is away
                drop_old.execute([a, p])?;
                remember.execute(params![a, p, generation, digest])?;
            }
            Ok(())
        })?;
        written += reports.len();
    }
    Ok(written)
}

/// Every record of every period held.
fn sweep_keys(state: &HubState, plan: &Plan) -> Vec<(AreaCode, Period)> {
    let keys = plan.keys(&state.areas);
    let periods = state.engine.periods();
    let mut out = Vec::with_capacity(keys.len() * periods.len());
    for p in &periods {
        for k in &keys {
            out.push((*k, *p));
        }
    }
    out
}

/// Starts forwarding: marks changes from now on, sweeps everything once, and delivers.
pub fn start(state: &HubState, cfg: ForwardConfig) -> anyhow::Result<Forwarder> {
    state
        .forward
        .plan
        .set(cfg.plan)
        .map_err(|_| anyhow::anyhow!("this hub already forwards"))?;
    let book = Arc::new(Mutex::new(Book::open(&cfg.dir)?));
    let cfg_dir = cfg.dir.clone();
    let mut delivery_outbox = Outbox::open(&cfg.dir)?;
    let send_now = Arc::new(Notify::new());
    tracing::info!(parent = %cfg.parent, root = %cfg.plan.root, depth = %cfg.plan.depth, "forwarding rollups to the parent hub");

    let compute = {
        let (state, send_now, plan) = (state.clone(), send_now.clone(), cfg.plan);
        let sweep_every = cfg.sweep_every;
        tokio::spawn(async move {
            let run = |keys: Option<Vec<(AreaCode, Period)>>| {
                let (state, book) = (state.clone(), book.clone());
                tokio::task::spawn_blocking(move || {
                    let keys = keys.unwrap_or_else(|| sweep_keys(&state, &plan));
                    let mut book = book.lock().expect("not poisoned");
                    forward_keys(&state, &plan, &mut book, &keys)
                })
            };
            loop {
                match run(None).await {
                    Ok(Ok(n)) => tracing::info!(written = n, "forwarding sweep done"),
                    Ok(Err(e)) => tracing::error!(error = %e, "forwarding sweep failed"),
                    Err(e) => tracing::error!(error = %e, "forwarding sweep panicked"),
                }
                send_now.notify_one();
                let next_sweep = tokio::time::Instant::now() + sweep_every;
                loop {
                    tokio::select! {
                        () = state.forward.notify.notified() => {}
                        () = tokio::time::sleep_until(next_sweep) => break,
                    }
                    tokio::time::sleep(DEBOUNCE).await;
                    let keys = state.forward.take();
                    match run(Some(keys)).await {
                        Ok(Ok(n)) => {
                            tracing::debug!(written = n, "changed rollups queued for the parent")
                        }
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "queueing rollups for the parent failed")
                        }
                        Err(e) => tracing::error!(error = %e, "queueing rollups panicked"),
                    }
                    send_now.notify_one();
                }
            }
        })
    };

    let deliver = tokio::spawn(async move {
        let mut deliverer = Deliverer::new(cfg.parent.clone(), cfg.timeout).with_tls(cfg.tls);
        deliverer.backoff = pingan_node::backoff::Backoff::new(
            Duration::from_millis(200).min(cfg.max_backoff),
            cfg.max_backoff,
        );
        loop {
            match deliverer.pass(&mut delivery_outbox).await {
                Ok(pass) => {
                    if pass.delivered > 0 || pass.parked > 0 {
                        tracing::info!(
                            delivered = pass.delivered,
                            parked = pass.parked,
                            "rollups forwarded to the parent hub"
                        );
                    }
                    match pass.retry {
                        Some(reason) => {
                            let delay = deliverer.backoff.next_delay();
                            tracing::warn!(parent = %cfg.parent, error = %reason, retry_in = ?delay, "parent hub not reachable; rollups wait in the outbox");
                            tokio::time::sleep(delay).await;
                        }
                        None => {
                            tokio::select! {
                                () = send_now.notified() => {}
                                () = tokio::time::sleep(cfg.sweep_every) => {}
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "forwarding outbox");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    });
    Ok(Forwarder {
        tasks: vec![compute, deliver],
        dir: cfg_dir,
    })
}

#[cfg(test)]
mod tests {
    use pingan_proto::fixtures;

    use super::*;

    fn code(s: &str) -> AreaCode {
        s.parse().unwrap()
    }

    #[test]
    fn the_depth_decides_which_records_are_forwarded() {
        let areas = fixtures::mianyang_areas();
        let county = Plan::new(code("510722"), Level::County).unwrap();
        assert_eq!(county.keys(&areas), [code("510722")]);
        assert_eq!(county.key(code("510722101002")), Some(code("510722")));
        assert_eq!(county.scope(code("510722")), Scope::Subtree);
        // another county's reports are not this hub's to forward
        assert_eq!(county.key(code("510705101001")), None);

        let township = Plan::new(code("510722"), Level::Township).unwrap();
        assert_eq!(township.keys(&areas).len(), 1 + 33);
        assert_eq!(township.key(code("510722101002")), Some(code("510722101")));
        assert_eq!(township.key(code("510722")), Some(code("510722")));
        assert_eq!(township.scope(code("510722")), Scope::Own);
        assert_eq!(township.scope(code("510722101")), Scope::Subtree);

        let city = Plan::new(code("5107"), Level::Village).unwrap();
        assert_eq!(city.keys(&areas).len(), 1 + 2 + 43 + 613);
        assert!(Plan::new(code("510722101"), Level::County).is_err());
    }
}
