//! A comparison's rows as columns on the wire (`pb::CompareColumns`), and read back as rows.
//!
//! A national ranking has 40,000 rows of seventeen fields: written row by row, each row is a
//! message with a nested message, and writing and reading them cost more than the ranking. As
//! columns each figure is one run of little-endian doubles, written and read with one copy. A
//! figure column is empty when no row has the figure; otherwise NaN stands for a row without
//! it (no figure is NaN: an undefined figure is absent).

use crate::{
    answer::{CompareColumns, CompareRow, Completeness},
    pb,
};

/// Why columns are not a page of rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("按列返回的对比结果不完整：列「{column}」有 {got} 个值，应为 {want} 个")]
pub struct BadColumns {
    pub column: &'static str,
    pub got: usize,
    pub want: usize,
}

/// A figure column's bytes: empty when no row has the figure, NaN where a row lacks it.
fn figure_bytes(values: &[Option<f64>]) -> prost::bytes::Bytes {
    if values.iter().all(Option::is_none) {
        return Default::default();
    }
    let mut out = Vec::with_capacity(values.len() * 8);
    for v in values {
        out.extend_from_slice(&v.unwrap_or(f64::NAN).to_le_bytes());
    }
    out.into()
}

/// A count column's bytes.
fn count_bytes(c: &[Completeness], f: fn(&Completeness) -> u64) -> prost::bytes::Bytes {
    let mut out = Vec::with_capacity(c.len() * 8);
    for k in c {
        out.extend_from_slice(&f(k).to_le_bytes());
    }
    out.into()
}

impl From<CompareColumns> for pb::CompareColumns {
    fn from(c: CompareColumns) -> Self {
        let code_digits = c.code.first().map_or(0, |a| a.level().code_len() as u32);
        debug_assert!(
            c.code
                .iter()
                .all(|a| a.level().code_len() as u32 == code_digits)
        );
        pb::CompareColumns {
            code: c.code.iter().map(|a| a.digits()).collect(),
            code_digits,
            value: figure_bytes(&c.value),
            rate: figure_bytes(&c.rate),
            denominator: figure_bytes(&c.denominator),
            share: figure_bytes(&c.share),
            yoy_base: figure_bytes(&c.yoy_base),
            yoy_change: figure_bytes(&c.yoy_change),
            yoy_pct: figure_bytes(&c.yoy_pct),
            mom_base: figure_bytes(&c.mom_base),
            mom_change: figure_bytes(&c.mom_change),
            mom_pct: figure_bytes(&c.mom_pct),
            expected: count_bytes(&c.completeness, |k| k.expected),
            received: count_bytes(&c.completeness, |k| k.received),
            on_time: count_bytes(&c.completeness, |k| k.on_time),
            late: count_bytes(&c.completeness, |k| k.late),
            missing: count_bytes(&c.completeness, |k| k.missing),
            z: figure_bytes(&c.z),
            name: c.name,
            rank: c.rank,
            outlier: c.outlier,
            withheld: c.withheld,
        }
    }
}

impl CompareColumns {
    /// Rows as columns, in their order (what the engine builds directly from its columns).
    pub fn of_rows(rows: Vec<CompareRow>) -> CompareColumns {
        let col = |f: fn(&CompareRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
        let mut c = CompareColumns {
            code: rows.iter().map(|r| r.code).collect(),
            name: Vec::new(),
            value: col(|r| r.value),
            rate: col(|r| r.rate),
            denominator: col(|r| r.denominator),
            rank: rows.iter().map(|r| r.rank).collect(),
            share: col(|r| r.share),
            yoy_base: col(|r| r.yoy_base),
            yoy_change: col(|r| r.yoy_change),
            yoy_pct: col(|r| r.yoy_pct),
            mom_base: col(|r| r.mom_base),
            mom_change: col(|r| r.mom_change),
            mom_pct: col(|r| r.mom_pct),
            completeness: rows.iter().map(|r| r.completeness).collect(),
            z: col(|r| r.z),
            outlier: rows.iter().map(|r| r.outlier).collect(),
            withheld: rows.iter().map(|r| r.withheld).collect(),
        };
        c.name = rows.into_iter().map(|r| r.name).collect();
        c
    }
}

/// A column of numbers read back, 8 bytes a row; refused when its length is not.
fn eights<T>(
    column: &'static str,
    bytes: &[u8],
    n: usize,
    f: impl Fn([u8; 8]) -> T,
) -> Result<Vec<T>, BadColumns> {
    if bytes.len() != n * 8 {
        return Err(BadColumns {
            column,
            got: bytes.len() / 8,
            want: n,
        });
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|b| f(b.try_into().expect("chunks of 8 bytes")))
        .collect())
}

/// A figure column read back: `None` in every row when the column is empty, else the doubles
/// with NaN as `None`.
fn figures(column: &'static str, bytes: &[u8], n: usize) -> Result<Vec<Option<f64>>, BadColumns> {
    if bytes.is_empty() {
        return Ok(vec![None; n]);
    }
    eights(column, bytes, n, |b| {
        let v = f64::from_le_bytes(b);
        (!v.is_nan()).then_some(v)
    })
}

/// A count column read back.
fn counts(column: &'static str, bytes: &[u8], n: usize) -> Result<Vec<u64>, BadColumns> {
    eights(column, bytes, n, u64::from_le_bytes)
}

/// A code's digits zero-padded to `width`; shown whole when they are more.
fn padded(digits: u64, width: usize) -> String {
    let mut buf = [b'0'; 20];
    match crate::area::zero_padded(digits, width.max(1), &mut buf) {
        Some(text) => text.to_owned(),
        None => digits.to_string(),
    }
}

