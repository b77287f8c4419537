//! Copying a store from one database to another (`pingan-hub migrate`: SQLite to PostgreSQL and
//! back), then checking the copy: per period, the number of revisions and a digest of every
//! revision as it reads back (audit fields, names, values), computed on both sides.

use sha2::{Digest as _, Sha256};

use super::{
    StoreError, compact,
    db::{Arg, Db, DbError, Row},
    schema::{DEPARTMENT_REVISIONS, configure, create_or_migrate},
};

/// What a column holds, to read it from one database and write it to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Text,
    Bytes,
    /// A submission id: bytes or text on SQLite, text on PostgreSQL (see `compact`).
    SubmissionId,
}

/// A table to copy: its columns and the order its rows are read in (the order they are written
/// in, so an append-only table numbered by rowid keeps its order).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Table {
    pub(crate) name: &'static str,
    pub(crate) columns: &'static [(&'static str, Kind)],
    pub(crate) order: &'static str,
}

const REVISION_COLUMNS: &[(&str, Kind)] = &[
    ("area", Kind::Text),
    ("period", Kind::Text),
    ("revision", Kind::Int),
    ("submission_id", Kind::SubmissionId),
    ("received_at_ms", Kind::Int),
    ("sender", Kind::Int),
    ("reporter", Kind::Int),
    ("zero_report", Kind::Int),
    ("notes", Kind::Text),
    ("warnings", Kind::Text),
    ("vals", Kind::Bytes),
];

/// The store's tables but the revisions (copied a period at a time), in the order they are
/// copied: the numbered pairs, shapes and names before anything that names them.
const TABLES: &[Table] = &[
    Table {
        name: "value_keys",
        columns: &[
            ("id", Kind::Int),
            ("metric", Kind::Text),
            ("part", Kind::Text),
        ],
        order: "id",
    },
    Table {
        name: "value_shapes",
        columns: &[("id", Kind::Int), ("shape", Kind::Bytes)],
        order: "id",
    },
    Table {
        name: "names",
        columns: &[("id", Kind::Int), ("text", Kind::Text)],
        order: "id",
    },
    Table {
        name: "period_revisions",
        columns: &[("period", Kind::Text), ("revisions", Kind::Int)],
        order: "period",
    },
    Table {
        name: "owners",
        columns: &[
            ("root", Kind::Text),
            ("identity", Kind::Text),
            ("serial", Kind::Text),
            ("since_ms", Kind::Int),
        ],
        order: "root",
    },
    Table {
        name: "reminder_sends",
        columns: &[
            ("at_ms", Kind::Int),
            ("form", Kind::Text),
            ("period", Kind::Text),
            ("moment", Kind::Text),
            ("township", Kind::Text),
            ("attempt", Kind::Int),
            ("ok", Kind::Int),
            ("result", Kind::Text),
            ("offices", Kind::Int),
        ],
        order: "rowid",
    },
    Table {
        name: "refusals",
        columns: &[
            ("at_ms", Kind::Int),
            ("identity", Kind::Text),
            ("action", Kind::Text),
            ("area", Kind::Text),
            ("reason", Kind::Text),
        ],
        order: "rowid",
    },
    Table {
        name: "locks",
        columns: &[
            ("form", Kind::Text),
            ("period", Kind::Text),
            ("root", Kind::Text),
            ("locked", Kind::Int),
            ("by_name", Kind::Text),
            ("identity", Kind::Text),
            ("at_ms", Kind::Int),
            ("reason", Kind::Text),
        ],
        order: "form, period, root",
    },
    Table {
        name: "lock_events",
        columns: &[
            ("at_ms", Kind::Int),
            ("form", Kind::Text),
            ("period", Kind::Text),
            ("root", Kind::Text),
            ("locked", Kind::Int),
            ("by_name", Kind::Text),
            ("identity", Kind::Text),
            ("reason", Kind::Text),
        ],
        order: "rowid",
    },
    Table {
        name: "review_events",
        columns: &[
            ("area", Kind::Text),
            ("period", Kind::Text),
            ("revision", Kind::Int),
            ("approved", Kind::Int),
            ("by_name", Kind::Text),
            ("identity", Kind::Text),
            ("at_ms", Kind::Int),
            ("reason", Kind::Text),
        ],
        order: "rowid",
    },
];

