//! Trend: one area's (or the nation's) series over the last spans, with 同比; with a level, the
//! series of every area of that level below it too (e.g. every county of the country).

use std::sync::PoisonError;

use pingan_domain::{AreaCode, Level, Period, answer::TrendSeries};

use super::*;

/// The spans of a trend, oldest first, and what each point reads.
struct Spans {
    /// (span, the same span a year earlier).
    spans: Vec<(Span, Span)>,
    /// Every period read.
    all: Vec<Period>,
}

impl Spans {
    fn new(last: Span, n: usize) -> Spans {
        let mut spans = vec![last];
        for _ in 1..n {
            let prev = spans.last().expect("non-empty").previous();
            spans.push(prev);
        }
        spans.reverse();
        let spans: Vec<(Span, Span)> = spans.into_iter().map(|s| (s, s.year_earlier())).collect();
        let all = spans
            .iter()
            .flat_map(|(s, y)| s.reported().into_iter().chain(y.reported()))
            .collect();
        Spans { spans, all }
    }
}

impl Engine {
    /// The root's series over the last `periods` spans ending with `last`, with 同比; with a
    /// level, every area of that level below the root gets its own series (`series`, by code).
    pub fn trend(&self, req: &TrendQuery) -> Result<TrendAnswer, QueryError> {
        let (root, tops) = self.root_and_tops(req.root)?;
        let mut rows: Vec<AreaCode> = match (req.level, root) {
            (None, _) => Vec::new(),
            (Some(l), Root::Area(area)) if l <= area.level() => {
                return Err(self.level_not_below(l, area));
            }
            (Some(l), _) => tops
                .iter()
                .flat_map(|t| self.areas.descendants_at(*t, l))
                .collect(),
        };
        rows.sort();
        let n = req
            .periods
            .clamp(1, pingan_domain::question::MAX_TREND_PERIODS) as usize;
        let spans = Spans::new(req.last, n);
        let read = spans.all.len() as u64;
        crate::query::budget::within(read * (1 + rows.len() as u64), "这条走势")?;
        self.approved_view(&spans.all, req.figures)?;
        let (layout, measure) = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            if let Root::Area(area) = root {
                self.known_here(&cube, area)?;
            }
            self.rows_known_here(&cube, &rows)?;
            (cube.layout.clone(), self.measure(&cube, &req.metric)?)
        };
        // villages' own values come from the store, read without the rollups' lock
        let mut leaves = LeafValues::default();
        if req.level == Some(Level::Village) || tops.iter().any(|t| t.level() == Level::Village) {
            let reader = self.reader()?;
            for t in &tops {
                let got = if t.level() == Level::Village {
                    self.fetch_own(&layout, &reader, *t, &spans.all, req.figures)
                } else {
                    self.fetch_leaves(&layout, &reader, *t, &spans.all, req.figures)
                };
                match got {
                    Ok(l) => leaves.extend(l),
                    Err(e) => {
                        self.give_back(reader);
                        return Err(e);
                    }
                }
            }
            self.give_back(reader);
        }
        let root_levels = match root {
            Root::Area(area) => self.levels_below(area, None),
            Root::Nation => self.reporting_levels.clone(),
        };
        let row_levels = rows.first().map(|r| self.levels_below(*r, None));
        let only = measure.slots();
        let mut vals = Vec::new();
        let mut points = Vec::with_capacity(spans.spans.len());
        let mut series: Vec<Vec<TrendPoint>> =
            vec![Vec::with_capacity(spans.spans.len()); rows.len()];
        for (s, y) in &spans.spans {
            let (now, before) = (s.reported(), y.reported());
            // the root's point under one hold of the rollups' lock, then the rows' in chunks
            {
                crate::query::budget::check()?;
                let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
                let views = [
                    SpanView::new(self, &cube, &now, req.figures),
                    SpanView::new(self, &cube, &before, req.figures),
                ];
                let mut nd = |v: &SpanView<'_>, span: &Span| {
                    let mut total = (None, None);
                    for t in &tops {
                        Engine::values_into(&cube, v, *t, &leaves, Some(&only), &mut vals);
                        let (n, d) = self.num_den(&cube, &measure, &vals, *t, span);
                        total = (sum_opt(total.0, n), sum_opt(total.1, d));
                    }
                    Engine::value_of(&measure, total)
                };
                let (value, base) = (nd(&views[0], s), nd(&views[1], y));
                let mut counts = Counts::default();
                for t in &tops {
                    let c = self.counts_in(&cube, &views[0], *t, &root_levels);
                    counts.expected += c.expected;
                    counts.received += c.received;
                    counts.on_time += c.on_time;
                }
                points.push(point(*s, value, base, counts));
            }
            let Some(levels) = &row_levels else { continue };
            for (chunk, out) in rows
                .chunks(ROWS_PER_LOCK)
                .zip(series.chunks_mut(ROWS_PER_LOCK))
            {
                crate::query::budget::check()?;
                let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
                let views = [
                    SpanView::new(self, &cube, &now, req.figures),
                    SpanView::new(self, &cube, &before, req.figures),
                ];
                // inner areas' points read period by period (see [`columns`])
                let ids: Vec<u32> = chunk
                    .iter()
                    .map(|c| cube.index.id(*c).unwrap_or(NONE))
                    .collect();
                if ids.iter().all(|id| cube.index.is_inner(*id)) {
                    let mask = levels.iter().fold(0u8, |m, l| m | 1 << (*l as usize));
                    let counts = columns::span_counts(&views[0], &ids, &vec![mask; ids.len()]);
                    let sums = [
                        columns::span_sums(&cube, &views[0], &ids, &only),
                        columns::span_sums(&cube, &views[1], &ids, &only),
                    ];
                    let populations = [
                        self.populations(&cube, s.population_year()),
                        self.populations(&cube, y.population_year()),
                    ];
                    let at = |i: usize, j: usize| {
                        Engine::value_of(
                            &measure,
                            Engine::num_den_with(
                                &measure,
                                |slot| sums[i].get(slot, j),
                                || populations[i][ids[j] as usize],
                            ),
                        )
                    };
                    for ((j, counts), out) in counts.into_iter().enumerate().zip(out) {
                        out.push(point(*s, at(0, j), at(1, j), counts));
                    }
                    continue;
                }
                for (code, out) in chunk.iter().zip(out) {
                    let mut at = |v: &SpanView<'_>, span: &Span| {
                        Engine::values_into(&cube, v, *code, &leaves, Some(&only), &mut vals);
                        Engine::value_of(
                            &measure,
                            self.num_den(&cube, &measure, &vals, *code, span),
                        )
                    };
                    let (value, base) = (at(&views[0], s), at(&views[1], y));
                    let counts = self.counts_in(&cube, &views[0], *code, levels);
                    out.push(point(*s, value, base, counts));
                }
            }
        }
        let (name, unit) = measure.labels();
        let name_of_root = match root {
            Root::Area(area) => self.areas.name(area),
            Root::Nation => NATION.to_owned(),
        };
        Ok(TrendAnswer {
            root,
            name: name_of_root,
            metric: measure.id().to_owned(),
            metric_name: name.to_owned(),
            unit: unit.to_owned(),
            points,
            approved_only: req.figures == Figures::Approved,
            series: rows
                .into_iter()
                .zip(series)
                .map(|(area, points)| TrendSeries {
                    area,
                    name: self.areas.name(area),
                    points,
                })
                .collect(),
        })
    }
}

