//! The comparison table's derived columns, computed by polars over the rows' sums: the ranked
//! figure (a count, or a ratio of sums), 同比 and 环比 changes, share of the parent, and a
//! robust z-score (median and MAD) for outliers. The rank is not here: the comparison sorts its
//! rows once, and that sort gives the ranks (`engine::compare::ranked`).

use polars::prelude::*;

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

pub(crate) fn compute(input: &TableInput) -> PolarsResult<TableOutput> {
    let column = |name: &str, v: &[Option<f64>]| Column::new(name.into(), v.to_vec());
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
    let f = |name: &str| -> PolarsResult<Vec<Option<f64>>> {
        Ok(out.column(name)?.f64()?.iter().collect())
    };
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