/// The accounts' tables (`users.db` beside a SQLite store; the store's database on PostgreSQL).
pub(crate) const ACCOUNT_TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("name", Kind::Text),
            ("area", Kind::Text),
            ("password", Kind::Text),
            ("created_at_ms", Kind::Int),
            ("updated_at_ms", Kind::Int),
        ],
        order: "name",
    },
    Table {
        name: "sessions",
        columns: &[
            ("token_sha256", Kind::Bytes),
            ("name", Kind::Text),
            ("created_at_ms", Kind::Int),
            ("expires_at_ms", Kind::Int),
        ],
        order: "token_sha256",
    },
];

/// A value read, to be written.
#[derive(Debug, Clone)]
enum Val {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    /// A submission id's text and its SQLite key.
    Id(String, rusqlite::types::Value),
    Null,
}

fn read(row: &Row<'_>, columns: &[(&str, Kind)]) -> Result<Vec<Val>, DbError> {
    columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            Ok(match kind {
                Kind::Int => row.opt_int(i)?.map_or(Val::Null, Val::Int),
                Kind::Text => row
                    .opt_text(i)?
                    .map_or(Val::Null, |t| Val::Text(t.to_owned())),
                Kind::Bytes => Val::Bytes(row.bytes(i)?.to_vec()),
                Kind::SubmissionId => {
                    let id = row.submission_id(i)?;
                    let key = compact::submission_key(&id);
                    Val::Id(id, key)
                }
            })
        })
        .collect()
}

fn arg<'a>(db: &Db, v: &'a Val) -> Arg<'a> {
    match v {
        Val::Int(i) => Arg::Int(*i),
        Val::Text(t) => Arg::Text(t),
        Val::Bytes(b) => Arg::Bytes(b),
        Val::Id(id, key) => compact::submission_arg(db, id, key),
        Val::Null => Arg::Null,
    }
}

/// Rows written per transaction.
const CHUNK: usize = 5_000;

