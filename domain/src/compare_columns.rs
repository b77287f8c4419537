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
pub enum BadColumns {
    #[error("按列返回的结果不完整：列「{column}」有 {got} 个值，应为 {want} 个")]
    Length {
        column: &'static str,
        got: usize,
        want: usize,
    },
    #[error("按列返回的结果有误：第 {row} 行的名称不在名称文本之内或不是完整的 UTF-8 文字")]
    Name { row: usize },
    #[error("按列返回的结果有误：名称文本不是 UTF-8")]
    NamesNotUtf8,
}

impl BadColumns {
    /// The column at fault.
    pub fn column(&self) -> &'static str {
        match self {
            BadColumns::Length { column, .. } => column,
            BadColumns::Name { .. } | BadColumns::NamesNotUtf8 => "names",
        }
    }
}

/// A figure column's bytes: empty when no row has the figure, NaN where a row lacks it.
pub fn figure_column(values: impl ExactSizeIterator<Item = Option<f64>>) -> Vec<u8> {
    // written in place, eight bytes a row (pushing a row at a time checked the capacity and
    // kept the loop from being one run of stores)
    let mut out = vec![0u8; values.len() * 8];
    let mut any = false;
    for (at, v) in out.chunks_exact_mut(8).zip(values) {
        any |= v.is_some();
        at.copy_from_slice(&v.unwrap_or(f64::NAN).to_le_bytes());
    }
    match any {
        true => out,
        false => Vec::new(),
    }
}

/// A count column's bytes: eight little-endian bytes a row.
pub fn count_column(values: impl ExactSizeIterator<Item = u64>) -> Vec<u8> {
    let mut out = vec![0u8; values.len() * 8];
    for (at, v) in out.chunks_exact_mut(8).zip(values) {
        at.copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// [`figure_column`] of a slice, as bytes for the wire.
pub(crate) fn figure_bytes(values: &[Option<f64>]) -> prost::bytes::Bytes {
    figure_column(values.iter().copied()).into()
}

/// Numbers as bytes, `N` a row, little-endian.
pub(crate) fn le_bytes<T, const N: usize>(
    values: impl ExactSizeIterator<Item = T>,
    f: fn(T) -> [u8; N],
) -> prost::bytes::Bytes {
    let mut out = vec![0u8; values.len() * N];
    for (at, v) in out.chunks_exact_mut(N).zip(values) {
        at.copy_from_slice(&f(v));
    }
    out.into()
}

/// A count column's bytes.
pub(crate) fn count_bytes(c: &[Completeness], f: fn(&Completeness) -> u64) -> prost::bytes::Bytes {
    count_column(c.iter().map(f)).into()
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
            codes: le_bytes(c.code.iter().map(|a| a.digits()), u64::to_le_bytes),
            code_digits,
            names: c.names.into_bytes().into(),
            name_ends: le_bytes(c.name_ends.into_iter(), u32::to_le_bytes),
            value: c.value.into(),
            rate: c.rate.into(),
            denominator: c.denominator.into(),
            share: c.share.into(),
            yoy_base: c.yoy_base.into(),
            yoy_change: c.yoy_change.into(),
            yoy_pct: c.yoy_pct.into(),
            mom_base: c.mom_base.into(),
            mom_change: c.mom_change.into(),
            mom_pct: c.mom_pct.into(),
            expected: c.expected.into(),
            received: c.received.into(),
            on_time: c.on_time.into(),
            late: c.late.into(),
            missing: c.missing.into(),
            z: c.z.into(),
            ranks: le_bytes(c.rank.into_iter(), u32::to_le_bytes),
            outlier: c.outlier,
            withheld: c.withheld,
        }
    }
}

impl CompareColumns {
    /// Adds the next row's name.
    pub fn push_name(&mut self, name: &str) {
        self.names.push_str(name);
        self.name_ends
            .push(u32::try_from(self.names.len()).expect("a page's names are under 4 GiB"));
    }

