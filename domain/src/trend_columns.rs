//! A trend's series below its area as columns on the wire (`pb::TrendColumns`), and read back
//! as series.
//!
//! Every county's trend over 24 months is 71,000 points: as `TrendPoint` messages, each with a
//! nested `CompletenessSummary`, the client spent longer reading them than the hub spent on the
//! trend. As columns (written as [`crate::compare_columns`] writes a comparison's) each figure
//! is one run of bytes.

use crate::{
    answer::{Completeness, TrendAnswer, TrendSeries},
    compare_columns::{
        BadColumns, FigureColumn, Fixed, count_bytes, figure_bytes, le_bytes, names_of, padded,
    },
    pb,
    span::Span,
};

/// The reply to a trend question: its series below the area as columns when `as_columns`, and
/// when they can be (every series over the same periods, every area of one level); otherwise, as
/// without it, every series as messages.
pub fn trend_reply(mut a: TrendAnswer, as_columns: bool) -> pb::TrendReply {
    let Some(first) = a.series.first().filter(|_| as_columns) else {
        return a.into();
    };
    let spans: Vec<Span> = first.points.iter().map(|p| p.span).collect();
    let digits = first.area.level().code_len();
    let columnar = a.series.iter().all(|s| {
        s.area.level().code_len() == digits
            && s.points.len() == spans.len()
            && s.points.iter().zip(&spans).all(|(p, span)| p.span == *span)
    });
    if !columnar {
        return a.into();
    }
    let series = std::mem::take(&mut a.series);
    let mut reply = pb::TrendReply::from(a);
    reply.series_columns = Some(columns_of(&spans, digits, series));
    reply
}

/// Series over `spans`, of areas whose codes have `digits` digits, as columns.
fn columns_of(spans: &[Span], digits: usize, series: Vec<TrendSeries>) -> pb::TrendColumns {
    let points = series.len() * spans.len();
    let mut names = String::new();
    let mut name_ends = Vec::with_capacity(series.len());
    let mut figures: [Vec<Option<f64>>; 4] = std::array::from_fn(|_| Vec::with_capacity(points));
    let mut completeness: Vec<Completeness> = Vec::with_capacity(points);
    for s in &series {
        names.push_str(&s.name);
        name_ends.push(u32::try_from(names.len()).expect("a trend's names are under 4 GiB"));
        for p in &s.points {
            for (column, v) in
                figures
                    .iter_mut()
                    .zip([p.value, p.yoy_base, p.yoy_change, p.yoy_pct])
            {
                column.push(v);
            }
            completeness.push(p.completeness);
        }
    }
    let [value, yoy_base, yoy_change, yoy_pct] = figures.map(|f| figure_bytes(&f));
    pb::TrendColumns {
        periods: spans.iter().map(Span::to_string).collect(),
        codes: le_bytes(series.iter().map(|s| s.area.digits()), u64::to_le_bytes),
        code_digits: digits as u32,
        names: names.into_bytes().into(),
        name_ends: le_bytes(name_ends.into_iter(), u32::to_le_bytes),
        value,
        yoy_base,
        yoy_change,
        yoy_pct,
        expected: count_bytes(&completeness, |k| k.expected),
        received: count_bytes(&completeness, |k| k.received),
        on_time: count_bytes(&completeness, |k| k.on_time),
        late: count_bytes(&completeness, |k| k.late),
        missing: count_bytes(&completeness, |k| k.missing),
    }
}

/// The columns read back as series, as `TrendReply.series` would have held them; refused when a
/// column's length is not the series' (or their points') number.
pub fn series_of(c: pb::TrendColumns) -> Result<Vec<pb::TrendSeries>, BadColumns> {
    let n = c.codes.len().div_ceil(8);
    let per = c.periods.len();
    let points = n * per;
    let codes = Fixed::<8>::of("codes", &c.codes, n)?;
    let names = names_of(&c.names, &c.name_ends, n)?;
    let value = FigureColumn::of("value", &c.value, points)?;
    let yoy_base = FigureColumn::of("yoy_base", &c.yoy_base, points)?;
    let yoy_change = FigureColumn::of("yoy_change", &c.yoy_change, points)?;
    let yoy_pct = FigureColumn::of("yoy_pct", &c.yoy_pct, points)?;
    let expected = Fixed::<8>::of("expected", &c.expected, points)?;
    let received = Fixed::<8>::of("received", &c.received, points)?;
    let on_time = Fixed::<8>::of("on_time", &c.on_time, points)?;
    let late = Fixed::<8>::of("late", &c.late, points)?;
    let missing = Fixed::<8>::of("missing", &c.missing, points)?;
    let width = c.code_digits as usize;
    Ok(names
        .into_iter()
        .enumerate()
        .map(|(i, name)| pb::TrendSeries {
            area: padded(codes.u64_at(i), width),
            name: name.to_owned(),
            points: c
                .periods
                .iter()
                .enumerate()
                .map(|(j, period)| {
                    let k = i * per + j;
                    pb::TrendPoint {
                        period: period.clone(),
                        value: value.at(k),
                        yoy_base: yoy_base.at(k),
                        yoy_change: yoy_change.at(k),
                        yoy_pct: yoy_pct.at(k),
                        completeness: Some(pb::CompletenessSummary {
                            expected: expected.u64_at(k),
                            received: received.u64_at(k),
                            on_time: on_time.u64_at(k),
                            late: late.u64_at(k),
                            missing: missing.u64_at(k),
                        }),
                    }
                })
                .collect(),
        })
        .collect())
}

