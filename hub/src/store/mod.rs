//! The hub's embedded store: SQLite (bundled) in WAL mode with `synchronous=FULL`, written by a
//! single writer thread that commits concurrent submissions together (group commit). A receipt
//! is sent only once the transaction holding its revision is durable on disk.
//!
//! Every accepted submission is one row of `revisions`, keyed by (period, area, revision): a
//! period's reports are written side by side however long the history. The highest revision of
//! an (area, period) is the current one; `period_revisions` counts each period's rows. Values
//! are kept as submitted (normalised), encoded as `pingan.v1.StoredValues`.
//!
//! - [`schema`]: the tables and the migration of older stores.
//! - [`writer`]: the writer thread and its group commits.
//! - [`reader`]: [`StoreReader`], read-only connections.
//! - [`audit`]: owners of subtrees and refused requests.
//! - [`lock`]: the data directory's lock.

mod audit;
mod error;
mod lock;
mod locks;
mod reader;
mod review;
mod schema;
mod writer;

pub use audit::{Owner, Refusal};
pub use error::StoreError;
pub use lock::{DataLock, LOCK_FILE};
pub use locks::{LockRecord, LockRule, Locks};
pub use reader::{RevisionRecord, StoreReader};
pub use review::ReviewEvent;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

use pingan_domain::{
    AreaCode, Period, ValidReport,
    rollup::{Rollup, Value},
};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use audit::Repeated;
use schema::{configure, create_or_migrate};
use writer::{Job, MAX_GROUP, run_writer};

/// Most revisions of one (area, period): corrections are rare, a flood of them is not a
/// correction.
pub const MAX_REVISIONS: u32 = 1000;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "pingan-hub.db";

/// One attempt to send a reminder (催报) of a form's period to a township's group, and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderSend {
    pub at_ms: i64,
    pub form: String,
    pub period: String,
    /// before, after (the schedule) or now (asked from the dashboard).
    pub moment: String,
    pub township: String,
    pub attempt: u32,
    pub ok: bool,
    /// The webhook's answer, or why there was none.
    pub result: String,
    /// Offices named as not reported.
    pub offices: u32,
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
    pub values: Vec<Value>,
    /// A forwarded rollup (federation).
    pub rollup: Option<Rollup>,
    /// The replaced current revision.
    pub previous: Option<Prior>,
}

/// What a replaced revision said.
#[derive(Debug, Clone)]
pub struct Prior {
    pub zero_report: bool,
    pub values: Vec<Value>,
    pub rollup: Option<Rollup>,
}

