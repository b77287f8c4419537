//! Several hub processes on one PostgreSQL store: each keeps its rollups current with every
//! process's commits, its own included, by reading the revisions in commit order. Each revision
//! gets a number from a sequence as it is written (`revisions.seq`); writers take turns on the
//! writers' lock and a transaction takes its numbers while holding it, so the numbers are in
//! commit order and "everything after the last one applied" misses nothing and needs no gap
//! handling. A process's writer catches up right after each commit, before its receipts are
//! sent (a query after a receipt sees the report, as on SQLite); a thread of its own catches
//! up with the other processes' commits every [`EVERY`], and takes their locks (锁定) too.
//! Applying a revision twice changes nothing: the rollups ignore a revision they hold already.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use pingan_domain::rollup::Value;

use super::{
    CommitHook, Committed, Prior, StoreAt, StoreError,
    compact::{self, Unreadable, ValueKeys},
    db::{Db, DbError, args},
    locks::Locks,
};

/// How often a process looks for the other processes' commits.
pub(super) const EVERY: Duration = Duration::from_millis(200);

/// Most revisions read in one go.
const BATCH: i64 = 5_000;

/// The commits a process has applied, and the hook that applies more.
pub(crate) struct Follower {
    hook: CommitHook,
    state: Mutex<Applied>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").finish_non_exhaustive()
    }
}

/// The last sequence number applied, and the numbered pairs to decode with.
struct Applied {
    last: i64,
    keys: ValueKeys,
}

impl Follower {
    /// Starts after everything committed so far (what the rollups load at start-up).
    pub(crate) fn new(db: &Db, hook: CommitHook) -> Result<Follower, StoreError> {
        let last = db
            .one("SELECT COALESCE(MAX(seq), 0) FROM revisions", &[], |r| {
                r.int(0)
            })?
            .unwrap_or(0);
        Ok(Follower {
            hook,
            state: Mutex::new(Applied {
                last,
                keys: ValueKeys::load(db)?,
            }),
        })
    }

    /// Applies every revision committed after the last one applied, in commit order; how many.
    pub(crate) fn catch_up(&self, db: &Db) -> Result<usize, StoreError> {
        let mut applied = self.state.lock().expect("not poisoned");
        let mut total = 0;
        loop {
            let rows = db.all(
                "SELECT r.seq, r.area, r.period, r.revision, r.received_at_ms, r.zero_report, r.vals,
                        (SELECT f.received_at_ms FROM revisions f
                         WHERE f.period = r.period AND f.area = r.area AND f.revision = 1),
                        p.zero_report, p.vals
                 FROM revisions r
                 LEFT JOIN revisions p
                   ON p.period = r.period AND p.area = r.area AND p.revision = r.revision - 1
                 WHERE r.seq > ?1 ORDER BY r.seq LIMIT ?2",
                args![applied.last, BATCH],
                |r| {
                    Ok(Row {
                        seq: r.int(0)?,
                        area: r.string(1)?,
                        period: r.string(2)?,
                        revision: r.u32(3)?,
                        received_at_ms: r.int(4)?,
                        zero_report: r.flag(5)?,
                        vals: r.bytes(6)?.to_vec(),
                        first_received_at_ms: r.opt_int(7)?,
                        previous: match r.opt_flag(8)? {
                            Some(zero) => Some((zero, r.bytes(9)?.to_vec())),
                            None => None,
                        },
                    })
                },
            )?;
            let n = rows.len();
            let mut committed = Vec::with_capacity(n);
            for row in rows {
                applied.last = row.seq;
                match row.committed(&mut applied.keys, db) {
                    Ok(c) => committed.push(c),
                    // not a code or period of ours, or unreadable: the rebuild at the next
                    // start names it; the others go on
                    Err(e) => {
                        tracing::warn!(error = %e, "a revision another hub process committed was not rolled up")
                    }
                }
            }
            if !committed.is_empty() {
                (self.hook)(&committed);
            }
            total += n;
            if (n as i64) < BATCH {
                return Ok(total);
            }
        }
    }
}

