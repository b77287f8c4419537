//! Trend: one area's series over the last spans, with 同比.

use std::sync::PoisonError;

use pingan_domain::{Level, Period};

use super::*;

impl Engine {
    /// One area's series over the last `periods` spans ending with `period`, with 同比.
    pub fn trend(&self, req: &TrendQuery) -> Result<TrendAnswer, QueryError> {
        let area = self.registered(req.area)?;
        let last = req.last;
        let n = req
            .periods
            .clamp(1, pingan_domain::question::MAX_TREND_PERIODS) as usize;
        let mut spans = vec![last];
        for _ in 1..n {
            let prev = spans.last().expect("non-empty").previous();
            spans.push(prev);
        }
        spans.reverse();
        let read: u64 = spans.iter().map(|s| 2 * s.reported().len() as u64).sum();
        crate::query::budget::within(read, "这条走势")?;
        let all: Vec<Period> = spans
            .iter()
            .flat_map(|s| s.reported().into_iter().chain(s.year_earlier().reported()))
            .collect();
        self.approved_view(&all, req.figures)?;
        let (layout, measure) = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            self.known_here(&cube, area)?;
            (cube.layout.clone(), self.measure(&cube, &req.metric)?)
        };
        let leaves = if area.level() == Level::Village {
            let reader = self.reader()?;
            let l = self.fetch_own(&layout, &reader, area, &all, req.figures)?;
            self.give_back(reader);
            l
        } else {
            LeafValues::default()
        };
        let levels = self.levels_below(area, None);
        let only = measure.slots();
        let mut points = Vec::with_capacity(spans.len());
        // one point per hold of the rollups' lock
        for s in &spans {
            crate::query::budget::check()?;
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            let at = |s: &Span| {
                let view = SpanView::new(self, &cube, &s.reported(), req.figures);
                let vals = Engine::values_in(&cube, &view, area, &leaves, Some(&only));
                Engine::value_of(&measure, self.num_den(&cube, &measure, &vals, area, s))
            };
            let (value, base) = (at(s), at(&s.year_earlier()));
            let change = value.zip(base).map(|(v, b)| v - b);
            points.push(TrendPoint {
                span: *s,
                value,
                yoy_base: base,
                yoy_change: change,
                yoy_pct: change
                    .zip(base)
                    .and_then(|(c, b)| (b != 0.0).then(|| c / b * 100.0)),
                completeness: self
                    .counts(&cube, area, &s.reported(), &levels, req.figures)
                    .summary(),
            });
        }
        let (name, unit) = measure.labels();
        Ok(TrendAnswer {
            area,
            name: self.areas.name(area),
            metric: measure.id().to_owned(),
            metric_name: name.to_owned(),
            unit: unit.to_owned(),
            points,
            approved_only: req.figures == Figures::Approved,
        })
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
                area: code("510722"),
                last: "2026-10".parse().unwrap(),
                periods: 3,
                metric: "grid.visits".into(),
                figures: Figures::Current,
            })
            .unwrap();
        assert_eq!(t.points.len(), 3);
        for (point, (m, now, before)) in t.points.iter().zip(months) {
            let (now, before): (i64, i64) = (now.iter().sum(), before.iter().sum());
            assert_eq!(point.span.to_string(), format!("2026-{m:02}"));
            assert_eq!(point.value, Some(now as f64));
            assert_eq!(point.yoy_base, Some(before as f64));
            assert_eq!(point.yoy_change, Some((now - before) as f64));
        }
    }
}
