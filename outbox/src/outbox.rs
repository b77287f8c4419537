//! The node's durable outbox: every report is written here (SQLite, `synchronous=FULL`) before
//! any attempt to deliver it, and stays until the hub acked it (delivered) or refused it for
//! good (failed, with the reason). Pending reports are delivered in the order they were written.

use std::path::{Path, PathBuf};

use pingan_domain::pb;
use prost::Message as _;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// File name of the outbox database inside the outbox directory.
pub const OUTBOX_FILE: &str = "outbox.db";

/// Why the outbox could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("outbox: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("outbox already holds submission {0:?}")]
    Exists(String),
    #[error("发件箱里没有提交编号为 {0} 的报表")]
    NotFound(String),
    #[error("报表 {id} 的状态是「{state}」，只有被拒收（failed）的报表可以{action}")]
    NotParked {
        id: String,
        state: &'static str,
        action: &'static str,
    },
}

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// Written, not yet acked.
    Pending,
    /// Acked by the hub.
    Delivered,
    /// Refused by the hub for good, or unreadable; parked with the reason.
    Failed,
    /// A parked report the office decided not to send (`pingan-node drop`); kept for the
    /// record, never sent.
    Dropped,
}

impl EntryState {
    fn as_str(self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Delivered => "delivered",
            EntryState::Failed => "failed",
            EntryState::Dropped => "dropped",
        }
    }

    fn parse(s: &str) -> Option<EntryState> {
        [
            EntryState::Pending,
            EntryState::Delivered,
            EntryState::Failed,
            EntryState::Dropped,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }

    /// The state in Chinese, as the office reads it.
    pub fn zh(self) -> &'static str {
        match self {
            EntryState::Pending => "待发送",
            EntryState::Delivered => "已上报",
            EntryState::Failed => "被拒收",
            EntryState::Dropped => "已作废",
        }
    }
}

/// One outbox entry as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub seq: i64,
    pub submission_id: String,
    /// Who the report is for: its area's code, or a department's (条) id.
    pub area: String,
    pub period: String,
    pub state: EntryState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub revision: Option<u32>,
    pub warnings: Vec<String>,
}

/// A pending entry ready to send.
#[derive(Debug, Clone)]
pub struct PendingReport {
    pub seq: i64,
    pub report: pb::Report,
}

/// The outbox of one node.
#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id   TEXT    NOT NULL UNIQUE,
    area            TEXT    NOT NULL,
    period          TEXT    NOT NULL,
    report          BLOB    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    revision        INTEGER,
    warnings        TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, seq);
