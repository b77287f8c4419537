//! Web accounts for leaders' dashboard: a user name maps to a viewer identity (`viewer` of an
//! area), so what a signed-in user may read is decided by the same rules as a viewer
//! certificate's. Passwords are kept only as argon2id hashes (PHC strings); sessions are random
//! tokens of which only the SHA-256 is stored, and they expire.
//!
//! Accounts live in `users.db` beside the store, managed with `pingan-hub users ...`.

use std::path::{Path, PathBuf};

use crate::store::db::{Db, DbError, Row, args};
use pingan_domain::{AreaCode, Areas};
use sha2::{Digest as _, Sha256};

use crate::access::tls::{Identity, Role};

/// File name of the accounts database inside the hub's data directory.
pub const USERS_FILE: &str = "users.db";

/// Shortest password accepted.
pub use pingan_outbox::password::MIN_PASSWORD_CHARS;

/// How long a session lasts by default (8 hours: a working day).
pub const SESSION_TTL_MS: i64 = 8 * 3600 * 1000;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(
        "用户名「{0}」应为 1 到 64 个字母、数字、汉字、'.'、'_' 或 '-' (user name: 1 to 64 letters, digits, '.', '_' or '-')"
    )]
    BadName(String),
    #[error("用户「{0}」已存在 (user already exists)")]
    Exists(String),
    #[error("没有用户「{0}」(no user by that name)")]
    Unknown(String),
    #[error(
        "区划代码 {0} 不在所用的区划里；hub 用 --divisions 启动的，这里也给同样的 --divisions (unknown area: not in the division codes given)"
    )]
    UnknownArea(String),
    #[error("密码太短：至少 {MIN_PASSWORD_CHARS} 个字符 (password too short)")]
    WeakPassword,
    /// The same answer for an unknown user and a wrong password.
    #[error("wrong user name or password")]
    SignIn,
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("accounts {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("accounts database: {0}")]
    Db(#[from] DbError),
}

/// An account as listed (never with its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// The area whose subtree the user reads.
    pub area: AreaCode,
    pub created_at_ms: i64,
}

impl User {
    /// The identity the user acts as: a viewer of its area, like a viewer certificate.
    pub fn identity(&self) -> Identity {
        Identity {
            role: Role::Viewer,
            area: self.area,
            department: None,
            serial: format!("user:{}", self.name),
        }
    }
}

/// An account's columns as read, before its area code is parsed.
struct UserRow {
    name: String,
    area: String,
    created_at_ms: i64,
}

/// Reads `name, area, created_at_ms` (the first three columns).
fn user_row(r: &Row<'_>) -> Result<UserRow, DbError> {
    Ok(UserRow {
        name: r.string(0)?,
        area: r.string(1)?,
        created_at_ms: r.int(2)?,
    })
}

impl UserRow {
    fn into_user(self) -> Result<User, UserError> {
        Ok(User {
            area: self
                .area
                .parse()
                .map_err(|_| UserError::UnknownArea(self.area.clone()))?,
            name: self.name,
            created_at_ms: self.created_at_ms,
        })
    }
}

/// The accounts and sessions of one hub.
#[derive(Debug)]
pub struct Users {
    conn: std::cell::RefCell<Db>,
    /// The PostgreSQL database, to connect again after a failover.
    postgres: Option<String>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    name            TEXT    PRIMARY KEY,
    area            TEXT    NOT NULL,
    password        TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256    BLOB    PRIMARY KEY,
    name            TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_name ON sessions (name);
";

/// The same tables on PostgreSQL (in the store's database).
const POSTGRES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    name            TEXT    PRIMARY KEY,
    area            TEXT    NOT NULL,
    password        TEXT    NOT NULL,
    created_at_ms   BIGINT  NOT NULL,
    updated_at_ms   BIGINT  NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256    BYTEA   PRIMARY KEY,
    name            TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_at_ms   BIGINT  NOT NULL,
    expires_at_ms   BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_name ON sessions (name);
";

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn hash_password(password: &str) -> Result<String, UserError> {
    pingan_outbox::password::hash(password).map_err(|e| match e {
        pingan_outbox::password::PasswordError::TooShort => UserError::WeakPassword,
        pingan_outbox::password::PasswordError::Hash(e) => UserError::Hash(e),
    })
}

impl Users {
    /// Opens (creating if needed) the accounts of the hub whose data directory is `dir`.
    pub fn open(dir: &Path) -> Result<Users, UserError> {
        Users::open_at(dir, None)
    }

