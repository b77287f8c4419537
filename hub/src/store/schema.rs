//! The store's tables, and bringing an older store's up to date.

use std::collections::HashMap;

use super::{
    StoreError,
    compact::{self, ValueKeys},
    db::{Db, DbError, args},
};
use pingan_domain::pb;
use prost::Message as _;

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

/// Creates the tables, or brings an older store's up to date in one transaction (see
/// [`create_or_migrate_sqlite`]). On PostgreSQL the tables are created when missing, all in
/// one transaction, by the first hub process (the others wait for it).
pub(super) fn create_or_migrate(db: &Db) -> Result<(), DbError> {
    if db.is_postgres() {
        return db.write(|tx| {
            // one process at a time creates the tables (CREATE TABLE IF NOT EXISTS races)
            tx.batch("SELECT pg_advisory_xact_lock(7231001)")?;
            tx.batch(&postgres_schema())
        });
    }
    db.write(create_or_migrate_sqlite)
}

/// A store from before the compact layout (values as protobuf with their names, senders and
/// ids as text; or keyed (area, period, revision) before that) is rewritten once, row by row,
/// and the per-period counts are computed once.
fn create_or_migrate_sqlite(tx: &Db) -> Result<(), DbError> {
    let exists = |name: &str| -> Result<bool, DbError> {
        Ok(tx
            .one(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                args![name],
                |_| Ok(()),
            )?
            .is_some())
    };
    let older = exists("revisions")? && !exists("value_keys")?;
    let had_counts = exists("period_revisions")?;
    tx.batch(super::compact::SCHEMA)?;
    if older {
        let mut keys = ValueKeys::default();
        if exists("catalogue_use")? {
            // the pairs recorded before keep their order; refused reports' pairs among them
            tx.batch(
                "INSERT INTO value_keys (id, metric, part)
                   SELECT ROW_NUMBER() OVER (ORDER BY metric, part) - 1, metric, part FROM catalogue_use;
                 DROP TABLE catalogue_use;",
            )?;
            keys = ValueKeys::load(tx)?;
        }
        for table in ["revisions", DEPARTMENT_REVISIONS] {
            if exists(table)? {
                rewrite_compact(tx, table, &mut keys)?;
            }
        }
    }
    tx.batch(&REVISIONS.replace("{name}", "revisions"))?;
    tx.batch(SCHEMA)?;
    // departments' (条) reports: the same columns, `area` holding the department's id; apart
    // from `revisions`, so nothing that rolls up the divisions ever reads one
    tx.batch(&REVISIONS.replace("{name}", DEPARTMENT_REVISIONS))?;
    tx.batch(super::locks::SCHEMA)?;
    tx.batch(super::review::SCHEMA)?;
    if !had_counts {
        tx.run(
            "INSERT INTO period_revisions SELECT period, COUNT(*) FROM revisions GROUP BY period",
            &[],
        )?;
    }
    Ok(())
}

/// Rewrites `table` of an older store in the compact layout (compact.rs), every column kept
/// but the content digest (a resend is now told by its content itself): values numbered
/// against `value_keys` and `value_shapes`, senders and reporters into `names`, submission ids
/// as bytes where they are UUIDs or import digests. Says how far it is every million rows.
fn rewrite_compact(tx: &Db, table: &str, keys: &mut ValueKeys) -> Result<(), DbError> {
    let total = tx
        .one(&format!("SELECT COUNT(*) FROM {table}"), &[], |r| r.int(0))?
        .unwrap_or(0);
    tracing::info!(
        table,
        total,
        "rewriting the store in its compact layout (once; a national store takes minutes)"
    );
    let new = format!("{table}_compact");
    tx.batch(&REVISIONS.replace("{name}", &new))?;
    let read = format!(
        "SELECT area, period, revision, submission_id, received_at_ms, sender, reporter,
                zero_report, notes, warnings, vals FROM {table}"
    );
    let insert = format!(
        "INSERT INTO {new} (area, period, revision, submission_id, received_at_ms, sender,
                            reporter, zero_report, notes, warnings, vals)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    );
    let mut names: HashMap<String, i64> = HashMap::new();
    let mut name = |text: &str| -> Result<i64, DbError> {
        if let Some(&id) = names.get(text) {
            return Ok(id);
        }
        let id = super::compact::number_name(tx, text)?;
        names.insert(text.to_owned(), id);
        Ok(id)
    };
    let mut done = 0u64;
    tx.each(&read, &[], |row| {
        let vals = row.bytes(10)?.to_vec();
        let vals = match pb::StoredValues::decode(vals.as_slice()) {
            Ok(stored) if stored.rollup.is_none() => {
                let shape = keys.number(tx, &stored.values)?;
                compact::encode(stored.values, None, shape)
            }
            // a forwarded rollup stays as it was; so does a row that does not decode (it is
            // named when it is read, as before)
            _ => vals,
        };
        let sender = name(row.text(5)?)?;
        let reporter = name(row.text(6)?)?;
        let id = row.string(3)?;
        let key = compact::submission_key(&id);
        let warnings = compact::warnings_text(&compact::warnings_read(row.text(9)?));
        tx.run(
            &insert,
            args![
                row.text(0)?,
                row.text(1)?,
                row.int(2)?,
                compact::submission_arg(tx, &id, &key),
                row.int(4)?,
                sender,
                reporter,
                row.int(7)?,
                row.text(8)?,
                &warnings,
                &vals,
            ],
        )?;
        done += 1;
        if done.is_multiple_of(1_000_000) {
            tracing::info!(
                table,
                done,
                total,
                "rewriting the store in its compact layout"
            );
        }
        Ok(())
    })?;
    tx.batch(&format!(
        "DROP TABLE {table}; ALTER TABLE {new} RENAME TO {table};"
    ))?;
    Ok(())
}

