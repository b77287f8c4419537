//! How a revision is kept small on disk (about a fifth of what it took as protobuf with names):
//!
//! - its values are written against the store's numbered (metric, part) pairs, `value_keys`
//!   (each pair a number the first time a report carries it; numbers are never reused, so a
//!   catalogue change never reinterprets a stored value), and against its *shape*: which
//!   metrics, in which order, with or without a total, with which parts. Reports on one form
//!   nearly all have one shape, so a shape is numbered once (`value_shapes`) and a revision holds
//!   a 0 byte, the layout's version, its shape's number and then only the numbers themselves
//!   (zigzag varints: most figures take one byte). A forwarded rollup (federation, one per child
//!   hub and period) stays `pingan.v1.StoredValues`, whose encoding never starts with a 0 byte;
//! - its sender and reporter are numbers into `names` (readers select their text back);
//! - its submission id is 16 bytes when it is a UUID as nodes make them, 17 (a 1 byte, then
//!   the digest) when it is an import's `import-<32 hex digits>`, else its text. It is an
//!   idempotency key within its (area, period) (a resend is always of the same report), so no
//!   index of its own: a resend is found among its (area, period)'s revisions, and told from a
//!   reused id by comparing what it says (values as stored, zero flag, notes), so no digest is
//!   kept either;
//! - its warnings are nothing when there are none.

use std::collections::HashMap;

use pingan_domain::{MetricId, ValidValue, pb};
use prost::Message as _;
use rusqlite::types::{Value as SqlValue, ValueRef};

use super::db::{Arg, Db, DbError, args};

/// A map the writer asks once per value of every report, keyed by what the catalogue and the
/// store made (pairs, shapes, interned ids), never by a sender's text: a fast hash, seeded per
/// process.
pub(super) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub(super) const SCHEMA: &str = "
-- every (metric, part) a stored report carries (part '' for the total), numbered: stored values
-- name their figure by this number; also what a catalogue change must keep (checked at start-up)
CREATE TABLE IF NOT EXISTS value_keys (
    id      INTEGER PRIMARY KEY,
    metric  TEXT NOT NULL,
    part    TEXT NOT NULL,
    UNIQUE (metric, part)
);
-- which metrics a report gives, in its order, with or without a total, with which parts (pairs
-- by their number): stored values name their shape by this number
CREATE TABLE IF NOT EXISTS value_shapes (
    id     INTEGER PRIMARY KEY,
    shape  BLOB NOT NULL UNIQUE
);
-- senders and reporters of revisions, numbered
CREATE TABLE IF NOT EXISTS names (
    id    INTEGER PRIMARY KEY,
    text  TEXT NOT NULL UNIQUE
);
";

/// The first byte of compactly encoded values (no protobuf message starts with it: field 0 does
/// not exist), and the layout's version after it.
const COMPACT: u8 = 0;
const VERSION: u8 = 1;

/// The numbered (metric, part) pairs and shapes, as `value_keys` and `value_shapes` hold them.
#[derive(Debug, Default, Clone)]
pub(super) struct ValueKeys {
    pairs: Vec<(String, String)>,
    /// metric → part → number (looked up by borrowed names, nothing allocated per value)
    ids: FastMap<String, FastMap<String, u32>>,
    shapes: Vec<Option<Shape>>,
    shape_ids: FastMap<Vec<u8>, u32>,
}

/// A shape, read: each metric's total pair, whether a total is given, and its parts' pairs.
#[derive(Debug, Clone)]
struct Shape(Vec<(u32, bool, Vec<u32>)>);

impl ValueKeys {
    /// Every pair the store has numbered.
    pub(super) fn load(db: &Db) -> Result<ValueKeys, DbError> {
        let mut keys = ValueKeys::default();
        db.each(
            "SELECT id, metric, part FROM value_keys ORDER BY id",
            &[],
            |r| {
                keys.put(r.u32(0)?, r.string(1)?, r.string(2)?);
                Ok(())
            },
        )?;
        db.each("SELECT id, shape FROM value_shapes ORDER BY id", &[], |r| {
            keys.put_shape(r.u32(0)?, r.bytes(1)?.to_vec());
            Ok(())
        })?;
        Ok(keys)
    }

