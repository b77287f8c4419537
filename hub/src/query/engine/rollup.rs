//! Rollup: an area's own report and its subtree's totals over a span.

use std::sync::PoisonError;

use pingan_domain::Level;

use super::*;

impl Engine {
    /// An area's own figures and subtree totals.
    pub fn rollup(&self, req: &RollupQuery) -> Result<RollupAnswer, QueryError> {
        self.rollup_with(req, true)
    }

    /// [`Engine::rollup`]; `review`: also count how many of the reports are approved (a store
    /// read per period, which 考核's thousands of rollups do without).
    pub(super) fn rollup_with(
        &self,
        req: &RollupQuery,
        review: bool,
    ) -> Result<RollupAnswer, QueryError> {
        let area = self.registered(req.area)?;
        let span = req.span;
        let periods = span.reported();
        let figures_of = req.figures;
        self.approved_view(&periods, figures_of)?;
        let layout = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            self.known_here(&cube, area)?;
            cube.layout.clone()
        };
        // the store is read without holding the rollups' lock (the writer needs it)
        let reader = self.reader()?;
        let own = self.fetch_own(&layout, &reader, area, &periods, figures_of)?;
        self.give_back(reader);
        let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
        let leaves = if area.level() == Level::Village {
            own.clone()
        } else {
            LeafValues::default()
        };
        let total = self.subtree(&cube, area, &periods, &leaves, figures_of);
        let own_vals = Engine::own(&cube, area, &periods, &own);
        let (wanted, wanted_rates) = self.wanted(&req.metrics)?;
        let everything = req.metrics.is_empty();
        let figures = self.figures(&cube, &total, &own_vals, req.by_category, |m| {
            everything || wanted.iter().any(|w| w == m)
        });
        let mut rates = Vec::new();
        for ind in self.catalogue.indicators() {
            if !everything && !wanted_rates.contains(&ind.id) {
                continue;
            }
            let m = self.measure(&cube, &ind.id)?;
            let nd = self.num_den(&cube, &m, &total, area, &span);
            rates.push(Rate {
                indicator: ind.id.clone(),
                name: ind.zh.clone(),
                unit: ind.unit.clone(),
                value: Engine::value_of(&m, nd),
                numerator: nd.0,
                denominator: nd.1,
            });
        }
        let levels = self.levels_below(area, None);
        let completeness = self.counts(&cube, area, &periods, &levels, figures_of);
        drop(cube);
        let review = if review {
            self.approved(area, &periods, &levels)?
        } else {
            None
        };
        Ok(RollupAnswer {
            area,
            name: self.areas.name(area),
            span,
            figures,
            rates,
            completeness: completeness.summary(),
            approved_only: figures_of == Figures::Approved,
            review,
        })
    }

    /// The metrics and indicators asked for (by id or Chinese name), or which one is unknown.
    fn wanted(&self, asked: &[String]) -> Result<(Vec<String>, Vec<String>), QueryError> {
        let mut wanted: Vec<String> = Vec::new();
        let mut wanted_rates: Vec<String> = Vec::new();
        for m in asked {
            if let Some(id) = self.catalogue.metric_id(m) {
                wanted.push(id.to_string());
            } else if let Some(ind) = self.catalogue.indicator(m) {
                wanted_rates.push(ind.id.clone());
            } else {
                let hint = self
                    .catalogue
                    .suggest(m)
                    .map(|s| format!("，是否是 {s}？"))
                    .unwrap_or_default();
                return Err(QueryError::BadRequest(format!(
                    "未知的指标或比率「{m}」{hint}"
                )));
            }
        }
        Ok((wanted, wanted_rates))
    }

    /// The figures of the metrics `shown` keeps: own value, subtree total and (by category)
    /// parts.
    fn figures(
        &self,
        cube: &Cube,
        total: &[Option<i64>],
        own_vals: &[Option<i64>],
        by_category: bool,
        shown: impl Fn(&str) -> bool,
    ) -> Vec<Figure> {
        let mut figures = Vec::new();
        for m in cube.layout.metrics() {
            if !shown(m.id.as_str()) {
                continue;
            }
            let def = self.catalogue.metric(&m.id);
            let parts = if by_category {
                m.parts
                    .iter()
                    .map(|(name, slot)| Part {
                        part: name.clone(),
                        value: total[*slot],
                    })
                    .collect()
            } else {
                Vec::new()
            };
            figures.push(Figure {
                metric: m.id.to_string(),
                name: def.zh.clone(),
                unit: def.unit.clone(),
                own: own_vals[m.total],
                total: total[m.total],
                parts,
                kind: m.kind,
            });
        }
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Fixture, beijing_ms, code, villages};
    use super::*;

    fn ask(area: &str, span: &str, metrics: &[&str]) -> RollupQuery {
        RollupQuery {
            area: code(area),
            span: span.parse().unwrap(),
            metrics: metrics.iter().map(|m| (*m).to_owned()).collect(),
            by_category: false,
            figures: Figures::Current,
        }
    }

    #[test]
    fn a_subtree_total_is_the_sum_of_the_reports_under_it_and_its_own_is_apart() {
        let f = Fixture::new();
        let town = "510722101";
        let vs = villages(&f, town, 3);
        let sent = [(vs[0], 4), (vs[1], 7), (vs[2], 11)];
        for (v, n) in sent {
            f.report(v, "2026-10", &[("grid.visits", n)], beijing_ms(2026, 11, 2));
        }
        // the township's own report counts in its subtree, not in a village's
        f.report(
            code(town),
            "2026-10",
            &[("grid.visits", 5)],
            beijing_ms(2026, 11, 2),
        );
        // another month must not leak into this one
        f.report(
            vs[0],
            "2026-09",
            &[("grid.visits", 100)],
            beijing_ms(2026, 10, 2),
        );

        let plain: i64 = sent.iter().map(|(_, n)| n).sum::<i64>() + 5;
        let r = f
            .engine
            .rollup(&ask(town, "2026-10", &["grid.visits"]))
            .unwrap();
        let fig = &r.figures[0];
        assert_eq!(
            (fig.metric.as_str(), fig.own, fig.total),
            ("grid.visits", Some(5), Some(plain))
        );
        let county = f
            .engine
            .rollup(&ask("510722", "2026-10", &["走访户次"]))
            .unwrap();
        assert_eq!(county.figures[0].total, Some(plain));
        assert_eq!(county.figures[0].own, None);
        // a span adds its months
        let two = f
            .engine
            .rollup(&ask(town, "2026-09..2026-10", &["grid.visits"]))
            .unwrap();
        assert_eq!(two.figures[0].total, Some(plain + 100));
    }

    #[test]
    fn an_unknown_area_or_metric_is_said_so() {
        let f = Fixture::new();
        let unknown = f.engine.rollup(&ask("510722999", "2026-10", &[]));
        match unknown {
            Err(e @ QueryError::UnknownArea(_)) => assert!(
                e.to_string()
                    .contains("区划代码 510722999 不在本平台的区划里"),
                "{e}"
            ),
            other => panic!("{other:?}"),
        }
        let typo = f.engine.rollup(&ask("510722", "2026-10", &["grid.visit"]));
        match typo {
            Err(QueryError::BadRequest(m)) => assert!(m.contains("grid.visits"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
