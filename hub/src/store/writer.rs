//! The writer thread: concurrent submissions committed together (group commit), each group
//! handed to the commit hook before any of its receipts is sent.

use std::collections::HashMap;

use pingan_domain::{Receipt, ValidReport};
use tokio::sync::{mpsc, oneshot};

use super::{
    CommitHook, Committed, MAX_REVISIONS, Prior, StoreError,
    compact::{self, Names, ValueKeys},
    db::{Db, DbError, args},
    locks::Locks,
};

/// What the writer does with a group once committed, before its receipts are sent.
pub(super) enum AfterCommit {
    Nothing,
    /// Hands the group to the hook (one process owns the store: SQLite).
    Hook(CommitHook),
    /// Catches up with the store's commits in order, this group's among them (PostgreSQL,
    /// where other processes commit too).
    Follow(std::sync::Arc<super::follow::Follower>),
}

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
    mut conn: Db,
    at: &super::StoreAt,
    mut rx: mpsc::Receiver<Job>,
    after: AfterCommit,
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
        let written = write_group(&conn, &group, &mut numbered, &held);
        drop(held);
        match written {
            Ok((results, committed)) => {
                match &after {
                    AfterCommit::Hook(hook) => hook(&committed),
                    AfterCommit::Follow(follower) => {
                        if let Err(e) = follower.catch_up(&conn) {
                            tracing::error!(error = %e, "rolling up what was just committed failed; the follower catches up");
                        }
                    }
                    AfterCommit::Nothing => {}
                }
                for (job, result) in group.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, reports = group.len(), "group commit failed, nothing of it stored");
                if e.is_connection_lost() {
                    // PostgreSQL went away (restarted, failed over): the senders retry, and
                    // the next group goes on a new connection if one can be had
                    match Db::open(at) {
                        Ok(fresh) => conn = fresh,
                        Err(e) => {
                            tracing::error!(error = %e, "reconnecting to the store failed; trying again with the next group")
                        }
                    }
                }
                // numbers given in the rolled-back transaction are gone with it
                numbered = Numbered::load_or_log(&conn);
                let message = e.to_string();
                for job in group {
                    let err = match &e {
                        StoreError::DiskFull(m) => StoreError::DiskFull(m.clone()),
                        e if e.is_connection_lost() => StoreError::Unavailable(message.clone()),
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

/// The statements a group runs on `{table}` (`revisions`, or the departments' table).
const FIND: &str =
    "SELECT revision, received_at_ms, warnings, zero_report, notes, vals FROM {table}
     WHERE period = ?1 AND area = ?2 AND submission_id = ?3";
const LATEST: &str = "SELECT revision, zero_report, vals, (SELECT received_at_ms FROM {table} WHERE area = ?1 AND period = ?2 AND revision = 1)
     FROM {table} WHERE area = ?1 AND period = ?2 ORDER BY revision DESC LIMIT 1";
const INSERT: &str = "INSERT INTO {table} (area, period, revision, submission_id, received_at_ms, sender, reporter, zero_report, notes, warnings, vals)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// The statements one group runs on one table, their text made once.
struct Statements {
    find: String,
    latest: String,
    insert: String,
}

impl Statements {
    fn on(table: &str) -> Statements {
        Statements {
            find: FIND.replace("{table}", table),
            latest: LATEST.replace("{table}", table),
            insert: INSERT.replace("{table}", table),
        }
    }

    /// The answer to a submission id stored before for the report's (area, period) (a resend
    /// is always of the same area and period): its original receipt, or a refusal when the id
    /// now comes with different content (`vals` the report's values as they would be stored).
    fn earlier(
        &self,
        tx: &Db,
        r: &ValidReport,
        (area, period): (&str, &str),
        vals: &[u8],
    ) -> Result<Option<Result<Receipt, StoreError>>, StoreError> {
        let key = compact::submission_key(&r.submission_id);
        let found = tx.one(
            &self.find,
            args![
                period,
                area,
                compact::submission_arg(tx, &r.submission_id, &key)
            ],
            |row| {
                Ok((
                    row.u32(0)?,
                    row.int(1)?,
                    row.string(2)?,
                    row.flag(3)?,
                    row.string(4)?,
                    row.bytes(5)? == vals,
                ))
            },
        )?;
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
        &self,
        tx: &Db,
        area: &str,
        period: &str,
        keys: &ValueKeys,
    ) -> Result<Option<Latest>, StoreError> {
        let row = tx.one(&self.latest, args![area, period], |row| {
            Ok((
                row.u32(0)?,
                row.flag(1)?,
                row.bytes(2)?.to_vec(),
                row.int(3)?,
            ))
        })?;
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
        &self,
        tx: &Db,
        job: &Job,
        revision: u32,
        vals: Vec<u8>,
        numbered: &mut Numbered,
    ) -> Result<(), StoreError> {
        let r = &job.report;
        let sender = numbered.name(tx, &job.sender)?;
        let reporter = numbered.name(tx, &r.reporter)?;
        let warnings = compact::warnings_text(&r.warnings);
        let key = compact::submission_key(&r.submission_id);
        tx.run(
            &self.insert,
            args![
                &key_of(r),
                &r.period.to_string(),
                revision,
                compact::submission_arg(tx, &r.submission_id, &key),
                job.now_ms,
                sender,
                reporter,
                r.zero_report,
                &r.notes,
                &warnings,
                &vals
            ],
        )?;
        Ok(())
    }
}

/// The stored key of a report's reporter: its area's code, or a department's id.
fn key_of(r: &ValidReport) -> String {
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
    fn load_or_log(conn: &Db) -> Numbered {
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
    fn encode(&mut self, tx: &Db, r: &ValidReport) -> Result<Vec<u8>, StoreError> {
        let shape = self.keys.number_valid(tx, &r.values, &mut self.by_metric)?;
        Ok(compact::encode_valid(r, shape))
    }

    fn name(&mut self, tx: &Db, text: &str) -> Result<i64, StoreError> {
        Ok(self.names.id(tx, text, &mut self.new_names)?)
    }

    /// On PostgreSQL, once this writer holds the writers' lock: loads the pairs and shapes
    /// again when another hub process numbered more since (numbers are given by the one writer
    /// holding the lock, so two processes never give one number twice).
    fn catch_up(&mut self, tx: &Db) -> Result<(), DbError> {
        let numbered = tx.one(
            "SELECT (SELECT COALESCE(MAX(id) + 1, 0) FROM value_keys),
                    (SELECT COALESCE(MAX(id) + 1, 0) FROM value_shapes)",
            &[],
            |r| Ok((r.int(0)? as usize, r.int(1)? as usize)),
        )?;
        if numbered != Some(self.keys.counts()) {
            self.keys = ValueKeys::load(tx)?;
        }
        Ok(())
    }

    /// The open transaction committed: what it numbered is kept.
    fn committed(&mut self) {
        self.names.keep(std::mem::take(&mut self.new_names));
    }
}

fn write_group(
    conn: &Db,
    group: &[Job],
    numbered: &mut Numbered,
    locks: &Locks,
) -> Result<GroupOutcome, StoreError> {
    let outcome = conn.write(|tx| write_jobs(tx, group, numbered, locks))?;
    numbered.committed();
    Ok(outcome)
}

/// The writers' lock on PostgreSQL: one hub process writes at a time (within a process,
/// concurrent submissions still share a transaction), so revision numbers, resends and numbered
/// pairs are decided once, by the database.
const WRITERS_LOCK: &str = "SELECT pg_advisory_xact_lock(7231002)";

fn write_jobs(
    tx: &Db,
    group: &[Job],
    numbered: &mut Numbered,
    locks: &Locks,
) -> Result<GroupOutcome, StoreError> {
    if tx.is_postgres() {
        tx.batch(WRITERS_LOCK)?;
        numbered.catch_up(tx)?;
    }
    let mut results = Vec::with_capacity(group.len());
    let mut committed = Vec::with_capacity(group.len());
    let divisions = Statements::on("revisions");
    let departments = Statements::on(super::schema::DEPARTMENT_REVISIONS);
    let mut added: HashMap<String, i64> = HashMap::new();
    for job in group {
        let r = &job.report;
        let st = if r.department.is_some() {
            &departments
        } else {
            &divisions
        };
        let (area, period) = (key_of(r), r.period.to_string());
        let vals = numbered.encode(tx, r)?;
        if let Some(answer) = st.earlier(tx, r, (&area, &period), &vals)? {
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
        let latest = st.latest(tx, &area, &period, &numbered.keys)?;
        let revision = latest.as_ref().map_or(1, |l| l.revision + 1);
        if revision > MAX_REVISIONS {
            results.push(Err(StoreError::TooManyRevisions { area, period }));
            continue;
        }
        st.insert(tx, job, revision, vals, numbered)?;
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
    count_revisions(tx, added)?;
    Ok((results, committed))
}

/// Adds a group's new revisions to each period's count.
fn count_revisions(tx: &Db, added: HashMap<String, i64>) -> Result<(), StoreError> {
    for (period, n) in added {
        tx.run(
            "INSERT INTO period_revisions (period, revisions) VALUES (?1, ?2)
             ON CONFLICT (period) DO UPDATE SET revisions = period_revisions.revisions + excluded.revisions",
            args![&period, n],
        )?;
    }
    Ok(())
}