/// The columns read back as rows, as `CompareReply.rows` would have held them; refused when a
/// column's length is not the rows' number (a figure column's may be zero).
pub fn rows_of(c: pb::CompareColumns) -> Result<Vec<pb::CompareRow>, BadColumns> {
    let n = c.code.len();
    let whole = |column: &'static str, got: usize| match got == n {
        true => Ok(()),
        false => Err(BadColumns {
            column,
            got,
            want: n,
        }),
    };
    whole("name", c.name.len())?;
    whole("rank", c.rank.len())?;
    whole("outlier", c.outlier.len())?;
    whole("withheld", c.withheld.len())?;
    let expected = counts("expected", &c.expected, n)?;
    let received = counts("received", &c.received, n)?;
    let on_time = counts("on_time", &c.on_time, n)?;
    let late = counts("late", &c.late, n)?;
    let missing = counts("missing", &c.missing, n)?;
    let value = figures("value", &c.value, n)?;
    let rate = figures("rate", &c.rate, n)?;
    let denominator = figures("denominator", &c.denominator, n)?;
    let share = figures("share", &c.share, n)?;
    let yoy_base = figures("yoy_base", &c.yoy_base, n)?;
    let yoy_change = figures("yoy_change", &c.yoy_change, n)?;
    let yoy_pct = figures("yoy_pct", &c.yoy_pct, n)?;
    let mom_base = figures("mom_base", &c.mom_base, n)?;
    let mom_change = figures("mom_change", &c.mom_change, n)?;
    let mom_pct = figures("mom_pct", &c.mom_pct, n)?;
    let z = figures("z", &c.z, n)?;
    let width = c.code_digits as usize;
    Ok(c.code
        .into_iter()
        .zip(c.name)
        .enumerate()
        .map(|(i, (code, name))| pb::CompareRow {
            code: padded(code, width),
            name,
            value: value[i],
            rate: rate[i],
            denominator: denominator[i],
            rank: c.rank[i],
            share: share[i],
            yoy_base: yoy_base[i],
            yoy_change: yoy_change[i],
            yoy_pct: yoy_pct[i],
            mom_base: mom_base[i],
            mom_change: mom_change[i],
            mom_pct: mom_pct[i],
            completeness: Some(pb::CompletenessSummary {
                expected: expected[i],
                received: received[i],
                on_time: on_time[i],
                late: late[i],
                missing: missing[i],
            }),
            z: z[i],
            outlier: c.outlier[i],
            withheld: c.withheld[i],
        })
        .collect())
}

/// A reply asked `as_columns`, its columns read back into `rows` (a reply without columns, e.g.
/// from a hub that sends rows only, stays as it is).
pub fn columns_into_rows(reply: &mut pb::CompareReply) -> Result<(), BadColumns> {
    if let Some(columns) = reply.columns.take() {
        reply.rows = rows_of(columns)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(code: &str, name: &str, value: Option<f64>, rank: u32) -> CompareRow {
        CompareRow {
            code: code.parse().unwrap(),
            name: name.into(),
            value,
            rate: None,
            denominator: None,
            rank,
            share: value.map(|v| v / 10.0),
            yoy_base: Some(3.0),
            yoy_change: value.map(|v| v - 3.0),
            yoy_pct: None,
            mom_base: None,
            mom_change: None,
            mom_pct: None,
            completeness: Completeness {
                expected: 4,
                received: rank.into(),
                on_time: 1,
                late: u64::from(rank).saturating_sub(1),
                missing: 4 - u64::from(rank),
            },
            z: Some(-0.5),
            outlier: rank == 1,
            withheld: value.is_none(),
        }
    }

    #[test]
    fn rows_read_back_from_columns_are_the_rows_written_row_by_row() {
        assert_eq!(
            (
                padded(110101, 6),
                padded(11, 2),
                padded(7, 2),
                padded(123, 2)
            ),
            ("110101".into(), "11".into(), "07".into(), "123".into())
        );
        let rows = vec![
            row("110101", "东城区", Some(7.0), 1),
            row("110102", "西城区", Some(-2.5e15), 2),
            row("110105", "朝阳区", None, 0),
        ];
        let by_row: Vec<pb::CompareRow> = rows.iter().cloned().map(Into::into).collect();
        let columns = pb::CompareColumns::from(CompareColumns::of_rows(rows));
        // figures no row has are empty columns; a row without a figure has NaN
        assert!(columns.rate.is_empty() && columns.mom_pct.is_empty());
        assert_eq!(columns.value.len(), 3 * 8);
        assert!(f64::from_le_bytes(columns.value[16..].try_into().unwrap()).is_nan());
        assert_eq!(rows_of(columns).unwrap(), by_row);
    }

    #[test]
    fn a_column_of_the_wrong_length_is_refused_by_name() {
        let mut columns = pb::CompareColumns::from(CompareColumns::of_rows(vec![
            row("110101", "东城区", Some(7.0), 1),
            row("110102", "西城区", Some(2.0), 2),
        ]));
        columns.share.truncate(12);
        let err = rows_of(columns.clone()).unwrap_err();
        assert_eq!((err.column, err.got, err.want), ("share", 1, 2));
        assert!(err.to_string().contains("列「share」有 1 个值，应为 2 个"));
        columns.share = Default::default();
        columns.late.truncate(8);
        assert_eq!(rows_of(columns.clone()).unwrap_err().column, "late");
        columns.name.pop();
        assert_eq!(rows_of(columns).unwrap_err().column, "name");
    }

    #[test]
    fn no_rows_are_empty_columns() {
        let columns = pb::CompareColumns::from(CompareColumns::of_rows(Vec::new()));
        assert_eq!(columns, pb::CompareColumns::default());
        assert!(rows_of(columns).unwrap().is_empty());
    }
}
