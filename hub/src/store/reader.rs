//! Read-only access to the stored revisions: each reader its own connection (WAL lets it
//! read while the writer writes).

use std::{cell::RefCell, path::Path};

use super::db::{Arg, Db, DbError, Row, StoreAt, args};

use pingan_domain::{
    AreaCode, Period, pb,
    rollup::{Rollup, Value},
};
use rusqlite::OpenFlags;

use super::{
    Owner, Refusal, StoreError,
    compact::{self, Unreadable, ValueKeys},
};

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
    pub values: Vec<Value>,
    /// A child hub's forwarded rollup (federation); `values` are then the area's own report.
    pub rollup: Option<Rollup>,
}

/// A village's figures as [`StoreReader::village_figures_under`] reads them.
#[derive(Debug)]
pub enum LeafFigures<'a> {
    /// (pair number, figure): each metric's total (or its parts' sum) and then its parts.
    Numbered(&'a [(u32, i64)]),
    /// A value list kept as protobuf (older stores, forwarded records), named.
    Named(Vec<Value>),
}

/// Read-only access to the stored revisions.
#[derive(Debug)]
pub struct StoreReader {
    conn: Db,
    /// The numbered (metric, part) pairs stored values name, loaded again when a value names
    /// one numbered since.
    keys: RefCell<ValueKeys>,
}

/// PostgreSQL's planner told to read a period's rows along the key ([`StoreReader::for_each_current_row`]),
/// and told so no more.
const BY_THE_KEY: &str = "SET enable_seqscan = off; SET enable_bitmapscan = off";
const PLANNER_AS_SET: &str = "RESET enable_seqscan; RESET enable_bitmapscan";

/// The columns [`StoreReader::record`] reads, names given back their text.
const COLUMNS: &str = "area, period, revision, submission_id, received_at_ms,
    (SELECT text FROM names WHERE id = sender), (SELECT text FROM names WHERE id = reporter),
    zero_report, notes, warnings, vals";

fn unreadable(column: usize, e: Unreadable) -> DbError {
    DbError::Bad(format!("column {column}: {e}"))
}

/// The last row read of the area a walk is on, and when its revision 1 (its first row) came.
#[derive(Debug, Default)]
struct LastRow {
    area: String,
    revision: u32,
    received_at_ms: i64,
    first_received_at_ms: i64,
    zero_report: bool,
    vals: Vec<u8>,
}

impl LastRow {
    fn row(&self) -> CurrentRow<'_> {
        CurrentRow {
            area: &self.area,
            revision: self.revision,
            received_at_ms: self.received_at_ms,
            first_received_at_ms: self.first_received_at_ms,
            zero_report: self.zero_report,
            vals: &self.vals,
        }
    }
}

/// A current revision as stored, its values not decoded.
struct CurrentRow<'a> {
    area: &'a str,
    revision: u32,
    received_at_ms: i64,
    first_received_at_ms: i64,
    zero_report: bool,
    vals: &'a [u8],
}

/// A current revision's figures by pair number (or named), as a rebuild of the rollups takes
/// them: no audit fields.
#[derive(Debug)]
pub struct CurrentNumbered<'a> {
    pub area: &'a str,
    pub revision: u32,
    pub received_at_ms: i64,
    /// When revision 1 arrived.
    pub first_received_at_ms: i64,
    pub zero_report: bool,
    pub figures: LeafFigures<'a>,
    /// A child hub's forwarded rollup (its figures then come named).
    pub rollup: Option<Rollup>,
}

/// A current revision's figures, named: what the numbered pass is checked against in tests.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentFigures {
    pub area: String,
    pub revision: u32,
    pub received_at_ms: i64,
    /// When revision 1 arrived.
    pub first_received_at_ms: i64,
    pub zero_report: bool,
    pub values: Vec<Value>,
    pub rollup: Option<Rollup>,
}