    /// Opens the accounts of the hub whose data directory is `dir`, in the PostgreSQL
    /// database `store` when given (the store's: every hub process on it shares them).
    pub fn open_at(dir: &Path, store: Option<&str>) -> Result<Users, UserError> {
        if let Some(url) = store {
            let conn = Db::open(&crate::store::StoreAt::Postgres(url.to_owned()))?;
            conn.write(|tx| {
                tx.batch("SELECT pg_advisory_xact_lock(7231004)")?;
                tx.batch(POSTGRES_SCHEMA)
            })?;
            return Ok(Users {
                conn: std::cell::RefCell::new(conn),
                postgres: Some(url.to_owned()),
            });
        }
        std::fs::create_dir_all(dir).map_err(|source| UserError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(USERS_FILE);
        let db = Db::open(&crate::store::StoreAt::Sqlite(path.clone()))?;
        let conn = db.sqlite().expect("opened as SQLite");
        // password hashes and session digests: readable by the hub's own user only (SQLite
        // gives its -wal and -shm files the database file's permissions)
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| UserError::Io {
                    path: path.clone(),
                    source,
                },
            )?;
        }
        let set_up = || -> rusqlite::Result<()> {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            conn.execute_batch(SCHEMA)
        };
        set_up().map_err(DbError::from)?;
        Ok(Users {
            conn: std::cell::RefCell::new(db),
            postgres: None,
        })
    }