    /// Rows as columns, in their order (what the engine builds directly from its columns).
    pub fn of_rows(rows: Vec<CompareRow>) -> CompareColumns {
        let figure = |f: fn(&CompareRow) -> Option<f64>| figure_column(rows.iter().map(f));
        let count =
            |f: fn(&Completeness) -> u64| count_column(rows.iter().map(|r| f(&r.completeness)));
        let mut c = CompareColumns {
            code: rows.iter().map(|r| r.code).collect(),
            names: String::new(),
            name_ends: Vec::with_capacity(rows.len()),
            rank: rows.iter().map(|r| r.rank).collect(),
            value: figure(|r| r.value),
            rate: figure(|r| r.rate),
            denominator: figure(|r| r.denominator),
            share: figure(|r| r.share),
            yoy_base: figure(|r| r.yoy_base),
            yoy_change: figure(|r| r.yoy_change),
            yoy_pct: figure(|r| r.yoy_pct),
            mom_base: figure(|r| r.mom_base),
            mom_change: figure(|r| r.mom_change),
            mom_pct: figure(|r| r.mom_pct),
            z: figure(|r| r.z),
            expected: count(|k| k.expected),
            received: count(|k| k.received),
            on_time: count(|k| k.on_time),
            late: count(|k| k.late),
            missing: count(|k| k.missing),
            outlier: rows.iter().map(|r| r.outlier).collect(),
            withheld: rows.iter().map(|r| r.withheld).collect(),
        };
        for r in &rows {
            c.push_name(&r.name);
        }
        c
    }
}

/// A column of numbers, `N` bytes a row, checked to hold a number for every row; read where
/// it lies, one row at a time.
#[derive(Clone, Copy)]
pub(crate) struct Fixed<'a, const N: usize>(&'a [u8]);

impl<'a, const N: usize> Fixed<'a, N> {
    /// The column, refused when its length is not `n` rows'.
    pub(crate) fn of(column: &'static str, bytes: &'a [u8], n: usize) -> Result<Self, BadColumns> {
        match bytes.len() == n * N {
            true => Ok(Fixed(bytes)),
            false => Err(BadColumns::Length {
                column,
                got: bytes.len() / N,
                want: n,
            }),
        }
    }

    pub(crate) fn at(self, i: usize) -> [u8; N] {
        self.0[i * N..][..N]
            .try_into()
            .expect("a checked column has N bytes a row")
    }
}

impl Fixed<'_, 8> {
    /// Row `i`'s unsigned 64-bit number.
    pub(crate) fn u64_at(self, i: usize) -> u64 {
        u64::from_le_bytes(self.at(i))
    }
}

/// A figure column: empty when no row has the figure, else doubles with NaN for a row without.
#[derive(Clone, Copy)]
pub(crate) struct FigureColumn<'a>(Option<Fixed<'a, 8>>);

impl<'a> FigureColumn<'a> {
    pub(crate) fn of(column: &'static str, bytes: &'a [u8], n: usize) -> Result<Self, BadColumns> {
        match bytes.is_empty() {
            true => Ok(FigureColumn(None)),
            false => Fixed::of(column, bytes, n).map(|c| FigureColumn(Some(c))),
        }
    }

    pub(crate) fn at(self, i: usize) -> Option<f64> {
        let v = f64::from_le_bytes(self.0?.at(i));
        (!v.is_nan()).then_some(v)
    }
}

/// A code's digits zero-padded to `width`; shown whole when they are more.
pub(crate) fn padded(digits: u64, width: usize) -> String {
    let mut buf = [b'0'; 20];
    match crate::area::zero_padded(digits, width.max(1), &mut buf) {
        Some(text) => text.to_owned(),
        None => digits.to_string(),
    }
}

/// `n` names read back from one text and the ends of each (`names`, `name_ends`); refused when
/// the text is not UTF-8 or an end falls outside it or inside a character.
pub(crate) fn names_of<'a>(
    text: &'a [u8],
    ends: &'a [u8],
    n: usize,
) -> Result<Vec<&'a str>, BadColumns> {
    let text = std::str::from_utf8(text).map_err(|_| BadColumns::NamesNotUtf8)?;
    let ends = Fixed::<4>::of("name_ends", ends, n)?;
    let mut start = 0;
    (0..n)
        .map(|i| {
            let end = u32::from_le_bytes(ends.at(i)) as usize;
            let name = text
                .get(start..end)
                .ok_or(BadColumns::Name { row: i + 1 })?;
            start = end;
            Ok(name)
        })
        .collect()
}