/// A revision as read for the rollups, with the one it replaced.
struct Row {
    seq: i64,
    area: String,
    period: String,
    revision: u32,
    received_at_ms: i64,
    zero_report: bool,
    vals: Vec<u8>,
    first_received_at_ms: Option<i64>,
    previous: Option<(bool, Vec<u8>)>,
}

/// Stored values decoded, the pairs loaded again once if they name one numbered since.
fn decode(
    vals: &[u8],
    keys: &mut ValueKeys,
    db: &Db,
) -> Result<pingan_domain::pb::StoredValues, StoreError> {
    match compact::decode(vals, keys) {
        Err(Unreadable::UnknownKey(_) | Unreadable::UnknownShape(_)) => {
            *keys = ValueKeys::load(db)?;
            compact::decode(vals, keys).map_err(|e| StoreError::Db(DbError::Bad(e.to_string())))
        }
        other => other.map_err(|e| StoreError::Db(DbError::Bad(e.to_string()))),
    }
}

impl Row {
    fn committed(self, keys: &mut ValueKeys, db: &Db) -> Result<Committed, StoreError> {
        let bad = |what: String| StoreError::Corrupt {
            area: self.area.clone(),
            period: self.period.clone(),
            reason: what,
        };
        let area = self.area.parse().map_err(|e| bad(format!("{e}")))?;
        let period = self.period.parse().map_err(|e| bad(format!("{e}")))?;
        let stored = decode(&self.vals, keys, db)?;
        let previous = match &self.previous {
            Some((zero_report, vals)) => {
                let before = decode(vals, keys, db)?;
                Some(Prior {
                    zero_report: *zero_report,
                    values: before.values.into_iter().map(Value::from).collect(),
                    rollup: before.rollup.map(Into::into),
                })
            }
            None => None,
        };
        Ok(Committed {
            area,
            period,
            revision: self.revision,
            received_at_ms: self.received_at_ms,
            first_received_at_ms: self.first_received_at_ms.unwrap_or(self.received_at_ms),
            zero_report: self.zero_report,
            values: stored.values.into_iter().map(Value::from).collect(),
            rollup: stored.rollup.map(Into::into),
            previous,
        })
    }
}

/// The thread that follows the other processes' commits and locks until `stop` is set.
pub(crate) fn spawn(
    at: StoreAt,
    follower: Arc<Follower>,
    locks: Arc<Mutex<Locks>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("store-follower".into())
        .spawn(move || {
            let mut conn: Option<Db> = None;
            let mut lock_events = -1i64;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EVERY);
                let db = match conn.take() {
                    Some(db) => db,
                    None => match Db::open(&at) {
                        Ok(db) => db,
                        Err(e) => {
                            tracing::warn!(error = %e, "following the store: no connection; trying again");
                            continue;
                        }
                    },
                };
                let followed = follower
                    .catch_up(&db)
                    .and_then(|_| take_locks(&db, &locks, &mut lock_events));
                match followed {
                    Ok(()) => conn = Some(db),
                    Err(e) => {
                        tracing::warn!(error = %e, "following the store's commits failed; trying again")
                    }
                }
            }
        })
}

/// Loads the locks again when another process locked or unlocked something since.
fn take_locks(db: &Db, locks: &Mutex<Locks>, seen: &mut i64) -> Result<(), StoreError> {
    let count = || -> Result<i64, StoreError> {
        Ok(db
            .one("SELECT COUNT(*) FROM lock_events", &[], |r| r.int(0))?
            .unwrap_or(0))
    };
    if count()? == *seen {
        return Ok(());
    }
    // read while holding the locks: a lock this process sets meanwhile (written and kept while
    // holding them too) is then either in what is read or set after it, never undone by it
    let mut held = locks.lock().expect("not poisoned");
    let events = count()?;
    held.take_records(Locks::load(db)?);
    *seen = events;
    Ok(())
}