/// Called by the writer thread with every group right after its commit and before any of its
/// receipts is sent, in commit order: a query issued after a receipt sees that report.
pub type CommitHook = Arc<dyn Fn(&[Committed]) + Send + Sync>;

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
    /// The periods locked (锁定), shared with the writer: it holds them while it writes a group.
    locks: Arc<Mutex<Locks>>,
    /// Review decisions are taken one at a time (two reviewers at once: one is first).
    reviewing: Mutex<()>,
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
        let locks = Arc::new(Mutex::new(
            Locks::load(&conn).map_err(StoreError::from_sqlite)?,
        ));
        let (tx, rx) = mpsc::channel(MAX_GROUP * 2);
        let writer_locks = locks.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run_writer(conn, rx, hook, writer_locks))
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
            locks,
            reviewing: Mutex::new(()),
        })
    }

    /// Sets when periods lock by themselves (`serve --lock-after-days`).
    pub fn set_lock_rule(&self, rule: LockRule) {
        self.locks.lock().expect("not poisoned").rule = rule;
    }

    /// Locks or unlocks a form's period for a subtree, durably, with its audit row. Reports
    /// being written wait for it, and it for them: a report is stored before the lock or
    /// refused after it, never half of either.
    pub fn set_lock(&self, record: LockRecord) -> Result<LockRecord, StoreError> {
        let mut locks = self.locks.lock().expect("not poisoned");
        let mut conn = Connection::open(&self.path).map_err(StoreError::from_sqlite)?;
        configure(&conn)?;
        Locks::write(&mut conn, &record).map_err(StoreError::from_sqlite)?;
        locks.put(record.clone());
        Ok(record)
    }

    /// The lock that makes a form's period final for an area's whole subtree (see
    /// [`Locks::final_over`]).
    pub fn final_lock(
        &self,
        form: &str,
        period: Period,
        area: AreaCode,
        now_ms: i64,
    ) -> Option<LockRecord> {
        self.locks
            .lock()
            .expect("not poisoned")
            .final_over(form, period, area, now_ms)
    }

    /// Every lock and unlock ever made (of one period), oldest first: `lock_events`.
    pub fn lock_events(&self, period: Option<&str>) -> Result<Vec<LockRecord>, StoreError> {
        let conn = Connection::open(&self.path).map_err(StoreError::from_sqlite)?;
        let mut st = conn
            .prepare(&format!(
                "SELECT {} FROM lock_events WHERE ?1 IS NULL OR period = ?1 ORDER BY rowid",
                locks::COLUMNS
            ))
            .map_err(StoreError::from_sqlite)?;
        let rows = st
            .query_map([period], locks::record)
            .map_err(StoreError::from_sqlite)?;
        rows.collect::<Result<_, _>>()
            .map_err(StoreError::from_sqlite)
    }

    /// The explicit locks (of one period), and the automatic rule's days.
    pub fn locks(&self, period: Option<&str>) -> (Vec<LockRecord>, u32) {
        let locks = self.locks.lock().expect("not poisoned");
        (locks.list(period), locks.rule.after_days)
    }

    /// Records a decision on the current revision of (area, period): refused when a newer
    /// revision came, or the revision was already approved or returned.
    pub fn decide(&self, e: ReviewEvent) -> Result<ReviewEvent, StoreError> {
        let _one_at_a_time = self.reviewing.lock().expect("not poisoned");
        let mut conn = Connection::open(&self.path).map_err(StoreError::from_sqlite)?;
        configure(&conn)?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::from_sqlite)?;
        let current: Option<u32> = tx
            .query_row(
                "SELECT MAX(revision) FROM revisions WHERE period = ?1 AND area = ?2",
                [&e.period, &e.area],
                |r| r.get(0),
            )
            .map_err(StoreError::from_sqlite)?;
        let refuse = |why: String| {
            Err(StoreError::Review(format!(
                "{} {}：{why}",
                e.area, e.period
            )))
        };
        match current {
            None => return refuse("没有报表可审核".into()),
            Some(c) if c != e.revision => {
                return refuse(format!(
                    "已有更新的第 {c} 版，请审核最新一版（不是第 {} 版）",
                    e.revision
                ));
            }
            Some(_) => {}
        }
        match review::latest(&tx, &e.area, &e.period, e.revision)
            .map_err(StoreError::from_sqlite)?
        {
            Some(prev) if prev.approved => {
                return refuse(format!("第 {} 版已由 {} 审核通过", e.revision, prev.by));
            }
            Some(prev) => {
                return refuse(format!(
                    "第 {} 版已由 {} 退回（{}），等待更正后重新上报",
                    e.revision, prev.by, prev.reason
                ));
            }
            None => {}
        }
        review::insert(&tx, &e).map_err(StoreError::from_sqlite)?;
        tx.commit().map_err(StoreError::from_sqlite)?;
        Ok(e)
    }

    /// Records one attempt to send a reminder (催报) and its result.
    pub fn record_reminder(&self, r: &ReminderSend) -> Result<(), StoreError> {
        let conn = Connection::open(&self.path).map_err(StoreError::from_sqlite)?;
        configure(&conn)?;
        conn.execute(
            "INSERT INTO reminder_sends (at_ms, form, period, moment, township, attempt, ok, result, offices)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![r.at_ms, r.form, r.period, r.moment, r.township, r.attempt, r.ok, r.result, r.offices],
        )
        .map_err(StoreError::from_sqlite)?;
        Ok(())
    }

    /// Whether a scheduled reminder was delivered already.
    pub fn reminder_sent(
        &self,
        form: &str,
        period: &str,
        moment: &str,
        township: &str,
    ) -> Result<bool, StoreError> {
        let conn = Connection::open(&self.path).map_err(StoreError::from_sqlite)?;
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM reminder_sends WHERE form = ?1 AND period = ?2 AND moment = ?3 AND township = ?4 AND ok = 1",
                [form, period, moment, township],
                |r| r.get(0),
            )
            .map_err(StoreError::from_sqlite)?;
        Ok(n > 0)
    }

    /// Every reminder attempt, oldest first.
    pub fn reminder_sends(&self) -> Result<Vec<ReminderSend>, StoreError> {
        let conn = Connection::open(&self.path).map_err(StoreError::from_sqlite)?;
        let mut st = conn
            .prepare("SELECT at_ms, form, period, moment, township, attempt, ok, result, offices FROM reminder_sends ORDER BY rowid")
            .map_err(StoreError::from_sqlite)?;
        let rows = st
            .query_map([], |r| {
                Ok(ReminderSend {
                    at_ms: r.get(0)?,
                    form: r.get(1)?,
                    period: r.get(2)?,
                    moment: r.get(3)?,
                    township: r.get(4)?,
                    attempt: r.get(5)?,
                    ok: r.get(6)?,
                    result: r.get(7)?,
                    offices: r.get(8)?,
                })
            })
            .map_err(StoreError::from_sqlite)?;
        rows.collect::<Result<_, _>>()
            .map_err(StoreError::from_sqlite)
    }

    /// Stores a validated report as the next revision of its (area, period), or returns the
    /// original receipt when its submission id was stored before. Returns once durable.
    pub async fn write(
        &self,
        report: ValidReport,
        sender: String,
        now_ms: i64,
    ) -> Result<pingan_domain::Receipt, StoreError> {
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

#[cfg(test)]
mod tests {
    use pingan_domain::{Catalogue, Validator, fixtures, pb};

    use super::{schema::REVISIONS, *};

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
            departments: None,
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
        let cur = r
            .current("510722101002".parse().unwrap(), "2026-10".parse().unwrap())
            .unwrap()
            .unwrap();
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
        let cur = r
            .current("510722101002".parse().unwrap(), "2026-10".parse().unwrap())
            .unwrap()
            .unwrap();
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