/// Rows from which [`rows_of`] reads back on two threads.
#[cfg(not(test))]
const PARALLEL_ROWS: usize = 8192;
#[cfg(test)]
const PARALLEL_ROWS: usize = 4;

/// The columns read back as rows, as `CompareReply.rows` would have held them; refused when a
/// column's length is not the rows' number (a figure column's may be zero). A long page is
/// read back on two threads, each half of the rows (a national ranking's 41,000 rows, two
/// strings each, took longer to read back than the hub took to write them).
pub fn rows_of(c: pb::CompareColumns) -> Result<Vec<pb::CompareRow>, BadColumns> {
    let n = c.codes.len().div_ceil(8);
    let whole = |column: &'static str, got: usize| match got == n {
        true => Ok(()),
        false => Err(BadColumns::Length {
            column,
            got,
            want: n,
        }),
    };
    whole("outlier", c.outlier.len())?;
    whole("withheld", c.withheld.len())?;
    let read = ReadBack {
        codes: Fixed::<8>::of("codes", &c.codes, n)?,
        width: c.code_digits as usize,
        names: names_of(&c.names, &c.name_ends, n)?,
        ranks: Fixed::<4>::of("ranks", &c.ranks, n)?,
        counts: [
            Fixed::<8>::of("expected", &c.expected, n)?,
            Fixed::<8>::of("received", &c.received, n)?,
            Fixed::<8>::of("on_time", &c.on_time, n)?,
            Fixed::<8>::of("late", &c.late, n)?,
            Fixed::<8>::of("missing", &c.missing, n)?,
        ],
        figures: [
            FigureColumn::of("value", &c.value, n)?,
            FigureColumn::of("rate", &c.rate, n)?,
            FigureColumn::of("denominator", &c.denominator, n)?,
            FigureColumn::of("share", &c.share, n)?,
            FigureColumn::of("yoy_base", &c.yoy_base, n)?,
            FigureColumn::of("yoy_change", &c.yoy_change, n)?,
            FigureColumn::of("yoy_pct", &c.yoy_pct, n)?,
            FigureColumn::of("mom_base", &c.mom_base, n)?,
            FigureColumn::of("mom_change", &c.mom_change, n)?,
            FigureColumn::of("mom_pct", &c.mom_pct, n)?,
            FigureColumn::of("z", &c.z, n)?,
        ],
        outlier: &c.outlier,
        withheld: &c.withheld,
    };
    let half = n / 2;
    if n < PARALLEL_ROWS || crate::cores() < 2 {
        return Ok((0..n).map(|i| read.row(i)).collect());
    }
    Ok(std::thread::scope(|s| {
        let later = s.spawn(|| (half..n).map(|i| read.row(i)).collect::<Vec<_>>());
        let mut rows = Vec::with_capacity(n);
        rows.extend((0..half).map(|i| read.row(i)));
        rows.extend(
            later
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        );
        rows
    }))
}