/// A reply asked `as_columns`, its series' columns read back into `series` (a reply without
/// them, e.g. from a hub that sends messages only, stays as it is).
pub fn columns_into_series(reply: &mut pb::TrendReply) -> Result<(), BadColumns> {
    if let Some(columns) = reply.series_columns.take() {
        reply.series = series_of(columns)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{answer::TrendPoint, question::Root};

    fn point(span: &str, value: Option<f64>, k: u64) -> TrendPoint {
        TrendPoint {
            span: span.parse().unwrap(),
            value,
            yoy_base: value.map(|v| v - 1.0),
            yoy_change: value.map(|_| 1.0),
            yoy_pct: None,
            completeness: Completeness {
                expected: 10 + k,
                received: k,
                on_time: k / 2,
                late: k - k / 2,
                missing: 10,
            },
        }
    }

    fn series(code: &str, name: &str, values: [Option<f64>; 3]) -> TrendSeries {
        TrendSeries {
            area: code.parse().unwrap(),
            name: name.into(),
            points: ["2026-08", "2026-09", "2026-10"]
                .iter()
                .zip(values)
                .enumerate()
                .map(|(k, (s, v))| point(s, v, k as u64 * 3))
                .collect(),
        }
    }

    fn answer(series: Vec<TrendSeries>) -> TrendAnswer {
        TrendAnswer {
            root: Root::Nation,
            name: "全国".into(),
            metric: "disputes.identified".into(),
            metric_name: "排查矛盾纠纷".into(),
            unit: "件".into(),
            points: vec![point("2026-10", Some(9.0), 1)],
            approved_only: false,
            series,
        }
    }

    #[test]
    fn series_read_back_from_columns_are_the_series_sent_as_messages() {
        let a = answer(vec![
            series("110101", "东城区", [Some(1.0), None, Some(-2.5e15)]),
            series("110102", "西城区", [None, None, None]),
            series("510722", "三台县", [Some(0.0), Some(7.0), Some(3.5)]),
        ]);
        let by_message = pb::TrendReply::from(a.clone());
        let mut by_columns = trend_reply(a.clone(), true);
        assert!(by_columns.series.is_empty());
        let columns = by_columns.series_columns.as_ref().unwrap();
        assert_eq!(columns.periods, ["2026-08", "2026-09", "2026-10"]);
        assert_eq!(columns.value.len(), 9 * 8);
        // a figure no point has is an empty column
        assert!(columns.yoy_pct.is_empty());
        columns_into_series(&mut by_columns).unwrap();
        assert_eq!(by_columns, by_message);
        // not asked: messages, as before
        assert_eq!(trend_reply(a, false), by_message);
    }

    #[test]
    fn series_over_other_periods_or_of_other_levels_go_as_messages() {
        let mut short = series("110102", "西城区", [None, None, None]);
        short.points.pop();
        let a = answer(vec![series("110101", "东城区", [Some(1.0); 3]), short]);
        let reply = trend_reply(a.clone(), true);
        assert!(reply.series_columns.is_none());
        assert_eq!(reply, pb::TrendReply::from(a));
        let a = answer(vec![
            series("110101", "东城区", [Some(1.0); 3]),
            series("110101001", "东华门街道", [Some(1.0); 3]),
        ]);
        assert!(trend_reply(a, true).series_columns.is_none());
        // no series below: nothing to put in columns
        assert!(trend_reply(answer(vec![]), true).series_columns.is_none());
    }

    #[test]
    fn a_point_column_of_the_wrong_length_is_refused_by_name() {
        let a = answer(vec![
            series("110101", "东城区", [Some(1.0); 3]),
            series("110102", "西城区", [Some(2.0); 3]),
        ]);
        let columns = trend_reply(a, true).series_columns.unwrap();
        let mut short = columns.clone();
        short.late.truncate(5 * 8);
        assert_eq!(
            series_of(short).unwrap_err(),
            BadColumns::Length {
                column: "late",
                got: 5,
                want: 6
            }
        );
        let mut bad = columns;
        bad.name_ends.truncate(4);
        assert_eq!(series_of(bad).unwrap_err().column(), "name_ends");
    }
}
