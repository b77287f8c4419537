//! Statistical division codes (统计用区划代码): the code's length is its level and its prefix
//! is its parent.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A level of the administrative hierarchy, named by the length of its codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// 省: 2 digits.
    Province,
    /// 地市: 4 digits.
    Prefecture,
    /// 县区: 6 digits.
    County,
    /// 乡镇街道: 9 digits.
    Township,
    /// 村社区: 12 digits.
    Village,
}

impl Level {
    /// All levels, top down.
    pub const ALL: [Level; 5] = [
        Level::Province,
        Level::Prefecture,
        Level::County,
        Level::Township,
        Level::Village,
    ];

    /// Number of digits in a code of this level.
    pub fn code_len(self) -> usize {
        match self {
            Level::Province => 2,
            Level::Prefecture => 4,
            Level::County => 6,
            Level::Township => 9,
            Level::Village => 12,
        }
    }

    fn from_len(len: usize) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.code_len() == len)
    }

    /// The level above, if any.
    pub fn parent(self) -> Option<Level> {
        match self {
            Level::Province => None,
            Level::Prefecture => Some(Level::Province),
            Level::County => Some(Level::Prefecture),
            Level::Township => Some(Level::County),
            Level::Village => Some(Level::Township),
        }
    }

    /// The level below, if any.
    pub fn child(self) -> Option<Level> {
        match self {
            Level::Province => Some(Level::Prefecture),
            Level::Prefecture => Some(Level::County),
            Level::County => Some(Level::Township),
            Level::Township => Some(Level::Village),
            Level::Village => None,
        }
    }

    /// Chinese name of the level, as users read it.
    pub fn zh(self) -> &'static str {
        match self {
            Level::Province => "省",
            Level::Prefecture => "市",
            Level::County => "县",
            Level::Township => "乡镇",
            Level::Village => "村社区",
        }
    }

    /// English name, as used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::Prefecture => "prefecture",
            Level::County => "county",
            Level::Township => "township",
            Level::Village => "village",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level's name that is none of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "未知的层级「{0}」：应为 province（省）、prefecture（市）、county（县）、township（乡镇）或 village（村社区）"
)]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s || l.zh() == s)
            .ok_or_else(|| UnknownLevel(s.to_owned()))
    }
}

/// A syntactically valid division code. Whether it exists is the registry's business
/// ([`crate::Areas`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AreaCode {
    digits: u64,
    level: Level,
}

/// Why a string is not a division code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AreaCodeError {
    #[error("区划代码「{0}」应全为数字")]
    NotDigits(String),
    #[error("区划代码「{0}」有 {1} 位；区划代码为 2、4、6、9 或 12 位")]
    BadLength(String, usize),
}

impl AreaCode {
    /// The level the code's length says.
    pub fn level(self) -> Level {
        self.level
    }

    /// The parent code (the prefix one level up), if any.
    pub fn parent(self) -> Option<AreaCode> {
        let parent = self.level.parent()?;
        Some(self.truncate(parent))
    }

    /// This code's ancestor (or itself) at `level`; `None` when `level` is below this code's.
    pub fn ancestor_at(self, level: Level) -> Option<AreaCode> {
        (level <= self.level).then(|| self.truncate(level))
    }

    fn truncate(self, level: Level) -> AreaCode {
        let drop = self.level.code_len() - level.code_len();
        AreaCode {
            digits: self.digits / 10u64.pow(drop as u32),
            level,
        }
    }

    /// Whether `self` is `other` or one of its descendants.
    pub fn is_within(self, other: AreaCode) -> bool {
        self.ancestor_at(other.level) == Some(other)
    }

    /// The code as a number (its digits), e.g. 510722101001.
    pub fn digits(self) -> u64 {
        self.digits
    }
}

impl FromStr for AreaCode {
    type Err = AreaCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AreaCodeError::NotDigits(s.to_owned()));
        }
        let level = Level::from_len(s.len())
            .ok_or_else(|| AreaCodeError::BadLength(s.to_owned(), s.len()))?;
        let digits = s
            .parse()
            .map_err(|_| AreaCodeError::NotDigits(s.to_owned()))?;
        Ok(AreaCode { digits, level })
    }
}

impl fmt::Display for AreaCode {
    /// The code's digits, zero-padded to its level's length (written by hand: a national
    /// answer writes tens of thousands of codes, and `{:0width$}` costs several times more).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [b'0'; 20];
        match zero_padded(self.digits, self.level.code_len(), &mut buf) {
            Some(text) => f.pad(text),
            // digits beyond the level's length cannot be (codes are checked when made); shown
            // whole rather than cut, as the formatting before did
            None => write!(f, "{}", self.digits),
        }
    }
}

/// `digits` zero-padded to `width` (at most 20) in `buf`, by hand: a national answer writes tens
/// of thousands of codes, and `{:0width$}` costs several times more. `None` when the number has
/// more digits than `width`.
pub(crate) fn zero_padded(mut digits: u64, width: usize, buf: &mut [u8; 20]) -> Option<&str> {
    let width = width.min(buf.len());
    for b in buf[..width].iter_mut().rev() {
        *b = b'0' + (digits % 10) as u8;
        digits /= 10;
    }
    match digits {
        0 => std::str::from_utf8(&buf[..width]).ok(),
        _ => None,
    }
}

impl fmt::Debug for AreaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AreaCode({self})")
    }
}

impl Serialize for AreaCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AreaCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_level_and_walks_up() {
        let v: AreaCode = "510722101001".parse().unwrap();
        assert_eq!(v.level(), Level::Village);
        assert_eq!(v.to_string(), "510722101001");
        let chain: Vec<String> = std::iter::successors(Some(v), |c| c.parent())
            .map(|c| c.to_string())
            .collect();
        assert_eq!(chain, ["510722101001", "510722101", "510722", "5107", "51"]);
        assert!(v.is_within("510722".parse().unwrap()));
        assert!(!v.is_within("510723".parse().unwrap()));
        assert_eq!(v.ancestor_at(Level::County).unwrap().to_string(), "510722");
    }

    #[test]
    fn keeps_leading_zeros_and_rejects_junk() {
        // no real code starts with 0, but the type must not lose digits if one did
        let c: AreaCode = "010203".parse().unwrap();
        assert_eq!(c.to_string(), "010203");
        // a width pads the code as it pads any text
        assert_eq!(format!("{c:>8}|{c:<8}|"), "  010203|010203  |");
        let v: AreaCode = "000000000001".parse().unwrap();
        assert_eq!(v.to_string(), "000000000001");
        assert!(matches!(
            "51072".parse::<AreaCode>(),
            Err(AreaCodeError::BadLength(_, 5))
        ));
        assert!(matches!(
            "5107a2".parse::<AreaCode>(),
            Err(AreaCodeError::NotDigits(_))
        ));
        assert!("".parse::<AreaCode>().is_err());
        assert!("+51072".parse::<AreaCode>().is_err());
    }
}

/// The hasher of maps keyed by area codes: a code is already a well-spread integer, so one
/// multiply per word mixes it (SipHash, the default, cost more than the rest of a lookup in a
/// national comparison). Not for keys an attacker chooses in bulk.
#[derive(Debug, Default, Clone, Copy)]
pub struct CodeHasher(u64);

impl CodeHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn mix(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for CodeHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_i32(&mut self, n: i32) {
        self.mix(n as u32 as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn write_isize(&mut self, n: isize) {
        self.mix(n as u64);
    }
}

/// A map keyed by area codes (or tuples of them), hashed with [`CodeHasher`].
pub type CodeMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<CodeHasher>>;
