//! The comparison table's derived columns, computed by polars over the rows' sums: the ranked
//! figure (a count, or a ratio of sums), 同比 and 环比 changes, share of the parent, and a
//! robust z-score (median and MAD) for outliers. The rank is not here: the comparison sorts its
//! rows once, and that sort gives the ranks (`engine::compare::ranked`).

use polars::prelude::*;
use polars_arrow::bitmap::Bitmap;

/// Sums per row (in row order) for the span, a year earlier and the previous span.
#[derive(Debug, Default)]
pub(crate) struct TableInput {
    pub(crate) num: Vec<Option<f64>>,
    pub(crate) den: Vec<Option<f64>>,
    pub(crate) num_yoy: Vec<Option<f64>>,
    pub(crate) den_yoy: Vec<Option<f64>>,
    pub(crate) num_mom: Vec<Option<f64>>,
    pub(crate) den_mom: Vec<Option<f64>>,
    /// Rank on num / den × factor rather than on num.
    pub(crate) is_rate: bool,
    pub(crate) factor: f64,
    /// The parent area's num, for shares.
    pub(crate) parent_num: Option<f64>,
}

/// Derived columns, in row order.
#[derive(Debug, Default)]
pub(crate) struct TableOutput {
    pub(crate) value: Vec<Option<f64>>,
    pub(crate) share: Vec<Option<f64>>,
    pub(crate) yoy_base: Vec<Option<f64>>,
    pub(crate) yoy_change: Vec<Option<f64>>,
    pub(crate) yoy_pct: Vec<Option<f64>>,
    pub(crate) mom_base: Vec<Option<f64>>,
    pub(crate) mom_change: Vec<Option<f64>>,
    pub(crate) mom_pct: Vec<Option<f64>>,
    pub(crate) z: Vec<Option<f64>>,
}

/// Robust z-scores beyond this, in absolute value, mark an outlier (Iglewicz and Hoaglin).
pub(crate) const OUTLIER_Z: f64 = 3.5;

fn null() -> Expr {
    lit(NULL).cast(DataType::Float64)
}

/// `a / b × k`, undefined (null) when b is null or 0.
fn ratio(a: &str, b: &str, k: f64) -> Expr {
    when(col(b).is_null().or(col(b).eq(lit(0.0))))
        .then(null())
        .otherwise(col(a) / col(b) * lit(k))
}

/// A column of the rows' sums: the values and a validity bitmap, each built in one pass (an
/// `Option` at a time through polars' builder cost more than the table's arithmetic).
fn column(name: &str, v: &[Option<f64>]) -> Column {
    let values: Vec<f64> = v.iter().map(|x| x.unwrap_or(0.0)).collect();
    let validity: Bitmap = v.iter().map(Option::is_some).collect();
    Float64Chunked::from_vec_validity(name.into(), values, Some(validity)).into_column()
}

/// A computed column read back as `Option`s, array by array.
fn read_back(out: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    let ca = out.column(name)?.f64()?;
    let mut v = Vec::with_capacity(ca.len());
    for arr in ca.downcast_iter() {
        match arr.validity() {
            Some(valid) => v.extend(
                arr.values()
                    .iter()
                    .zip(valid.iter())
                    .map(|(x, ok)| ok.then_some(*x)),
            ),
            None => v.extend(arr.values().iter().map(|x| Some(*x))),
        }
    }
    Ok(v)
}

