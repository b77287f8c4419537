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
//!
//! Departments' (条) reports within the root go up as they are (each department's current
//! report of a period, its department id with it), so that a city's hub compares one 系统 across
//! its counties; they never enter a rollup.

use std::{
    collections::BTreeSet,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use anyhow::Context as _;
use pingan_domain::{
    AreaCode, Areas, Catalogue, Level, Period, pb,
    question::Figures,
    rollup::{Rollup, RollupLock, Scope},
};
use pingan_outbox::{
    CancellationToken, Deliverer, Outbox,
    backoff::Backoff,
    records::{NextRecord, Records},
};
use prost::Message as _;
use sha2::{Digest as _, Sha256};
use tokio::{sync::Notify, task::JoinHandle};

use crate::{
    clock::Clock,
    query::Engine,
    store::{Committed, Store, lease::Lease},
};

/// Changes arriving within this long are forwarded together.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// Most records written to the outbox in one transaction.
const CHUNK: usize = 2000;

/// Which records a hub forwards: its root area and the depth, of which figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub root: AreaCode,
    pub depth: Level,
    /// Every current figure, or approved ones only (`--forward-approved-only`).
    pub figures: Figures,
}

impl Plan {
    /// A plan; the depth must be the root's level or below it.
    pub fn new(root: AreaCode, depth: Level) -> anyhow::Result<Plan> {
        anyhow::ensure!(
            depth >= root.level(),
            "forwarding depth {depth} is above the hub's area {root} ({})",
            root.level()
        );
        Ok(Plan {
            root,
            depth,
            figures: Figures::Current,
        })
    }

