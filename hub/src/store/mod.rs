//! The hub's embedded store: SQLite (bundled) in WAL mode with `synchronous=FULL`, written by a
//! single writer thread that commits concurrent submissions together (group commit). A receipt
//! is sent only once the transaction holding its revision is durable on disk.
//!
//! Every accepted submission is one row of `revisions`, keyed by (period, area, revision): a
//! period's reports are written side by side however long the history. The highest revision of
//! an (area, period) is the current one; `period_revisions` counts each period's rows. Values
//! are kept as submitted (normalised), written compactly against numbered (metric, part) pairs.
//!
//! - [`compact`]: how a revision's values, names and submission id are kept small.
//! - [`schema`]: the tables and the migration of older stores.
//! - [`writer`]: the writer thread and its group commits.
//! - [`reader`]: [`StoreReader`], read-only connections.
//! - [`audit`]: owners of subtrees and refused requests.
//! - [`lock`]: the data directory's lock.

mod audit;
mod compact;
pub(crate) use compact::hex;
pub mod db;
mod error;
mod follow;
pub mod lease;
mod lock;
mod locks;
pub mod migrate;
mod reader;
mod review;
mod schema;
mod writer;

pub use audit::{Owner, Refusal};
pub use db::StoreAt;
pub use error::StoreError;
pub use lock::{DataLock, LOCK_FILE};
pub use locks::{LockRecord, LockRule, Locks};
#[cfg(test)]
pub use reader::CurrentFigures;
pub use reader::{CurrentNumbered, LeafFigures, RevisionRecord, StoreReader};
pub use review::ReviewEvent;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

use pingan_domain::{
    AreaCode, Period, ValidReport,
    rollup::{Rollup, Value},
};
use tokio::sync::{mpsc, oneshot};

use audit::Repeated;
use db::{Db, args};
use schema::{configure, create_or_migrate};
use writer::{AfterCommit, Job, MAX_GROUP, run_writer};

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

/// The store: a handle to the writer thread, and where readers connect.
/// How a report came to be written: alone (unary `Submit`), or as one of many (a batch stream,
/// an import). Under the load of many reports sent alone at once, the writer waits a moment for
/// more before committing (writer.rs, `gather`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Alone,
    InBatch,
}

