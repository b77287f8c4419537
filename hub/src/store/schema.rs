//! The store's tables, and bringing an older store's up to date.

use std::collections::HashMap;

use pingan_domain::pb;
use prost::Message as _;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior};

use super::{
    StoreError,
    compact::{self, ValueKeys},
};

/// The revisions table; `{name}` is filled in (a migration builds it under another name).
/// Keyed by period first: a period's reports arrive together, so they are written next to each
/// other however large the history grows, and a period's rows are one range.
pub(super) const REVISIONS: &str = "
CREATE TABLE IF NOT EXISTS {name} (
    area            TEXT    NOT NULL,
    period          TEXT    NOT NULL,
    revision        INTEGER NOT NULL,
    -- 16 bytes for a node's UUID, 17 for an import's digest id, else the text; an idempotency
    -- key within its (area, period) (compact.rs)
    submission_id   BLOB    NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    -- numbers into names
    sender          INTEGER NOT NULL,
    reporter        INTEGER NOT NULL,
    zero_report     INTEGER NOT NULL,
    notes           TEXT    NOT NULL,
    -- '' when none, else a JSON list
    warnings        TEXT    NOT NULL,
    -- the values against value_keys and value_shapes (compact.rs)
    vals            BLOB    NOT NULL,
    PRIMARY KEY (period, area, revision)
) WITHOUT ROWID;
";

/// The table of departments' reports.
pub(super) const DEPARTMENT_REVISIONS: &str = "department_revisions";

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
-- every attempt to send a reminder (催报) and its answer
CREATE TABLE IF NOT EXISTS reminder_sends (
    at_ms     INTEGER NOT NULL,
    form      TEXT    NOT NULL,
    period    TEXT    NOT NULL,
    moment    TEXT    NOT NULL,
    township  TEXT    NOT NULL,
    attempt   INTEGER NOT NULL,
    ok        INTEGER NOT NULL,
    result    TEXT    NOT NULL,
    offices   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    at_ms     INTEGER NOT NULL,
    identity  TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    area      TEXT    NOT NULL,
    reason    TEXT    NOT NULL
);
";

/// Creates the tables, or brings an older store's up to date in one transaction: a store from
/// before the compact layout (values as protobuf with their names, senders and ids as text; or
/// keyed (area, period, revision) before that) is rewritten once, row by row, and the per-period
/// counts are computed once.
pub(super) fn create_or_migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let exists = |name: &str| -> rusqlite::Result<bool> {
        Ok(tx
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [name],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    };
    let older = exists("revisions")? && !exists("value_keys")?;
    let had_counts = exists("period_revisions")?;
    tx.execute_batch(super::compact::SCHEMA)?;
    if older {
        let mut keys = ValueKeys::default();
        if exists("catalogue_use")? {
            // the pairs recorded before keep their order; refused reports' pairs among them
            tx.execute_batch(
                "INSERT INTO value_keys (id, metric, part)
                   SELECT ROW_NUMBER() OVER (ORDER BY metric, part) - 1, metric, part FROM catalogue_use;
                 DROP TABLE catalogue_use;",
            )?;
            keys = ValueKeys::load(&tx)?;
        }
        for table in ["revisions", DEPARTMENT_REVISIONS] {
            if exists(table)? {
                rewrite_compact(&tx, table, &mut keys)?;
            }
        }
    }
    tx.execute_batch(&REVISIONS.replace("{name}", "revisions"))?;
    tx.execute_batch(SCHEMA)?;
    // departments' (条) reports: the same columns, `area` holding the department's id; apart
    // from `revisions`, so nothing that rolls up the divisions ever reads one
    tx.execute_batch(&REVISIONS.replace("{name}", DEPARTMENT_REVISIONS))?;
    tx.execute_batch(super::locks::SCHEMA)?;
    tx.execute_batch(super::review::SCHEMA)?;
    if !had_counts {
        tx.execute(
            "INSERT INTO period_revisions SELECT period, COUNT(*) FROM revisions GROUP BY period",
            [],
        )?;
    }
    tx.commit()
}

/// Rewrites `table` of an older store in the compact layout (compact.rs), every column kept
/// but the content digest (a resend is now told by its content itself): values numbered
/// against `value_keys` and `value_shapes`, senders and reporters into `names`, submission ids
/// as bytes where they are UUIDs or import digests. Says how far it is every million rows.
fn rewrite_compact(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    keys: &mut ValueKeys,
) -> rusqlite::Result<()> {
    let total: i64 = tx.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
    tracing::info!(
        table,
        total,
        "rewriting the store in its compact layout (once; a national store takes minutes)"
    );
    let new = format!("{table}_compact");
    tx.execute_batch(&REVISIONS.replace("{name}", &new))?;
    let mut read = tx.prepare(&format!(
        "SELECT area, period, revision, submission_id, received_at_ms, sender, reporter,
                zero_report, notes, warnings, vals FROM {table}"
    ))?;
    let mut insert = tx.prepare(&format!(
        "INSERT INTO {new} (area, period, revision, submission_id, received_at_ms, sender,
                            reporter, zero_report, notes, warnings, vals)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?;
    let mut names: HashMap<String, i64> = HashMap::new();
    let mut name = |text: String| -> rusqlite::Result<i64> {
        if let Some(&id) = names.get(&text) {
            return Ok(id);
        }
        let id = super::compact::number_name(tx, &text)?;
        names.insert(text, id);
        Ok(id)
    };
    let mut done = 0u64;
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        let vals: Vec<u8> = row.get(10)?;
        let vals = match pb::StoredValues::decode(vals.as_slice()) {
            Ok(stored) if stored.rollup.is_none() => {
                let shape = keys.number(tx, &stored.values)?;
                compact::encode(stored.values, None, shape)
            }
            // a forwarded rollup stays as it was; so does a row that does not decode (it is
            // named when it is read, as before)
            _ => vals,
        };
        let sender = name(row.get(5)?)?;
        let reporter = name(row.get(6)?)?;
        let id: String = row.get(3)?;
        let warnings: String = row.get(9)?;
        insert.execute(rusqlite::params![
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            compact::submission_key(&id),
            row.get::<_, i64>(4)?,
            sender,
            reporter,
            row.get::<_, i64>(7)?,
            row.get::<_, String>(8)?,
            compact::warnings_text(&compact::warnings_read(&warnings)),
            vals,
        ])?;
        done += 1;
        if done.is_multiple_of(1_000_000) {
            tracing::info!(
                table,
                done,
                total,
                "rewriting the store in its compact layout"
            );
        }
    }
    drop(rows);
    drop(read);
    drop(insert);
    tx.execute_batch(&format!(
        "DROP TABLE {table}; ALTER TABLE {new} RENAME TO {table};"
    ))?;
    Ok(())
}

pub(super) fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: in WAL mode, every commit is fsynced before it returns, so an acked report survives
    // a power cut, not only a crash of the process
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(())
}