pub(crate) fn compute(input: &TableInput) -> PolarsResult<TableOutput> {
    let df = DataFrame::new_infer_height(vec![
        column("num", &input.num),
        column("den", &input.den),
        column("num_yoy", &input.num_yoy),
        column("den_yoy", &input.den_yoy),
        column("num_mom", &input.num_mom),
        column("den_mom", &input.den_mom),
    ])?;
    let figure = |num: &str, den: &str| {
        if input.is_rate {
            ratio(num, den, input.factor)
        } else {
            col(num)
        }
    };
    let share = match input.parent_num {
        Some(p) if p != 0.0 => col("num") / lit(p) * lit(100.0),
        _ => null(),
    };
    let out = df
        .lazy()
        .with_columns([
            figure("num", "den").alias("value"),
            figure("num_yoy", "den_yoy").alias("yoy_base"),
            figure("num_mom", "den_mom").alias("mom_base"),
            share.alias("share"),
        ])
        .with_columns([
            (col("value") - col("yoy_base")).alias("yoy_change"),
            (col("value") - col("mom_base")).alias("mom_change"),
            (col("value") - col("value").median()).alias("dev"),
        ])
        .with_columns([
            ratio("yoy_change", "yoy_base", 100.0).alias("yoy_pct"),
            ratio("mom_change", "mom_base", 100.0).alias("mom_pct"),
            col("dev").abs().median().alias("mad"),
        ])
        // 0.6745 makes the MAD consistent with the standard deviation of a normal distribution
        .with_columns([ratio("dev", "mad", 0.6745).alias("z")])
        .collect()?;
    let f = |name: &str| read_back(&out, name);
    Ok(TableOutput {
        value: f("value")?,
        share: f("share")?,
        yoy_base: f("yoy_base")?,
        yoy_change: f("yoy_change")?,
        yoy_pct: f("yoy_pct")?,
        mom_base: f("mom_base")?,
        mom_change: f("mom_change")?,
        mom_pct: f("mom_pct")?,
        z: f("z")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derived columns computed again, plainly, row by row.
    fn plain_ratio(a: Option<f64>, b: Option<f64>, k: f64) -> Option<f64> {
        match (a, b) {
            (Some(a), Some(b)) if b != 0.0 => Some(a / b * k),
            _ => None,
        }
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        match n % 2 {
            1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    #[test]
    fn rates_changes_and_z_scores_equal_a_plain_computation_with_rows_missing_figures() {
        // more rows than a validity bitmap's word, figures missing at every few rows, zero
        // denominators and a zero base
        let n = 203;
        let some = |i: usize, every: usize, v: f64| (!i.is_multiple_of(every)).then_some(v);
        let input = TableInput {
            num: (0..n).map(|i| some(i, 7, (i * 3 % 50) as f64)).collect(),
            den: (0..n)
                .map(|i| some(i, 11, (i % 5) as f64 * 1000.0))
                .collect(),
            num_yoy: (0..n).map(|i| some(i, 5, (i % 13) as f64)).collect(),
            den_yoy: (0..n).map(|i| some(i, 3, 2000.0 + i as f64)).collect(),
            num_mom: (0..n).map(|i| some(i, 9, (i % 4) as f64)).collect(),
            den_mom: (0..n).map(|_| Some(1500.0)).collect(),
            is_rate: true,
            factor: 10_000.0,
            parent_num: Some(4321.0),
        };
        let out = compute(&input).unwrap();
        let value: Vec<Option<f64>> = (0..n)
            .map(|i| plain_ratio(input.num[i], input.den[i], 10_000.0))
            .collect();
        let values: Vec<f64> = value.iter().flatten().copied().collect();
        let mid = median(values.clone());
        let mad = median(values.iter().map(|v| (v - mid).abs()).collect());
        assert!(value.iter().any(Option::is_none) && values.len() > n / 2);
        for (i, own) in value.iter().enumerate() {
            let yoy = plain_ratio(input.num_yoy[i], input.den_yoy[i], 10_000.0);
            let mom = plain_ratio(input.num_mom[i], input.den_mom[i], 10_000.0);
            let change = |base: Option<f64>| Some((*own)? - base?);
            let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                (a, b) => a == b,
            };
            assert_eq!(out.value[i], *own, "row {i}");
            assert_eq!(out.yoy_base[i], yoy, "row {i}");
            assert_eq!(out.mom_base[i], mom, "row {i}");
            assert!(close(out.yoy_change[i], change(yoy)), "row {i}");
            assert!(close(out.mom_change[i], change(mom)), "row {i}");
            assert!(
                close(out.yoy_pct[i], plain_ratio(change(yoy), yoy, 100.0)),
                "row {i}"
            );
            assert!(
                close(out.share[i], input.num[i].map(|v| v / 4321.0 * 100.0)),
                "row {i}"
            );
            let z = plain_ratio(own.map(|v| v - mid), Some(mad), 0.6745);
            assert!(close(out.z[i], z), "row {i}: {:?} {z:?}", out.z[i]);
        }
    }
}
