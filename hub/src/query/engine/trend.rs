//! Trend: one area's series over the last spans, with 同比.

use std::sync::PoisonError;

use pingan_proto::{Level, Period, pb};

use super::*;

impl Engine {
    /// One area's series over the last `periods` spans ending with `period`, with 同比.
    pub fn trend(&self, req: &TrendQuery) -> Result<pb::TrendReply, QueryError> {
        let area = self.registered(req.area)?;
        let last = req.last;
        let n = req
            .periods
            .clamp(1, super::super::request::MAX_TREND_PERIODS) as usize;
        let mut spans = vec![last];
        for _ in 1..n {
            let prev = spans.last().expect("non-empty").previous();
            spans.push(prev);
        }
        spans.reverse();
        let read: u64 = spans.iter().map(|s| 2 * s.periods().len() as u64).sum();
        crate::query::budget::within(read, "这条走势")?;
        let (layout, measure) = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            self.known_here(&cube, area)?;
            (cube.layout.clone(), self.measure(&cube, &req.metric)?)
        };
        let leaves = if area.level() == Level::Village {
            let reader = self.reader()?;
            let all: Vec<Period> = spans
                .iter()
                .flat_map(|s| s.periods().into_iter().chain(s.year_earlier().periods()))
                .collect();
            let l = self.fetch_own(&layout, &reader, area, &all)?;
            self.give_back(reader);
            l
        } else {
            LeafValues::new()
        };
        let levels = self.levels_below(area, None);
        let only = measure.slots();
        let mut points = Vec::with_capacity(spans.len());
        // one point per hold of the rollups' lock
        for s in &spans {
            crate::query::budget::check()?;
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            let at = |s: &Span| {
                let view = SpanView::new(self, &cube, &s.periods());
                let vals = Engine::values_in(&cube, &view, area, &leaves, Some(&only));
                Engine::value_of(&measure, self.num_den(&cube, &measure, &vals, area, s))
            };
            let (value, base) = (at(s), at(&s.year_earlier()));
            let change = value.zip(base).map(|(v, b)| v - b);
            points.push(pb::TrendPoint {
                period: s.to_string(),
                value,
                yoy_base: base,
                yoy_change: change,
                yoy_pct: change
                    .zip(base)
                    .and_then(|(c, b)| (b != 0.0).then(|| c / b * 100.0)),
                completeness: Some(self.counts(&cube, area, &s.periods(), &levels).summary()),
            });
        }
        let (name, unit) = measure.labels();
        Ok(pb::TrendReply {
            area: area.to_string(),
            name: self.areas.name(area),
            metric: measure.id().to_owned(),
            metric_name: name.to_owned(),
            unit: unit.to_owned(),
            points,
        })
    }
}
