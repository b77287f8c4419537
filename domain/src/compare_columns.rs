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
pub(crate) fn figure_bytes(values: &[Option<f64>]) -> prost::bytes::Bytes {
    if values.iter().all(Option::is_none) {
        return Default::default();
    }
    let mut out = Vec::with_capacity(values.len() * 8);
    for v in values {
        out.extend_from_slice(&v.unwrap_or(f64::NAN).to_le_bytes());
    }
    out.into()
}

/// Numbers as bytes, `N` a row, little-endian.
pub(crate) fn le_bytes<T, const N: usize>(
    values: impl ExactSizeIterator<Item = T>,
    f: fn(T) -> [u8; N],
) -> prost::bytes::Bytes {
    let mut out = Vec::with_capacity(values.len() * N);
    for v in values {
        out.extend_from_slice(&f(v));
    }
    out.into()
}

/// A count column's bytes.
pub(crate) fn count_bytes(c: &[Completeness], f: fn(&Completeness) -> u64) -> prost::bytes::Bytes {
    le_bytes(c.iter().map(f), u64::to_le_bytes)
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
        let col = |f: fn(&CompareRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
        let mut c = CompareColumns {
            code: rows.iter().map(|r| r.code).collect(),
            names: String::new(),
            name_ends: Vec::with_capacity(rows.len()),
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

/// The columns read back as rows, as `CompareReply.rows` would have held them; refused when a
/// column's length is not the rows' number (a figure column's may be zero).
pub fn rows_of(c: pb::CompareColumns) -> Result<Vec<pb::CompareRow>, BadColumns> {
    let n = c.codes.len().div_ceil(8);
    let codes = Fixed::<8>::of("codes", &c.codes, n)?;
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
    let names = names_of(&c.names, &c.name_ends, n)?;
    let ranks = Fixed::<4>::of("ranks", &c.ranks, n)?;
    let expected = Fixed::<8>::of("expected", &c.expected, n)?;
    let received = Fixed::<8>::of("received", &c.received, n)?;
    let on_time = Fixed::<8>::of("on_time", &c.on_time, n)?;
    let late = Fixed::<8>::of("late", &c.late, n)?;
    let missing = Fixed::<8>::of("missing", &c.missing, n)?;
    let value = FigureColumn::of("value", &c.value, n)?;
    let rate = FigureColumn::of("rate", &c.rate, n)?;
    let denominator = FigureColumn::of("denominator", &c.denominator, n)?;
    let share = FigureColumn::of("share", &c.share, n)?;
    let yoy_base = FigureColumn::of("yoy_base", &c.yoy_base, n)?;
    let yoy_change = FigureColumn::of("yoy_change", &c.yoy_change, n)?;
    let yoy_pct = FigureColumn::of("yoy_pct", &c.yoy_pct, n)?;
    let mom_base = FigureColumn::of("mom_base", &c.mom_base, n)?;
    let mom_change = FigureColumn::of("mom_change", &c.mom_change, n)?;
    let mom_pct = FigureColumn::of("mom_pct", &c.mom_pct, n)?;
    let z = FigureColumn::of("z", &c.z, n)?;
    let width = c.code_digits as usize;
    let mut rows = Vec::with_capacity(n);
    for (i, name) in names.into_iter().enumerate() {
        rows.push(pb::CompareRow {
            code: padded(codes.u64_at(i), width),
            name: name.to_owned(),
            rank: u32::from_le_bytes(ranks.at(i)),
            value: value.at(i),
            rate: rate.at(i),
            denominator: denominator.at(i),
            share: share.at(i),
            yoy_base: yoy_base.at(i),
            yoy_change: yoy_change.at(i),
            yoy_pct: yoy_pct.at(i),
            mom_base: mom_base.at(i),
            mom_change: mom_change.at(i),
            mom_pct: mom_pct.at(i),
            completeness: Some(pb::CompletenessSummary {
                expected: expected.u64_at(i),
                received: received.u64_at(i),
                on_time: on_time.u64_at(i),
                late: late.u64_at(i),
                missing: missing.u64_at(i),
            }),
            z: z.at(i),
            outlier: c.outlier[i],
            withheld: c.withheld[i],
        });
    }
    Ok(rows)
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
