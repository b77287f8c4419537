//! The two databases the store runs on, behind one small interface: SQLite (embedded, the
//! default: one file in the data directory) and PostgreSQL (`--store postgres://...`: several
//! hub processes on one database, its own replication for high availability).
//!
//! Statements are written once, in the SQL both run, with numbered parameters `?1`, `?2`, ...
//! (PostgreSQL is given them as `$1`, `$2`, ...). Integers are `BIGINT` on PostgreSQL; the
//! append-only audit tables carry a `rowid` column there (`BIGSERIAL`) so that "in the order
//! written" reads the same on both. Where the two differ (the tables' definitions, a
//! submission id's type), the caller asks [`Db::is_postgres`].
//!
//! PostgreSQL's client is asynchronous; its connections are driven by one background thread of
//! their own and every call here blocks until its answer, so the store's API stays synchronous
//! and can be called from anywhere (a tokio worker included), as SQLite's is.

use std::{
    cell::RefCell,
    collections::HashMap,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// Where a hub's store is: a SQLite file, or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAt {
    /// The SQLite database file.
    Sqlite(PathBuf),
    /// A `postgres://` connection string.
    Postgres(String),
}

impl StoreAt {
    /// `postgres://...` (or `postgresql://...`) is a PostgreSQL database; `None` the data
    /// directory's SQLite file.
    pub fn new(data: &Path, store: Option<&str>) -> StoreAt {
        match store {
            Some(url) => StoreAt::Postgres(url.to_owned()),
            None => StoreAt::Sqlite(data.join(super::DB_FILE)),
        }
    }

    /// Whether `text` names a PostgreSQL database.
    pub fn is_postgres_url(text: &str) -> bool {
        text.starts_with("postgres://") || text.starts_with("postgresql://")
    }

    /// What a message shows of it: the file, or the database without its password.
    pub fn shown(&self) -> String {
        match self {
            StoreAt::Sqlite(p) => p.display().to_string(),
            StoreAt::Postgres(url) => without_password(url),
        }
    }

    /// Whether the store is there to be read (a SQLite file exists; a database always may).
    pub fn exists(&self) -> bool {
        match self {
            StoreAt::Sqlite(p) => p.exists(),
            StoreAt::Postgres(_) => true,
        }
    }
}

/// The environment variable the tests read: a PostgreSQL server's URL (its `postgres`
/// database, say) on which they create a database of their own.
pub const TEST_POSTGRES: &str = "PINGAN_TEST_POSTGRES";

impl StoreAt {
    /// For tests: a new, empty PostgreSQL database on the server [`TEST_POSTGRES`] names, or
    /// `None` when it names none (the tests then run on SQLite only).
    pub fn fresh_test_database() -> Option<StoreAt> {
        let server = std::env::var(TEST_POSTGRES)
            .ok()
            .filter(|v| !v.is_empty())?;
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "pingan_test_{}_{}_{:08x}",
            std::process::id(),
            MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            rand::random::<u32>()
        );
        Some(
            StoreAt::new_database(&server, &name, false)
                .map(StoreAt::Postgres)
                .unwrap_or_else(|e| panic!("{TEST_POSTGRES}={server}: creating {name}: {e}")),
        )
    }

    /// A new, empty database `name` on the PostgreSQL server `server` (a URL of any database
    /// on it, as a user who may create databases), as its URL; one there already is dropped
    /// first when `replace` is set, else refused. For tests and the benchmarks.
    pub fn new_database(server: &str, name: &str, replace: bool) -> Result<String, DbError> {
        let at = StoreAt::database_on(server, name)?;
        let admin = Db::open(&StoreAt::Postgres(server.to_owned()))?;
        if replace {
            admin.batch(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        }
        admin.batch(&format!("CREATE DATABASE {name}"))?;
        Ok(at)
    }

    /// The URL of the database `name` on the server `server` names (its URL with the
    /// database changed).
    pub fn database_on(server: &str, name: &str) -> Result<String, DbError> {
        let mut config: tokio_postgres::Config = server
            .parse()
            .map_err(|e| DbError::Bad(format!("{}: {e}", without_password(server))))?;
        config.dbname(name);
        Ok(url_of(&config))
    }
}

/// A connection string of `config`'s host, port, user, password and database.
fn url_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or("postgres");
    format!("postgres://{user}{password}@{host}:{port}/{db}")
}

impl From<PathBuf> for StoreAt {
    fn from(p: PathBuf) -> StoreAt {
        StoreAt::Sqlite(p)
    }
}