    /// How many pairs and shapes are numbered: another writer (a second hub process on one
    /// PostgreSQL database) may have numbered more since these were loaded.
    pub(super) fn counts(&self) -> (usize, usize) {
        (self.pairs.len(), self.shapes.len())
    }

    fn put(&mut self, id: u32, metric: String, part: String) {
        let at = id as usize;
        if self.pairs.len() <= at {
            self.pairs.resize(at + 1, (String::new(), String::new()));
        }
        self.pairs[at] = (metric.clone(), part.clone());
        self.ids.entry(metric).or_default().insert(part, id);
    }

    /// A shape read (`None` when its bytes do not read: revisions of it are then unreadable).
    fn put_shape(&mut self, id: u32, bytes: Vec<u8>) {
        let at = id as usize;
        if self.shapes.len() <= at {
            self.shapes.resize(at + 1, None);
        }
        self.shapes[at] = Shape::read(&bytes).ok();
        self.shape_ids.insert(bytes, id);
    }

    pub(super) fn id(&self, metric: &str, part: &str) -> Option<u32> {
        self.ids.get(metric)?.get(part).copied()
    }

    fn pair(&self, id: u32) -> Option<&(String, String)> {
        self.pairs.get(id as usize).filter(|(m, _)| !m.is_empty())
    }

    /// Every numbered pair by number: (metric, part), the part empty for a metric's total; a
    /// number not given (a gap) has an empty metric.
    pub(super) fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Every numbered pair, sorted by metric and part.
    #[cfg(test)]
    fn sorted(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = self
            .pairs
            .iter()
            .filter(|(m, _)| !m.is_empty())
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// Numbers the pairs of `values` and their shape where not numbered yet, in `tx` (a
    /// transaction that does not commit leaves this out of step with the tables: load it again
    /// then); the shape's number.
    pub(super) fn number(&mut self, tx: &Db, values: &[pb::MetricValue]) -> Result<u32, DbError> {
        self.number_figures(tx, values.iter().map(Figures::from), None)
    }

    /// [`ValueKeys::number`] for a validated report's values, each metric's total pair found by
    /// the catalogue's interned id (`by_metric`, the writer's: no lookup by name for a metric
    /// seen before).
    pub(super) fn number_valid(
        &mut self,
        tx: &Db,
        values: &[ValidValue],
        by_metric: &mut FastMap<usize, (MetricId, u32)>,
    ) -> Result<u32, DbError> {
        let mut totals = Vec::with_capacity(values.len());
        for v in values {
            let key = v.metric.as_str().as_ptr() as usize;
            let id = match by_metric.get(&key) {
                Some((_, id)) => *id,
                None => {
                    let id = self.number_pair(tx, v.metric.as_str(), "")?;
                    // the id kept with its number: its pointer stays its own while cached
                    by_metric.insert(key, (v.metric.clone(), id));
                    id
                }
            };
            totals.push(id);
        }
        self.number_figures(tx, values.iter().map(Figures::from), Some(&totals))
    }

    /// Numbers the pairs and the shape of `values` (`totals`: their total pairs' numbers, when
    /// known already); the shape's number. A shape's bytes: the number of metrics, then for
    /// each its total pair's number shifted left twice (bit 0: no total; bit 1: parts follow),
    /// and if parts follow their count and their pairs' numbers.
    fn number_figures<'v>(
        &mut self,
        tx: &Db,
        values: impl ExactSizeIterator<Item = Figures<'v>>,
        totals: Option<&[u32]>,
    ) -> Result<u32, DbError> {
        let mut shape = Vec::with_capacity(32);
        put_varint(&mut shape, values.len() as u64);
        for (i, v) in values.enumerate() {
            let total = match totals {
                Some(t) => t[i],
                None => self.number_pair(tx, v.metric, "")?,
            };
            let parts = v.parts.len();
            put_varint(
                &mut shape,
                (u64::from(total) << 2)
                    | u64::from(v.total.is_none())
                    | (u64::from(parts > 0) << 1),
            );
            if parts > 0 {
                put_varint(&mut shape, parts as u64);
                for (part, _) in v.parts {
                    let id = self.number_pair(tx, v.metric, part)?;
                    put_varint(&mut shape, u64::from(id));
                }
            }
        }
        if let Some(&id) = self.shape_ids.get(&shape) {
            return Ok(id);
        }
        let id = self.shapes.len() as u32;
        tx.run(
            "INSERT INTO value_shapes (id, shape) VALUES (?1, ?2)",
            args![id, &shape],
        )?;
        self.put_shape(id, shape);
        Ok(id)
    }

