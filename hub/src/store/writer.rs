//! The writer thread: concurrent submissions committed together (group commit), each group
//! handed to the commit hook before any of its receipts is sent.

use std::collections::HashMap;

use pingan_domain::{Receipt, ValidReport};
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    CommitHook, Committed, MAX_REVISIONS, Prior, StoreError,
    compact::{self, Names, ValueKeys},
    locks::Locks,
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
    // the numbered (metric, part) pairs and names: only new ones are written
    let mut numbered = Numbered::load_or_log(&conn);
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
        let written = write_group(&mut conn, &group, &mut numbered, &held);
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
                // numbers given in the rolled-back transaction are gone with it
                numbered = Numbered::load_or_log(&conn);
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
                "SELECT revision, received_at_ms, warnings, zero_report, notes, vals FROM {table}
                 WHERE period = ?1 AND area = ?2 AND submission_id = ?3".into(),
            )?,
            latest: prepare(
                "SELECT revision, zero_report, vals, (SELECT received_at_ms FROM {table} WHERE area = ?1 AND period = ?2 AND revision = 1)
                 FROM {table} WHERE area = ?1 AND period = ?2 ORDER BY revision DESC LIMIT 1".into(),
            )?,
            insert: prepare(
                "INSERT INTO {table} (area, period, revision, submission_id, received_at_ms, sender, reporter, zero_report, notes, warnings, vals)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)".into(),
            )?,
        })
    }

    /// The answer to a submission id stored before for the report's (area, period) (a resend
    /// is always of the same area and period): its original receipt, or a refusal when the id
    /// now comes with different content (`vals` the report's values as they would be stored).
    fn earlier(
        &mut self,
        r: &ValidReport,
        (area, period): (&str, &str),
        vals: &[u8],
    ) -> Result<Option<Result<Receipt, StoreError>>, StoreError> {
        let found = self
            .find
            .query_row(
                params![period, area, compact::submission_key(&r.submission_id)],
                |row| {
                    Ok((
                        row.get::<_, u32>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, bool>(3)?,
                        row.get::<_, String>(4)?,
                        row.get_ref(5)?.as_blob()? == vals,
                    ))
                },
            )
            .optional()
            .map_err(StoreError::from_sqlite)?;
        let Some((revision, received_at_ms, warnings, zero_report, notes, same_values)) = found
        else {
            return Ok(None);
        };
        if !(same_values && zero_report == r.zero_report && notes == r.notes) {
            return Ok(Some(Err(StoreError::IdReused(r.submission_id.clone()))));
        }
        // the same area, period and content as the report stored before
        Ok(Some(Ok(Receipt {
            submission_id: r.submission_id.clone(),
            area: r.area,
            period: r.period,
            revision,
            accepted_at_ms: received_at_ms,
            warnings: compact::warnings_read(&warnings),
            duplicate: true,
            department: r.department.clone(),
        })))
    }

    /// The current revision of (area, period), decoded, if there is one.
    fn latest(
        &mut self,
        area: &str,
        period: &str,
        keys: &ValueKeys,
    ) -> Result<Option<Latest>, StoreError> {
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
        let stored = compact::decode(&vals, keys).map_err(|e| StoreError::Corrupt {
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

    /// Inserts `job`'s report as `revision` of its (area, period), its values encoded (`vals`).
    fn insert(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        job: &Job,
        revision: u32,
        vals: Vec<u8>,
        numbered: &mut Numbered,
    ) -> Result<(), StoreError> {
        let r = &job.report;
        let sender = numbered.name(tx, &job.sender)?;
        let reporter = numbered.name(tx, &r.reporter)?;
        let warnings = compact::warnings_text(&r.warnings);
        self.insert
            .execute(params![
                key(r),
                r.period.to_string(),
                revision,
                compact::submission_key(&r.submission_id),
                job.now_ms,
                sender,
                reporter,
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

/// What the writer has numbered: (metric, part) pairs and names. The names the open
/// transaction numbered are kept once it commits ([`Numbered::committed`]); after a group that
/// failed, everything is loaded again ([`Numbered::load_or_log`]).
#[derive(Debug, Default)]
struct Numbered {
    keys: ValueKeys,
    /// The total pair's number of each catalogue metric seen, by its interned id's address.
    by_metric: HashMap<usize, (pingan_domain::MetricId, u32)>,
    names: Names,
    new_names: HashMap<String, i64>,
}

impl Numbered {
    fn load_or_log(conn: &Connection) -> Numbered {
        match ValueKeys::load(conn) {
            Ok(keys) => Numbered {
                keys,
                ..Numbered::default()
            },
            Err(e) => {
                // the first group's numbering fails on a taken number, and loads again
                tracing::error!(error = %e, "reading value_keys failed");
                Numbered::default()
            }
        }
    }

    /// A report's values as stored: their pairs and shape numbered, then encoded.
    fn encode(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        r: &ValidReport,
    ) -> Result<Vec<u8>, StoreError> {
        let shape = self
            .keys
            .number_valid(tx, &r.values, &mut self.by_metric)
            .map_err(StoreError::from_sqlite)?;
        Ok(compact::encode_valid(r, shape))
    }

    fn name(&mut self, tx: &rusqlite::Transaction<'_>, text: &str) -> Result<i64, StoreError> {
        self.names
            .id(tx, text, &mut self.new_names)
            .map_err(StoreError::from_sqlite)
    }

    /// The open transaction committed: what it numbered is kept.
    fn committed(&mut self) {
        self.names.keep(std::mem::take(&mut self.new_names));
    }
}

fn write_group(
    conn: &mut Connection,
    group: &[Job],
    numbered: &mut Numbered,
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
            let (area, period) = (key(r), r.period.to_string());
            let vals = numbered.encode(&tx, r)?;
            if let Some(answer) = st.earlier(r, (&area, &period), &vals)? {
                results.push(answer);
                continue;
            }
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
            let latest = st.latest(&area, &period, &numbered.keys)?;
            let revision = latest.as_ref().map_or(1, |l| l.revision + 1);
            if revision > MAX_REVISIONS {
                results.push(Err(StoreError::TooManyRevisions { area, period }));
                continue;
            }
            st.insert(&tx, job, revision, vals, numbered)?;
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
    tx.commit().map_err(StoreError::from_sqlite)?;
    numbered.committed();
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
