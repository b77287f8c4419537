//! The store's tables, and bringing an older store's up to date.

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior};

use super::StoreError;

/// The revisions table; `{name}` is filled in (a migration builds it under another name).
/// Keyed by period first: a period's reports arrive together, so they are written next to each
/// other however large the history grows, and a period's rows are one range.
pub(super) const REVISIONS: &str = "
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
-- every (metric, part) a stored report carries (part '' for the total): what a catalogue change
-- must keep, checked at start-up
CREATE TABLE IF NOT EXISTS catalogue_use (
    metric  TEXT NOT NULL,
    part    TEXT NOT NULL,
    PRIMARY KEY (metric, part)
) WITHOUT ROWID;
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

/// Creates the tables, or brings an older store's up to date in one transaction:
/// revisions keyed (area, period, revision) are rewritten keyed by period first, and the
/// per-period counts are computed once.
pub(super) fn create_or_migrate(conn: &mut Connection) -> rusqlite::Result<()> {
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
    let had_use = table_sql("catalogue_use")?.is_some();
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
    if !had_use {
        record_catalogue_use(&tx)?;
    }
    tx.commit()
}

/// Fills `catalogue_use` from every stored revision (once, for a store older than the table).
fn record_catalogue_use(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let mut used = std::collections::BTreeSet::new();
    let mut rows = tx.prepare("SELECT vals FROM revisions")?;
    let mut rows = rows.query([])?;
    while let Some(row) = rows.next()? {
        let blob: Vec<u8> = row.get(0)?;
        // an undecodable row is named when it is read; it uses nothing here
        if let Ok(stored) = super::reader::decode_values(&blob) {
            for v in stored.values {
                for part in v.parts.keys() {
                    used.insert((v.metric.clone(), part.clone()));
                }
                used.insert((v.metric, String::new()));
            }
        }
    }
    if !used.is_empty() {
        tracing::info!(
            pairs = used.len(),
            "recorded the metrics and parts the stored reports carry (once)"
        );
    }
    let mut insert =
        tx.prepare("INSERT OR IGNORE INTO catalogue_use (metric, part) VALUES (?1, ?2)")?;
    for (m, p) in used {
        insert.execute([m, p])?;
    }
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