    /// The number of (metric, part), given now in `tx` if it has none.
    fn number_pair(&mut self, tx: &Db, metric: &str, part: &str) -> Result<u32, DbError> {
        if let Some(id) = self.id(metric, part) {
            return Ok(id);
        }
        let id = self.pairs.len() as u32;
        tx.run(
            "INSERT INTO value_keys (id, metric, part) VALUES (?1, ?2, ?3)",
            args![id, metric, part],
        )?;
        self.put(id, metric.to_owned(), part.to_owned());
        Ok(id)
    }
}

/// One metric's figures, from the wire form or a validated report: both encode alike.
struct Figures<'v> {
    metric: &'v str,
    total: Option<i64>,
    parts: std::collections::btree_map::Iter<'v, String, i64>,
}

impl<'v> From<&'v pb::MetricValue> for Figures<'v> {
    fn from(v: &'v pb::MetricValue) -> Figures<'v> {
        Figures {
            metric: &v.metric,
            total: v.total,
            parts: v.parts.iter(),
        }
    }
}

impl<'v> From<&'v ValidValue> for Figures<'v> {
    fn from(v: &'v ValidValue) -> Figures<'v> {
        Figures {
            metric: v.metric.as_str(),
            total: Some(v.total),
            parts: v.parts.iter(),
        }
    }
}

impl Shape {
    fn read(bytes: &[u8]) -> Result<Shape, Unreadable> {
        let mut at = 0;
        let n = get_varint(bytes, &mut at)?;
        let mut metrics = Vec::with_capacity(n.min(1024) as usize);
        for _ in 0..n {
            let head = get_varint(bytes, &mut at)?;
            let total = u32::try_from(head >> 2)
                .map_err(|_| Unreadable::Bad("figure number out of range".into()))?;
            let mut parts = Vec::new();
            if head & 2 != 0 {
                let k = get_varint(bytes, &mut at)?;
                for _ in 0..k {
                    let p = get_varint(bytes, &mut at)?;
                    parts.push(
                        u32::try_from(p)
                            .map_err(|_| Unreadable::Bad("figure number out of range".into()))?,
                    );
                }
            }
            metrics.push((total, head & 1 == 0, parts));
        }
        if at != bytes.len() {
            return Err(Unreadable::Bad("bytes after the shape".into()));
        }
        Ok(Shape(metrics))
    }
}

/// Why stored values could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unreadable {
    /// A pair or shape number this reader has not loaded (numbered after it loaded them).
    UnknownKey(u32),
    UnknownShape(u32),
    Bad(String),
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::UnknownKey(id) => {
                write!(f, "stored values name figure #{id}, not in value_keys")
            }
            Unreadable::UnknownShape(id) => {
                write!(f, "stored values have shape #{id}, not in value_shapes")
            }
            Unreadable::Bad(why) => write!(f, "stored values unreadable: {why}"),
        }
    }
}

impl std::error::Error for Unreadable {}

