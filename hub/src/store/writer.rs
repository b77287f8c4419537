//! The writer thread: concurrent submissions committed together (group commit), each group
//! handed to the commit hook before any of its receipts is sent.

use std::collections::{HashMap, HashSet};

use pingan_domain::{Receipt, ValidReport, pb};
use prost::Message as _;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    CommitHook, Committed, MAX_REVISIONS, Prior, StoreError, locks::Locks, reader::decode_values,
};

/// Most submissions committed in one transaction.
pub(super) const MAX_GROUP: usize = 2048;

pub(super) struct Job {
    pub(super) report: ValidReport,
    pub(super) sender: String,
    pub(super) now_ms: i64,
    pub(super) reply: oneshot::Sender<Result<Receipt, StoreError>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("submission_id", &self.report.submission_id)
            .finish()
    }
}

pub(super) fn run_writer(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    hook: Option<CommitHook>,
    locks: std::sync::Arc<std::sync::Mutex<Locks>>,
) {
    // the (metric, part) pairs recorded in catalogue_use: only new ones are written
    let mut used = match load_used(&conn) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "reading catalogue_use failed; every pair is written again");
            HashSet::new()
        }
    };
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // the locks are held while the group is written: a lock is set before it or after it
        let held = locks.lock().expect("not poisoned");
        let written = write_group(&mut conn, &group, &mut used, &held);
        drop(held);
        match written {
            Ok((results, committed)) => {
                if let Some(hook) = &hook {
                    hook(&committed);
                }
                for (job, result) in group.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, reports = group.len(), "group commit failed, nothing of it stored");
                let message = e.to_string();
                for job in group {
                    let err = match &e {
                        StoreError::DiskFull(m) => StoreError::DiskFull(m.clone()),
                        _ => StoreError::Corrupt {
                            area: job.report.area.to_string(),
                            period: job.report.period.to_string(),
                            reason: format!("not stored: {message}"),
                        },
                    };
                    let _ = job.reply.send(Err(err));
                }
            }
        }
    }
}

/// Writes a group in one transaction. The outer error fails the whole group (nothing of it is
/// stored); inner errors concern one submission only.
type GroupOutcome = (Vec<Result<Receipt, StoreError>>, Vec<Committed>);

/// The current revision of an (area, period) before a new one is written.
struct Latest {
    revision: u32,
    first_received_at_ms: i64,
    prior: Prior,
}

/// The statements one group runs, prepared once per transaction.
struct Statements<'t> {
    find: rusqlite::CachedStatement<'t>,
    latest: rusqlite::CachedStatement<'t>,
    insert: rusqlite::CachedStatement<'t>,
}