/// A point from its value and the year-earlier value.
fn point(span: Span, value: Option<f64>, base: Option<f64>, counts: Counts) -> TrendPoint {
    let change = value.zip(base).map(|(v, b)| v - b);
    TrendPoint {
        span,
        value,
        yoy_base: base,
        yoy_change: change,
        yoy_pct: change
            .zip(base)
            .and_then(|(c, b)| (b != 0.0).then(|| c / b * 100.0)),
        completeness: counts.summary(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Fixture, beijing_ms, code, villages};
    use super::*;

    #[test]
    fn a_series_holds_each_months_sum_and_its_yoy() {
        let f = Fixture::new();
        let vs = villages(&f, "510722101", 2);
        // (month, this year per village, last year per village)
        let months = [
            (8, [1, 2], [3, 3]),
            (9, [4, 0], [1, 0]),
            (10, [6, 6], [2, 2]),
        ];
        for (m, now, before) in months {
            for (i, v) in vs.iter().enumerate() {
                let (p, q) = (format!("2026-{m:02}"), format!("2025-{m:02}"));
                f.report(
                    *v,
                    &p,
                    &[("grid.visits", now[i])],
                    beijing_ms(2026, m + 1, 2),
                );
                f.report(
                    *v,
                    &q,
                    &[("grid.visits", before[i])],
                    beijing_ms(2025, m + 1, 2),
                );
            }
        }
        let t = f
            .engine
            .trend(&TrendQuery {
                root: Root::Area(code("510722")),
                last: "2026-10".parse().unwrap(),
                periods: 3,
                metric: "grid.visits".into(),
                figures: Figures::Current,
                level: None,
                as_columns: false,
            })
            .unwrap();
        assert!(t.series.is_empty());
        assert_eq!(t.points.len(), 3);
        for (point, (m, now, before)) in t.points.iter().zip(months) {
            let (now, before): (i64, i64) = (now.iter().sum(), before.iter().sum());
            assert_eq!(point.span.to_string(), format!("2026-{m:02}"));
            assert_eq!(point.value, Some(now as f64));
            assert_eq!(point.yoy_base, Some(before as f64));
            assert_eq!(point.yoy_change, Some((now - before) as f64));
        }
    }

    #[test]
    fn with_a_level_every_area_below_gets_its_series_and_they_add_up_to_the_roots() {
        let f = Fixture::new();
        // two villages in each of two townships, over three months and a year earlier
        let towns = ["510722101", "510722102"];
        let mut plain: std::collections::BTreeMap<(String, String), i64> = Default::default();
        for (ti, t) in towns.iter().enumerate() {
            for (vi, v) in villages(&f, t, 2).into_iter().enumerate() {
                for (m, year) in [
                    (8, 2026i32),
                    (9, 2026),
                    (10, 2026),
                    (8, 2025),
                    (9, 2025),
                    (10, 2025),
                ] {
                    let n = (ti as i64 + 1) * 10
                        + vi as i64 * 3
                        + i64::from(m)
                        + i64::from(year - 2025) * 5;
                    let p = format!("{year}-{m:02}");
                    f.report(v, &p, &[("grid.visits", n)], beijing_ms(year, m + 1, 2));
                    *plain.entry((t.to_string(), p)).or_default() += n;
                }
            }
        }
        let ask = |root: Root, level: Option<Level>| {
            f.engine
                .trend(&TrendQuery {
                    root,
                    last: "2026-10".parse().unwrap(),
                    periods: 3,
                    metric: "grid.visits".into(),
                    figures: Figures::Current,
                    level,
                    as_columns: false,
                })
                .unwrap()
        };
        let t = ask(Root::Area(code("510722")), Some(Level::Township));
        let all_towns = f.areas().descendants_at(code("510722"), Level::Township);
        assert_eq!(t.series.len(), all_towns.len());
        assert!(t.series.windows(2).all(|w| w[0].area < w[1].area));
        for s in &t.series {
            assert_eq!(s.points.len(), 3);
            for p in &s.points {
                let key = |period: String| (s.area.to_string(), period);
                let now = plain.get(&key(p.span.to_string())).copied();
                let before = plain.get(&key(p.span.year_earlier().to_string())).copied();
                assert_eq!(p.value, now.map(|n| n as f64), "{} {}", s.area, p.span);
                assert_eq!(p.yoy_base, before.map(|n| n as f64));
                let reported = if now.is_some() { 2 } else { 0 };
                assert_eq!(p.completeness.received, reported, "{} {}", s.area, p.span);
            }
        }
        // the root's own points are the sum of its townships'
        for (i, p) in t.points.iter().enumerate() {
            let sum: f64 = t.series.iter().filter_map(|s| s.points[i].value).sum();
            assert_eq!(p.value, Some(sum));
        }
        // the nation's counties: this county's series equals the county's own trend
        let nation = ask(Root::Nation, Some(Level::County));
        let county = nation
            .series
            .iter()
            .find(|s| s.area == code("510722"))
            .expect("the county is a row");
        assert_eq!(county.points, t.points);
        let values =
            |ps: &[TrendPoint]| ps.iter().map(|p| (p.value, p.yoy_base)).collect::<Vec<_>>();
        assert_eq!(
            values(&nation.points),
            values(&t.points),
            "the only figures are this county's"
        );
        // a level not below the root is refused
        let refused = f.engine.trend(&TrendQuery {
            root: Root::Area(code("510722")),
            last: "2026-10".parse().unwrap(),
            periods: 3,
            metric: "grid.visits".into(),
            figures: Figures::Current,
            level: Some(Level::County),
            as_columns: false,
        });
        assert!(
            matches!(refused, Err(QueryError::BadRequest(_))),
            "{refused:?}"
        );
    }
}