#[derive(Debug)]
pub struct Store {
    at: StoreAt,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// A second connection for the audit trail of refusals (rare, small writes).
    audit: Mutex<Option<Db>>,
    /// Repeated refusals being counted (see [`Store::record_refusal`]).
    repeated: Mutex<HashMap<(String, String, String), Repeated>>,
    /// The data directory's lock, held while the store is open.
    lock: Mutex<Option<DataLock>>,
    /// The periods locked (锁定), shared with the writer: it holds them while it writes a group.
    locks: Arc<Mutex<Locks>>,
    /// Review decisions are taken one at a time (two reviewers at once: one is first).
    reviewing: Mutex<()>,
    /// On PostgreSQL: the thread following the other hub processes' commits, and its stop.
    follower: Mutex<Option<(Arc<std::sync::atomic::AtomicBool>, JoinHandle<()>)>>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and starts its writer thread.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_hook(dir, None)
    }

    /// Opens the store; `hook` sees every committed group (see [`CommitHook`]).
    pub fn open_with_hook(dir: &Path, hook: Option<CommitHook>) -> Result<Store, StoreError> {
        Store::open_at(dir, StoreAt::new(dir, None), hook)
    }

    /// Opens the store at `at` (SQLite in `dir`, or a PostgreSQL database) for the hub whose
    /// data directory is `dir` (taken for this process: its snapshot, its lock).
    pub fn open_at(dir: &Path, at: StoreAt, hook: Option<CommitHook>) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let lock = DataLock::take(dir)?;
        let conn = Db::open(&at)?;
        configure(&conn)?;
        if let Some(c) = conn.sqlite() {
            // the writer's pages: 64 MiB (the default is 2 MiB), so that the indexes a group's
            // reads and inserts walk stay cached rather than read again at every group
            c.pragma_update(None, "cache_size", -65536)?;
        }
        create_or_migrate(&conn)?;
        let locks = Arc::new(Mutex::new(Locks::load(&conn)?));
        let mut follower = None;
        let after = match hook {
            Some(hook) if conn.is_postgres() => {
                let follow = Arc::new(follow::Follower::new(&conn, hook)?);
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let thread = follow::spawn(at.clone(), follow.clone(), locks.clone(), stop.clone())
                    .map_err(|source| StoreError::Io {
                        path: "store-follower thread".into(),
                        source,
                    })?;
                follower = Some((stop, thread));
                AfterCommit::Follow(follow)
            }
            Some(hook) => AfterCommit::Hook(hook),
            None => AfterCommit::Nothing,
        };
        let (tx, rx) = mpsc::channel(MAX_GROUP * 2);
        let writer_locks = locks.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn({
                let at = at.clone();
                move || run_writer(conn, &at, rx, after, writer_locks)
            })
            .map_err(|source| StoreError::Io {
                path: "store-writer thread".into(),
                source,
            })?;
        Ok(Store {
            at,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            audit: Mutex::new(None),
            repeated: Mutex::new(HashMap::new()),
            lock: Mutex::new(Some(lock)),
            locks,
            reviewing: Mutex::new(()),
            follower: Mutex::new(follower),
        })
    }

    /// Copies the store at `from` into the empty store at `to` (SQLite to PostgreSQL or back)
    /// and checks the copy period by period (`pingan-hub migrate`; both hubs stopped).
    pub fn migrate(
        from: &StoreAt,
        to: &StoreAt,
        progress: impl FnMut(&str, u64),
    ) -> Result<migrate::Migrated, StoreError> {
        if !from.exists() {
            return Err(StoreError::Migrate(format!(
                "{} 没有 hub 的存储 (no hub store there)",
                from.shown()
            )));
        }
        let (source, destination) = (Db::open(from)?, Db::open(to)?);
        migrate::copy_store(&source, &destination, progress)
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
        let conn = self.connect()?;
        Locks::write(&conn, &record)?;
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
        let conn = self.connect()?;
        Ok(conn.all(
            &format!(
                "SELECT {} FROM lock_events WHERE period = ?1 OR ?1 IS NULL ORDER BY rowid",
                locks::COLUMNS
            ),
            args![period],
            locks::record,
        )?)
    }

    /// A new connection to the store, set up for writing.
    fn connect(&self) -> Result<Db, StoreError> {
        let conn = Db::open(&self.at)?;
        configure(&conn)?;
        Ok(conn)
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
        let conn = self.connect()?;
        conn.write(|tx| Store::decide_in(tx, e))
    }

    fn decide_in(tx: &Db, e: ReviewEvent) -> Result<ReviewEvent, StoreError> {
        if tx.is_postgres() {
            // two hub processes deciding at once: one is first, the other sees its decision
            tx.batch("SELECT pg_advisory_xact_lock(7231003)")?;
        }
        let current = tx
            .one(
                "SELECT MAX(revision) FROM revisions WHERE period = ?1 AND area = ?2",
                args![&e.period, &e.area],
                |r| r.opt_int(0),
            )?
            .flatten()
            .map(|v| v as u32);
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
        match review::latest(tx, &e.area, &e.period, e.revision)? {
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
        review::insert(tx, &e)?;
        Ok(e)
    }

    /// Records one attempt to send a reminder (催报) and its result.
    pub fn record_reminder(&self, r: &ReminderSend) -> Result<(), StoreError> {
        let conn = self.connect()?;
        conn.run(
            "INSERT INTO reminder_sends (at_ms, form, period, moment, township, attempt, ok, result, offices)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            args![
                r.at_ms,
                &r.form,
                &r.period,
                &r.moment,
                &r.township,
                r.attempt,
                r.ok,
                &r.result,
                r.offices
            ],
        )?;
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
        let conn = Db::open(&self.at)?;
        let n = conn
            .one(
                "SELECT COUNT(*) FROM reminder_sends WHERE form = ?1 AND period = ?2 AND moment = ?3 AND township = ?4 AND ok = 1",
                args![form, period, moment, township],
                |r| r.int(0),
            )?
            .unwrap_or(0);
        Ok(n > 0)
    }

    /// Every reminder attempt, oldest first.
    pub fn reminder_sends(&self) -> Result<Vec<ReminderSend>, StoreError> {
        let conn = Db::open(&self.at)?;
        Ok(conn.all(
            "SELECT at_ms, form, period, moment, township, attempt, ok, result, offices FROM reminder_sends ORDER BY rowid",
            &[],
            |r| {
                Ok(ReminderSend {
                    at_ms: r.int(0)?,
                    form: r.string(1)?,
                    period: r.string(2)?,
                    moment: r.string(3)?,
                    township: r.string(4)?,
                    attempt: r.u32(5)?,
                    ok: r.flag(6)?,
                    result: r.string(7)?,
                    offices: r.u32(8)?,
                })
            },
        )?)
    }

    /// Stores a validated report as the next revision of its (area, period), or returns the
    /// original receipt when its submission id was stored before. Returns once durable.
    pub async fn write(
        &self,
        report: ValidReport,
        sender: String,
        now_ms: i64,
    ) -> Result<pingan_domain::Receipt, StoreError> {
        self.write_sent(report, sender, now_ms, Sent::InBatch).await
    }

    /// [`Store::write`] of a report that came as `sent`.
    pub async fn write_sent(
        &self,
        report: ValidReport,
        sender: String,
        now_ms: i64,
        sent: Sent,
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
            sent,
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
        if let Some((stop, thread)) = self.follower.lock().expect("not poisoned").take() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = thread.join();
        }
        self.flush_repeated(i64::MAX);
        self.lock.lock().expect("not poisoned").take();
    }

    /// A read-only view of the store (its own connection; WAL lets it read while the writer writes).
    pub fn reader(&self) -> Result<StoreReader, StoreError> {
        StoreReader::open_at(&self.at)
    }

    /// Where the store is.
    pub fn at(&self) -> &StoreAt {
        &self.at
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

    use rusqlite::{Connection, OptionalExtension as _};

    use super::*;

    fn valid(id: &str, fraud: i64) -> ValidReport {
        valid_of(id, "510722101002", "2026-10", fraud)
    }

    pub(super) fn valid_of(id: &str, area: &str, period: &str, fraud: i64) -> ValidReport {
        let catalogue = Catalogue::builtin();
        let areas = fixtures::santai_areas();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let wire = pb::Report {
            submission_id: id.into(),
            area: area.into(),
            period: period.into(),
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

    /// Each store a test runs on, with its own data directory: SQLite, and PostgreSQL when
    /// [`db::TEST_POSTGRES`] names a server (a new database each time).
    pub(super) fn stores() -> Vec<(tempfile::TempDir, StoreAt)> {
        let sqlite = tempfile::tempdir().unwrap();
        let at = StoreAt::new(sqlite.path(), None);
        let mut out = vec![(sqlite, at)];
        if let Some(pg) = StoreAt::fresh_test_database() {
            out.push((tempfile::tempdir().unwrap(), pg));
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn revisions_idempotency_and_reopen() {
        for (dir, at) in stores() {
            revisions_idempotency_and_reopen_on(dir.path(), at).await;
        }
    }

    async fn revisions_idempotency_and_reopen_on(dir: &Path, at: StoreAt) {
        let store = Store::open_at(dir, at.clone(), None).unwrap();
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
        let store = Store::open_at(dir, at, None).unwrap();
        let r = store.reader().unwrap();
        assert_eq!(r.revision_count().unwrap(), 2);
        let cur = r
            .current("510722101002".parse().unwrap(), "2026-10".parse().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!((cur.revision, cur.values[0].total), (2, Some(2)));
    }

    /// The revisions table before the compact layout (and before it was keyed by period).
    const OLD_REVISIONS: &str = "
        CREATE TABLE revisions (
            area TEXT NOT NULL, period TEXT NOT NULL, revision INTEGER NOT NULL,
            submission_id TEXT NOT NULL UNIQUE, digest BLOB NOT NULL,
            received_at_ms INTEGER NOT NULL, sender TEXT NOT NULL, reporter TEXT NOT NULL,
            zero_report INTEGER NOT NULL, notes TEXT NOT NULL, warnings TEXT NOT NULL,
            vals BLOB NOT NULL,
            PRIMARY KEY (area, period, revision)
        ) WITHOUT ROWID;
        CREATE TABLE catalogue_use (metric TEXT NOT NULL, part TEXT NOT NULL,
            PRIMARY KEY (metric, part)) WITHOUT ROWID;";

    #[tokio::test]
    async fn an_older_store_is_rewritten_compactly_once_and_reads_the_same() {
        let uuid = "0b9f5c2e-3d4a-4f6b-8c7d-1e2f3a4b5c6d";
        let import = "import-00112233445566778899aabbccddeeff";
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(valid(uuid, 1), "spiffe://a".into(), 10)
            .await
            .unwrap();
        store
            .write(valid(import, 1_000_000_000), "import".into(), 20)
            .await
            .unwrap();
        store
            .write(valid("a-plain-id", 0), "spiffe://b".into(), 30)
            .await
            .unwrap();
        let mut before = Vec::new();
        store
            .reader()
            .unwrap()
            .for_each_revision(|r| before.push(r))
            .unwrap();
        assert_eq!(before.len(), 3);
        // the digests older stores kept (no longer read: a resend is told by its content)
        let digests = vec![vec![7u8; 32]; before.len()];
        store.close();
        // the same revisions in the layout stores had before: protobuf values with their
        // names, text ids and senders, keyed by area first, no counts, a catalogue_use table
        // holding a pair no revision carries (a refused report's, say)
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(
            "DROP TABLE revisions; DROP TABLE value_keys; DROP TABLE names;
             DROP TABLE period_revisions; DROP TABLE department_revisions;",
        )
        .unwrap();
        conn.execute_batch(OLD_REVISIONS).unwrap();
        for (r, digest) in before.iter().zip(&digests) {
            let vals = pb::StoredValues {
                values: r.values.iter().map(Into::into).collect(),
                rollup: None,
            };
            conn.execute(
                "INSERT INTO revisions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                rusqlite::params![
                    r.area,
                    r.period,
                    r.revision,
                    r.submission_id,
                    digest,
                    r.received_at_ms,
                    r.sender,
                    r.reporter,
                    r.zero_report,
                    r.notes,
                    serde_json::to_string(&r.warnings).unwrap(),
                    prost::Message::encode_to_vec(&vals)
                ],
            )
            .unwrap();
        }
        conn.execute_batch(
            // the pair the revisions carry (cases.fraud) is numbered from them while rewriting
            "INSERT INTO catalogue_use VALUES ('disputes.identified', '邻里纠纷');",
        )
        .unwrap();
        drop(conn);

        let store = Store::open(dir.path()).unwrap();
        let r = store.reader().unwrap();
        let mut after = Vec::new();
        r.for_each_revision(|x| after.push(x)).unwrap();
        assert_eq!(after, before);
        assert_eq!(
            r.catalogue_use().unwrap(),
            vec![
                ("cases.fraud".to_owned(), String::new()),
                ("disputes.identified".to_owned(), "邻里纠纷".to_owned())
            ]
        );
        assert_eq!(
            r.revisions_per_period().unwrap(),
            vec![("2026-10".to_owned(), 3)]
        );
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
        let kept: Vec<(String, i64, i64)> = conn
            .prepare("SELECT typeof(submission_id), length(submission_id), typeof(sender) FROM revisions ORDER BY revision")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?.len() as i64)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            kept,
            vec![
                ("blob".into(), 16, 7),
                ("blob".into(), 17, 7),
                ("text".into(), 10, 7)
            ]
        );
        let gone: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE name = 'catalogue_use'",
                [],
                |r| r.get(0),
            )
            .optional()
            .unwrap();
        assert_eq!(gone, None);
        // still idempotent (same id, same content), a reused id still refused, counts go on
        let again = store
            .write(valid(uuid, 1), "spiffe://a".into(), 40)
            .await
            .unwrap();
        assert_eq!((again.revision, again.duplicate), (1, true));
        assert!(matches!(
            store.write(valid(import, 5), "import".into(), 50).await,
            Err(StoreError::IdReused(_))
        ));
        store
            .write(valid("next", 9), "spiffe://c".into(), 60)
            .await
            .unwrap();
        assert_eq!(
            r.revisions_per_period().unwrap(),
            vec![("2026-10".to_owned(), 4)]
        );
        // opened again: nothing more to rewrite
        store.close();
        let store = Store::open(dir.path()).unwrap();
        let mut last = Vec::new();
        store
            .reader()
            .unwrap()
            .for_each_revision(|x| last.push(x))
            .unwrap();
        assert_eq!(&last[..3], &before[..]);
        assert_eq!(last[3].sender, "spiffe://c");
    }

    /// (area, revision, first received, (metric, part, figure) sorted).
    type FiguresOf = (String, u32, i64, Vec<(String, String, i64)>);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_current_figures_in_one_pass_are_the_current_revisions() {
        for (dir, at) in stores() {
            current_figures_on(dir.path(), at).await;
        }
    }

    async fn current_figures_on(dir: &Path, at: StoreAt) {
        let store = Store::open_at(dir, at, None).unwrap();
        let areas = ["510722101003", "510722101002", "510722104003", "510722"];
        let mut n = 0;
        // corrections of some areas, interleaved with other areas' reports and another period
        for round in 0..4 {
            for (i, area) in areas.iter().enumerate() {
                if round > i {
                    continue;
                }
                for period in ["2026-09", "2026-10"] {
                    n += 1;
                    store
                        .write(
                            valid_of(&format!("id-{n}"), area, period, n),
                            "t".into(),
                            n * 10,
                        )
                        .await
                        .unwrap();
                }
            }
        }
        let r = store.reader().unwrap();
        for period in ["2026-09", "2026-10"] {
            let p: Period = period.parse().unwrap();
            let mut plain = Vec::new();
            r.for_each_current_of(p, |rec, first| {
                plain.push(CurrentFigures {
                    area: rec.area,
                    revision: rec.revision,
                    received_at_ms: rec.received_at_ms,
                    first_received_at_ms: first,
                    zero_report: rec.zero_report,
                    values: rec.values,
                    rollup: rec.rollup,
                })
            })
            .unwrap();
            plain.sort_by(|a, b| a.area.cmp(&b.area));
            let mut pass = Vec::new();
            r.for_each_current_figures(p, |c| pass.push(c)).unwrap();
            assert_eq!(pass, plain);
            // by pair number: the same rows, each figure the named one's
            let names = r.map_pairs(|m, p| (m.to_owned(), p.to_owned()));
            let mut numbered = Vec::new();
            r.for_each_current_numbered(p, |c| {
                let LeafFigures::Numbered(figures) = c.figures else {
                    panic!("{} stored compactly", c.area)
                };
                let figures: Vec<(String, String, i64)> = figures
                    .iter()
                    .map(|(pair, n)| {
                        let (m, part) = names[*pair as usize].clone();
                        (m, part, *n)
                    })
                    .collect();
                numbered.push((
                    c.area.to_owned(),
                    c.revision,
                    c.first_received_at_ms,
                    figures,
                ));
            })
            .unwrap();
            let named: Vec<_> = pass
                .iter()
                .map(|c| {
                    let mut figures = Vec::new();
                    for v in &c.values {
                        let total = v.total.unwrap_or_else(|| v.parts.values().sum());
                        figures.push((v.metric.to_string(), String::new(), total));
                        for (part, n) in &v.parts {
                            figures.push((v.metric.to_string(), part.clone(), *n));
                        }
                    }
                    (c.area.clone(), c.revision, c.first_received_at_ms, figures)
                })
                .collect();
            let sorted = |mut rows: Vec<FiguresOf>| {
                for row in &mut rows {
                    row.3.sort();
                }
                rows
            };
            assert_eq!(sorted(numbered), sorted(named));
            let revisions: Vec<u32> = pass.iter().map(|c| c.revision).collect();
            // sorted by area: 510722 (4 revisions), ...101002 (2), ...101003 (1), ...104003 (3)
            assert_eq!(revisions, vec![4, 2, 1, 3]);
            assert!(
                pass.iter()
                    .all(|c| c.first_received_at_ms < c.received_at_ms || c.revision == 1)
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits_and_all_land() {
        for (dir, at) in stores() {
            concurrent_writes_on(dir.path(), at).await;
        }
    }

    async fn concurrent_writes_on(dir: &Path, at: StoreAt) {
        let store = std::sync::Arc::new(Store::open_at(dir, at, None).unwrap());
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

    /// Every revision, with its audit fields, as the reader gives them back.
    fn all_revisions(at: &StoreAt) -> Vec<RevisionRecord> {
        let mut out = Vec::new();
        StoreReader::open_at(at)
            .unwrap()
            .for_each_revision(|r| out.push(r))
            .unwrap();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_migrates_to_postgres_and_back_and_checks_the_same() {
        let first = tempfile::tempdir().unwrap();
        let store = Store::open(first.path()).unwrap();
        let uuid = "0b9f5c2e-3d4a-4f6b-8c7d-1e2f3a4b5c6d";
        let import = "import-00112233445566778899aabbccddeeff";
        store
            .write(valid(uuid, 1), "spiffe://a".into(), 10)
            .await
            .unwrap();
        store
            .write(valid(import, 7), "import".into(), 20)
            .await
            .unwrap();
        store
            .write(
                valid_of("c", "510722101003", "2026-09", 3),
                "spiffe://b".into(),
                30,
            )
            .await
            .unwrap();
        store
            .decide(ReviewEvent {
                area: "510722101002".into(),
                period: "2026-10".into(),
                revision: 2,
                approved: true,
                by: "潼川镇".into(),
                identity: "pingan://viewer/510722101".into(),
                at_ms: 40,
                reason: String::new(),
            })
            .unwrap();
        store
            .record_refusal(
                "pingan://node/510722104001",
                "submit",
                "510722101002",
                "不是本辖区",
            )
            .unwrap();
        store.close();
        drop(store);
        let before = all_revisions(&StoreAt::new(first.path(), None));
        assert_eq!(before.len(), 3);

        // to PostgreSQL when the suite has one, else to another SQLite store; then back
        let middle_dir = tempfile::tempdir().unwrap();
        let middle =
            StoreAt::fresh_test_database().unwrap_or_else(|| StoreAt::new(middle_dir.path(), None));
        let copied = Store::migrate(&StoreAt::new(first.path(), None), &middle, |_, _| {}).unwrap();
        assert!(copied.verified());
        assert_eq!(
            copied
                .periods
                .iter()
                .map(|(a, b)| (a.period.as_str(), a.revisions, b.revisions))
                .collect::<Vec<_>>(),
            vec![("2026-09", 1, 1), ("2026-10", 2, 2)]
        );
        assert_eq!(all_revisions(&middle), before);
        let r = StoreReader::open_at(&middle).unwrap();
        assert_eq!(r.refusals().unwrap().len(), 1);
        assert_eq!(r.review_events("510722101002", "2026-10").unwrap().len(), 1);
        drop(r);
        // into a store that holds something: refused, nothing touched
        let again = Store::migrate(&StoreAt::new(first.path(), None), &middle, |_, _| {});
        assert!(matches!(again, Err(StoreError::Migrate(_))), "{again:?}");

        // the copy takes new reports: a new sender is numbered after the copied ones, a resend
        // is still answered with its original receipt
        let work = tempfile::tempdir().unwrap();
        let store = Store::open_at(work.path(), middle.clone(), None).unwrap();
        let resent = store
            .write(valid(uuid, 1), "spiffe://a".into(), 50)
            .await
            .unwrap();
        assert_eq!(
            (resent.revision, resent.duplicate, resent.accepted_at_ms),
            (1, true, 10)
        );
        let next = store
            .write(valid("d", 9), "spiffe://new".into(), 60)
            .await
            .unwrap();
        assert_eq!(next.revision, 3);
        store.close();
        drop(store);
        let after = all_revisions(&middle);
        assert_eq!(after.len(), 4);
        assert_eq!(after[2].sender, "spiffe://new");
        assert_eq!(after[0].sender, "spiffe://a");

        // and back into SQLite: the same revisions, the new one included
        let last = tempfile::tempdir().unwrap();
        let back = Store::migrate(&middle, &StoreAt::new(last.path(), None), |_, _| {}).unwrap();
        assert!(back.verified());
        assert_eq!(all_revisions(&StoreAt::new(last.path(), None)), after);
    }
}