/// `postgres://user:secret@host/db` shown as `postgres://user:***@host/db`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {}", pg_text(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A value that does not read as what it should be.
    #[error("{0}")]
    Bad(String),
    /// No connection could be made (the server is down, or none of the hosts takes writes).
    #[error("PostgreSQL unreachable: {0}")]
    Unreachable(String),
}

fn pg_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

impl DbError {
    /// The database is out of space (SQLite's SQLITE_FULL, PostgreSQL's 53100).
    pub(crate) fn is_disk_full(&self) -> bool {
        match self {
            DbError::Sqlite(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            DbError::Postgres(e) => e.code() == Some(&tokio_postgres::error::SqlState::DISK_FULL),
            DbError::Bad(_) | DbError::Unreachable(_) => false,
        }
    }

    /// The connection to PostgreSQL is gone (the server stopped, failed over, or the network
    /// broke): a new connection may succeed where this one cannot.
    pub(crate) fn is_connection_lost(&self) -> bool {
        match self {
            DbError::Unreachable(_) => true,
            DbError::Postgres(e) => {
                e.is_closed()
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                    || e.code().is_some_and(|c| {
                        let c = c.code();
                        // connection exceptions, operator intervention (shutdown), read-only
                        // (a standby not yet promoted)
                        c.starts_with("08") || c.starts_with("57") || c == "25006"
                    })
            }
            _ => false,
        }
    }
}

/// A statement's parameter.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
    Null,
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<u32> for Arg<'_> {
    fn from(v: u32) -> Self {
        Arg::Int(i64::from(v))
    }
}
impl From<u64> for Arg<'_> {
    fn from(v: u64) -> Self {
        Arg::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Int(i64::from(v))
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Bytes(v)
    }
}
impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Arg::Bytes(v)
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Arg::Null, Arg::Text)
    }
}

/// `args![a, b, c]`: a statement's parameters.
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$($crate::store::db::Arg::from($a)),*][..] };
}
pub(crate) use args;

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Int(v) => ValueRef::Integer(v),
            Arg::Text(s) => ValueRef::Text(s.as_bytes()),
            Arg::Bytes(b) => ValueRef::Blob(b),
            Arg::Null => ValueRef::Null,
        }))
    }
}

impl ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Arg::Int(v) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            Arg::Int(v) if *ty == Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
            Arg::Int(v) if *ty == Type::BOOL => (v != 0).to_sql(ty, out),
            Arg::Int(v) => v.to_sql(ty, out),
            Arg::Text(s) => s.to_sql(ty, out),
            Arg::Bytes(b) => b.to_sql(ty, out),
            Arg::Null => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A row of an answer.
#[derive(Debug)]
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r tokio_postgres::Row),
}

impl Row<'_> {
    /// An integer column, `None` when NULL.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self {
            Row::Sqlite(r) => Ok(r.get::<_, Option<i64>>(i)?),
            Row::Postgres(r) => {
                let ty = r.columns()[i].type_().clone();
                Ok(match ty {
                    Type::INT8 => r.try_get::<_, Option<i64>>(i)?,
                    Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map(i64::from),
                    Type::INT2 => r.try_get::<_, Option<i16>>(i)?.map(i64::from),
                    Type::BOOL => r.try_get::<_, Option<bool>>(i)?.map(i64::from),
                    other => {
                        return Err(DbError::Bad(format!(
                            "column {i} is {other}, not an integer"
                        )));
                    }
                })
            }
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        self.opt_int(i)?
            .ok_or_else(|| DbError::Bad(format!("column {i} is NULL")))
    }

    /// A count or revision number (0 ..= u32::MAX).
    pub fn u32(&self, i: usize) -> Result<u32, DbError> {
        let v = self.int(i)?;
        u32::try_from(v).map_err(|_| DbError::Bad(format!("column {i}: {v} out of range")))
    }

    /// A 0/1 column.
    pub fn flag(&self, i: usize) -> Result<bool, DbError> {
        Ok(self.int(i)? != 0)
    }

    pub fn opt_flag(&self, i: usize) -> Result<Option<bool>, DbError> {
        Ok(self.opt_int(i)?.map(|v| v != 0))
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<&str>, DbError> {
        match self {
            Row::Sqlite(r) => Ok(r
                .get_ref(i)?
                .as_str_or_null()
                .map_err(rusqlite::Error::from)?),
            Row::Postgres(r) => Ok(r.try_get::<_, Option<&str>>(i)?),
        }
    }

    pub fn text(&self, i: usize) -> Result<&str, DbError> {
        self.opt_text(i)?
            .ok_or_else(|| DbError::Bad(format!("column {i} is NULL")))
    }

    pub fn string(&self, i: usize) -> Result<String, DbError> {
        Ok(self.text(i)?.to_owned())
    }

    pub fn bytes(&self, i: usize) -> Result<&[u8], DbError> {
        match self {
            Row::Sqlite(r) => Ok(r.get_ref(i)?.as_blob().map_err(rusqlite::Error::from)?),
            Row::Postgres(r) => Ok(r.try_get::<_, &[u8]>(i)?),
        }
    }

    /// Whether the submission id stored here is `id`, whose key is `key`
    /// (`compact::submission_key`), compared as stored: no text is made.
    pub fn is_submission(
        &self,
        i: usize,
        id: &str,
        key: &rusqlite::types::Value,
    ) -> Result<bool, DbError> {
        use rusqlite::types::{Value, ValueRef};
        match self {
            Row::Sqlite(r) => Ok(match (r.get_ref(i)?, key) {
                (ValueRef::Blob(stored), Value::Blob(k)) => stored == k.as_slice(),
                (ValueRef::Text(stored), Value::Text(k)) => stored == k.as_bytes(),
                _ => false,
            }),
            Row::Postgres(_) => Ok(self.text(i)? == id),
        }
    }

    /// A submission id as stored (see `compact::submission_key`): SQLite keeps UUIDs and
    /// import digests as bytes, PostgreSQL keeps the text.
    pub fn submission_id(&self, i: usize) -> Result<String, DbError> {
        match self {
            Row::Sqlite(r) => super::compact::submission_text(r.get_ref(i)?)
                .map_err(|e| DbError::Bad(format!("submission id: {e}"))),
            Row::Postgres(_) => self.string(i),
        }
    }
}

