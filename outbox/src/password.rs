//! Passwords as argon2id hashes (PHC strings), for the hub's dashboard accounts and the node's
//! entry page alike: a password is never stored, and an unknown name costs the same time as a
//! wrong password.

use argon2::{
    Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _, password_hash::SaltString,
};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Why a password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("密码太短：至少 {MIN_PASSWORD_CHARS} 个字符 (password too short)")]
    TooShort,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// The argon2id hash of `password` with a fresh salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?
        .to_string())
}

/// A password from the terminal (asked twice, no echo) or one line of standard input.
pub fn read(name: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("{name} 的密码 (password): "))?;
        let again = rpassword::prompt_password("再输入一次 (again): ")?;
        anyhow::ensure!(
            first == again,
            "两次输入的密码不同，没有改动 (the two passwords differ)"
        );
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// A hash to verify against when the user does not exist.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy password, never matches").expect("hashable"))
}

/// Whether `password` matches `stored` (`None`: no such user; checked against a decoy, so it
/// takes as long and never matches).
pub fn verify(stored: Option<&str>, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored.unwrap_or(decoy())) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && stored.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_password_matches_and_none_is_stored() {
        let h = hash("张会计的密码 2026").unwrap();
        assert!(h.starts_with("$argon2id$") && !h.contains("张会计"));
        assert!(verify(Some(&h), "张会计的密码 2026"));
        assert!(!verify(Some(&h), "张会计的密码 2025"));
        assert!(!verify(None, "decoy password, never matches"));
        assert_eq!(hash("short"), Err(PasswordError::TooShort));
    }
}