/// Encodes a revision's values of shape `shape` ([`ValueKeys::number`] of the same values).
/// With a forwarded rollup, the protobuf encoding.
pub(super) fn encode(
    values: Vec<pb::MetricValue>,
    rollup: Option<pb::Rollup>,
    shape: u32,
) -> Vec<u8> {
    if rollup.is_some() {
        return pb::StoredValues { values, rollup }.encode_to_vec();
    }
    encode_figures(values.iter().map(Figures::from), shape)
}

/// [`encode`] of a validated report ([`ValueKeys::number_valid`] gave `shape`): the same bytes.
pub(super) fn encode_valid(r: &pingan_domain::ValidReport, shape: u32) -> Vec<u8> {
    match &r.rollup {
        Some(rollup) => encode(r.wire_values(), Some(rollup.into()), shape),
        None => encode_figures(r.values.iter().map(Figures::from), shape),
    }
}

fn encode_figures<'v>(values: impl Iterator<Item = Figures<'v>>, shape: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(COMPACT);
    out.push(VERSION);
    put_varint(&mut out, u64::from(shape));
    for v in values {
        if let Some(t) = v.total {
            put_varint(&mut out, zigzag(t));
        }
        for (_, n) in v.parts {
            put_varint(&mut out, zigzag(*n));
        }
    }
    out
}

/// The shape a compactly encoded blob names (its layout version checked), and where its
/// figures start.
fn shape_of<'k>(blob: &[u8], keys: &'k ValueKeys) -> Result<(&'k Shape, usize), Unreadable> {
    let bad = |why: &str| Unreadable::Bad(why.to_owned());
    if blob.get(1) != Some(&VERSION) {
        return Err(bad("unknown layout version"));
    }
    let mut at = 2;
    let shape =
        u32::try_from(get_varint(blob, &mut at)?).map_err(|_| bad("shape number out of range"))?;
    let Some(slot) = keys.shapes.get(shape as usize) else {
        return Err(Unreadable::UnknownShape(shape));
    };
    let shape = slot
        .as_ref()
        .ok_or_else(|| bad("its shape does not read"))?;
    Ok((shape, at))
}

/// Decodes what [`encode`] wrote (or a protobuf `StoredValues`, as stores kept them before).
pub(super) fn decode(blob: &[u8], keys: &ValueKeys) -> Result<pb::StoredValues, Unreadable> {
    if blob.first() != Some(&COMPACT) {
        return pb::StoredValues::decode(blob).map_err(|e| Unreadable::Bad(e.to_string()));
    }
    let bad = |why: &str| Unreadable::Bad(why.to_owned());
    let (Shape(metrics), mut at) = shape_of(blob, keys)?;
    let pair = |id: u32| keys.pair(id).ok_or(Unreadable::UnknownKey(id));
    let mut values = Vec::with_capacity(metrics.len());
    for (total_id, has_total, part_ids) in metrics {
        let (metric, part) = pair(*total_id)?;
        if !part.is_empty() {
            return Err(bad("a metric's total names a part"));
        }
        let total = if *has_total {
            Some(unzigzag(get_varint(blob, &mut at)?))
        } else {
            None
        };
        let mut parts = std::collections::BTreeMap::new();
        for id in part_ids {
            let (m, p) = pair(*id)?;
            if m != metric || p.is_empty() {
                return Err(bad("a part of another metric"));
            }
            parts.insert(p.clone(), unzigzag(get_varint(blob, &mut at)?));
        }
        values.push(pb::MetricValue {
            metric: metric.clone(),
            total,
            parts,
        });
    }
    if at != blob.len() {
        return Err(bad("bytes after the values"));
    }
    Ok(pb::StoredValues {
        values,
        rollup: None,
    })
}

