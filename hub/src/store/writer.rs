//! The writer thread: concurrent submissions committed together (group commit), each group
//! handed to the commit hook before any of its receipts is sent.

use std::time::{Duration, Instant};

use pingan_domain::{Receipt, ValidReport};
use tokio::sync::{mpsc, oneshot};

use super::{
    CommitHook, Committed, MAX_REVISIONS, Prior, Sent, StoreError,
    compact::{self, FastMap, Names, ValueKeys},
    db::{Arg, Db, DbError, Row, args},
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
    /// Alone (unary `Submit`) or as one of many.
    pub(super) sent: Sent,
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

/// After a group holding at least this many reports sent one by one, the writer gathers the
/// next ([`gather`]).
const GATHER_WHEN: usize = 16;

/// How the writer gathers a group under load ([`gather`]).
#[derive(Debug, Clone, Copy)]
struct Gathering {
    /// The longest it waits for more reports before a commit, ...
    within: Duration,
    /// ... looking again this often, ...
    step: Duration,
    /// ... until this many looks in a row found nothing new (nobody else is sending) ...
    quiet: usize,
    /// ... or the group holds this many.
    enough: usize,
}

const GATHERING: Gathering = Gathering {
    within: Duration::from_millis(10),
    step: Duration::from_micros(200),
    quiet: 3,
    enough: 512,
};

/// The group that starts with `first`: what is queued behind it; and when `gathering` (many
/// offices sending one report each at once), what more comes while reports keep coming. A
/// commit's cost is mostly its own, not its reports': SQLite writes every page a commit
/// touched to the WAL again, about a page for each report of a small group spread over the
/// areas, and syncs it; fewer, larger commits under load share it. A batch's reports come
/// together already; a lone report, or a sender whose every report is in the group, waits at
/// most `quiet` × `step`. Measured on 2 cores (`pingan-bench ingest --limit 100000`, unary then
/// `SubmitBatch`, 31 × 32 in flight): 3,400–4,100 fsyncs a run → 450–630, about a tenth more
/// unary reports a second, and (gathering the whole 10 ms, without the quiet rule) the disk's
/// writes during the unary pass ~50 → ~25 MB/s.
fn gather(first: Job, rx: &mut mpsc::Receiver<Job>, gathering: Option<&Gathering>) -> Vec<Job> {
    let mut group = Vec::with_capacity(1 + rx.len());
    group.push(first);
    let take_queued = |group: &mut Vec<Job>, rx: &mut mpsc::Receiver<Job>| {
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
    };
    take_queued(&mut group, rx);
    let Some(g) = gathering else {
        return group;
    };
    // room for the group gathered: a job is a few hundred bytes, moved each time the list grows
    group.reserve(g.enough.saturating_sub(group.len()));
    let until = Instant::now() + g.within;
    let mut quiet = 0;
    while group.len() < g.enough && quiet < g.quiet && Instant::now() < until {
        std::thread::sleep(g.step);
        let before = group.len();
        take_queued(&mut group, rx);
        quiet = if group.len() == before { quiet + 1 } else { 0 };
    }
    group
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
    // what each group committed is made only for someone to take (an import has no rollups)
    let keep = !matches!(after, AfterCommit::Nothing);
    // how many of the last group were sent one by one: under their load, the writer gathers
    let mut one_by_one = 0;
    while let Some(first) = rx.blocking_recv() {
        let group = gather(
            first,
            &mut rx,
            (one_by_one >= GATHER_WHEN).then_some(&GATHERING),
        );
        one_by_one = group.iter().filter(|j| j.sent == Sent::Alone).count();
        // the locks are held while the group is written: a lock is set before it or after it
        let held = locks.lock().expect("not poisoned");
        let written = write_group(&conn, &group, &mut numbered, &held, keep);
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

/// The statements a group runs on `{table}` (`revisions`, or the departments' table).
///
/// `READ` gives every revision of the (area, period) (at most `MAX_REVISIONS`, mostly none or
/// one), from which both what a resent submission id was stored as and the latest revision are
/// picked as they are read ([`Stored::fold`]): one walk of the key's range instead of one for
/// each. Not `ORDER BY revision DESC LIMIT 1` (or `max(revision)`): SQLite 3.54 re-prepares
/// such a statement at every new binding, an eighth of a unary Submit's CPU (test
/// `the_writers_statements_are_prepared_once`).
const READ: &str =
    "SELECT revision, received_at_ms, submission_id, warnings, zero_report, notes, vals
     FROM {table} WHERE period = ?1 AND area = ?2";
const INSERT: &str = "INSERT INTO {table} (area, period, revision, submission_id, received_at_ms, sender, reporter, zero_report, notes, warnings, vals)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// The statements one group runs on one table, their text made once.
struct Statements {
    read: String,
    insert: String,
}

impl Statements {
    fn on(table: &str) -> Statements {
        Statements {
            read: READ.replace("{table}", table),
            insert: INSERT.replace("{table}", table),
        }
    }

    /// What the store holds for `r`'s (area, period), read now (`key`: its submission id's).
    fn stored(
        &self,
        tx: &Db,
        (area, period): (&str, &str),
        r: &ValidReport,
        key: &rusqlite::types::Value,
    ) -> Result<Stored, StoreError> {
        let mut stored = Stored::default();
        tx.each(&self.read, args![period, area], |row| {
            stored.fold(row, &r.submission_id, key)
        })?;
        Ok(stored)
    }

    /// `job`'s report as `revision` of its (area, period), its values encoded (`vals`): the
    /// insert's arguments (written by [`Pending::flush`]).
    fn insert_args<'a>(
        tx: &Db,
        p: &'a PendingInsert,
        job: &'a Job,
        (area, period): &'a (String, String),
        key: &'a rusqlite::types::Value,
    ) -> Vec<Arg<'a>> {
        let r = &job.report;
        args![
            area,
            period,
            p.revision,
            compact::submission_arg(tx, &r.submission_id, key),
            job.now_ms,
            p.sender,
            p.reporter,
            r.zero_report,
            &r.notes,
            &p.warnings,
            &p.vals
        ]
        .to_vec()
    }
}

/// What the store holds for a report's (area, period): the revision stored before under the
/// report's submission id, if any, and the latest revision.
#[derive(Default)]
struct Stored {
    found: Option<FoundRow>,
    latest: Option<LatestRow>,
}

impl Stored {
    /// One stored revision of the (area, period), read by `READ` in any order.
    fn fold(
        &mut self,
        row: &Row<'_>,
        submission_id: &str,
        key: &rusqlite::types::Value,
    ) -> Result<(), DbError> {
        if self.found.is_none() && row.is_submission(2, submission_id, key)? {
            self.found = Some(FoundRow {
                revision: row.u32(0)?,
                received_at_ms: row.int(1)?,
                warnings: row.string(3)?,
                zero_report: row.flag(4)?,
                notes: row.string(5)?,
                vals: row.bytes(6)?.to_vec(),
            });
        }
        LatestRow::fold(&mut self.latest, row)
    }
}

/// A submission as stored before (its id sent again).
struct FoundRow {
    revision: u32,
    received_at_ms: i64,
    warnings: String,
    zero_report: bool,
    notes: String,
    vals: Vec<u8>,
}

/// The answer to a submission id stored before for the report's (area, period) (a resend is
/// always of the same area and period): its original receipt, or a refusal when the id now
/// comes with different content (`vals` the report's values as they would be stored).
fn earlier(
    found: Option<FoundRow>,
    r: &ValidReport,
    vals: &[u8],
) -> Option<Result<Receipt, StoreError>> {
    let found = found?;
    if !(found.vals == vals && found.zero_report == r.zero_report && found.notes == r.notes) {
        return Some(Err(StoreError::IdReused(r.submission_id.clone())));
    }
    // the same area, period and content as the report stored before
    Some(Ok(Receipt {
        submission_id: r.submission_id.clone(),
        area: r.area,
        period: r.period,
        revision: found.revision,
        accepted_at_ms: found.received_at_ms,
        warnings: compact::warnings_read(&found.warnings),
        duplicate: true,
        department: r.department.clone(),
    }))
}

/// The current revision of an (area, period) as stored, not yet decoded.
struct LatestRow {
    revision: u32,
    zero_report: bool,
    vals: Vec<u8>,
    first_received_at_ms: i64,
}

impl LatestRow {
    /// One stored revision of an (area, period), read by `READ` in any order, folded into
    /// the latest so far: the highest revision's figures, revision 1's time of receipt.
    fn fold(latest: &mut Option<LatestRow>, row: &Row<'_>) -> Result<(), DbError> {
        let revision = row.u32(0)?;
        let received_at_ms = row.int(1)?;
        let first = match latest {
            Some(l) if l.revision >= revision => {
                if revision == 1 {
                    l.first_received_at_ms = received_at_ms;
                }
                return Ok(());
            }
            Some(l) if revision != 1 => l.first_received_at_ms,
            _ => received_at_ms,
        };
        *latest = Some(LatestRow {
            revision,
            zero_report: row.flag(4)?,
            vals: row.bytes(6)?.to_vec(),
            first_received_at_ms: first,
        });
        Ok(())
    }

    /// What the revision said, for the rollups that replace it.
    fn decode(self, area: &str, period: &str, keys: &ValueKeys) -> Result<Prior, StoreError> {
        let stored = compact::decode(&self.vals, keys).map_err(|e| StoreError::Corrupt {
            area: area.to_owned(),
            period: period.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Prior {
            zero_report: self.zero_report,
            values: stored.values.into_iter().map(Into::into).collect(),
            rollup: stored.rollup.map(Into::into),
        })
    }
}

/// A revision decided and not yet written: the group's inserts go together (pipelined on
/// PostgreSQL), before anything that must see them is read.
struct PendingInsert {
    /// The job's place in the group, and of its key and submission id's.
    job: usize,
    department: bool,
    revision: u32,
    sender: i64,
    reporter: i64,
    warnings: String,
    vals: Vec<u8>,
}

/// The inserts decided and not yet written.
#[derive(Default)]
struct Pending(Vec<PendingInsert>);

impl Pending {
    /// Writes them, each table's together (`keys` and `sids`: each job's (area, period) and
    /// submission id as stored).
    fn flush(
        &mut self,
        tx: &Db,
        group: &[Job],
        (keys, sids): (&[(String, String)], &[rusqlite::types::Value]),
        divisions: &Statements,
        departments: &Statements,
    ) -> Result<(), StoreError> {
        for (department, st) in [(false, divisions), (true, departments)] {
            let mut rows: Vec<&PendingInsert> = self
                .0
                .iter()
                .filter(|p| p.department == department)
                .collect();
            if rows.is_empty() {
                continue;
            }
            // in key order: the group's reports come in the order their senders' tasks ran
            // (an import's batches interleave), and rows inserted out of order leave the
            // table's pages partly empty (a store a quarter larger)
            rows.sort_by(|a, b| {
                let (ka, kb) = (&keys[a.job], &keys[b.job]);
                (&ka.1, &ka.0, a.revision).cmp(&(&kb.1, &kb.0, b.revision))
            });
            let sets: Vec<Vec<Arg<'_>>> = rows
                .iter()
                .map(|p| Statements::insert_args(tx, p, &group[p.job], &keys[p.job], &sids[p.job]))
                .collect();
            tx.run_each(&st.insert, &sets)?;
        }
        self.0.clear();
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
    by_metric: FastMap<usize, (pingan_domain::MetricId, u32)>,
    names: Names,
    new_names: FastMap<String, i64>,
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

/// Writes a group in one transaction; what it committed is told back when `keep`.
fn write_group(
    conn: &Db,
    group: &[Job],
    numbered: &mut Numbered,
    locks: &Locks,
    keep: bool,
) -> Result<GroupOutcome, StoreError> {
    let outcome = conn.write(|tx| write_jobs(tx, group, numbered, locks, keep))?;
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
    keep: bool,
) -> Result<GroupOutcome, StoreError> {
    if tx.is_postgres() {
        tx.batch(WRITERS_LOCK)?;
        numbered.catch_up(tx)?;
    }
    let mut results = Vec::with_capacity(group.len());
    let mut committed = Vec::with_capacity(group.len());
    let divisions = Statements::on("revisions");
    let departments = Statements::on(super::schema::DEPARTMENT_REVISIONS);
    let statements = |r: &ValidReport| {
        if r.department.is_some() {
            &departments
        } else {
            &divisions
        }
    };
    // every report's values as stored (pairs new to the store numbered now)
    let mut vals = group
        .iter()
        .map(|job| numbered.encode(tx, &job.report))
        .collect::<Result<Vec<_>, _>>()?;
    let keys: Vec<(String, String)> = group
        .iter()
        .map(|job| (key_of(&job.report), job.report.period.to_string()))
        .collect();
    // what the store holds for each report is asked for the whole group at once (one round
    // trip on PostgreSQL), except for a report whose (area, period) an earlier report of the
    // group has too: that one is asked at its turn, after the group's earlier writes
    let mut seen = std::collections::HashSet::with_hasher(foldhash::fast::RandomState::default());
    let first: Vec<bool> = group
        .iter()
        .zip(&keys)
        .map(|(job, k)| seen.insert((job.report.department.is_some(), k)))
        .collect();
    let sids: Vec<_> = group
        .iter()
        .map(|job| compact::submission_key(&job.report.submission_id))
        .collect();
    let mut stored: Vec<Stored> = group.iter().map(|_| Stored::default()).collect();
    for department in [false, true] {
        let st = if department { &departments } else { &divisions };
        let asked: Vec<usize> = (0..group.len())
            .filter(|&i| first[i] && group[i].report.department.is_some() == department)
            .collect();
        if asked.is_empty() {
            continue;
        }
        let sets: Vec<Vec<Arg<'_>>> = asked
            .iter()
            .map(|&i| args![&keys[i].1, &keys[i].0].to_vec())
            .collect();
        tx.each_of(&st.read, &sets, |set, row| {
            let i = asked[set];
            stored[i].fold(row, &group[i].report.submission_id, &sids[i])
        })?;
    }
    let mut pending = Pending::default();
    let mut added: FastMap<String, i64> = FastMap::default();
    for (i, job) in group.iter().enumerate() {
        let r = &job.report;
        let st = statements(r);
        let (area, period) = (&keys[i].0, &keys[i].1);
        let Stored { found, latest } = if first[i] {
            std::mem::take(&mut stored[i])
        } else {
            pending.flush(tx, group, (&keys, &sids), &divisions, &departments)?;
            st.stored(tx, (area.as_str(), period.as_str()), r, &sids[i])?
        };
        if let Some(answer) = earlier(found, r, &vals[i]) {
            results.push(answer);
            continue;
        }
        // a closed period takes nothing more (a child hub's rollup: its own locks decide)
        if r.rollup.is_none()
            && let Some(lock) = locks.check(&r.form, r.period, r.area, job.now_ms)
        {
            results.push(Err(StoreError::Locked {
                area: area.clone(),
                lock: Box::new(lock),
            }));
            continue;
        }
        let revision = latest.as_ref().map_or(1, |l| l.revision + 1);
        if revision > MAX_REVISIONS {
            results.push(Err(StoreError::TooManyRevisions {
                area: area.clone(),
                period: period.clone(),
            }));
            continue;
        }
        pending.0.push(PendingInsert {
            job: i,
            department: r.department.is_some(),
            revision,
            sender: numbered.name(tx, &job.sender)?,
            reporter: numbered.name(tx, &r.reporter)?,
            warnings: compact::warnings_text(&r.warnings),
            vals: std::mem::take(&mut vals[i]),
        });
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
        match added.get_mut(period) {
            Some(n) => *n += 1,
            None => {
                added.insert(period.clone(), 1);
            }
        }
        if !keep {
            results.push(Ok(receipt));
            continue;
        }
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
            // what the replaced revision said is decoded only for the rollups
            previous: latest
                .map(|l| l.decode(area, period, &numbered.keys))
                .transpose()?,
        });
        results.push(Ok(receipt));
    }
    pending.flush(tx, group, (&keys, &sids), &divisions, &departments)?;
    count_revisions(tx, added)?;
    Ok((results, committed))
}

/// Adds a group's new revisions to each period's count.
fn count_revisions(tx: &Db, added: FastMap<String, i64>) -> Result<(), StoreError> {
    for (period, n) in added {
        tx.run(
            "INSERT INTO period_revisions (period, revisions) VALUES (?1, ?2)
             ON CONFLICT (period) DO UPDATE SET revisions = period_revisions.revisions + excluded.revisions",
            args![&period, n],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{
        Store, StoreAt,
        tests::{stores, valid_of},
    };
    use super::*;

    /// A job of report `g{i}` (validated once: the catalogue and registry are built each time).
    fn job(i: usize, sent: Sent) -> Job {
        static REPORT: std::sync::OnceLock<ValidReport> = std::sync::OnceLock::new();
        let mut report = REPORT
            .get_or_init(|| valid_of("g", "510722101002", "2026-10", 1))
            .clone();
        report.submission_id = format!("g{i}");
        Job {
            report,
            sent,
            sender: "t".into(),
            now_ms: 0,
            reply: oneshot::channel().0,
        }
    }

    /// Not gathering, the group is what was queued behind its first report; gathering with
    /// nobody sending more (the sender still connected), it is the same, and it ends: a lone
    /// sender's reports are not held for the whole of [`GATHER_FOR`] waiting for others.
    #[test]
    fn a_group_is_the_queue_and_gathering_ends_when_nothing_more_comes() {
        for gathering in [false, true] {
            let (tx, mut rx) = mpsc::channel(4096);
            for i in 1..=5 {
                tx.try_send(job(i, Sent::Alone)).unwrap();
            }
            let group = gather(
                job(0, Sent::Alone),
                &mut rx,
                gathering.then_some(&GATHERING),
            );
            let ids: Vec<_> = group
                .iter()
                .map(|j| j.report.submission_id.as_str())
                .collect();
            assert_eq!(ids, ["g0", "g1", "g2", "g3", "g4", "g5"], "{gathering}");
            assert!(!tx.is_closed());
        }
        // a group never holds more than MAX_GROUP, gathering or not; the rest waits its turn
        let (tx, mut rx) = mpsc::channel(4096);
        for i in 1..MAX_GROUP + 10 {
            tx.try_send(job(i, Sent::InBatch)).unwrap();
        }
        assert_eq!(
            gather(job(0, Sent::InBatch), &mut rx, Some(&GATHERING)).len(),
            MAX_GROUP
        );
        assert_eq!(rx.len(), 10);
    }

    /// Reports that arrive while the writer gathers join the group, in the order sent, until
    /// it holds `enough` (a sender thread sends 400 as fast as it can; the writer waits up to
    /// a minute for 100 of them, never finding a step quiet enough to stop).
    #[test]
    fn reports_arriving_while_gathering_join_the_group() {
        let (tx, mut rx) = mpsc::channel(4096);
        let sender = std::thread::spawn(move || {
            for i in 1..=400 {
                tx.blocking_send(job(i, Sent::Alone)).unwrap();
            }
            tx
        });
        let patient = Gathering {
            within: Duration::from_secs(60),
            step: Duration::from_micros(200),
            quiet: usize::MAX,
            enough: 100,
        };
        let group = gather(job(0, Sent::Alone), &mut rx, Some(&patient));
        let _tx = sender.join().unwrap();
        assert!(group.len() >= 100, "{}", group.len());
        let ids: Vec<_> = group
            .iter()
            .map(|j| j.report.submission_id.clone())
            .collect();
        let want: Vec<_> = (0..group.len()).map(|i| format!("g{i}")).collect();
        assert_eq!(ids, want);
        // what came after the group was complete waits for the next
        assert_eq!(group.len() + rx.len(), 401);
    }

    /// A group is answered as if its reports came one at a time, in order: resends within
    /// the group, corrections of a report earlier in it, and an id reused with other values
    /// (what the group's reads asked all at once must not hide).
    #[test]
    fn one_group_answers_as_its_reports_one_at_a_time() {
        for (dir, at) in stores() {
            let store = Store::open_at(dir.path(), at.clone(), None).unwrap();
            let db = Db::open(&at).unwrap();
            let (x, y, z) = ("510722101002", "510722101003", "510722104003");
            let reports = [
                valid_of("a", x, "2026-10", 1),
                valid_of("a", x, "2026-10", 1),
                valid_of("b", x, "2026-10", 2),
                valid_of("c", y, "2026-10", 3),
                valid_of("a", x, "2026-10", 9),
                valid_of("c", y, "2026-10", 3),
                valid_of("d", z, "2026-09", 4),
                valid_of("e", x, "2026-10", 5),
            ];
            let jobs: Vec<Job> = reports
                .into_iter()
                .map(|report| Job {
                    report,
                    sent: Sent::InBatch,
                    sender: "pingan://node/510722".into(),
                    now_ms: 1_000,
                    reply: oneshot::channel().0,
                })
                .collect();
            let mut numbered = Numbered::load_or_log(&db);
            let (results, committed) =
                write_group(&db, &jobs, &mut numbered, &Locks::default(), true).unwrap();
            let answers: Vec<String> = results
                .iter()
                .map(|r| match r {
                    Ok(receipt) => format!("{}:{}", receipt.revision, receipt.duplicate),
                    Err(StoreError::IdReused(id)) => format!("reused {id}"),
                    Err(e) => format!("{e}"),
                })
                .collect();
            assert_eq!(
                answers,
                [
                    "1:false", "1:true", "2:false", "1:false", "reused a", "1:true", "1:false",
                    "3:false"
                ],
                "{at:?}"
            );
            // the rollups are told each new revision with the one it replaced
            let told: Vec<(String, u32, Option<i64>)> = committed
                .iter()
                .map(|c| {
                    let before = c.previous.as_ref().map(|p| p.values[0].total.unwrap());
                    (c.area.to_string(), c.revision, before)
                })
                .collect();
            assert_eq!(
                told,
                [
                    (x.to_owned(), 1, None),
                    (x.to_owned(), 2, Some(1)),
                    (y.to_owned(), 1, None),
                    (z.to_owned(), 1, None),
                    (x.to_owned(), 3, Some(2)),
                ]
            );
            let reader = store.reader().unwrap();
            assert_eq!(reader.revision_count().unwrap(), 5);
            let current = reader
                .current(x.parse().unwrap(), "2026-10".parse().unwrap())
                .unwrap()
                .unwrap();
            assert_eq!((current.revision, current.values[0].total), (3, Some(5)));
            store.close();
        }
    }

    /// Every statement a group runs is prepared once and kept: none is prepared again when
    /// its arguments change (SQLite re-prepares some shapes of query at each binding, e.g.
    /// `ORDER BY revision DESC LIMIT 1` over the primary key: an eighth of a Submit's CPU).
    #[test]
    fn the_writers_statements_are_prepared_once() {
        let dir = tempfile::tempdir().unwrap();
        let at = StoreAt::new(dir.path(), None);
        let store = Store::open_at(dir.path(), at.clone(), None).unwrap();
        let db = Db::open(&at).unwrap();
        let mut numbered = Numbered::load_or_log(&db);
        let areas = ["510722101002", "510722101003", "510722104003"];
        for group in 0..20u32 {
            let jobs: Vec<Job> = (0..areas.len())
                .map(|k| Job {
                    report: valid_of(
                        &format!("{group:08x}-0000-4000-8000-{k:012x}"),
                        areas[k],
                        "2026-10",
                        i64::from(group),
                    ),
                    sent: Sent::InBatch,
                    sender: "pingan://node/510722".into(),
                    now_ms: 1_000 + i64::from(group),
                    reply: oneshot::channel().0,
                })
                .collect();
            let (results, _) =
                write_group(&db, &jobs, &mut numbered, &Locks::default(), true).unwrap();
            // every report a new revision of its area: the latest was found each time
            let revisions: Vec<u32> = results
                .iter()
                .map(|r| r.as_ref().unwrap().revision)
                .collect();
            assert_eq!(revisions, [group + 1; 3]);
        }
        let conn = db.sqlite().unwrap();
        for sql in [READ, INSERT] {
            let st = conn
                .prepare_cached(&sql.replace("{table}", "revisions"))
                .unwrap();
            assert_eq!(
                st.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{sql}"
            );
        }
        // one read finds both a resent id's revision and the latest, whose first time of
        // receipt is revision 1's
        let resent = valid_of(
            &format!("{:08x}-0000-4000-8000-{:012x}", 5, 0),
            areas[0],
            "2026-10",
            5,
        );
        let key = compact::submission_key(&resent.submission_id);
        let stored = Statements::on("revisions")
            .stored(&db, (areas[0], "2026-10"), &resent, &key)
            .unwrap();
        let (found, latest) = (stored.found.unwrap(), stored.latest.unwrap());
        assert_eq!((found.revision, found.received_at_ms), (6, 1_005));
        assert_eq!((latest.revision, latest.first_received_at_ms), (20, 1_000));
        store.close();
    }
}