    /// The accounts' database (for `pingan-hub migrate`).
    pub(crate) fn db(&self) -> std::cell::Ref<'_, Db> {
        self.conn.borrow()
    }

    /// The connection, made again first when PostgreSQL's went away (a failover, a restart):
    /// a dashboard's sign-in works again as soon as the database does.
    fn conn(&self) -> Result<std::cell::Ref<'_, Db>, UserError> {
        if let Some(url) = &self.postgres {
            let alive = self.conn.borrow().batch("SELECT 1").is_ok();
            if !alive {
                let fresh = Db::open(&crate::store::StoreAt::Postgres(url.clone()))?;
                *self.conn.borrow_mut() = fresh;
            }
        }
        Ok(self.conn.borrow())
    }

    /// Adds an account reading `area`'s subtree.
    pub fn add(
        &self,
        areas: &Areas,
        name: &str,
        code: AreaCode,
        password: &str,
        now_ms: i64,
    ) -> Result<User, UserError> {
        if !valid_name(name) {
            return Err(UserError::BadName(name.to_owned()));
        }
        if areas.get(code).is_none() {
            return Err(UserError::UnknownArea(code.to_string()));
        }
        // names differing only in case would be two accounts a leader cannot tell apart
        let taken = self.conn()?.one(
            "SELECT name FROM users WHERE lower(name) = lower(?1)",
            args![name],
            |r| r.string(0),
        )?;
        if let Some(taken) = taken {
            return Err(UserError::Exists(taken));
        }
        let hash = hash_password(password)?;
        let inserted = self.conn()?.run(
            "INSERT INTO users (name, area, password, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (name) DO NOTHING",
            args![name, &code.to_string(), &hash, now_ms],
        )?;
        if inserted == 0 {
            return Err(UserError::Exists(name.to_owned()));
        }
        Ok(User {
            name: name.to_owned(),
            area: code,
            created_at_ms: now_ms,
        })
    }

    /// Sets a new password and ends the user's sessions.
    pub fn set_password(&self, name: &str, password: &str, now_ms: i64) -> Result<(), UserError> {
        let hash = hash_password(password)?;
        let changed = self.conn()?.run(
            "UPDATE users SET password = ?2, updated_at_ms = ?3 WHERE name = ?1",
            args![name, &hash, now_ms],
        )?;
        if changed == 0 {
            return Err(UserError::Unknown(name.to_owned()));
        }
        self.conn()?
            .run("DELETE FROM sessions WHERE name = ?1", args![name])?;
        Ok(())
    }

    /// Removes an account and its sessions.
    pub fn remove(&self, name: &str) -> Result<(), UserError> {
        if self
            .conn()?
            .run("DELETE FROM users WHERE name = ?1", args![name])?
            == 0
        {
            return Err(UserError::Unknown(name.to_owned()));
        }
        Ok(())
    }

    /// Every account, by name.
    pub fn list(&self) -> Result<Vec<User>, UserError> {
        let rows = self.conn()?.all(
            "SELECT name, area, created_at_ms FROM users ORDER BY name",
            &[],
            user_row,
        )?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    /// Checks a user name and password; the same error for either being wrong.
    pub fn verify(&self, name: &str, password: &str) -> Result<User, UserError> {
        let row = self.conn()?.one(
            "SELECT name, area, created_at_ms, password FROM users WHERE name = ?1",
            args![name],
            |r| Ok((user_row(r)?, r.string(3)?)),
        )?;
        let matches =
            pingan_outbox::password::verify(row.as_ref().map(|(_, h)| h.as_str()), password);
        match row {
            Some((user, _)) if matches => user.into_user(),
            _ => Err(UserError::SignIn),
        }
    }

    /// Signs a user in: a new session token (64 hex digits), valid for `ttl_ms`.
    pub fn sign_in(
        &self,
        name: &str,
        password: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<(String, User), UserError> {
        let user = self.verify(name, password)?;
        let token = hex::encode(rand::random::<[u8; 32]>());
        // expired sessions are swept whenever someone signs in
        self.conn()?.run(
            "DELETE FROM sessions WHERE expires_at_ms <= ?1",
            args![now_ms],
        )?;
        self.conn()?.run(
            "INSERT INTO sessions (token_sha256, name, created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
            args![&token_hash(&token), name, now_ms, now_ms + ttl_ms],
        )?;
        Ok((token, user))
    }

    /// The user a session token belongs to, if the session exists and has not expired.
    pub fn session(&self, token: &str, now_ms: i64) -> Result<Option<User>, UserError> {
        let row = self.conn()?.one(
            "SELECT u.name, u.area, u.created_at_ms FROM sessions s JOIN users u ON u.name = s.name
             WHERE s.token_sha256 = ?1 AND s.expires_at_ms > ?2",
            args![&token_hash(token), now_ms],
            user_row,
        )?;
        row.map(UserRow::into_user).transpose()
    }

    /// Ends a session (signing out).
    pub fn sign_out(&self, token: &str) -> Result<(), UserError> {
        self.conn()?.run(
            "DELETE FROM sessions WHERE token_sha256 = ?1",
            args![&token_hash(token)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingan_domain::fixtures;

    const HOUR: i64 = 3600 * 1000;

    #[test]
    fn accounts_sign_in_and_sessions_expire() {
        let dir = tempfile::tempdir().unwrap();
        let areas = fixtures::santai_areas();
        let users = Users::open(dir.path()).unwrap();
        let zhang = users
            .add(
                &areas,
                "张书记",
                "510722101".parse().unwrap(),
                "潼川镇平安办2026",
                0,
            )
            .unwrap();
        assert_eq!(zhang.identity().uri(), "pingan://viewer/510722101");
        // a user reads what a viewer certificate of its area reads, and nothing else
        let auth = crate::access::authz::Authorizer::insecure();
        let may = |action, area: &str| {
            auth.check(Some(&zhang.identity()), action, area.parse().unwrap())
                .is_ok()
        };
        use crate::access::authz::Action;
        assert!(may(Action::Read, "510722101"));
        assert!(may(Action::Read, "510722101002"));
        assert!(!may(Action::Read, "510722104"));
        assert!(!may(Action::Read, "510722"));
        assert!(!may(Action::Submit, "510722101"));
        assert!(matches!(
            users.add(
                &areas,
                "张书记",
                "510722".parse().unwrap(),
                "another password",
                0
            ),
            Err(UserError::Exists(_))
        ));
        assert!(matches!(
            users.add(&areas, "li", "510722".parse().unwrap(), "short", 0),
            Err(UserError::WeakPassword)
        ));
        assert!(matches!(
            users.add(
                &areas,
                "li",
                "110101".parse().unwrap(),
                "long enough password",
                0
            ),
            Err(UserError::UnknownArea(_))
        ));
        assert!(matches!(
            users.add(
                &areas,
                "li si",
                "510722".parse().unwrap(),
                "long enough password",
                0
            ),
            Err(UserError::BadName(_))
        ));

        // the password is not stored, its argon2id hash is
        let stored = users
            .db()
            .one("SELECT password FROM users", &[], |r| r.string(0))
            .unwrap()
            .unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("潼川镇平安办2026"));

        // wrong password and unknown user get the same answer
        let wrong = users.verify("张书记", "潼川镇平安办2025").unwrap_err();
        let unknown = users.verify("王主任", "潼川镇平安办2026").unwrap_err();
        assert_eq!(wrong.to_string(), unknown.to_string());

        let (token, user) = users
            .sign_in("张书记", "潼川镇平安办2026", 10 * HOUR, SESSION_TTL_MS)
            .unwrap();
        assert_eq!(user, zhang);
        assert_eq!(token.len(), 64);
        assert_eq!(
            users.session(&token, 11 * HOUR).unwrap(),
            Some(zhang.clone())
        );
        // the token itself is not stored
        let tokens = users
            .db()
            .one(
                "SELECT COUNT(*) FROM sessions WHERE token_sha256 = ?1",
                args![token.as_bytes()],
                |r| r.int(0),
            )
            .unwrap()
            .unwrap();
        assert_eq!(tokens, 0);
        // sessions expire
        assert_eq!(users.session(&token, 18 * HOUR).unwrap(), None);
        assert_eq!(users.session("not a token", 11 * HOUR).unwrap(), None);

        // signing out and changing the password end sessions
        let (a, _) = users
            .sign_in("张书记", "潼川镇平安办2026", 20 * HOUR, SESSION_TTL_MS)
            .unwrap();
        let (b, _) = users
            .sign_in("张书记", "潼川镇平安办2026", 20 * HOUR, SESSION_TTL_MS)
            .unwrap();
        users.sign_out(&a).unwrap();
        assert_eq!(users.session(&a, 21 * HOUR).unwrap(), None);
        assert!(users.session(&b, 21 * HOUR).unwrap().is_some());
        users
            .set_password("张书记", "新的密码很长很长", 21 * HOUR)
            .unwrap();
        assert_eq!(users.session(&b, 21 * HOUR).unwrap(), None);
        assert!(users.verify("张书记", "潼川镇平安办2026").is_err());
        assert!(users.verify("张书记", "新的密码很长很长").is_ok());

        // accounts survive a reopen; removing one ends its sessions
        drop(users);
        let users = Users::open(dir.path()).unwrap();
        assert_eq!(users.list().unwrap(), vec![zhang]);
        let (c, _) = users
            .sign_in("张书记", "新的密码很长很长", 22 * HOUR, SESSION_TTL_MS)
            .unwrap();
        users.remove("张书记").unwrap();
        assert_eq!(users.session(&c, 22 * HOUR).unwrap(), None);
        assert!(matches!(users.remove("张书记"), Err(UserError::Unknown(_))));
        assert!(users.list().unwrap().is_empty());
    }

    #[test]
    fn accounts_on_postgres_outlive_a_dropped_connection() {
        let Some(crate::store::StoreAt::Postgres(url)) =
            crate::store::StoreAt::fresh_test_database()
        else {
            eprintln!("not run: PINGAN_TEST_POSTGRES names no PostgreSQL server");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let areas = fixtures::santai_areas();
        let users = Users::open_at(dir.path(), Some(&url)).unwrap();
        users
            .add(
                &areas,
                "张书记",
                "510722101".parse().unwrap(),
                "潼川镇平安办2026",
                0,
            )
            .unwrap();
        // the server drops every connection to the database (a restart, a failover)
        let db = url.rsplit('/').next().unwrap().to_owned();
        let admin = Db::open(&crate::store::StoreAt::Postgres(
            std::env::var(crate::store::db::TEST_POSTGRES).unwrap(),
        ))
        .unwrap();
        let dropped = admin
            .one(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = ?1",
                args![db.as_str()],
                |r| r.int(0),
            )
            .unwrap();
        assert_eq!(dropped, Some(1));
        let (token, user) = users
            .sign_in("张书记", "潼川镇平安办2026", HOUR, SESSION_TTL_MS)
            .unwrap();
        assert_eq!(users.session(&token, 2 * HOUR).unwrap(), Some(user));
    }
}