/// Sets up a SQLite connection for writing (nothing to do on PostgreSQL: its server is
/// configured by its administrator, durable commits are its default).
pub(super) fn configure(db: &Db) -> Result<(), StoreError> {
    let Some(conn) = db.sqlite() else {
        return Ok(());
    };
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: in WAL mode, every commit is fsynced before it returns, so an acked report survives
    // a power cut, not only a crash of the process
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(())
}

/// The store's tables on PostgreSQL: the same tables and columns as on SQLite, integers as
/// BIGINT, bytes as BYTEA, codes compared byte by byte (COLLATE "C": a subtree is a range of
/// codes), a submission id kept as its text and unique within its (area, period), and the
/// append-only audit tables numbered by a `rowid` column (SQLite's own, there).
/// The revisions table on PostgreSQL; `{name}` is filled in (the departments' table has the
/// same columns). `seq`: commit order (writers take turns), what other hub processes on this
/// database follow (a database made before the column gets it, numbered in no particular order).
const POSTGRES_REVISIONS: &str = r#"
CREATE TABLE IF NOT EXISTS {name} (
    area            TEXT COLLATE "C" NOT NULL,
    period          TEXT COLLATE "C" NOT NULL,
    revision        BIGINT NOT NULL,
    submission_id   TEXT   NOT NULL,
    received_at_ms  BIGINT NOT NULL,
    sender          BIGINT NOT NULL,
    reporter        BIGINT NOT NULL,
    zero_report     BIGINT NOT NULL,
    notes           TEXT   NOT NULL,
    warnings        TEXT   NOT NULL,
    vals            BYTEA  NOT NULL,
    seq             BIGSERIAL NOT NULL,
    PRIMARY KEY (period, area, revision),
    UNIQUE (period, area, submission_id)
);
ALTER TABLE {name} ADD COLUMN IF NOT EXISTS seq BIGSERIAL NOT NULL;
CREATE INDEX IF NOT EXISTS {name}_seq ON {name} (seq);
"#;

/// Every table of the store on PostgreSQL.
pub(super) fn postgres_schema() -> String {
    format!(
        "{POSTGRES_SCHEMA}{}{}",
        POSTGRES_REVISIONS.replace("{name}", "revisions"),
        POSTGRES_REVISIONS.replace("{name}", DEPARTMENT_REVISIONS)
    )
}

/// The store's tables on PostgreSQL but the revisions'.
const POSTGRES_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS value_keys (
    id      BIGINT PRIMARY KEY,
    metric  TEXT COLLATE "C" NOT NULL,
    part    TEXT COLLATE "C" NOT NULL,
    UNIQUE (metric, part)
);
CREATE TABLE IF NOT EXISTS value_shapes (
    id     BIGINT PRIMARY KEY,
    shape  BYTEA NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS names (
    id    BIGSERIAL PRIMARY KEY,
    text  TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS period_revisions (
    period     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    revisions  BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS owners (
    root      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    identity  TEXT   NOT NULL,
    serial    TEXT   NOT NULL,
    since_ms  BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS reminder_sends (
    rowid     BIGSERIAL PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    form      TEXT   NOT NULL,
    period    TEXT   NOT NULL,
    moment    TEXT   NOT NULL,
    township  TEXT   NOT NULL,
    attempt   BIGINT NOT NULL,
    ok        BIGINT NOT NULL,
    result    TEXT   NOT NULL,
    offices   BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    rowid     BIGSERIAL PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    identity  TEXT   NOT NULL,
    action    TEXT   NOT NULL,
    area      TEXT   NOT NULL,
    reason    TEXT   NOT NULL
);
CREATE TABLE IF NOT EXISTS locks (
    form      TEXT COLLATE "C" NOT NULL,
    period    TEXT COLLATE "C" NOT NULL,
    root      TEXT COLLATE "C" NOT NULL,
    locked    BIGINT NOT NULL,
    by_name   TEXT   NOT NULL,
    identity  TEXT   NOT NULL,
    at_ms     BIGINT NOT NULL,
    reason    TEXT   NOT NULL,
    PRIMARY KEY (form, period, root)
);
CREATE TABLE IF NOT EXISTS lock_events (
    rowid     BIGSERIAL PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    form      TEXT   NOT NULL,
    period    TEXT   NOT NULL,
    root      TEXT   NOT NULL,
    locked    BIGINT NOT NULL,
    by_name   TEXT   NOT NULL,
    identity  TEXT   NOT NULL,
    reason    TEXT   NOT NULL
);
CREATE TABLE IF NOT EXISTS review_events (
    rowid     BIGSERIAL PRIMARY KEY,
    area      TEXT COLLATE "C" NOT NULL,
    period    TEXT COLLATE "C" NOT NULL,
    revision  BIGINT NOT NULL,
    approved  BIGINT NOT NULL,
    by_name   TEXT   NOT NULL,
    identity  TEXT   NOT NULL,
    at_ms     BIGINT NOT NULL,
    reason    TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS review_events_key ON review_events (period, area, revision);
"#;