    /// The same plan forwarding these figures.
    pub fn with_figures(self, figures: Figures) -> Plan {
        Plan { figures, ..self }
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
    /// Departments' reports stored since they were last forwarded: (department id, period).
    departments: Mutex<BTreeSet<(String, Period)>>,
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

    /// Marks a department's report of `period` as stored (nothing unless the hub forwards).
    pub fn mark_department(&self, department: &str, period: Period) {
        if self.plan.get().is_none() {
            return;
        }
        let new = self
            .departments
            .lock()
            .expect("not poisoned")
            .insert((department.to_owned(), period));
        if new {
            self.notify.notify_one();
        }
    }

    /// Marks the record an approval (审核通过) of `area`'s report changes, when forwarding
    /// approved figures only (nothing else changes then).
    pub fn mark_approved(&self, area: AreaCode, period: Period) {
        let Some(plan) = self.plan.get().filter(|p| p.figures == Figures::Approved) else {
            return;
        };
        if let Some(k) = plan.key(area)
            && self.keys.lock().expect("not poisoned").insert((k, period))
        {
            self.notify.notify_one();
        }
    }

    /// Marks every record of `period` (a lock or unlock changed what is final), when forwarding.
    pub fn mark_period(&self, period: Period, areas: &Areas) {
        let Some(plan) = self.plan.get() else { return };
        let mut keys = self.keys.lock().expect("not poisoned");
        for k in plan.keys(areas) {
            keys.insert((k, period));
        }
        self.notify.notify_one();
    }

    fn take(&self) -> Vec<(AreaCode, Period)> {
        std::mem::take(&mut *self.keys.lock().expect("not poisoned"))
            .into_iter()
            .collect()
    }

    fn take_departments(&self) -> Vec<(String, Period)> {
        std::mem::take(&mut *self.departments.lock().expect("not poisoned"))
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

/// The running forwarder. It stops when the shutdown token given to [`start`] is cancelled
/// ([`Forwarder::stopped`] waits for that), or at the latest when dropped; everything it wrote
/// stays in its outbox.
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

    /// Waits until its tasks have stopped (once the shutdown token was cancelled).
    pub async fn stopped(mut self) {
        for t in std::mem::take(&mut self.tasks) {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "a forwarding task failed");
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What forwarding reads: the rollups, the registry, the records commits mark, and the locks
/// (锁定) that travel with the rollups.
#[derive(Debug, Clone)]
pub struct Sources {
    pub engine: Arc<Engine>,
    pub areas: Arc<Areas>,
    pub dirty: Arc<Dirty>,
    pub store: Arc<Store>,
    pub catalogue: Arc<Catalogue>,
    pub clock: Clock,
}

impl Sources {
    /// The lock that makes `key`'s period final at this hub, as its forwarded record carries
    /// it: on the form the key's level reports for such periods (else the first form of them).
    fn lock_of(&self, key: AreaCode, period: Period) -> Option<RollupLock> {
        let c = &self.catalogue;
        let form = c.form_for(key.level(), period.kind()).or_else(|| {
            c.forms()
                .iter()
                .find(|f| f.period == period.kind() && !f.levels.is_empty())
        })?;
        let r = self
            .store
            .final_lock(&form.id, period, key, self.clock.now_ms())?;
        Some(RollupLock {
            form: form.id.clone(),
            by: r.by,
            at_ms: r.at_ms,
            reason: r.reason,
        })
    }
}

/// Recomputes `keys` and writes the changed records to the outbox. Returns how many were
/// written.
fn forward_keys(
    sources: &Sources,
    plan: &Plan,
    records: &mut Records,
    keys: &[(AreaCode, Period)],
) -> anyhow::Result<usize> {
    let engine = &sources.engine;
    let mut written = 0;
    for chunk in keys.chunks(CHUNK) {
        let mut next = Vec::new();
        for &(area, period) in chunk {
            let scope = plan.scope(area);
            let rollup = match engine.forward_rollup(area, period, scope, plan.figures) {
                Ok(Some(mut r)) => {
                    // 锁定 travels with the record: the area's subtree is final here
                    r.rollup.lock = sources.lock_of(area, period);
                    Some(r)
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(%area, %period, error = %e, "cannot forward this rollup");
                    continue;
                }
            };
            let (a, p) = (area.to_string(), period.to_string());
            let last = records.last(&a, &p)?;
            let mut report = match rollup {
                Some(r) => pb::Report {
                    area: a.clone(),
                    period: p.clone(),
                    values: r.values.iter().map(Into::into).collect(),
                    zero_report: r.zero_report,
                    rollup: Some((&r.rollup).into()),
                    ..Default::default()
                },
                // nothing forwarded before, nothing to say
                None if last.generation == 0 => continue,
                // everything under it was withdrawn: an empty rollup replaces the last one
                None => pb::Report {
                    area: a.clone(),
                    period: p.clone(),
                    rollup: Some(pb::Rollup::from(&Rollup {
                        scope,
                        own_reported: false,
                        own_on_time: false,
                        own_first_received_at_ms: 0,
                        cells: Vec::new(),
                        reporters: Vec::new(),
                        lock: None,
                    })),
                    ..Default::default()
                },
            };
            let digest = Sha256::digest(report.encode_to_vec()).to_vec();
            if last.digest.as_deref() == Some(digest.as_slice()) {
                continue;
            }
            let generation = last.generation + 1;
            report.submission_id = format!("fwd-{}-{a}-{p}-{generation}", records.instance());
            report.reporter = format!("pingan-hub {}", plan.root);
            next.push(NextRecord {
                report,
                generation,
                digest,
            });
        }
        if next.is_empty() {
            continue;
        }
        records.write(&next)?;
        written += next.len();
    }
    Ok(written)
}

/// Writes the departments' current reports of `keys` that changed since last forwarded (those
/// of departments within the root). Returns how many were written.
fn forward_departments(
    engine: &Engine,
    plan: &Plan,
    records: &mut Records,
    keys: &[(String, Period)],
) -> anyhow::Result<usize> {
    let list = engine.department_list();
    let mut next = Vec::new();
    for (id, period) in keys {
        let Some(d) = list.get(id).filter(|d| d.area.is_within(plan.root)) else {
            continue;
        };
        let current = match engine.department_current(id, *period) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(department = %id, %period, error = %e, "cannot forward this department's report");
                continue;
            }
        };
        let p = period.to_string();
        let last = records.last(id, &p)?;
        let mut report = pb::Report {
            area: d.area.to_string(),
            department: id.clone(),
            period: p.clone(),
            values: current.values.iter().map(Into::into).collect(),
            zero_report: current.zero_report,
            notes: current.notes,
            ..Default::default()
        };
        let digest = Sha256::digest(report.encode_to_vec()).to_vec();
        if last.digest.as_deref() == Some(digest.as_slice()) {
            continue;
        }
        let generation = last.generation + 1;
        report.submission_id = format!("fwd-{}-{id}-{p}-{generation}", records.instance());
        report.reporter = current.reporter;
        next.push(NextRecord {
            report,
            generation,
            digest,
        });
    }
    if !next.is_empty() {
        records.write(&next)?;
    }
    Ok(next.len())
}

/// Every record of every period held.
fn sweep_keys(sources: &Sources, plan: &Plan) -> Vec<(AreaCode, Period)> {
    let keys = plan.keys(&sources.areas);
    let periods = sources.engine.periods();
    let mut out = Vec::with_capacity(keys.len() * periods.len());
    for p in &periods {
        for k in &keys {
            out.push((*k, *p));
        }
    }
    out
}

/// Starts forwarding: marks changes from now on, sweeps everything once, and delivers, until
/// `shutdown` is cancelled.
///
/// Forwarding happens while `lease` is held: with several hub processes on one store, in one of
/// them at a time (the one that takes it over sweeps everything first).
pub fn start(
    sources: Sources,
    cfg: ForwardConfig,
    lease: Lease,
    shutdown: CancellationToken,
) -> anyhow::Result<Forwarder> {
    sources
        .dirty
        .plan
        .set(cfg.plan)
        .map_err(|_| anyhow::anyhow!("this hub already forwards"))?;
    let open = || {
        Outbox::open(&cfg.dir)
            .with_context(|| format!("opening the forwarding outbox in {}", cfg.dir.display()))
    };
    let records = Arc::new(Mutex::new(Records::open(open()?)?));
    let delivery_outbox = open()?;
    let send_now = Arc::new(Notify::new());
    tracing::info!(parent = %cfg.parent, root = %cfg.plan.root, depth = %cfg.plan.depth, "forwarding rollups to the parent hub");
    let compute = tokio::spawn(compute_loop(
        sources,
        cfg.plan,
        records,
        send_now.clone(),
        cfg.sweep_every,
        lease.clone(),
        shutdown.clone(),
    ));
    let dir = cfg.dir.clone();
    let deliver = tokio::spawn(deliver_loop(
        delivery_outbox,
        cfg,
        send_now,
        lease,
        shutdown,
    ));
    Ok(Forwarder {
        tasks: vec![compute, deliver],
        dir,
    })
}

/// Writes changed records to the outbox while the lease is held: everything when it is taken
/// and every `sweep_every`, the marked ones as they come (debounced); wakes the delivery after
/// each write.
async fn compute_loop(
    sources: Sources,
    plan: Plan,
    records: Arc<Mutex<Records>>,
    send_now: Arc<Notify>,
    sweep_every: Duration,
    lease: Lease,
    shutdown: CancellationToken,
) {
    type Keys = (Vec<(AreaCode, Period)>, Vec<(String, Period)>);
    let run = |keys: Option<Keys>| {
        let (sources, records) = (sources.clone(), records.clone());
        tokio::task::spawn_blocking(move || {
            let (keys, departments) = match keys {
                Some(k) => k,
                None => (
                    sweep_keys(&sources, &plan),
                    sources.engine.department_keys()?,
                ),
            };
            let mut records = records.lock().expect("not poisoned");
            Ok(forward_keys(&sources, &plan, &mut records, &keys)?
                + forward_departments(&sources.engine, &plan, &mut records, &departments)?)
        })
    };
    let report =
        |what: &str, done: Result<anyhow::Result<usize>, tokio::task::JoinError>| match done {
            Ok(Ok(n)) => tracing::debug!(written = n, "{what} done"),
            Ok(Err(e)) => tracing::error!(error = %e, "{what} failed"),
            Err(e) => tracing::error!(error = %e, "{what} panicked"),
        };
    while let Some(term) = lease.term(&shutdown).await {
        'held: while !term.is_cancelled() {
            report("forwarding sweep", run(None).await);
            send_now.notify_one();
            let next_sweep = tokio::time::Instant::now() + sweep_every;
            loop {
                tokio::select! {
                    () = sources.dirty.notify.notified() => {}
                    () = tokio::time::sleep_until(next_sweep) => break,
                    () = term.cancelled() => break 'held,
                }
                tokio::time::sleep(DEBOUNCE).await;
                let keys = (sources.dirty.take(), sources.dirty.take_departments());
                report(
                    "queueing changed rollups for the parent",
                    run(Some(keys)).await,
                );
                send_now.notify_one();
            }
        }
    }
}

/// Delivers the outbox to the parent while the lease is held, until `shutdown` is cancelled.
async fn deliver_loop(
    mut outbox: Outbox,
    cfg: ForwardConfig,
    send_now: Arc<Notify>,
    lease: Lease,
    shutdown: CancellationToken,
) {
    let mut deliverer = Deliverer::new(cfg.parent.clone(), cfg.timeout).with_tls(cfg.tls);
    deliverer.backoff = Backoff::new(
        Duration::from_millis(200).min(cfg.max_backoff),
        cfg.max_backoff,
    );
    while let Some(term) = lease.term(&shutdown).await {
        while !term.is_cancelled() {
            let run = deliverer.run(&mut outbox, Some(&send_now), cfg.sweep_every, &term);
            if let Err(e) = run.await {
                tracing::error!(error = %e, "forwarding outbox");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    () = term.cancelled() => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pingan_domain::fixtures;

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