/// The figures of compactly encoded values by pair number, for readers that place figures by
/// number (nothing named, nothing allocated per figure): for each metric, its total pair with
/// its total (or, when the report gave parts only, their sum), then each part's pair and value,
/// appended to `out`. `Ok(false)`: the blob is not compact (a forwarded rollup's protobuf) and
/// nothing was appended; [`decode`] reads it.
pub(super) fn numbered_figures(
    blob: &[u8],
    keys: &ValueKeys,
    out: &mut Vec<(u32, i64)>,
) -> Result<bool, Unreadable> {
    if blob.first() != Some(&COMPACT) {
        return Ok(false);
    }
    let bad = |why: &str| Unreadable::Bad(why.to_owned());
    let (Shape(metrics), mut at) = shape_of(blob, keys)?;
    let known = |id: u32| match keys.pair(id) {
        Some(_) => Ok(id),
        None => Err(Unreadable::UnknownKey(id)),
    };
    for (total_id, has_total, part_ids) in metrics {
        let total_at = out.len();
        out.push((known(*total_id)?, 0));
        let total = if *has_total {
            Some(unzigzag(get_varint(blob, &mut at)?))
        } else {
            None
        };
        let mut sum = 0i64;
        for id in part_ids {
            let v = unzigzag(get_varint(blob, &mut at)?);
            sum = sum.saturating_add(v);
            out.push((known(*id)?, v));
        }
        out[total_at].1 = total.unwrap_or(sum);
    }
    if at != blob.len() {
        return Err(bad("bytes after the values"));
    }
    Ok(true)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(blob: &[u8], at: &mut usize) -> Result<u64, Unreadable> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *blob
            .get(*at)
            .ok_or_else(|| Unreadable::Bad("cut short".into()))?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(Unreadable::Bad("a number too long".into()))
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Warnings as stored: nothing when there are none (most reports), else a JSON list.
pub(super) fn warnings_text(warnings: &[String]) -> String {
    if warnings.is_empty() {
        String::new()
    } else {
        serde_json::to_string(warnings).expect("strings serialise")
    }
}

/// Warnings as [`warnings_text`] wrote them (or as `[]`, as older stores did).
pub(super) fn warnings_read(text: &str) -> Vec<String> {
    if text.is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(text).unwrap_or_default()
    }
}

/// How a submission id is stored (see the module's documentation).
pub(super) fn submission_key(id: &str) -> SqlValue {
    if let Some(bytes) = uuid_bytes(id) {
        return SqlValue::Blob(bytes.to_vec());
    }
    if let Some(hex) = id.strip_prefix("import-")
        && let Some(bytes) = hex_bytes(hex.as_bytes())
    {
        let mut b = Vec::with_capacity(17);
        b.push(1);
        b.extend_from_slice(&bytes);
        return SqlValue::Blob(b);
    }
    SqlValue::Text(id.to_owned())
}

/// A submission id as `db` keeps it: on SQLite its compact `key` ([`submission_key`]), on
/// PostgreSQL its text.
pub(super) fn submission_arg<'a>(db: &Db, id: &'a str, key: &'a SqlValue) -> Arg<'a> {
    match key {
        SqlValue::Blob(b) if !db.is_postgres() => Arg::Bytes(b),
        _ => Arg::Text(id),
    }
}

/// A stored submission id as the sender gave it.
pub(super) fn submission_text(v: ValueRef<'_>) -> rusqlite::types::FromSqlResult<String> {
    match v {
        ValueRef::Blob(b) if b.len() == 16 => Ok(uuid_text(b)),
        ValueRef::Blob(b) if b.len() == 17 && b[0] == 1 => Ok(format!("import-{}", hex(&b[1..]))),
        ValueRef::Text(t) => String::from_utf8(t.to_vec())
            .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e))),
        _ => Err(rusqlite::types::FromSqlError::InvalidType),
    }
}

/// The 16 bytes of a UUID written the way nodes write them (lower-case hex in 8-4-4-4-12), so
/// that writing them back gives the same text.
fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    let b = id.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut digits = [0u8; 32];
    let mut n = 0;
    for &c in b.iter().filter(|&&c| c != b'-') {
        *digits.get_mut(n)? = c;
        n += 1;
    }
    hex_bytes(&digits[..n])
}