";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Outbox {
    /// Opens (creating if needed) the outbox in `dir`.
    pub fn open(dir: &Path) -> Result<Outbox, OutboxError> {
        std::fs::create_dir_all(dir).map_err(|source| OutboxError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(OUTBOX_FILE);
        let conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Outbox { conn, path })
    }

    /// The outbox's database connection, for the bookkeeping of [`crate::records`].
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Path of the outbox database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes reports durably as pending, all or none.
    pub fn enqueue(&mut self, reports: &[pb::Report]) -> Result<(), OutboxError> {
        self.enqueue_with(reports, |_| Ok(()))
    }

    /// Writes reports durably as pending, in the same transaction as `before` (which runs
    /// first): [`crate::records`] keeps its bookkeeping in the outbox's database, so an entry
    /// and the record of having written it commit together.
    pub(crate) fn enqueue_with<'r>(
        &mut self,
        reports: impl IntoIterator<Item = &'r pb::Report>,
        before: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), OutboxError> {
        let tx = self.conn.transaction()?;
        before(&tx)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO outbox (submission_id, area, period, report, state, created_at_ms, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
            )?;
            for r in reports {
                let res = insert.execute(params![
                    r.submission_id,
                    reporter_key(r),
                    r.period,
                    r.encode_to_vec(),
                    now_ms()
                ]);
                if let Err(e) = res {
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
                        return Err(OutboxError::Exists(r.submission_id.clone()));
                    }
                    return Err(e.into());
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Up to `limit` pending reports, oldest first. An entry that cannot be decoded is parked as
    /// failed (with the reason) rather than blocking the ones behind it.
    pub fn pending(&mut self, limit: usize) -> Result<Vec<PendingReport>, OutboxError> {
        let rows: Vec<(i64, Vec<u8>)> = {
            let mut st = self.conn.prepare_cached(
                "SELECT seq, report FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT ?1",
            )?;
            st.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(rows.len());
        for (seq, blob) in rows {
            match pb::Report::decode(blob.as_slice()) {
                Ok(report) => out.push(PendingReport { seq, report }),
                Err(e) => {
                    tracing::warn!(seq, error = %e, "corrupt outbox entry parked");
                    self.set_failed(seq, &format!("corrupt outbox entry, cannot be sent: {e}"))?;
                }
            }
        }
        Ok(out)
    }

    /// Records acks, all in one transaction.
    pub fn mark_delivered(&mut self, receipts: &[(i64, pb::Receipt)]) -> Result<(), OutboxError> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, last_error = NULL, updated_at_ms = ?2,
                 revision = ?3, warnings = ?4 WHERE seq = ?1",
            )?;
            for (seq, receipt) in receipts {
                let warnings = serde_json::to_string(&receipt.warnings).expect("strings serialise");
                st.execute(params![seq, now_ms(), receipt.revision, warnings])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Parks an entry as failed for good, with the reason the operator will see.
    pub fn set_failed(&mut self, seq: i64, reason: &str) -> Result<(), OutboxError> {
        self.conn.execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2, updated_at_ms = ?3 WHERE seq = ?1",
            params![seq, reason, now_ms()],
        )?;
        Ok(())
    }

    /// Records a failed attempt that will be retried.
    pub fn note_attempt(&mut self, seq: i64, error: &str) -> Result<(), OutboxError> {
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, updated_at_ms = ?3 WHERE seq = ?1",
            params![seq, error, now_ms()],
        )?;
        Ok(())
    }

    /// Puts a parked (failed) report back in the queue, after its cause was fixed (a
    /// certificate renewed, the hub's catalogue updated). Returns the entry.
    pub fn retry(&mut self, submission_id: &str) -> Result<Entry, OutboxError> {
        self.move_parked(submission_id, "pending", "重新发送")
    }

    /// Marks a parked (failed) report as dropped: it stays in the outbox for the record and is
    /// never sent. Returns the entry.
    pub fn drop_parked(&mut self, submission_id: &str) -> Result<Entry, OutboxError> {
        self.move_parked(submission_id, "dropped", "作废")
    }

    fn move_parked(
        &mut self,
        submission_id: &str,
        to: &str,
        action: &'static str,
    ) -> Result<Entry, OutboxError> {
        let entry = self
            .get(submission_id)?
            .ok_or_else(|| OutboxError::NotFound(submission_id.to_owned()))?;
        if entry.state != EntryState::Failed {
            return Err(OutboxError::NotParked {
                id: submission_id.to_owned(),
                state: entry.state.zh(),
                action,
            });
        }
        self.conn.execute(
            "UPDATE outbox SET state = ?2, updated_at_ms = ?3 WHERE seq = ?1 AND state = 'failed'",
            params![entry.seq, to, now_ms()],
        )?;
        Ok(self.get(submission_id)?.expect("just updated"))
    }

    /// The entry for a submission id.
    pub fn get(&self, submission_id: &str) -> Result<Option<Entry>, OutboxError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM outbox WHERE submission_id = ?1"
        ))?;
        Ok(st.query_row([submission_id], entry).optional()?)
    }

    /// Every entry, oldest first.
    pub fn list(&self) -> Result<Vec<Entry>, OutboxError> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {ENTRY_COLUMNS} FROM outbox ORDER BY seq"))?;
        let rows = st.query_map([], entry)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The entries of one reporter (area code or department id) and period, oldest first, each
    /// with the report it holds: what an office sent for that period, and where each stands.
    pub fn history(
        &self,
        key: &str,
        period: &str,
    ) -> Result<Vec<(Entry, pb::Report)>, OutboxError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS}, report FROM outbox WHERE area = ?1 AND period = ?2 ORDER BY seq"
        ))?;
        let rows = st.query_map([key, period], |r| {
            let blob: Vec<u8> = r.get(11)?;
            Ok((entry(r)?, blob))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (e, blob) = row?;
            // an unreadable report has no figures to show; its entry still counts
            out.push((e, pb::Report::decode(blob.as_slice()).unwrap_or_default()));
        }
        Ok(out)
    }

    /// Number of pending entries.
    pub fn pending_count(&self) -> Result<u64, OutboxError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

