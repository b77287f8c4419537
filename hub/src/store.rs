//! The hub's embedded store: SQLite (bundled) in WAL mode with `synchronous=FULL`, written by a
//! single writer thread that commits concurrent submissions together (group commit). A receipt
//! is sent only once the transaction holding its revision is durable on disk.
//!
//! Every accepted submission is one row of `revisions`, keyed by (period, area, revision): a
//! period's reports are written side by side however long the history. The highest revision of
//! an (area, period) is the current one; `period_revisions` counts each period's rows. Values are kept as submitted
//! (normalised), encoded as `pingan.v1.StoredValues`.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

use pingan_proto::{AreaCode, Period, ValidReport, pb};
use prost::Message as _;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;

/// Most submissions committed in one transaction.
const MAX_GROUP: usize = 2048;

/// Most revisions of one (area, period): corrections are rare, a flood of them is not a
/// correction.
pub const MAX_REVISIONS: u32 = 1000;

/// File in the data directory that one process at a time holds locked (see [`DataLock`]).
pub const LOCK_FILE: &str = "pingan-hub.lock";

/// How long repeated refusals of one identity, action and area are counted rather than written
/// one row each.
const REFUSALS_WINDOW_MS: i64 = 60_000;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "pingan-hub.db";

/// One stored revision of an (area, period), as the audit trail shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionRecord {
    pub area: String,
    pub period: String,
    pub revision: u32,
    pub submission_id: String,
    pub received_at_ms: i64,
    /// Who sent it, as the hub saw the peer.
    pub sender: String,
    /// The sending node's own name for itself.
    pub reporter: String,
    pub zero_report: bool,
    pub notes: String,
    pub warnings: Vec<String>,
    pub values: Vec<pb::MetricValue>,
    /// A child hub's forwarded rollup (federation); `values` are then the area's own report.
    pub rollup: Option<pb::Rollup>,
}

/// A revision just made durable, with the revision it replaced: what the rollups need to update
/// themselves by the difference.
#[derive(Debug, Clone)]
pub struct Committed {
    pub area: AreaCode,
    pub period: Period,
    pub revision: u32,
    pub received_at_ms: i64,
    /// When revision 1 of this (area, period) arrived (decides "on time").
    pub first_received_at_ms: i64,
    pub zero_report: bool,
    pub values: Vec<pb::MetricValue>,
    /// A forwarded rollup (federation).
    pub rollup: Option<pb::Rollup>,
    /// The replaced current revision.
    pub previous: Option<Prior>,
}

/// What a replaced revision said.
#[derive(Debug, Clone)]
pub struct Prior {
    pub zero_report: bool,
    pub values: Vec<pb::MetricValue>,
    pub rollup: Option<pb::Rollup>,
}

/// Called by the writer thread with every group right after its commit and before any of its
/// receipts is sent, in commit order: a query issued after a receipt sees that report.
pub type CommitHook = Arc<dyn Fn(&[Committed]) + Send + Sync>;

struct Job {
    report: ValidReport,
    sender: String,
    now_ms: i64,
    reply: oneshot::Sender<Result<pb::Receipt, StoreError>>,
}

/// The store: a handle to the writer thread, and the path readers open.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// A second connection for the audit trail of refusals (rare, small writes).
    audit: Mutex<Option<Connection>>,
    /// Repeated refusals being counted (see [`Store::record_refusal`]).
    repeated: Mutex<HashMap<(String, String, String), Repeated>>,
    /// The data directory's lock, held while the store is open.
    lock: Mutex<Option<DataLock>>,
}

/// Refusals of one identity, action and area within a window, after the first was written.
#[derive(Debug)]
struct Repeated {
    since_ms: i64,
    count: u64,
    reason: String,
}

/// An exclusive lock on a data directory: a second `pingan-hub serve` or an import into a
/// running hub's directory is refused, naming the process that holds it. The operating system
/// releases it when the process ends, however it ends.
#[derive(Debug)]
pub struct DataLock {
    _file: std::fs::File,
}

