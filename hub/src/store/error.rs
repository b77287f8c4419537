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
    /// The database is out of reach for now (PostgreSQL restarting or failing over): nothing
    /// was stored, a retry may succeed.
    #[error("hub store's database is unavailable, nothing was stored; retry: {0}")]
    Unavailable(String),
    #[error("hub store error: {0}")]
    Db(super::db::DbError),
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
    /// A copy between stores that cannot be made or does not check.
    #[error("{0}")]
    Migrate(String),
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

impl From<super::db::DbError> for StoreError {
    /// Tells "disk full" apart from other failures.
    fn from(e: super::db::DbError) -> StoreError {
        if e.is_disk_full() {
            StoreError::DiskFull(e.to_string())
        } else {
            StoreError::Db(e)
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::from(super::db::DbError::from(e))
    }
}

impl StoreError {
    /// The database connection was lost (PostgreSQL stopped or failed over): worth a retry on
    /// a new connection.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
            || matches!(self, StoreError::Db(e) if e.is_connection_lost())
    }
}