const ENTRY_COLUMNS: &str = "seq, submission_id, area, period, state, attempts, last_error, created_at_ms, updated_at_ms, revision, warnings";

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let state: String = r.get(4)?;
    let warnings: String = r.get(10)?;
    let state = EntryState::parse(&state).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            4,
            rusqlite::types::Type::Text,
            format!("unknown outbox state {state:?}").into(),
        )
    })?;
    Ok(Entry {
        seq: r.get(0)?,
        submission_id: r.get(1)?,
        area: r.get(2)?,
        period: r.get(3)?,
        state,
        attempts: r.get(5)?,
        last_error: r.get(6)?,
        created_at_ms: r.get(7)?,
        updated_at_ms: r.get(8)?,
        revision: r.get(9)?,
        warnings: serde_json::from_str(&warnings).unwrap_or_default(),
    })
}

impl Entry {
    /// The state as a word.
    pub fn state_str(&self) -> &'static str {
        self.state.as_str()
    }
}

/// Who a report is for, as the outbox keys it: a department's (条) id, or else its area's code.
pub fn reporter_key(r: &pb::Report) -> &str {
    if r.department.is_empty() {
        &r.area
    } else {
        &r.department
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: &str) -> pb::Report {
        pb::Report {
            submission_id: id.into(),
            area: "510722".into(),
            period: "2026-10".into(),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_order_across_reopen_and_parks_corrupt_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path()).unwrap();
        o.enqueue(&[report("a"), report("b"), report("c")]).unwrap();
        assert!(matches!(
            o.enqueue(&[report("a")]),
            Err(OutboxError::Exists(_))
        ));
        o.conn
            .execute(
                "UPDATE outbox SET report = x'ffffffff' WHERE submission_id = 'b'",
                [],
            )
            .unwrap();
        drop(o);
        let mut o = Outbox::open(dir.path()).unwrap();
        let ids: Vec<String> = o
            .pending(10)
            .unwrap()
            .into_iter()
            .map(|p| p.report.submission_id)
            .collect();
        assert_eq!(ids, ["a", "c"]);
        let b = o.get("b").unwrap().unwrap();
        assert_eq!(b.state, EntryState::Failed);
        assert!(b.last_error.unwrap().contains("corrupt outbox entry"));
        let seq_a = o.get("a").unwrap().unwrap().seq;
        o.mark_delivered(&[(
            seq_a,
            pb::Receipt {
                revision: 1,
                ..Default::default()
            },
        )])
        .unwrap();
        assert_eq!(o.pending_count().unwrap(), 1);
        assert_eq!(o.get("a").unwrap().unwrap().revision, Some(1));
    }

    #[test]
    fn a_parked_report_can_be_sent_again_or_dropped_and_nothing_else_can() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path()).unwrap();
        o.enqueue(&[report("a"), report("b")]).unwrap();
        let (a, b) = (o.get("a").unwrap().unwrap(), o.get("b").unwrap().unwrap());
        o.set_failed(a.seq, "PermissionDenied: 证书已吊销").unwrap();
        o.set_failed(b.seq, "InvalidArgument: 未知指标").unwrap();
        assert!(matches!(o.retry("nope"), Err(OutboxError::NotFound(_))));
        assert_eq!(o.retry("a").unwrap().state, EntryState::Pending);
        assert!(matches!(o.retry("a"), Err(OutboxError::NotParked { .. })));
        assert_eq!(o.pending_count().unwrap(), 1);
        assert_eq!(o.drop_parked("b").unwrap().state, EntryState::Dropped);
        assert_eq!(
            o.pending(10).unwrap().len(),
            1,
            "a dropped report is never sent"
        );
        // a state this code does not know is an error, never read as pending
        o.conn
            .execute(
                "UPDATE outbox SET state = 'limbo' WHERE submission_id = 'b'",
                [],
            )
            .unwrap();
        assert!(o.list().is_err());
    }
}
