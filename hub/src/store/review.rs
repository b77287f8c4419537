//! 审核: the review of stored reports, step by step. Each decision (approve, return) is a row of
//! `review_events` for one revision of an (area, period); the latest row of the current
//! revision says where the report stands, and none means 待审核. A correction is a new revision,
//! so it waits for review again, and a decision on an older revision never touches it.

use super::db::{Db, DbError, Row, args};

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
fn event(r: &Row<'_>) -> Result<ReviewEvent, DbError> {
    Ok(ReviewEvent {
        area: r.string(0)?,
        period: r.string(1)?,
        revision: r.u32(2)?,
        approved: r.flag(3)?,
        by: r.string(4)?,
        identity: r.string(5)?,
        at_ms: r.int(6)?,
        reason: r.string(7)?,
    })
}

const COLUMNS: &str = "area, period, revision, approved, by_name, identity, at_ms, reason";

pub(super) fn latest(
    db: &Db,
    area: &str,
    period: &str,
    revision: u32,
) -> Result<Option<ReviewEvent>, DbError> {
    db.one(
        &format!(
            "SELECT {COLUMNS} FROM review_events
             WHERE period = ?1 AND area = ?2 AND revision = ?3 ORDER BY rowid DESC LIMIT 1"
        ),
        args![period, area, revision],
        event,
    )
}

pub(super) fn all(db: &Db, area: &str, period: &str) -> Result<Vec<ReviewEvent>, DbError> {
    db.all(
        &format!(
            "SELECT {COLUMNS} FROM review_events WHERE period = ?1 AND area = ?2 ORDER BY rowid"
        ),
        args![period, area],
        event,
    )
}

pub(super) fn insert(db: &Db, e: &ReviewEvent) -> Result<(), DbError> {
    db.run(
        "INSERT INTO review_events (area, period, revision, approved, by_name, identity, at_ms, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        args![
            &e.area,
            &e.period,
            e.revision,
            e.approved,
            &e.by,
            &e.identity,
            e.at_ms,
            &e.reason
        ],
    )?;
    Ok(())
}