impl<'t> Statements<'t> {
    /// The statements on `table` (`revisions`, or the departments' table).
    fn prepare(
        tx: &'t rusqlite::Transaction<'_>,
        table: &str,
    ) -> Result<Statements<'t>, StoreError> {
        let prepare = |sql: String| {
            tx.prepare_cached(&sql.replace("{table}", table))
                .map_err(StoreError::from_sqlite)
        };
        Ok(Statements {
            find: prepare(
                "SELECT revision, digest, received_at_ms, warnings FROM {table} WHERE submission_id = ?1".into(),
            )?,
            latest: prepare(
                "SELECT revision, zero_report, vals, (SELECT received_at_ms FROM {table} WHERE area = ?1 AND period = ?2 AND revision = 1)
                 FROM {table} WHERE area = ?1 AND period = ?2 ORDER BY revision DESC LIMIT 1".into(),
            )?,
            insert: prepare(
                "INSERT INTO {table} (area, period, revision, submission_id, digest, received_at_ms, sender, reporter, zero_report, notes, warnings, vals)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)".into(),
            )?,
        })
    }

    /// The answer to a submission id stored before: its original receipt, or a refusal when the
    /// id now comes with different content.
    fn earlier(
        &mut self,
        r: &ValidReport,
        digest: &[u8],
    ) -> Result<Option<Result<Receipt, StoreError>>, StoreError> {
        let found = self
            .find
            .query_row([&r.submission_id], |row| {
                Ok((
                    row.get::<_, u32>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .optional()
            .map_err(StoreError::from_sqlite)?;
        let Some((revision, stored_digest, received_at_ms, warnings)) = found else {
            return Ok(None);
        };
        if stored_digest != digest {
            return Ok(Some(Err(StoreError::IdReused(r.submission_id.clone()))));
        }
        // the same digest: the same area, period and content as the report stored before
        Ok(Some(Ok(Receipt {
            submission_id: r.submission_id.clone(),
            area: r.area,
            period: r.period,
            revision,
            accepted_at_ms: received_at_ms,
            warnings: serde_json::from_str(&warnings).unwrap_or_default(),
            duplicate: true,
            department: r.department.clone(),
        })))
    }

    /// The current revision of (area, period), decoded, if there is one.
    fn latest(&mut self, area: &str, period: &str) -> Result<Option<Latest>, StoreError> {
        let row = self
            .latest
            .query_row([area, period], |row| {
                Ok((
                    row.get::<_, u32>(0)?,
                    row.get::<_, bool>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })
            .optional()
            .map_err(StoreError::from_sqlite)?;
        let Some((revision, zero_report, vals, first_received_at_ms)) = row else {
            return Ok(None);
        };
        let stored = decode_values(&vals).map_err(|e| StoreError::Corrupt {
            area: area.to_owned(),
            period: period.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Some(Latest {
            revision,
            first_received_at_ms,
            prior: Prior {
                zero_report,
                values: stored.values.into_iter().map(Into::into).collect(),
                rollup: stored.rollup.map(Into::into),
            },
        }))
    }

    /// Inserts `job`'s report as `revision` of its (area, period).
    fn insert(&mut self, job: &Job, revision: u32, digest: &[u8]) -> Result<(), StoreError> {
        let r = &job.report;
        let vals = pb::StoredValues {
            values: r.wire_values(),
            rollup: r.rollup.as_ref().map(Into::into),
        }
        .encode_to_vec();
        let warnings = serde_json::to_string(&r.warnings).expect("strings serialise");
        self.insert
            .execute(params![
                key(r),
                r.period.to_string(),
                revision,
                r.submission_id,
                digest,
                job.now_ms,
                job.sender,
                r.reporter,
                r.zero_report,
                r.notes,
                warnings,
                vals
            ])
            .map_err(StoreError::from_sqlite)?;
        Ok(())
    }
}

/// The stored key of a report's reporter: its area's code, or a department's id.
fn key(r: &ValidReport) -> String {
    r.department.clone().unwrap_or_else(|| r.area.to_string())
}

/// The pairs `catalogue_use` holds.
fn load_used(conn: &Connection) -> rusqlite::Result<HashSet<(String, String)>> {
    let mut st = conn.prepare("SELECT metric, part FROM catalogue_use")?;
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
}

/// Records the (metric, part) pairs of a group's reports that `used` does not hold yet.
fn record_use(
    tx: &rusqlite::Transaction<'_>,
    group: &[Job],
    used: &mut HashSet<(String, String)>,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut new = Vec::new();
    for job in group {
        for v in &job.report.values {
            let m = v.metric.as_str();
            for key in std::iter::once("").chain(v.parts.keys().map(String::as_str)) {
                let pair = (m.to_owned(), key.to_owned());
                if !used.contains(&pair) && !new.contains(&pair) {
                    new.push(pair);
                }
            }
        }
    }
    if !new.is_empty() {
        let mut insert = tx
            .prepare_cached("INSERT OR IGNORE INTO catalogue_use (metric, part) VALUES (?1, ?2)")
            .map_err(StoreError::from_sqlite)?;
        for (m, p) in &new {
            insert.execute([m, p]).map_err(StoreError::from_sqlite)?;
        }
    }
    Ok(new)
}

fn write_group(
    conn: &mut Connection,
    group: &[Job],
    used: &mut HashSet<(String, String)>,
    locks: &Locks,
) -> Result<GroupOutcome, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::from_sqlite)?;
    let mut results = Vec::with_capacity(group.len());
    let mut committed = Vec::with_capacity(group.len());
    {
        let mut divisions = Statements::prepare(&tx, "revisions")?;
        let mut departments = Statements::prepare(&tx, super::schema::DEPARTMENT_REVISIONS)?;
        let mut added: HashMap<String, i64> = HashMap::new();
        for job in group {
            let r = &job.report;
            let st = if r.department.is_some() {
                &mut departments
            } else {
                &mut divisions
            };
            let digest = r.digest();
            if let Some(answer) = st.earlier(r, &digest[..])? {
                results.push(answer);
                continue;
            }
            let (area, period) = (key(r), r.period.to_string());
            // a closed period takes nothing more (a child hub's rollup: its own locks decide)
            if r.rollup.is_none()
                && let Some(lock) = locks.check(&r.form, r.period, r.area, job.now_ms)
            {
                results.push(Err(StoreError::Locked {
                    area,
                    lock: Box::new(lock),
                }));
                continue;
            }
            let latest = st.latest(&area, &period)?;
            let revision = latest.as_ref().map_or(1, |l| l.revision + 1);
            if revision > MAX_REVISIONS {
                results.push(Err(StoreError::TooManyRevisions { area, period }));
                continue;
            }
            st.insert(job, revision, &digest[..])?;
            let receipt = Receipt {
                submission_id: r.submission_id.clone(),
                area: r.area,
                period: r.period,
                revision,
                accepted_at_ms: job.now_ms,
                warnings: r.warnings.clone(),
                duplicate: false,
                department: r.department.clone(),
            };
            if r.department.is_some() {
                // a department's report is no division's: the rollups never see it
                results.push(Ok(receipt));
                continue;
            }
            *added.entry(period.clone()).or_default() += 1;
            committed.push(Committed {
                area: r.area,
                period: r.period,
                revision,
                received_at_ms: job.now_ms,
                first_received_at_ms: latest
                    .as_ref()
                    .map_or(job.now_ms, |l| l.first_received_at_ms),
                zero_report: r.zero_report,
                values: r.values_as_given(),
                rollup: r.rollup.clone(),
                previous: latest.map(|l| l.prior),
            });
            results.push(Ok(receipt));
        }
        count_revisions(&tx, added)?;
    }
    // refused and duplicate submissions are recorded too: harmless, and rare
    let new = record_use(&tx, group, used)?;
    tx.commit().map_err(StoreError::from_sqlite)?;
    used.extend(new);
    Ok((results, committed))
}

/// Adds a group's new revisions to each period's count.
fn count_revisions(
    tx: &rusqlite::Transaction<'_>,
    added: HashMap<String, i64>,
) -> Result<(), StoreError> {
    let mut count = tx
        .prepare_cached(
            "INSERT INTO period_revisions (period, revisions) VALUES (?1, ?2)
             ON CONFLICT (period) DO UPDATE SET revisions = revisions + excluded.revisions",
        )
        .map_err(StoreError::from_sqlite)?;
    for (period, n) in added {
        count
            .execute(params![period, n])
            .map_err(StoreError::from_sqlite)?;
    }
    Ok(())
}
