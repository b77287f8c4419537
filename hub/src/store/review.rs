//! 审核: the review of stored reports, step by step. Each decision (approve, return) is a row of
//! `review_events` for one revision of an (area, period); the latest row of the current
//! revision says where the report stands, and none means 待审核. A correction is a new revision,
//! so it waits for review again, and a decision on an older revision never touches it.

use rusqlite::{Connection, OptionalExtension as _, params};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS review_events (
    area      TEXT    NOT NULL,
    period    TEXT    NOT NULL,
    revision  INTEGER NOT NULL,
    approved  INTEGER NOT NULL,
    by_name   TEXT    NOT NULL,
    identity  TEXT    NOT NULL,
    at_ms     INTEGER NOT NULL,
    reason    TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS review_events_key ON review_events (period, area, revision);
";

/// One decision on one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewEvent {
    pub area: String,
    pub period: String,
    pub revision: u32,
    pub approved: bool,
    pub by: String,
    pub identity: String,
    pub at_ms: i64,
    pub reason: String,
}

/// A `review_events` row, selected with [`COLUMNS`].
fn event(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReviewEvent> {
    Ok(ReviewEvent {
        area: r.get(0)?,
        period: r.get(1)?,
        revision: r.get(2)?,
        approved: r.get(3)?,
        by: r.get(4)?,
        identity: r.get(5)?,
        at_ms: r.get(6)?,
        reason: r.get(7)?,
    })
}

const COLUMNS: &str = "area, period, revision, approved, by_name, identity, at_ms, reason";

pub(super) fn latest(
    conn: &Connection,
    area: &str,
    period: &str,
    revision: u32,
) -> rusqlite::Result<Option<ReviewEvent>> {
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM review_events
             WHERE period = ?1 AND area = ?2 AND revision = ?3 ORDER BY rowid DESC LIMIT 1"
        ),
        params![period, area, revision],
        event,
    )
    .optional()
}

pub(super) fn all(
    conn: &Connection,
    area: &str,
    period: &str,
) -> rusqlite::Result<Vec<ReviewEvent>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM review_events WHERE period = ?1 AND area = ?2 ORDER BY rowid"
    ))?;
    let rows = st.query_map(params![period, area], event)?;
    rows.collect()
}

pub(super) fn insert(conn: &Connection, e: &ReviewEvent) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO review_events (area, period, revision, approved, by_name, identity, at_ms, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![e.area, e.period, e.revision, e.approved, e.by, e.identity, e.at_ms, e.reason],
    )?;
    Ok(())
}