impl DataLock {
    /// Takes the lock of `dir`, or says who holds it.
    pub fn take(dir: &Path) -> Result<DataLock, StoreError> {
        use std::io::{Read as _, Seek as _, Write as _};
        let path = dir.join(LOCK_FILE);
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(StoreError::InUse {
                    dir: dir.display().to_string(),
                    holder: holder.trim().to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let me = format!(
            "pid {} ({})",
            std::process::id(),
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(me.as_bytes()).map_err(io)?;
        Ok(DataLock { _file: file })
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("submission_id", &self.report.submission_id)
            .finish()
    }
}

/// The revisions table; `{name}` is filled in (a migration builds it under another name).
/// Keyed by period first: a period's reports arrive together, so they are written next to each
/// other however large the history grows, and a period's rows are one range.
const REVISIONS: &str = "
CREATE TABLE IF NOT EXISTS {name} (
    area            TEXT    NOT NULL,
    period          TEXT    NOT NULL,
    revision        INTEGER NOT NULL,
    submission_id   TEXT    NOT NULL UNIQUE,
    digest          BLOB    NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    sender          TEXT    NOT NULL,
    reporter        TEXT    NOT NULL,
    zero_report     INTEGER NOT NULL,
    notes           TEXT    NOT NULL,
    warnings        TEXT    NOT NULL,
    vals            BLOB    NOT NULL,
    PRIMARY KEY (period, area, revision)
) WITHOUT ROWID;
";

const SCHEMA: &str = "
-- how many revisions each period holds, kept with every commit: a saved rollup snapshot is
-- current for a period while its count is the same (revisions are only ever added)
CREATE TABLE IF NOT EXISTS period_revisions (
    period     TEXT    NOT NULL PRIMARY KEY,
    revisions  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS owners (
    root      TEXT    NOT NULL PRIMARY KEY,
    identity  TEXT    NOT NULL,
    serial    TEXT    NOT NULL,
    since_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    at_ms     INTEGER NOT NULL,
    identity  TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    area      TEXT    NOT NULL,
    reason    TEXT    NOT NULL
);
";

/// A child hub that owns a subtree of this hub's registry (federation): only it may forward
/// rollups for the subtree, and nodes may not submit under it directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub root: pingan_proto::AreaCode,
    /// `pingan://hub/AREA`.
    pub identity: String,
    /// The serial of the certificate that claimed the subtree.
    pub serial: String,
    pub since_ms: i64,
}

/// A refused request, as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub at_ms: i64,
    pub identity: String,
    pub action: String,
    pub area: String,
    pub reason: String,
}

/// Creates the tables, or brings an older store's up to date in one transaction:
/// revisions keyed (area, period, revision) are rewritten keyed by period first, and the
/// per-period counts are computed once.
fn create_or_migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let table_sql = |name: &str| {
        tx.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, String>(0),
        )
        .optional()
    };
    let revisions = table_sql("revisions")?;
    let had_counts = table_sql("period_revisions")?.is_some();
    if revisions
        .as_deref()
        .is_some_and(|sql| sql.contains("PRIMARY KEY (area, period, revision)"))
    {
        tracing::info!("rewriting the store's revisions keyed by period (once; may take minutes)");
        tx.execute_batch(&REVISIONS.replace("{name}", "revisions_new"))?;
        tx.execute_batch(
            "INSERT INTO revisions_new SELECT * FROM revisions ORDER BY period, area, revision;
             DROP TABLE revisions;
             ALTER TABLE revisions_new RENAME TO revisions;",
        )?;
    } else {
        tx.execute_batch(&REVISIONS.replace("{name}", "revisions"))?;
    }
    tx.execute_batch(SCHEMA)?;
    if !had_counts {
        tx.execute(
            "INSERT INTO period_revisions SELECT period, COUNT(*) FROM revisions GROUP BY period",
            [],
        )?;
    }
    tx.commit()
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: in WAL mode, every commit is fsynced before it returns, so an acked report survives
    // a power cut, not only a crash of the process
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and starts its writer thread.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_hook(dir, None)
    }

    /// Opens the store; `hook` sees every committed group (see [`CommitHook`]).
    pub fn open_with_hook(dir: &Path, hook: Option<CommitHook>) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let lock = DataLock::take(dir)?;
        let path = dir.join(DB_FILE);
        let mut conn = Connection::open(&path).map_err(StoreError::from_sqlite)?;
        configure(&conn)?;
        create_or_migrate(&mut conn).map_err(StoreError::from_sqlite)?;
        let (tx, rx) = mpsc::channel(MAX_GROUP * 2);
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run_writer(conn, rx, hook))
            .map_err(|source| StoreError::Io {
                path: "store-writer thread".into(),
                source,
            })?;
        Ok(Store {
            path,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            audit: Mutex::new(None),
            repeated: Mutex::new(HashMap::new()),
            lock: Mutex::new(Some(lock)),
        })
    }

    /// Stores a validated report as the next revision of its (area, period), or returns the
    /// original receipt when its submission id was stored before. Returns once durable.
    pub async fn write(
        &self,
        report: ValidReport,
        sender: String,
        now_ms: i64,
    ) -> Result<pb::Receipt, StoreError> {
        let jobs = self
            .jobs
            .lock()
            .expect("not poisoned")
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        jobs.send(Job {
            report,
            sender,
            now_ms,
            reply,
        })
        .await
        .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops taking writes, lets the writer finish what it holds, waits for it, writes the
    /// counts of repeated refusals, and releases the data directory.
    pub fn close(&self) {
        self.jobs.lock().expect("not poisoned").take();
        if let Some(w) = self.writer.lock().expect("not poisoned").take() {
            let _ = w.join();
        }
        self.flush_repeated(i64::MAX);
        self.lock.lock().expect("not poisoned").take();
    }

    /// A read-only view of the store (its own connection; WAL lets it read while the writer writes).
    pub fn reader(&self) -> Result<StoreReader, StoreError> {
        StoreReader::open(&self.path)
    }

    /// Runs `f` on the side connection (refusals, ownership: rare, small writes).
    fn with_audit<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut guard = self.audit.lock().expect("not poisoned");
        if guard.is_none() {
            let conn = Connection::open(&self.path).map_err(StoreError::from_sqlite)?;
            configure(&conn)?;
            *guard = Some(conn);
        }
        f(guard.as_ref().expect("just opened"))
    }

    /// Records that `owner` owns its subtree, durably.
    pub fn claim_owner(&self, owner: &Owner) -> Result<(), StoreError> {
        self.with_audit(|conn| {
            conn.execute(
                "INSERT INTO owners (root, identity, serial, since_ms) VALUES (?1, ?2, ?3, ?4)",
                params![
                    owner.root.to_string(),
                    owner.identity,
                    owner.serial,
                    owner.since_ms
                ],
            )
            .map_err(StoreError::from_sqlite)?;
            Ok(())
        })
    }

    /// Forgets the owner of `root` (a replaced child hub); true when there was one.
    pub fn release_owner(&self, root: &str) -> Result<bool, StoreError> {
        self.with_audit(|conn| {
            Ok(conn
                .execute("DELETE FROM owners WHERE root = ?1", [root])
                .map_err(StoreError::from_sqlite)?
                > 0)
        })
    }

    /// Records a refused request in the audit trail, durably. A flood is recorded, not
    /// mirrored: the first refusal of an identity, action and area is written at once, the
    /// ones after it within a minute are counted and written as one row ("×N") when the minute
    /// is over (on the next refusal, or when the store closes).
    pub fn record_refusal(
        &self,
        identity: &str,
        action: &str,
        area: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp_millis();
        self.flush_repeated(now);
        let key = (identity.to_owned(), action.to_owned(), area.to_owned());
        {
            let mut repeated = self.repeated.lock().expect("not poisoned");
            if let Some(r) = repeated.get_mut(&key) {
                r.count += 1;
                reason.clone_into(&mut r.reason);
                return Ok(());
            }
            repeated.insert(
                key,
                Repeated {
                    since_ms: now,
                    count: 0,
                    reason: reason.to_owned(),
                },
            );
        }
        self.insert_refusal(now, identity, action, area, reason)
    }

    /// Writes the counted refusals whose minute is over by `now_ms`.
    fn flush_repeated(&self, now_ms: i64) {
        let due: Vec<((String, String, String), Repeated)> = {
            let mut repeated = self.repeated.lock().expect("not poisoned");
            let keys: Vec<_> = repeated
                .iter()
                .filter(|(_, r)| now_ms.saturating_sub(r.since_ms) >= REFUSALS_WINDOW_MS)
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| repeated.remove_entry(&k))
                .collect()
        };
        for ((identity, action, area), r) in due.into_iter().filter(|(_, r)| r.count > 0) {
            let reason = format!(
                "×{} more since {} (the last: {})",
                r.count,
                crate::clock::minute_text(r.since_ms),
                r.reason
            );
            let at = now_ms.min(chrono::Utc::now().timestamp_millis());
            if let Err(e) = self.insert_refusal(at, &identity, &action, &area, &reason) {
                tracing::error!(error = %e, "could not record repeated refusals");
            }
        }
    }

    fn insert_refusal(
        &self,
        at_ms: i64,
        identity: &str,
        action: &str,
        area: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.with_audit(|conn| {
            conn.execute(
                "INSERT INTO refusals (at_ms, identity, action, area, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![at_ms, identity, action, area, reason],
            )
            .map_err(StoreError::from_sqlite)?;
            Ok(())
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

fn run_writer(mut conn: Connection, mut rx: mpsc::Receiver<Job>, hook: Option<CommitHook>) {
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        match write_group(&mut conn, &group) {
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
type GroupOutcome = (Vec<Result<pb::Receipt, StoreError>>, Vec<Committed>);

fn write_group(conn: &mut Connection, group: &[Job]) -> Result<GroupOutcome, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::from_sqlite)?;
    let mut results = Vec::with_capacity(group.len());
    let mut committed = Vec::with_capacity(group.len());
    {
        let mut find = tx
            .prepare_cached("SELECT area, period, revision, digest, received_at_ms, warnings FROM revisions WHERE submission_id = ?1")
            .map_err(StoreError::from_sqlite)?;
        let mut latest = tx
            .prepare_cached(
                "SELECT revision, zero_report, vals, (SELECT received_at_ms FROM revisions WHERE area = ?1 AND period = ?2 AND revision = 1)
                 FROM revisions WHERE area = ?1 AND period = ?2 ORDER BY revision DESC LIMIT 1",
            )
            .map_err(StoreError::from_sqlite)?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO revisions (area, period, revision, submission_id, digest, received_at_ms, sender, reporter, zero_report, notes, warnings, vals)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(StoreError::from_sqlite)?;
        let mut added: HashMap<String, i64> = HashMap::new();
        for job in group {
            let r = &job.report;
            let digest = r.digest();
            let found = find
                .query_row([&r.submission_id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, u32>(2)?,
                        row.get::<_, Vec<u8>>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, String>(5)?,
                    ))
                })
                .optional()
                .map_err(StoreError::from_sqlite)?;
            if let Some((area, period, revision, stored_digest, received_at_ms, warnings)) = found {
                if stored_digest != digest {
                    results.push(Err(StoreError::IdReused(r.submission_id.clone())));
                    continue;
                }
                results.push(Ok(pb::Receipt {
                    submission_id: r.submission_id.clone(),
                    area,
                    period,
                    revision,
                    accepted_at_ms: received_at_ms,
                    warnings: serde_json::from_str(&warnings).unwrap_or_default(),
                    duplicate: true,
                }));
                continue;
            }
            let (area, period) = (r.area.to_string(), r.period.to_string());
            let previous = latest
                .query_row([&area, &period], |row| {
                    Ok((
                        row.get::<_, u32>(0)?,
                        row.get::<_, bool>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .optional()
                .map_err(StoreError::from_sqlite)?;
            let revision = previous.as_ref().map_or(1, |p| p.0 + 1);
            if revision > MAX_REVISIONS {
                results.push(Err(StoreError::TooManyRevisions {
                    area: area.clone(),
                    period: period.clone(),
                }));
                continue;
            }
            let first_received_at_ms = previous.as_ref().map_or(job.now_ms, |p| p.3);
            let previous = match previous {
                Some((_, zero, vals, _)) => {
                    let stored = decode_values(&vals).map_err(|reason| StoreError::Corrupt {
                        area: area.clone(),
                        period: period.clone(),
                        reason,
                    })?;
                    Some(Prior {
                        zero_report: zero,
                        values: stored.values,
                        rollup: stored.rollup,
                    })
                }
                None => None,
            };
            let vals = pb::StoredValues {
                values: r.wire_values(),
                rollup: r.rollup.clone(),
            }
            .encode_to_vec();
            let warnings = serde_json::to_string(&r.warnings).expect("strings serialise");
            insert
                .execute(params![
                    area,
                    period,
                    revision,
                    r.submission_id,
                    &digest[..],
                    job.now_ms,
                    job.sender,
                    r.reporter,
                    r.zero_report,
                    r.notes,
                    warnings,
                    vals
                ])
                .map_err(StoreError::from_sqlite)?;
            *added.entry(period.clone()).or_default() += 1;
            committed.push(Committed {
                area: r.area,
                period: r.period,
                revision,
                received_at_ms: job.now_ms,
                first_received_at_ms,
                zero_report: r.zero_report,
                values: r.wire_values(),
                rollup: r.rollup.clone(),
                previous,
            });
            results.push(Ok(pb::Receipt {
                submission_id: r.submission_id.clone(),
                area,
                period,
                revision,
                accepted_at_ms: job.now_ms,
                warnings: r.warnings.clone(),
                duplicate: false,
            }));
        }
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
    }
    tx.commit().map_err(StoreError::from_sqlite)?;
    Ok((results, committed))
}

fn decode_values(blob: &[u8]) -> Result<pb::StoredValues, String> {
    pb::StoredValues::decode(blob).map_err(|e| e.to_string())
}

/// Read-only access to the stored revisions.
#[derive(Debug)]
pub struct StoreReader {
    conn: Connection,
}

const COLUMNS: &str = "area, period, revision, submission_id, received_at_ms, sender, reporter, zero_report, notes, warnings, vals";

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RevisionRecord> {
    let warnings: String = row.get(9)?;
    let vals: Vec<u8> = row.get(10)?;
    let stored = pb::StoredValues::decode(vals.as_slice()).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(10, rusqlite::types::Type::Blob, Box::new(e))
    })?;
    Ok(RevisionRecord {
        area: row.get(0)?,
        period: row.get(1)?,
        revision: row.get(2)?,
        submission_id: row.get(3)?,
        received_at_ms: row.get(4)?,
        sender: row.get(5)?,
        reporter: row.get(6)?,
        zero_report: row.get(7)?,
        notes: row.get(8)?,
        warnings: serde_json::from_str(&warnings).unwrap_or_default(),
        values: stored.values,
        rollup: stored.rollup,
    })
}

impl StoreReader {
    /// Opens a read-only connection to the database at `path`.
    pub fn open(path: &Path) -> Result<StoreReader, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(StoreError::from_sqlite)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        // 32 MiB of pages per reader (the default is 2 MiB): a county's villages over a few
        // periods stay cached between questions (readers are pooled, at most 8)
        conn.pragma_update(None, "cache_size", -32768)?;
        Ok(StoreReader { conn })
    }

    /// Every revision of an (area, period), oldest first: the audit trail.
    pub fn revisions(&self, area: &str, period: &str) -> Result<Vec<RevisionRecord>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM revisions WHERE area = ?1 AND period = ?2 ORDER BY revision"
        ))?;
        let rows = st.query_map([area, period], record)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The current (latest) revision of an (area, period).
    pub fn current(&self, area: &str, period: &str) -> Result<Option<RevisionRecord>, StoreError> {
        Ok(self.revisions(area, period)?.pop())
    }

    /// Calls `f` with the current revision of every area for `period`, and the time its
    /// revision 1 arrived.
    pub fn for_each_current_of(
        &self,
        period: &str,
        mut f: impl FnMut(RevisionRecord, i64),
    ) -> Result<(), StoreError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLUMNS}, (SELECT received_at_ms FROM revisions WHERE area = r.area AND period = r.period AND revision = 1)
             FROM revisions r WHERE period = ?1
             AND revision = (SELECT MAX(revision) FROM revisions WHERE area = r.area AND period = r.period)"
        ))?;
        let rows = st.query_map([period], |row| Ok((record(row)?, row.get::<_, i64>(11)?)))?;
        for row in rows {
            let (rec, first) = row?;
            f(rec, first);
        }
        Ok(())
    }

    /// How many revisions each period has stored. Revisions are only ever added, so an equal
    /// count means the same revisions.
    pub fn revisions_per_period(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT period, revisions FROM period_revisions")?;
        let rows = st.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Runs `f` in one read transaction: everything it reads sees one state of the store.
    pub fn read_consistently<T>(
        &mut self,
        f: impl FnOnce(&StoreReader) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.execute_batch("BEGIN")?;
        let out = f(self);
        self.conn.execute_batch("COMMIT")?;
        out
    }

    /// Calls `f` with every stored revision, in key order (area, period, revision).
    pub fn for_each_revision(&self, mut f: impl FnMut(RevisionRecord)) -> Result<(), StoreError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM revisions ORDER BY area, period, revision"
        ))?;
        for row in st.query_map([], record)? {
            f(row?);
        }
        Ok(())
    }

    /// The current values of every village whose code starts with `prefix` for `period`: (code,
    /// zero report, values). Only what a comparison of villages reads, so no audit columns are
    /// decoded.
    pub fn village_values_under(
        &self,
        prefix: &str,
        period: &str,
    ) -> Result<Vec<(String, bool, Vec<pb::MetricValue>)>, StoreError> {
        // codes are digits, so every code with the prefix sorts in [prefix, prefix + ':')
        let mut st = self.conn.prepare_cached(
            "SELECT area, zero_report, vals FROM revisions r
             WHERE period = ?3 AND area >= ?1 AND area < ?2 AND length(area) = 12
             AND revision = (SELECT MAX(revision) FROM revisions WHERE period = r.period AND area = r.area)",
        )?;
        let end = format!("{prefix}:");
        let rows = st.query_map([prefix, end.as_str(), period], |row| {
            let vals: Vec<u8> = row.get(2)?;
            let stored = pb::StoredValues::decode(vals.as_slice()).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    2,
                    rusqlite::types::Type::Blob,
                    Box::new(e),
                )
            })?;
            Ok((row.get(0)?, row.get(1)?, stored.values))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every subtree owned by a child hub.
    pub fn owners(&self) -> Result<Vec<Owner>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT root, identity, serial, since_ms FROM owners ORDER BY root")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (root, identity, serial, since_ms) = row?;
            let root = root.parse().map_err(|e| StoreError::Corrupt {
                area: root.clone(),
                period: String::new(),
                reason: format!("owner of a bad area code: {e}"),
            })?;
            out.push(Owner {
                root,
                identity,
                serial,
                since_ms,
            });
        }
        Ok(out)
    }

    /// Every recorded refusal, oldest first.
    pub fn refusals(&self) -> Result<Vec<Refusal>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT at_ms, identity, action, area, reason FROM refusals ORDER BY rowid")?;
        let rows = st.query_map([], |r| {
            Ok(Refusal {
                at_ms: r.get(0)?,
                identity: r.get(1)?,
                action: r.get(2)?,
                area: r.get(3)?,
                reason: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Number of stored revisions, all (area, period)s together.
    pub fn revision_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM revisions", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use pingan_proto::{Catalogue, Validator, fixtures};

    use super::*;

    fn valid(id: &str, fraud: i64) -> ValidReport {
        let catalogue = Catalogue::builtin();
        let areas = fixtures::santai_areas();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let wire = pb::Report {
            submission_id: id.into(),
            area: "510722101002".into(),
            period: "2026-10".into(),
            values: vec![pb::MetricValue {
                metric: "cases.fraud".into(),
                total: Some(fraud),
                parts: Default::default(),
            }],
            ..Default::default()
        };
        Validator {
            catalogue: &catalogue,
            areas: Some(&areas),
            today,
        }
        .validate(&wire)
        .unwrap()
    }

    #[tokio::test]
    async fn revisions_idempotency_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.write(valid("a", 1), "t".into(), 10).await.unwrap();
        let again = store.write(valid("a", 1), "t".into(), 20).await.unwrap();
        assert_eq!((a.revision, a.duplicate), (1, false));
        assert_eq!(
            (again.revision, again.duplicate, again.accepted_at_ms),
            (1, true, 10)
        );
        assert!(matches!(
            store.write(valid("a", 2), "t".into(), 30).await,
            Err(StoreError::IdReused(_))
        ));
        let b = store.write(valid("b", 2), "t".into(), 40).await.unwrap();
        assert_eq!(b.revision, 2);
        store.close();
        let store = Store::open(dir.path()).unwrap();
        let r = store.reader().unwrap();
        assert_eq!(r.revision_count().unwrap(), 2);
        let cur = r.current("510722101002", "2026-10").unwrap().unwrap();
        assert_eq!((cur.revision, cur.values[0].total), (2, Some(2)));
    }

    #[tokio::test]
    async fn a_store_keyed_by_area_first_is_rewritten_by_period_and_keeps_every_revision() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.write(valid("a", 1), "t".into(), 10).await.unwrap();
        store.write(valid("b", 2), "t".into(), 20).await.unwrap();
        store.close();
        // the layout of stores written before: revisions keyed (area, period, revision), no counts
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(
            &REVISIONS
                .replace("{name}", "old")
                .replace("(period, area, revision)", "(area, period, revision)"),
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO old SELECT * FROM revisions; DROP TABLE revisions;
             ALTER TABLE old RENAME TO revisions; DROP TABLE period_revisions;",
        )
        .unwrap();
        drop(conn);

        let store = Store::open(dir.path()).unwrap();
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'revisions'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            sql.contains("PRIMARY KEY (period, area, revision)"),
            "{sql}"
        );
        let r = store.reader().unwrap();
        assert_eq!(r.revision_count().unwrap(), 2);
        assert_eq!(
            r.revisions_per_period().unwrap(),
            vec![("2026-10".to_owned(), 2)]
        );
        let cur = r.current("510722101002", "2026-10").unwrap().unwrap();
        assert_eq!((cur.revision, cur.values[0].total), (2, Some(2)));
        // still idempotent, and the counts go on
        let again = store.write(valid("a", 1), "t".into(), 30).await.unwrap();
        assert_eq!((again.revision, again.duplicate), (1, true));
        store.write(valid("c", 3), "t".into(), 40).await.unwrap();
        assert_eq!(
            r.revisions_per_period().unwrap(),
            vec![("2026-10".to_owned(), 3)]
        );
    }

    #[tokio::test]
    async fn concurrent_writes_share_commits_and_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(dir.path()).unwrap());
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .write(valid(&format!("id-{i}"), i), "t".into(), i)
                    .await
            }));
        }
        let mut revisions = Vec::new();
        for t in tasks {
            revisions.push(t.await.unwrap().unwrap().revision);
        }
        revisions.sort();
        assert_eq!(revisions, (1..=200).collect::<Vec<u32>>());
        assert_eq!(store.reader().unwrap().revision_count().unwrap(), 200);
    }
}