/// The checked columns of [`rows_of`], a row read at a time.
struct ReadBack<'a> {
    codes: Fixed<'a, 8>,
    width: usize,
    names: Vec<&'a str>,
    ranks: Fixed<'a, 4>,
    /// expected, received, on time, late, missing
    counts: [Fixed<'a, 8>; 5],
    /// value, rate, denominator, share, 同比 base/change/%, 环比 base/change/%, z
    figures: [FigureColumn<'a>; 11],
    outlier: &'a [bool],
    withheld: &'a [bool],
}

impl ReadBack<'_> {
    fn row(&self, i: usize) -> pb::CompareRow {
        let [
            value,
            rate,
            denominator,
            share,
            yoy_base,
            yoy_change,
            yoy_pct,
            mom_base,
            mom_change,
            mom_pct,
            z,
        ] = self.figures.map(|f| f.at(i));
        let [expected, received, on_time, late, missing] = self.counts.map(|c| c.u64_at(i));
        pb::CompareRow {
            code: padded(self.codes.u64_at(i), self.width),
            name: self.names[i].to_owned(),
            rank: u32::from_le_bytes(self.ranks.at(i)),
            value,
            rate,
            denominator,
            share,
            yoy_base,
            yoy_change,
            yoy_pct,
            mom_base,
            mom_change,
            mom_pct,
            completeness: Some(pb::CompletenessSummary {
                expected,
                received,
                on_time,
                late,
                missing,
            }),
            z,
            outlier: self.outlier[i],
            withheld: self.withheld[i],
        }
    }
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
    fn a_long_page_is_read_back_on_two_threads_in_its_order() {
        // an odd number of rows, above the tests' threshold: the second half joins the first
        let names = [
            "东城区",
            "西城区",
            "朝阳区",
            "丰台区",
            "石景山区",
            "海淀区",
            "门头沟区",
            "房山区",
            "通州区",
        ];
        let rows: Vec<CompareRow> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let value = (i % 4 != 3).then_some(100.0 - i as f64);
                row(&format!("1101{:02}", i + 1), name, value, (i % 4) as u32)
            })
            .collect();
        assert!(rows.len() >= PARALLEL_ROWS && rows.len() % 2 == 1);
        let by_row: Vec<pb::CompareRow> = rows.iter().cloned().map(Into::into).collect();
        let read = rows_of(pb::CompareColumns::from(CompareColumns::of_rows(rows))).unwrap();
        assert_eq!(read, by_row);
    }

    #[test]
    fn a_column_of_the_wrong_length_is_refused_by_name() {
        let mut columns = pb::CompareColumns::from(CompareColumns::of_rows(vec![
            row("110101", "东城区", Some(7.0), 1),
            row("110102", "西城区", Some(2.0), 2),
        ]));
        columns.share.truncate(12);
        let err = rows_of(columns.clone()).unwrap_err();
        assert_eq!(
            err,
            BadColumns::Length {
                column: "share",
                got: 1,
                want: 2
            }
        );
        assert!(err.to_string().contains("列「share」有 1 个值，应为 2 个"));
        columns.share = Default::default();
        columns.late.truncate(8);
        assert_eq!(rows_of(columns.clone()).unwrap_err().column(), "late");
        columns.late = columns.expected.clone();
        columns.ranks.truncate(4);
        assert_eq!(rows_of(columns.clone()).unwrap_err().column(), "ranks");
        columns.ranks = columns.name_ends.clone();
        columns.name_ends.truncate(4);
        assert_eq!(rows_of(columns.clone()).unwrap_err().column(), "name_ends");
        // a code cut short: the rows are the codes' number rounded up, the codes refused
        columns.codes.truncate(12);
        assert_eq!(
            rows_of(columns).unwrap_err(),
            BadColumns::Length {
                column: "codes",
                got: 1,
                want: 2
            }
        );
    }

    #[test]
    fn names_out_of_the_text_or_split_inside_a_character_are_refused() {
        let good = pb::CompareColumns::from(CompareColumns::of_rows(vec![
            row("110101", "东城区", Some(7.0), 1),
            row("110102", "西城区", Some(2.0), 2),
        ]));
        assert_eq!(good.names.as_ref(), "东城区西城区".as_bytes());
        let ends = |e: [u32; 2]| -> prost::bytes::Bytes {
            e.iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>()
                .into()
        };
        assert_eq!(good.name_ends, ends([9, 18]));
        for (bad, row) in [([9, 19], 2), ([10, 18], 1), ([12, 9], 2)] {
            let c = pb::CompareColumns {
                name_ends: ends(bad),
                ..good.clone()
            };
            let err = rows_of(c).unwrap_err();
            assert_eq!(err, BadColumns::Name { row }, "{bad:?}");
            assert!(err.to_string().contains(&format!("第 {row} 行的名称")));
        }
        let c = pb::CompareColumns {
            names: b"\xe4\xb8".as_slice().into(),
            name_ends: ends([1, 2]),
            ..good.clone()
        };
        assert_eq!(rows_of(c).unwrap_err(), BadColumns::NamesNotUtf8);
        let rows = rows_of(good).unwrap();
        assert_eq!(
            (rows[0].name.as_str(), rows[1].name.as_str()),
            ("东城区", "西城区")
        );
    }

    #[test]
    fn no_rows_are_empty_columns() {
        let columns = pb::CompareColumns::from(CompareColumns::of_rows(Vec::new()));
        assert_eq!(columns, pb::CompareColumns::default());
        assert!(rows_of(columns).unwrap().is_empty());
    }
}
