//! Accounts of the node's entry page (`pingan-node users ...`): who may open it when it is
//! served on the office network. Kept in the node's store beside its outbox; only argon2id
//! hashes of the passwords (see [`crate::password`]).

use rusqlite::OptionalExtension as _;

use crate::{Outbox, OutboxError, password};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS page_users (
    name           TEXT    NOT NULL PRIMARY KEY,
    hash           TEXT    NOT NULL,
    created_at_ms  INTEGER NOT NULL
);
";

/// Why an account could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("用户名应为 1 到 64 个字母、数字、汉字或 . _ -")]
    BadName,
    #[error("用户 {0} 已存在")]
    Exists(String),
    #[error("没有用户 {0}")]
    Missing(String),
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

impl From<rusqlite::Error> for AccountError {
    fn from(e: rusqlite::Error) -> AccountError {
        AccountError::Outbox(e.into())
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Outbox {
    fn accounts_ready(&self) -> Result<(), rusqlite::Error> {
        self.conn().execute_batch(SCHEMA)
    }

    /// Adds an account of the page.
    pub fn add_page_user(&self, name: &str, password: &str) -> Result<(), AccountError> {
        if !valid_name(name) {
            return Err(AccountError::BadName);
        }
        self.accounts_ready()?;
        let hash = password::hash(password)?;
        let added = self.conn().execute(
            "INSERT OR IGNORE INTO page_users (name, hash, created_at_ms) VALUES (?1, ?2, ?3)",
            rusqlite::params![name, hash, chrono::Utc::now().timestamp_millis()],
        )?;
        if added == 0 {
            return Err(AccountError::Exists(name.to_owned()));
        }
        Ok(())
    }

    /// Removes an account of the page.
    pub fn remove_page_user(&self, name: &str) -> Result<(), AccountError> {
        self.accounts_ready()?;
        let removed = self
            .conn()
            .execute("DELETE FROM page_users WHERE name = ?1", [name])?;
        if removed == 0 {
            return Err(AccountError::Missing(name.to_owned()));
        }
        Ok(())
    }

    /// The page's accounts, by name.
    pub fn page_users(&self) -> Result<Vec<String>, AccountError> {
        self.accounts_ready()?;
        let mut st = self
            .conn()
            .prepare("SELECT name FROM page_users ORDER BY name")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether `name` and `password` are an account of the page (the same answer, after the
    /// same work, for an unknown name and a wrong password).
    pub fn check_page_user(&self, name: &str, password: &str) -> Result<bool, AccountError> {
        self.accounts_ready()?;
        let stored: Option<String> = self
            .conn()
            .query_row("SELECT hash FROM page_users WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(password::verify(stored.as_deref(), password))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_signs_in_with_its_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        outbox.add_page_user("张会计", "老西街社区2026").unwrap();
        assert!(matches!(
            outbox.add_page_user("张会计", "另一个密码2026"),
            Err(AccountError::Exists(_))
        ));
        assert!(matches!(
            outbox.add_page_user("a b", "12345678"),
            Err(AccountError::BadName)
        ));
        assert!(outbox.check_page_user("张会计", "老西街社区2026").unwrap());
        assert!(!outbox.check_page_user("张会计", "老西街社区2025").unwrap());
        assert!(!outbox.check_page_user("李会计", "老西街社区2026").unwrap());
        assert_eq!(outbox.page_users().unwrap(), ["张会计"]);
        outbox.remove_page_user("张会计").unwrap();
        assert!(outbox.page_users().unwrap().is_empty());
    }
}