fn uuid_text(b: &[u8]) -> String {
    let h = hex(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Lower-case hex digits (32 of them) as 16 bytes; anything else is no digest.
fn hex_bytes(d: &[u8]) -> Option<[u8; 16]> {
    if d.len() != 32 || !d.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let val = |c: u8| if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
    let mut bytes = [0u8; 16];
    for (b, p) in bytes.iter_mut().zip(d.chunks(2)) {
        *b = (val(p[0]) << 4) | val(p[1]);
    }
    Some(bytes)
}

/// Bytes as lower-case hex (an import's digest id is 32 of these per report: no formatter).
pub(crate) fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(b.len() * 2);
    for &x in b {
        out.push(DIGITS[usize::from(x >> 4)] as char);
        out.push(DIGITS[usize::from(x & 15)] as char);
    }
    out
}

/// The numbers of senders and reporters (`names`), as the writer has seen them.
#[derive(Debug, Default)]
pub(super) struct Names {
    ids: FastMap<String, i64>,
}

impl Names {
    /// The number of `text`, numbering it in `tx` the first time; new numbers are remembered in
    /// `added` until the transaction commits ([`Names::keep`]).
    pub(super) fn id(
        &self,
        tx: &Db,
        text: &str,
        added: &mut FastMap<String, i64>,
    ) -> Result<i64, DbError> {
        if let Some(&id) = self.ids.get(text).or_else(|| added.get(text)) {
            return Ok(id);
        }
        let id = number_name(tx, text)?;
        added.insert(text.to_owned(), id);
        Ok(id)
    }

    /// Remembers the numbers of a committed transaction.
    pub(super) fn keep(&mut self, added: FastMap<String, i64>) {
        self.ids.extend(added);
    }
}

/// The number of `text` in `names`, given now if it has none.
pub(super) fn number_name(db: &Db, text: &str) -> Result<i64, DbError> {
    db.run(
        "INSERT INTO names (text) VALUES (?1) ON CONFLICT (text) DO NOTHING",
        args![text],
    )?;
    db.one("SELECT id FROM names WHERE text = ?1", args![text], |r| {
        r.int(0)
    })?
    .ok_or_else(|| DbError::Bad(format!("name {text:?} not numbered")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers the pairs and shapes of each value list in a store's tables, as one writer
    /// would, and loads them again as a reader does; the shapes' numbers.
    fn numbered(lists: &[&[pb::MetricValue]]) -> (ValueKeys, Vec<u32>) {
        let db = Db::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        db.batch(SCHEMA).unwrap();
        let mut keys = ValueKeys::default();
        let shapes = db
            .write(|tx| {
                lists
                    .iter()
                    .map(|v| keys.number(tx, v))
                    .collect::<Result<Vec<_>, DbError>>()
            })
            .unwrap();
        let loaded = ValueKeys::load(&db).unwrap();
        assert_eq!(loaded.sorted(), keys.sorted());
        (loaded, shapes)
    }

    fn value(metric: &str, total: Option<i64>, parts: &[(&str, i64)]) -> pb::MetricValue {
        pb::MetricValue {
            metric: metric.into(),
            total,
            parts: parts.iter().map(|(p, n)| ((*p).into(), *n)).collect(),
        }
    }

    #[test]
    fn values_come_back_as_written_including_extremes() {
        let values = vec![
            value("cases.criminal", Some(3), &[]),
            value(
                "disputes.identified",
                Some(i64::MAX),
                &[("婚姻家庭", i64::MAX - 1), ("邻里", 1)],
            ),
            value("patrol.hours", None, &[("白天", 0), ("夜间", i64::MIN)]),
            value("grid.workers", Some(-1), &[]),
            value("cases.criminal", Some(0), &[]),
        ];
        // the same shape with other figures; another order is another shape
        let same_shape: Vec<_> = values
            .iter()
            .map(|v| pb::MetricValue {
                total: v.total.map(|t| t / 2),
                parts: v.parts.iter().map(|(k, n)| (k.clone(), n / 3)).collect(),
                ..v.clone()
            })
            .collect();
        let reordered: Vec<_> = values.iter().rev().cloned().collect();
        let (keys, shapes) = numbered(&[&values, &same_shape, &reordered, &[]]);
        assert_eq!(shapes[0], shapes[1]);
        assert_ne!(shapes[0], shapes[2]);
        for (list, shape) in [&values, &same_shape, &reordered, &Vec::new()]
            .iter()
            .zip(&shapes)
        {
            let blob = encode((*list).clone(), None, *shape);
            assert_eq!(blob[0], COMPACT);
            let back = decode(&blob, &keys).unwrap();
            assert_eq!(&back.values, *list);
            assert_eq!(back.rollup, None);
            // by number: every total (or its parts' sum, saturating) and part, named back
            let mut numbered = Vec::new();
            assert!(numbered_figures(&blob, &keys, &mut numbered).unwrap());
            let named: Vec<(String, String, i64)> = numbered
                .iter()
                .map(|(id, v)| {
                    let (m, p) = &keys.pairs()[*id as usize];
                    (m.clone(), p.clone(), *v)
                })
                .collect();
            let plain: Vec<(String, String, i64)> = list
                .iter()
                .flat_map(|v| {
                    let sum = v.parts.values().fold(0i64, |a, b| a.saturating_add(*b));
                    std::iter::once((v.metric.clone(), String::new(), v.total.unwrap_or(sum)))
                        .chain(
                            v.parts
                                .iter()
                                .map(|(p, n)| (v.metric.clone(), p.clone(), *n)),
                        )
                })
                .collect();
            assert_eq!(named, plain);
        }
        // a protobuf blob is not read by number
        let proto = pb::StoredValues {
            values: values.clone(),
            rollup: None,
        }
        .encode_to_vec();
        let mut none = Vec::new();
        assert!(!numbered_figures(&proto, &keys, &mut none).unwrap());
        assert!(none.is_empty());
        // a protobuf-encoded value list (as older stores hold) reads the same
        let old = pb::StoredValues {
            values: values.clone(),
            rollup: None,
        }
        .encode_to_vec();
        assert_eq!(decode(&old, &keys).unwrap().values, values);
        let blob = encode(values.clone(), None, shapes[0]);
        assert!(
            blob.len() * 2 < old.len(),
            "{} vs {}",
            blob.len(),
            old.len()
        );
        // a figure of one byte takes one byte
        let small = vec![
            value("cases.criminal", Some(3), &[]),
            value("grid.workers", Some(-1), &[]),
        ];
        let (keys, shapes) = numbered(&[&small]);
        assert_eq!(
            encode(small, None, shapes[0]),
            vec![COMPACT, VERSION, 0, 6, 1]
        );
        assert!(decode(&[COMPACT, VERSION, 0, 6, 1], &keys).is_ok());
    }

    #[test]
    fn a_validated_report_encodes_as_its_wire_form_does() {
        let catalogue = pingan_domain::Catalogue::builtin();
        let id = |m: &str| catalogue.metric_id(m).unwrap();
        let valid = vec![
            ValidValue {
                metric: id("cases.fraud"),
                total: 3,
                parts: Default::default(),
            },
            ValidValue {
                metric: id("grid.workers"),
                total: 9,
                parts: [("专职".to_owned(), 4), ("兼职".to_owned(), 5)].into(),
            },
        ];
        let wire: Vec<pb::MetricValue> = valid
            .iter()
            .map(|v| {
                value(
                    v.metric.as_str(),
                    Some(v.total),
                    &v.parts
                        .iter()
                        .map(|(k, n)| (k.as_str(), *n))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let tx = Db::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        tx.batch(SCHEMA).unwrap();
        let mut keys = ValueKeys::default();
        let mut by_metric = FastMap::default();
        // numbered first from the validated values, then from the wire form, then again
        let a = keys.number_valid(&tx, &valid, &mut by_metric).unwrap();
        let b = keys.number(&tx, &wire).unwrap();
        let c = keys.number_valid(&tx, &valid, &mut by_metric).unwrap();
        assert_eq!((a, b), (c, c));
        assert_eq!(by_metric.len(), 2);
        let from_wire = encode(wire.clone(), None, b);
        let from_valid = encode_figures(valid.iter().map(Figures::from), a);
        assert_eq!(from_wire, from_valid);
        assert_eq!(decode(&from_valid, &keys).unwrap().values, wire);
    }

    #[test]
    fn damaged_or_unknown_values_are_refused_not_misread() {
        let values = vec![value("a", Some(300), &[("x", 5)])];
        let (keys, shapes) = numbered(&[&values]);
        let blob = encode(values, None, shapes[0]);
        let by_number = |b: &[u8], k: &ValueKeys| numbered_figures(b, k, &mut Vec::new());
        for cut in 2..blob.len() {
            assert!(decode(&blob[..cut], &keys).is_err(), "cut at {cut}");
            assert!(by_number(&blob[..cut], &keys).is_err(), "cut at {cut}");
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(decode(&longer, &keys).is_err());
        assert!(by_number(&longer, &keys).is_err());
        // a shape the reader has not loaded: said so, so that it loads the tables again
        assert_eq!(
            decode(&[COMPACT, VERSION, 9, 1], &keys),
            Err(Unreadable::UnknownShape(9))
        );
        assert!(decode(&[COMPACT, 7, 0, 1], &keys).is_err());
        // a shape naming a pair the reader has not loaded
        let mut more = keys.clone();
        let mut bytes = Vec::new();
        put_varint(&mut bytes, 1);
        put_varint(&mut bytes, 40 << 2);
        more.put_shape(1, bytes);
        assert_eq!(
            decode(&[COMPACT, VERSION, 1, 2], &more),
            Err(Unreadable::UnknownKey(40))
        );
        assert_eq!(
            by_number(&[COMPACT, VERSION, 1, 2], &more),
            Err(Unreadable::UnknownKey(40))
        );
        assert_eq!(
            by_number(&[COMPACT, VERSION, 9, 1], &keys),
            Err(Unreadable::UnknownShape(9))
        );
    }

    #[test]
    fn submission_ids_come_back_as_given() {
        for id in [
            "0b9f5c2e-3d4a-4f6b-8c7d-1e2f3a4b5c6d",
            "import-00112233445566778899aabbccddeeff",
            "0B9F5C2E-3D4A-4F6B-8C7D-1E2F3A4B5C6D",
            "import-0011",
            "fwd-510722-2026-10",
            "0b9f5c2e3d4a4f6b8c7d1e2f3a4b5c6d",
            "",
            "村里自己编的号",
        ] {
            let key = submission_key(id);
            let back = match &key {
                SqlValue::Blob(b) => submission_text(ValueRef::Blob(b)).unwrap(),
                SqlValue::Text(t) => submission_text(ValueRef::Text(t.as_bytes())).unwrap(),
                other => panic!("{other:?}"),
            };
            assert_eq!(back, id);
        }
        assert!(matches!(
            submission_key("0b9f5c2e-3d4a-4f6b-8c7d-1e2f3a4b5c6d"),
            SqlValue::Blob(b) if b.len() == 16
        ));
        assert!(matches!(
            submission_key("import-00112233445566778899aabbccddeeff"),
            SqlValue::Blob(b) if b.len() == 17
        ));
        // upper-case hex would not come back as written: kept as text
        assert!(matches!(
            submission_key("0B9F5C2E-3D4A-4F6B-8C7D-1E2F3A4B5C6D"),
            SqlValue::Text(_)
        ));
    }
}