/// Copies the rows `select` gives (columns as `columns` says) into `table` of `to`, `CHUNK`
/// rows a transaction; how many.
fn copy_rows(
    from: &Db,
    to: &Db,
    select: &str,
    args: &[Arg<'_>],
    table: &str,
    columns: &[(&str, Kind)],
) -> Result<u64, StoreError> {
    let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
    // many rows a statement (one round trip to PostgreSQL for each, not one per row), within
    // both databases' limits on parameters
    let per_insert = (4_000 / columns.len()).max(1);
    let insert = |n: usize| {
        let tuples: Vec<String> = (0..n)
            .map(|r| {
                let marks: Vec<String> = (1..=columns.len())
                    .map(|c| format!("?{}", r * columns.len() + c))
                    .collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        format!(
            "INSERT INTO {table} ({}) VALUES {}",
            names.join(", "),
            tuples.join(", ")
        )
    };
    let full = insert(per_insert);
    let flush = |rows: &mut Vec<Vec<Val>>| -> Result<(), DbError> {
        to.write(|tx| {
            for part in rows.chunks(per_insert) {
                let params: Vec<Arg<'_>> = part.iter().flatten().map(|v| arg(tx, v)).collect();
                if part.len() == per_insert {
                    tx.run(&full, &params)?;
                } else {
                    tx.run(&insert(part.len()), &params)?;
                }
            }
            Ok::<_, DbError>(())
        })?;
        rows.clear();
        Ok(())
    };
    let mut rows = Vec::with_capacity(CHUNK);
    let mut copied = 0u64;
    from.each(select, args, |row| {
        rows.push(read(row, columns)?);
        copied += 1;
        if rows.len() == CHUNK {
            flush(&mut rows)?;
        }
        Ok(())
    })?;
    flush(&mut rows)?;
    Ok(copied)
}

/// Copies `table` whole; how many rows.
pub(crate) fn copy_table(from: &Db, to: &Db, table: &Table) -> Result<u64, StoreError> {
    let names: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
    copy_rows(
        from,
        to,
        &format!(
            "SELECT {} FROM {} ORDER BY {}",
            names.join(", "),
            table.name,
            table.order
        ),
        &[],
        table.name,
        table.columns,
    )
}

/// One period's revisions as the check reads them on either side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodCheck {
    pub period: String,
    pub revisions: u64,
    /// SHA-256 (hex) of every revision of the period, in key order, as it reads back.
    pub digest: String,
}

/// What was copied and how it checked.
#[derive(Debug, Default)]
pub struct Migrated {
    /// Rows copied per table.
    pub tables: Vec<(String, u64)>,
    /// Each period on the source, with the copy's count and digest.
    pub periods: Vec<(PeriodCheck, PeriodCheck)>,
}

impl Migrated {
    /// Whether every period reads back the same.
    pub fn verified(&self) -> bool {
        self.periods.iter().all(|(a, b)| a == b)
    }
}

/// Every period of `table`, in order.
fn periods(db: &Db, table: &str) -> Result<Vec<String>, DbError> {
    db.all(
        &format!("SELECT DISTINCT period FROM {table} ORDER BY period"),
        &[],
        |r| r.string(0),
    )
}

/// The count and digest of `period`'s revisions in `table` of `db`: every column as it reads
/// back (the submission id as its text, senders and reporters as their names).
fn check(db: &Db, table: &str, period: &str) -> Result<PeriodCheck, DbError> {
    let mut hash = Sha256::new();
    let mut revisions = 0u64;
    db.each(
        &format!(
            "SELECT area, revision, submission_id, received_at_ms,
                    (SELECT text FROM names WHERE id = sender),
                    (SELECT text FROM names WHERE id = reporter),
                    zero_report, notes, warnings, vals
             FROM {table} WHERE period = ?1 ORDER BY area, revision"
        ),
        &[Arg::Text(period)],
        |r| {
            revisions += 1;
            let field = |hash: &mut Sha256, bytes: &[u8]| {
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(bytes);
            };
            field(&mut hash, r.text(0)?.as_bytes());
            field(&mut hash, &r.int(1)?.to_le_bytes());
            field(&mut hash, r.submission_id(2)?.as_bytes());
            field(&mut hash, &r.int(3)?.to_le_bytes());
            field(&mut hash, r.opt_text(4)?.unwrap_or_default().as_bytes());
            field(&mut hash, r.opt_text(5)?.unwrap_or_default().as_bytes());
            field(&mut hash, &r.int(6)?.to_le_bytes());
            field(&mut hash, r.text(7)?.as_bytes());
            field(&mut hash, r.text(8)?.as_bytes());
            field(&mut hash, r.bytes(9)?);
            Ok(())
        },
    )?;
    Ok(PeriodCheck {
        period: period.to_owned(),
        revisions,
        digest: hex::encode(hash.finalize()),
    })
}

/// Copies the store at `from` into the empty store at `to`, then checks every period of both
/// revision tables on both sides. `progress` hears what is being copied and how far it is.
pub(crate) fn copy_store(
    from: &Db,
    to: &Db,
    mut progress: impl FnMut(&str, u64),
) -> Result<Migrated, StoreError> {
    create_or_migrate(from)?;
    configure(to)?;
    create_or_migrate(to)?;
    let stored = to
        .one(
            &format!(
                "SELECT (SELECT COUNT(*) FROM revisions) + (SELECT COUNT(*) FROM {DEPARTMENT_REVISIONS})
                      + (SELECT COUNT(*) FROM value_keys)"
            ),
            &[],
            |r| r.int(0),
        )?
        .unwrap_or(0);
    if stored > 0 {
        return Err(StoreError::Migrate(
            "目标存储已有数据：只迁移到空的存储 (the destination store is not empty; migrate into an empty one)"
                .into(),
        ));
    }
    let mut out = Migrated::default();
    for table in TABLES {
        let n = copy_table(from, to, table)?;
        progress(table.name, n);
        out.tables.push((table.name.to_owned(), n));
    }
    for table in ["revisions", DEPARTMENT_REVISIONS] {
        let names: Vec<&str> = REVISION_COLUMNS.iter().map(|(c, _)| *c).collect();
        let select = format!(
            "SELECT {} FROM {table} WHERE period = ?1 ORDER BY area, revision",
            names.join(", ")
        );
        let mut total = 0;
        for period in periods(from, table)? {
            let n = copy_rows(
                from,
                to,
                &select,
                &[Arg::Text(&period)],
                table,
                REVISION_COLUMNS,
            )?;
            total += n;
            progress(&format!("{table} {period}"), n);
        }
        out.tables.push((table.to_owned(), total));
    }
    if to.is_postgres() {
        // names were copied with their numbers: the next one given follows them
        to.batch(
            "SELECT setval(pg_get_serial_sequence('names', 'id'), COALESCE((SELECT MAX(id) FROM names), 0) + 1, false)",
        )?;
    }
    for table in ["revisions", DEPARTMENT_REVISIONS] {
        for period in periods(from, table)? {
            let mut a = check(from, table, &period)?;
            let mut b = check(to, table, &period)?;
            if table != "revisions" {
                // departments' (条) reports, told apart from the divisions'
                a.period = format!("部门 {period}");
                b.period = a.period.clone();
            }
            progress(&format!("checked {table} {period}"), a.revisions);
            out.periods.push((a, b));
        }
    }
    Ok(out)
}
