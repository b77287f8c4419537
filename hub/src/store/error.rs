//! Why the store could not do what was asked.

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("hub store is full, nothing was stored: {0}")]
    DiskFull(String),
    #[error(
        "submission id {0:?} was already used for a different report; use a new id for a correction"
    )]
    IdReused(String),
    #[error("hub store is shutting down")]
    Closed,
    #[error("hub store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("hub store {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "hub data directory {dir} is in use by another process ({holder}): stop that pingan-hub first (数据目录正被另一个进程使用)"
    )]
    InUse { dir: String, holder: String },
    #[error(
        "{area} {period} has {MAX_REVISIONS} revisions already; no more corrections are taken (更正次数已达上限)",
        MAX_REVISIONS = super::MAX_REVISIONS
    )]
    TooManyRevisions { area: String, period: String },
    #[error(
        "{area} {} 的报表 {} 已于 {} 由 {} 锁定（{}）：不再接受报送或更正，请锁定人或上级解锁后再报 (pingan-hub unlock) (this period is locked; ask to have it unlocked)",
        .lock.period, .lock.form, crate::clock::minute_text(.lock.at_ms), .lock.by, .lock.reason
    )]
    Locked {
        area: String,
        lock: Box<super::LockRecord>,
    },
    /// A review decision that cannot be taken (already decided, a newer revision came).
    #[error("{0}")]
    Review(String),
    #[error("hub store holds a corrupt revision of {area} {period}: {reason}")]
    Corrupt {
        area: String,
        period: String,
        reason: String,
    },
}

impl StoreError {
    /// Classifies SQLite's "disk full" apart from other failures.
    pub(crate) fn from_sqlite(e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull(e.to_string()),
            _ => StoreError::Sqlite(e),
        }
    }
}