impl StoreReader {
    /// Opens a read-only connection to the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<StoreReader, StoreError> {
        StoreReader::open_at(&StoreAt::Sqlite(path.to_owned()))
    }

    /// Opens a connection to the store at `at` to read it.
    pub fn open_at(at: &StoreAt) -> Result<StoreReader, StoreError> {
        let conn = match at {
            StoreAt::Sqlite(path) => {
                let conn = rusqlite::Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(30))?;
                // 32 MiB of pages per reader (the default is 2 MiB): a county's villages over a
                // few periods stay cached between questions (readers are pooled, at most 8)
                conn.pragma_update(None, "cache_size", -32768)?;
                conn.set_prepared_statement_cache_capacity(64);
                Db::Sqlite(conn)
            }
            StoreAt::Postgres(_) => Db::open(at)?,
        };
        let keys = RefCell::new(ValueKeys::load(&conn)?);
        Ok(StoreReader { conn, keys })
    }

    /// Whether the connection still answers (always, for SQLite's file; a PostgreSQL
    /// connection dies with its server).
    pub fn alive(&self) -> bool {
        !self.conn.is_postgres() || self.conn.batch("SELECT 1").is_ok()
    }

    /// Stored values, decoded against the numbered pairs (loaded again once if they name a
    /// pair numbered after this reader loaded them).
    fn decode(&self, blob: &[u8]) -> Result<pb::StoredValues, Unreadable> {
        let first = compact::decode(blob, &self.keys.borrow());
        match first {
            Err(Unreadable::UnknownKey(_) | Unreadable::UnknownShape(_)) => {
                let fresh = ValueKeys::load(&self.conn)
                    .map_err(|e| Unreadable::Bad(format!("reading value_keys: {e}")))?;
                *self.keys.borrow_mut() = fresh;
                compact::decode(blob, &self.keys.borrow())
            }
            other => other,
        }
    }

    /// One revision as [`COLUMNS`] select it.
    fn record(&self, row: &Row<'_>) -> Result<RevisionRecord, DbError> {
        let vals = row.bytes(10)?;
        let stored = self.decode(vals).map_err(|e| unreadable(10, e))?;
        Ok(RevisionRecord {
            area: row.string(0)?,
            period: row.string(1)?,
            revision: row.u32(2)?,
            submission_id: row.submission_id(3)?,
            received_at_ms: row.int(4)?,
            sender: row.opt_text(5)?.unwrap_or_default().to_owned(),
            reporter: row.opt_text(6)?.unwrap_or_default().to_owned(),
            zero_report: row.flag(7)?,
            notes: row.string(8)?,
            warnings: compact::warnings_read(row.text(9)?),
            values: stored.values.into_iter().map(Value::from).collect(),
            rollup: stored.rollup.map(Rollup::from),
        })
    }

    /// Every revision of an (area, period), oldest first: the audit trail.
    pub fn revisions(
        &self,
        area: AreaCode,
        period: Period,
    ) -> Result<Vec<RevisionRecord>, StoreError> {
        Ok(self.conn.all(
            &format!(
                "SELECT {COLUMNS} FROM revisions WHERE area = ?1 AND period = ?2 ORDER BY revision"
            ),
            args![&area.to_string(), &period.to_string()],
            |r| self.record(r),
        )?)
    }

    /// The current (latest) revision of an (area, period).
    pub fn current(
        &self,
        area: AreaCode,
        period: Period,
    ) -> Result<Option<RevisionRecord>, StoreError> {
        Ok(self.revisions(area, period)?.pop())
    }

    /// Calls `f` with the current revision of every area for `period`, and the time its
    /// revision 1 arrived.
    pub fn for_each_current_of(
        &self,
        period: Period,
        f: impl FnMut(RevisionRecord, i64),
    ) -> Result<(), StoreError> {
        self.current_of("revisions", period, f)
    }

    /// The current revision of every department's (条) report for `period` (`area` holds the
    /// department's id), with the time its revision 1 arrived.
    pub fn department_currents(
        &self,
        period: Period,
    ) -> Result<Vec<(RevisionRecord, i64)>, StoreError> {
        let mut out = Vec::new();
        self.current_of(super::schema::DEPARTMENT_REVISIONS, period, |r, first| {
            out.push((r, first))
        })?;
        Ok(out)
    }

    /// Calls `f` with the figures of every area's current revision for `period`: one pass over
    /// the period's rows in key order (period, area, revision), no subquery per row, only the
    /// current revisions decoded. The reference the numbered pass is checked against.
    #[cfg(test)]
    pub fn for_each_current_figures(
        &self,
        period: Period,
        mut f: impl FnMut(CurrentFigures),
    ) -> Result<(), StoreError> {
        self.for_each_current_row(period, None, |row| {
            let stored = self.decode(row.vals).map_err(|e| unreadable(4, e))?;
            f(CurrentFigures {
                area: row.area.to_owned(),
                revision: row.revision,
                received_at_ms: row.received_at_ms,
                first_received_at_ms: row.first_received_at_ms,
                zero_report: row.zero_report,
                values: stored.values.into_iter().map(Value::from).collect(),
                rollup: stored.rollup.map(Rollup::from),
            });
            Ok(())
        })
    }

    /// Calls `f` with the figures of every area's current revision for `period`, in one pass
    /// over the period's rows in key order, by pair number as stored (see
    /// [`StoreReader::map_pairs`]): nothing named or allocated per figure. A value list kept as
    /// protobuf (older stores, forwarded rollups) comes named, with its rollup. What a start
    /// without a snapshot reads.
    pub fn for_each_current_numbered(
        &self,
        period: Period,
        mut f: impl FnMut(CurrentNumbered<'_>),
    ) -> Result<(), StoreError> {
        let mut figures = Vec::new();
        self.for_each_current_row(period, None, |row| {
            let (figures, rollup) = if self
                .numbered(row.vals, &mut figures)
                .map_err(|e| unreadable(4, e))?
            {
                (LeafFigures::Numbered(&figures), None)
            } else {
                let stored = self.decode(row.vals).map_err(|e| unreadable(4, e))?;
                (
                    LeafFigures::Named(stored.values.into_iter().map(Value::from).collect()),
                    stored.rollup.map(Rollup::from),
                )
            };
            f(CurrentNumbered {
                area: row.area,
                revision: row.revision,
                received_at_ms: row.received_at_ms,
                first_received_at_ms: row.first_received_at_ms,
                zero_report: row.zero_report,
                figures,
                rollup,
            });
            Ok(())
        })
    }

    /// Each area's current revision for `period` (of the areas in `[from, to)` when given), its
    /// values not decoded: the rows are read in key order (period, area, revision) and an
    /// area's last one is handed on, with the time its revision 1 (its first row) arrived.
    fn for_each_current_row(
        &self,
        period: Period,
        areas: Option<(&str, &str)>,
        mut f: impl FnMut(CurrentRow<'_>) -> Result<(), DbError>,
    ) -> Result<(), StoreError> {
        let period = period.to_string();
        let (sql, params) = match areas {
            Some((from, to)) => (
                "SELECT area, revision, received_at_ms, zero_report, vals FROM revisions
                 WHERE period = ?1 AND area >= ?2 AND area < ?3 ORDER BY area, revision",
                args![period.as_str(), from, to],
            ),
            None => (
                "SELECT area, revision, received_at_ms, zero_report, vals FROM revisions
                 WHERE period = ?1 ORDER BY area, revision",
                args![period.as_str()],
            ),
        };
        // PostgreSQL plans a period's rows as a parallel scan of the whole table and a sort (its
        // statistics see each period's areas scattered over the table), where walking the key's
        // index gives them in order: measured on the 24 national months, 1.4–1.7 s a period
        // against 0.4–0.7 s, and the scan's workers took the cores the hub decodes on (a first
        // start 64–73 s). The key's order is asked for, for this statement only.
        let guided = self.conn.is_postgres();
        if guided {
            self.conn.batch(BY_THE_KEY)?;
        }
        let read = self.each_current_row(sql, params, &mut f);
        let reset = match guided {
            true => self.conn.batch(PLANNER_AS_SET),
            false => Ok(()),
        };
        // the read's own failure is the one to tell
        read?;
        Ok(reset?)
    }

    fn each_current_row(
        &self,
        sql: &str,
        params: &[Arg<'_>],
        f: &mut impl FnMut(CurrentRow<'_>) -> Result<(), DbError>,
    ) -> Result<(), StoreError> {
        let mut last: Option<LastRow> = None;
        self.conn.each(sql, params, |row| {
            let area = row.text(0)?;
            let received = row.int(2)?;
            match &mut last {
                Some(l) if l.area == area => {}
                Some(l) => {
                    f(l.row())?;
                    l.area.clear();
                    l.area.push_str(area);
                    l.first_received_at_ms = received;
                }
                None => {
                    last = Some(LastRow {
                        area: area.to_owned(),
                        first_received_at_ms: received,
                        ..LastRow::default()
                    })
                }
            }
            let l = last.as_mut().expect("set above");
            l.revision = row.u32(1)?;
            l.received_at_ms = received;
            l.zero_report = row.flag(3)?;
            l.vals.clear();
            l.vals.extend_from_slice(row.bytes(4)?);
            Ok(())
        })?;
        if let Some(l) = &last {
            f(l.row())?;
        }
        Ok(())
    }

    /// Every revision of a department's report for `period`, oldest first: its audit trail.
    pub fn department_revisions(
        &self,
        department: &str,
        period: Period,
    ) -> Result<Vec<RevisionRecord>, StoreError> {
        Ok(self.conn.all(
            &format!(
                "SELECT {COLUMNS} FROM {} WHERE area = ?1 AND period = ?2 ORDER BY revision",
                super::schema::DEPARTMENT_REVISIONS
            ),
            args![department, &period.to_string()],
            |r| self.record(r),
        )?)
    }

    /// Every (department, period) with a stored report.
    pub fn department_keys(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self.conn.all(
            &format!(
                "SELECT DISTINCT area, period FROM {}",
                super::schema::DEPARTMENT_REVISIONS
            ),
            &[],
            |r| Ok((r.string(0)?, r.string(1)?)),
        )?)
    }

    fn current_of(
        &self,
        table: &str,
        period: Period,
        mut f: impl FnMut(RevisionRecord, i64),
    ) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT {COLUMNS}, (SELECT received_at_ms FROM {table} WHERE area = r.area AND period = r.period AND revision = 1)
             FROM {table} r WHERE period = ?1
             AND revision = (SELECT MAX(revision) FROM {table} WHERE area = r.area AND period = r.period)"
        );
        self.each_with_first(&sql, period, &mut f)
    }

    /// Calls `f` with every row `sql` (selecting [`COLUMNS`] and the time revision 1 arrived,
    /// for `?1` = `period`) gives.
    fn each_with_first(
        &self,
        sql: &str,
        period: Period,
        f: &mut impl FnMut(RevisionRecord, i64),
    ) -> Result<(), StoreError> {
        self.conn.each(sql, args![&period.to_string()], |row| {
            f(self.record(row)?, row.int(11)?);
            Ok(())
        })?;
        Ok(())
    }

    /// How many revisions each period has stored. Revisions are only ever added, so an equal
    /// count means the same revisions.
    pub fn revisions_per_period(&self) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(self.conn.all(
            "SELECT period, revisions FROM period_revisions ORDER BY period",
            &[],
            |row| Ok((row.string(0)?, row.int(1)? as u64)),
        )?)
    }

    /// Runs `f` in one read transaction: everything it reads sees one state of the store.
    pub fn read_consistently<T>(
        &mut self,
        f: impl FnOnce(&StoreReader) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let begin = if self.conn.is_postgres() {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        } else {
            "BEGIN"
        };
        self.conn.batch(begin)?;
        let out = f(self);
        self.conn
            .batch(if out.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
        out
    }

    /// Calls `f` with every stored revision, ordered by area, period and revision (the table
    /// itself is keyed by period first).
    pub fn for_each_revision(&self, mut f: impl FnMut(RevisionRecord)) -> Result<(), StoreError> {
        self.conn.each(
            &format!("SELECT {COLUMNS} FROM revisions ORDER BY area, period, revision"),
            &[],
            |r| {
                f(self.record(r)?);
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Villages' current (or approved, 审核) figures for `period` under `under`, each handed to
    /// `each` with its zero-report flag: by pair number as stored (see
    /// [`StoreReader::map_pairs`]; nothing named or allocated per figure), or named for a value
    /// list kept as protobuf. A code that does not parse is no village of the registry's, and
    /// is passed over.
    pub fn village_figures_under(
        &self,
        under: AreaCode,
        period: Period,
        approved: bool,
        mut each: impl FnMut(AreaCode, bool, LeafFigures<'_>),
    ) -> Result<(), StoreError> {
        // codes are digits, so every code with the prefix sorts in [prefix, prefix + ':')
        let prefix = under.to_string();
        let end = format!("{prefix}:");
        let mut figures = Vec::new();
        let mut hand_on = |area: &str, zero_report: bool, blob: &[u8]| -> Result<(), DbError> {
            let Ok(code) = area.parse::<AreaCode>() else {
                return Ok(());
            };
            if self
                .numbered(blob, &mut figures)
                .map_err(|e| unreadable(2, e))?
            {
                each(code, zero_report, LeafFigures::Numbered(&figures));
            } else {
                let stored = self.decode(blob).map_err(|e| unreadable(2, e))?;
                let values = stored.values.into_iter().map(Value::from).collect();
                each(code, zero_report, LeafFigures::Named(values));
            }
            Ok(())
        };
        if !approved {
            // one walk of the range in key order, an area's last row handed on: no subquery
            // for each row's latest revision (which was most of this question's time)
            return self.for_each_current_row(period, Some((&prefix, &end)), |row| {
                if row.area.len() != 12 {
                    return Ok(());
                }
                hand_on(row.area, row.zero_report, row.vals)
            });
        }
        self.conn.each(
            "SELECT area, zero_report, vals FROM revisions r
             JOIN (SELECT area AS a_area, MAX(revision) AS a_rev FROM review_events
                   WHERE period = ?3 AND area >= ?1 AND area < ?2 AND length(area) = 12
                   AND approved = 1 GROUP BY area) a
             ON area = a_area AND revision = a_rev
             WHERE period = ?3",
            args![prefix.as_str(), end.as_str(), &period.to_string()],
            |row| hand_on(row.text(0)?, row.flag(1)?, row.bytes(2)?),
        )?;
        Ok(())
    }

    /// `f` of every numbered (metric, part) pair (part empty for a total), by number: what
    /// [`LeafFigures::Numbered`] names its figures by. A pair numbered after this reader loaded
    /// them is past the end until a row names it (the reader loads them again then).
    pub fn map_pairs<T>(&self, f: impl Fn(&str, &str) -> T) -> Vec<T> {
        self.keys
            .borrow()
            .pairs()
            .iter()
            .map(|(m, p)| f(m, p))
            .collect()
    }

    /// [`compact::numbered_figures`] into `out` (cleared first), the pairs loaded again once
    /// if the values name one numbered since.
    fn numbered(&self, blob: &[u8], out: &mut Vec<(u32, i64)>) -> Result<bool, Unreadable> {
        out.clear();
        let first = compact::numbered_figures(blob, &self.keys.borrow(), out);
        match first {
            Err(Unreadable::UnknownKey(_) | Unreadable::UnknownShape(_)) => {
                let fresh = ValueKeys::load(&self.conn)
                    .map_err(|e| Unreadable::Bad(format!("reading value_keys: {e}")))?;
                *self.keys.borrow_mut() = fresh;
                out.clear();
                compact::numbered_figures(blob, &self.keys.borrow(), out)
            }
            other => other,
        }
    }

    /// The areas under `under` (it included) whose current revision for `period` is approved
    /// (审核: the latest decision on that revision approves it). Read from the decisions, which
    /// are few beside the revisions: a province's month costs its decisions, not its reports.
    pub fn approved_under(
        &self,
        under: AreaCode,
        period: Period,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = under.to_string();
        let end = format!("{prefix}:");
        Ok(self.conn.all(
            "SELECT DISTINCT e.area FROM review_events e
             WHERE e.period = ?1 AND e.area >= ?2 AND e.area < ?3 AND e.approved = 1
             AND e.revision = (SELECT MAX(revision) FROM revisions WHERE period = e.period AND area = e.area)
             AND e.rowid = (SELECT MAX(rowid) FROM review_events
                            WHERE period = e.period AND area = e.area AND revision = e.revision)",
            args![&period.to_string(), &prefix, &end],
            |r| r.string(0),
        )?)
    }

    /// The latest approved (审核通过) revision of an (area, period), if any. A revision is
    /// decided once, so the highest approved one is the latest approval.
    pub fn approved(
        &self,
        area: AreaCode,
        period: Period,
    ) -> Result<Option<RevisionRecord>, StoreError> {
        Ok(self.conn.one(
            &format!(
                "SELECT {COLUMNS} FROM revisions WHERE area = ?1 AND period = ?2
                 AND revision = (SELECT MAX(revision) FROM review_events
                                 WHERE area = ?1 AND period = ?2 AND approved = 1)"
            ),
            args![&area.to_string(), &period.to_string()],
            |r| self.record(r),
        )?)
    }

    /// Calls `f` with the latest approved revision of every area for `period` that has one,
    /// and the time its revision 1 arrived.
    pub fn for_each_approved_of(
        &self,
        period: Period,
        mut f: impl FnMut(RevisionRecord, i64),
    ) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT {COLUMNS}, (SELECT received_at_ms FROM revisions WHERE area = r.area AND period = r.period AND revision = 1)
             FROM revisions r
             JOIN (SELECT area AS a_area, MAX(revision) AS a_rev FROM review_events
                   WHERE period = ?1 AND approved = 1 GROUP BY area) a
             ON area = a_area AND revision = a_rev
             WHERE period = ?1"
        );
        self.each_with_first(&sql, period, &mut f)
    }

    /// The locks (锁定) child hubs forwarded with their current rollups of `period`: (area,
    /// the child hub that sent it, the lock). Only forwarded records are decoded.
    pub fn forwarded_locks(
        &self,
        period: Period,
    ) -> Result<Vec<(String, String, pingan_domain::rollup::RollupLock)>, StoreError> {
        // a forwarded record's id is text starting "fwd-" (SQLite keeps other ids as bytes)
        let text_id = if self.conn.is_postgres() {
            "TRUE"
        } else {
            "typeof(submission_id) = 'text'"
        };
        let rows = self.conn.all(
            &format!(
                "SELECT area, (SELECT text FROM names WHERE id = sender), vals FROM revisions r
                 WHERE period = ?1 AND {text_id} AND submission_id LIKE 'fwd-%'
                 AND revision = (SELECT MAX(revision) FROM revisions WHERE period = r.period AND area = r.area)
                 ORDER BY area"
            ),
            args![&period.to_string()],
            |row| Ok((row.string(0)?, row.string(1)?, row.bytes(2)?.to_vec())),
        )?;
        let mut out = Vec::new();
        for (area, sender, vals) in rows {
            let lock = self
                .decode(&vals)
                .ok()
                .and_then(|v| v.rollup)
                .and_then(|r| Rollup::from(r).lock);
            if let Some(lock) = lock {
                out.push((area, sender, lock));
            }
        }
        Ok(out)
    }

    /// When the latest revision for `periods` from `under` or an office within it arrived (ms
    /// since the epoch), if any did.
    pub fn latest_received_under(
        &self,
        under: AreaCode,
        periods: &[Period],
    ) -> Result<Option<i64>, StoreError> {
        let prefix = under.to_string();
        let end = format!("{prefix}:");
        let mut latest: Option<i64> = None;
        for p in periods {
            let at = self
                .conn
                .one(
                    "SELECT MAX(received_at_ms) FROM revisions WHERE period = ?1 AND area >= ?2 AND area < ?3",
                    args![&p.to_string(), &prefix, &end],
                    |r| r.opt_int(0),
                )?
                .flatten();
            latest = latest.max(at);
        }
        Ok(latest)
    }

    /// The current revision of every office under `under` (it excluded) for `period` and the
    /// latest decision on it, if any: (area, revision, decision). One query, no values decoded.
    pub fn review_states_under(
        &self,
        under: AreaCode,
        period: Period,
    ) -> Result<Vec<(String, u32, Option<super::ReviewEvent>)>, StoreError> {
        let prefix = under.to_string();
        let end = format!("{prefix}:");
        let p = period.to_string();
        Ok(self.conn.all(
            "SELECT r.area, r.revision, e.approved, e.by_name, e.identity, e.at_ms, e.reason
             FROM revisions r
             LEFT JOIN review_events e ON e.rowid = (
                 SELECT MAX(rowid) FROM review_events
                 WHERE period = r.period AND area = r.area AND revision = r.revision)
             WHERE r.period = ?1 AND r.area > ?2 AND r.area < ?3
             AND r.revision = (SELECT MAX(revision) FROM revisions WHERE period = r.period AND area = r.area)
             ORDER BY r.area",
            args![p.as_str(), prefix.as_str(), end.as_str()],
            |row| {
                let area = row.string(0)?;
                let revision = row.u32(1)?;
                let decision = match row.opt_flag(2)? {
                    Some(approved) => Some(super::ReviewEvent {
                        area: area.clone(),
                        period: p.clone(),
                        revision,
                        approved,
                        by: row.string(3)?,
                        identity: row.string(4)?,
                        at_ms: row.int(5)?,
                        reason: row.string(6)?,
                    }),
                    None => None,
                };
                Ok((area, revision, decision))
            },
        )?)
    }

    /// Every review decision (审核) on (area, period), oldest first.
    pub fn review_events(
        &self,
        area: &str,
        period: &str,
    ) -> Result<Vec<super::ReviewEvent>, StoreError> {
        Ok(super::review::all(&self.conn, area, period)?)
    }

    /// The latest review decision (审核) on a revision of (area, period), if any.
    pub fn review_latest(
        &self,
        area: &str,
        period: &str,
        revision: u32,
    ) -> Result<Option<super::ReviewEvent>, StoreError> {
        Ok(super::review::latest(&self.conn, area, period, revision)?)
    }

    /// Every subtree owned by a child hub.
    pub fn owners(&self) -> Result<Vec<Owner>, StoreError> {
        super::audit::owners_in(&self.conn)
    }

    /// Every recorded refusal, oldest first.
    pub fn refusals(&self) -> Result<Vec<Refusal>, StoreError> {
        Ok(self.conn.all(
            "SELECT at_ms, identity, action, area, reason FROM refusals ORDER BY rowid",
            &[],
            |r| {
                Ok(Refusal {
                    at_ms: r.int(0)?,
                    identity: r.string(1)?,
                    action: r.string(2)?,
                    area: r.string(3)?,
                    reason: r.string(4)?,
                })
            },
        )?)
    }

    /// Number of stored revisions, all (area, period)s together.
    pub fn revision_count(&self) -> Result<u64, StoreError> {
        let n = self
            .conn
            .one("SELECT COUNT(*) FROM revisions", &[], |r| r.int(0))?
            .unwrap_or(0);
        Ok(n as u64)
    }

    /// Every (metric, part) a stored report carries (part empty for the total), sorted.
    pub fn catalogue_use(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self.conn.all(
            "SELECT metric, part FROM value_keys ORDER BY metric, part",
            &[],
            |r| Ok((r.string(0)?, r.string(1)?)),
        )?)
    }
}