/// A connection to the store's database.
#[derive(Debug)]
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Pg),
}

/// A PostgreSQL connection and the statements it has prepared.
pub struct Pg {
    client: tokio_postgres::Client,
    statements: RefCell<HashMap<String, tokio_postgres::Statement>>,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("statements", &self.statements.borrow().len())
            .finish()
    }
}

/// The thread that drives every PostgreSQL connection of the process.
fn pg_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("postgres-io")
            .enable_all()
            .build()
            .expect("a runtime for the PostgreSQL connections")
    })
}

/// Waits for `f` on the calling thread (the connection itself runs on [`pg_runtime`]).
fn wait<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

/// `?1` → `$1` (the statements never hold a `?` elsewhere).
fn numbered_for_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl Pg {
    /// Connects to `url`; waits at most 10 s.
    pub fn connect(url: &str) -> Result<Pg, DbError> {
        let mut config: tokio_postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        config.application_name("pingan-hub");
        // "table exists, skipping" and the like are no news for the hub's log
        config.options("-c client_min_messages=warning");
        // answered over a plain channel: a tokio JoinHandle waited on from a thread inside
        // another runtime's task can be told to yield forever (tokio's cooperative budget)
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        pg_runtime().spawn(async move {
            let connected = config.connect(tokio_postgres::NoTls).await;
            let client = connected.map(|(client, connection)| {
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "PostgreSQL connection ended");
                    }
                });
                client
            });
            let _ = tx.send(client);
        });
        let client = rx
            .recv()
            .map_err(|_| DbError::Unreachable("no answer".into()))?
            .map_err(|e| DbError::Unreachable(pg_text(&e)))?;
        Ok(Pg {
            client,
            statements: RefCell::new(HashMap::new()),
        })
    }

    fn statement(&self, sql: &str) -> Result<tokio_postgres::Statement, DbError> {
        if let Some(st) = self.statements.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = wait(self.client.prepare(&numbered_for_postgres(sql)))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    fn params<'p>(args: &'p [Arg<'p>]) -> Vec<&'p (dyn ToSql + Sync)> {
        args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
    }
}

impl Db {
    /// Opens a connection to the store at `at` (SQLite: read-write, created if missing).
    pub fn open(at: &StoreAt) -> Result<Db, DbError> {
        match at {
            StoreAt::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                // every statement is cached (the writer's, the migration's): room for them all
                conn.set_prepared_statement_cache_capacity(64);
                Ok(Db::Sqlite(conn))
            }
            StoreAt::Postgres(url) => Ok(Db::Postgres(Pg::connect(url)?)),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Runs statements without parameters (tables, transactions).
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(pg) => Ok(wait(pg.client.batch_execute(sql))?),
        }
    }

    /// Runs one statement; how many rows it changed.
    pub fn run(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                Ok(st.execute(rusqlite::params_from_iter(args.iter()))? as u64)
            }
            Db::Postgres(pg) => {
                let st = pg.statement(sql)?;
                Ok(wait(pg.client.execute(&st, &Pg::params(args)))?)
            }
        }
    }

    /// Calls `f` with every row of the answer, in order.
    pub fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Sqlite(r))?;
                }
                Ok(())
            }
            Db::Postgres(pg) => {
                let st = pg.statement(sql)?;
                let rows = wait(pg.client.query(&st, &Pg::params(args)))?;
                for r in &rows {
                    f(&Row::Postgres(r))?;
                }
                Ok(())
            }
        }
    }

    /// Every row of the answer, each made a `T` by `f`.
    pub fn all<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let mut out = Vec::new();
        self.each(sql, args, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of the answer, if any, made a `T` by `f`.
    pub fn one<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let mut f = Some(f);
        let mut out = None;
        self.each(sql, args, |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// [`Db::one`] for each of `sets`: on PostgreSQL all sent at once (pipelined: one round
    /// trip for the lot, not one each), on SQLite one after the other.
    pub fn one_each<T>(
        &self,
        sql: &str,
        sets: &[Vec<Arg<'_>>],
        mut f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<Option<T>>, DbError> {
        let mut out: Vec<Option<T>> = sets.iter().map(|_| None).collect();
        self.each_of(sql, sets, |i, r| {
            if out[i].is_none() {
                out[i] = Some(f(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Every row of `sql` for each of `sets`, given to `f` with its set's index: on
    /// PostgreSQL all sent at once (pipelined), on SQLite one after the other.
    pub fn each_of(
        &self,
        sql: &str,
        sets: &[Vec<Arg<'_>>],
        mut f: impl FnMut(usize, &Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        match self {
            Db::Sqlite(_) => {
                for (i, a) in sets.iter().enumerate() {
                    self.each(sql, a, |r| f(i, r))?;
                }
                Ok(())
            }
            Db::Postgres(pg) => {
                let st = pg.statement(sql)?;
                let params: Vec<_> = sets.iter().map(|a| Pg::params(a)).collect();
                let answers = wait(futures_util::future::try_join_all(
                    params.iter().map(|p| pg.client.query(&st, p)),
                ))?;
                for (i, rows) in answers.iter().enumerate() {
                    for r in rows {
                        f(i, &Row::Postgres(r))?;
                    }
                }
                Ok(())
            }
        }
    }

    /// [`Db::run`] for each of `sets`, pipelined on PostgreSQL likewise; rows changed in all.
    pub fn run_each(&self, sql: &str, sets: &[Vec<Arg<'_>>]) -> Result<u64, DbError> {
        match self {
            Db::Sqlite(_) => sets.iter().map(|a| self.run(sql, a)).sum(),
            Db::Postgres(pg) => {
                let st = pg.statement(sql)?;
                let params: Vec<_> = sets.iter().map(|a| Pg::params(a)).collect();
                let changed = wait(futures_util::future::try_join_all(
                    params.iter().map(|p| pg.client.execute(&st, p)),
                ))?;
                Ok(changed.iter().sum())
            }
        }
    }

    /// Runs `f` in one transaction that writes (SQLite: `BEGIN IMMEDIATE`, the writers'
    /// turn taken at the start), committed when `f` succeeds, rolled back when it fails.
    pub fn write<T, E: From<DbError>>(&self, f: impl FnOnce(&Db) -> Result<T, E>) -> Result<T, E> {
        self.batch(match self {
            Db::Sqlite(_) => "BEGIN IMMEDIATE",
            Db::Postgres(_) => "BEGIN",
        })?;
        match f(self) {
            Ok(out) => {
                self.batch("COMMIT")?;
                Ok(out)
            }
            Err(e) => {
                if let Err(rollback) = self.batch("ROLLBACK") {
                    tracing::debug!(error = %rollback, "rollback after a failed transaction");
                }
                Err(e)
            }
        }
    }

    /// Runs `f` in one read-only transaction: everything it reads sees one state of the store.
    pub fn read<T, E: From<DbError>>(&self, f: impl FnOnce(&Db) -> Result<T, E>) -> Result<T, E> {
        self.batch(match self {
            Db::Sqlite(_) => "BEGIN",
            Db::Postgres(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        })?;
        let out = f(self);
        self.batch(if out.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
        out
    }

    /// The SQLite connection, for what only SQLite has (pragmas, its older layouts).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Db::Sqlite(c) => Some(c),
            Db::Postgres(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_and_shown_urls() {
        assert_eq!(
            numbered_for_postgres("SELECT ?1, ?12 WHERE a = ?2"),
            "SELECT $1, $12 WHERE a = $2"
        );
        assert_eq!(
            without_password("postgres://hub:s3cret@10.0.0.5:5432/pingan"),
            "postgres://hub:***@10.0.0.5:5432/pingan"
        );
        assert_eq!(
            without_password("postgres://hub@db/pingan"),
            "postgres://hub@db/pingan"
        );
    }
}
