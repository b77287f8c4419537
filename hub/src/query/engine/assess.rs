//! 考核: an area's children (or descendants at the scheme's level) scored by an assessment
//! scheme. The figures come from the same rollups as every other answer (one rollup per
//! assessed area, with its completeness); the scoring is `pingan_domain::assess::score`.

use std::sync::{Arc, PoisonError};

use pingan_domain::assess::{AreaFigures, AssessAnswer, Scheme, score};

use super::*;

impl Engine {
    /// Sets the hub's own scheme (`serve --scheme FILE`; the shipped sample otherwise).
    pub fn set_scheme(&self, scheme: Scheme) {
        let _ = self.scheme.set(Arc::new(scheme));
    }

    /// The hub's own scheme.
    pub fn scheme(&self) -> Arc<Scheme> {
        self.scheme
            .get_or_init(|| Arc::new(Scheme::sample(&self.catalogue)))
            .clone()
    }

    /// Scores the area's children (or descendants at the scheme's level) over the span.
    pub fn assess(&self, req: &AssessQuery) -> Result<AssessAnswer, QueryError> {
        let area = self.registered(req.area)?;
        let scheme = match &req.scheme {
            Some(text) => {
                Arc::new(Scheme::parse(text, &self.catalogue).map_err(QueryError::BadRequest)?)
            }
            None => self.scheme(),
        };
        let level = match scheme.level {
            Some(l) if l > area.level() => l,
            Some(l) => {
                return Err(QueryError::BadRequest(format!(
                    "考核方案考核的是{}，不在 {area}（{}）之下：请问它的上级",
                    l.zh(),
                    area.level().zh()
                )));
            }
            None => area.level().child().ok_or_else(|| {
                QueryError::BadRequest(format!("{area} 是村（社区），下面没有可考核的区域"))
            })?,
        };
        {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            self.known_here(&cube, area)?;
        }
        let mut rows = self.areas.descendants_at(area, level);
        rows.sort();
        crate::query::budget::within(
            rows.len() as u64 * req.span.reported().len() as u64,
            "这次考核",
        )?;
        let wanted = scheme.figures();
        // only the figures the scheme reads
        let mut metrics: Vec<String> = wanted.iter().map(|f| f.metric.clone()).collect();
        metrics.dedup();
        let mut figures = Vec::with_capacity(rows.len());
        for code in rows {
            crate::query::budget::check()?;
            let r = self.rollup_with(
                &RollupQuery {
                    area: code,
                    span: req.span,
                    metrics: metrics.clone(),
                    by_category: true,
                    figures: req.figures,
                },
                false,
            )?;
            let values = wanted
                .iter()
                .map(|f| {
                    let v = match r.rates.iter().find(|x| x.indicator == f.metric) {
                        Some(rate) => rate.value,
                        None => r
                            .figures
                            .iter()
                            .find(|x| x.metric == f.metric)
                            .and_then(|x| {
                                if f.part.is_empty() {
                                    x.total.map(|v| v as f64)
                                } else {
                                    x.parts
                                        .iter()
                                        .find(|p| p.part == f.part)
                                        .and_then(|p| p.value)
                                        .map(|v| v as f64)
                                }
                            }),
                    };
                    (f.clone(), v)
                })
                .collect();
            figures.push(AreaFigures {
                code,
                name: r.name,
                missing: r.completeness.missing,
                values,
            });
        }
        Ok(AssessAnswer {
            area,
            name: self.areas.name(area),
            span: req.span,
            rows: score(&scheme, &figures),
            scheme,
            approved_only: req.figures == Figures::Approved,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use pingan_domain::{AreaCode, Level, pb};
    use rand::{Rng as _, SeedableRng as _, rngs::StdRng};

    use super::super::fixture::{Fixture, beijing_ms, code};
    use super::*;

    const SCHEME: &str = r#"
title = "随机考核"
level = "township"
[[item]]
id = "patrol"
metric = "patrol.sessions"
weight = 10
rule = "bands"
bands = [[120, 10], [60, 5]]
[[item]]
id = "grid"
metric = "grid.visits"
weight = 10
rule = "rank"
[[item]]
id = "disputes"
metric = "disputes.success_rate"
weight = 20
rule = "target"
full = 95
zero = 60
[[item]]
id = "beijing"
metric = "petitions.leapfrog"
part = "进京"
rule = "deduct"
per = 1
max = 3
[[veto]]
name = "群体性事件"
metric = "stability.mass_incidents"
[[bonus]]
name = "三星平安村"
metric = "creation.safe_villages"
part = "★★★"
per = 0.5
max = 2
"#;

    fn value(metric: &str, total: i64) -> pb::MetricValue {
        pb::MetricValue {
            metric: metric.into(),
            total: Some(total),
            parts: Default::default(),
        }
    }

    fn part(metric: &str, part: &str, n: i64) -> pb::MetricValue {
        pb::MetricValue {
            metric: metric.into(),
            total: None,
            parts: [(part.to_owned(), n)].into_iter().collect(),
        }
    }

    /// One township's plain sums, as the test sent them.
    #[derive(Default, Clone)]
    struct Plain {
        patrol: i64,
        grid: i64,
        mediated: i64,
        resolved: i64,
        beijing: i64,
        mass: i64,
        three_star: i64,
        complete: bool,
    }

    /// The scheme above, computed plainly: bands, ranks among the complete townships, target,
    /// deduction, veto, bonus; 0 for a township with a missing report.
    fn plain_total(t: &Plain, peers: &[Plain]) -> f64 {
        if !t.complete || t.mass > 0 {
            return 0.0;
        }
        let patrol = if t.patrol >= 120 {
            10.0
        } else if t.patrol >= 60 {
            5.0
        } else {
            0.0
        };
        let complete: Vec<&Plain> = peers.iter().filter(|p| p.complete).collect();
        let n = complete.len();
        let better = complete.iter().filter(|p| p.grid > t.grid).count();
        let grid = if n <= 1 {
            10.0
        } else {
            10.0 * (n - 1 - better) as f64 / (n - 1) as f64
        };
        let disputes = if t.mediated == 0 {
            0.0
        } else {
            let rate = t.resolved as f64 / t.mediated as f64 * 100.0;
            20.0 * ((rate - 60.0) / 35.0).clamp(0.0, 1.0)
        };
        let beijing = (t.beijing as f64).min(3.0);
        let bonus = (t.three_star as f64 * 0.5).min(2.0);
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        r2((r2(patrol) + r2(grid) + r2(disputes) - r2(beijing) + r2(bonus)).max(0.0))
    }

    #[test]
    fn random_townships_score_as_a_plain_computation_of_the_scheme_says() {
        for seed in 0..3u64 {
            let f = Fixture::new();
            let mut rng = StdRng::seed_from_u64(seed);
            let county = code("510722");
            let mut towns = f.areas().descendants_at(county, Level::Township);
            towns.sort();
            let at = beijing_ms(2026, 11, 2);
            let mut plain: BTreeMap<AreaCode, Plain> =
                towns.iter().map(|t| (*t, Plain::default())).collect();
            // six townships report, four of them completely; the others send nothing
            for (k, t) in towns.iter().take(6).enumerate() {
                let complete = k < 4;
                let sums = plain.get_mut(t).unwrap();
                sums.complete = complete;
                let mut villages = f.areas().descendants_at(*t, Level::Village);
                villages.sort();
                if !complete {
                    villages.pop();
                }
                for v in villages {
                    let mediated = rng.random_range(1..10);
                    let resolved = rng.random_range(0..=mediated);
                    let (patrol, grid) = (rng.random_range(0..12), rng.random_range(0..50));
                    let beijing = i64::from(rng.random_bool(0.1));
                    let mass = i64::from(rng.random_bool(0.03));
                    let mut values = vec![
                        value("patrol.sessions", patrol),
                        value("patrol.person_times", patrol * 3),
                        value("grid.visits", grid),
                        value("disputes.mediated", mediated),
                        value("disputes.resolved", resolved),
                        value("stability.mass_incidents", mass),
                        part("petitions.leapfrog", "进京", beijing),
                    ];
                    if rng.random_bool(0.3) {
                        values.push(part("creation.safe_villages", "★★★", 1));
                        sums.three_star += 1;
                    }
                    f.report_values(v, "2026-10", values, false, at);
                    sums.patrol += patrol;
                    sums.grid += grid;
                    sums.mediated += mediated;
                    sums.resolved += resolved;
                    sums.beijing += beijing;
                    sums.mass += mass;
                }
                // the township's own month and half-months: nothing to declare
                for p in ["2026-10", "2026-10-H1", "2026-10-H2"] {
                    f.report_values(*t, p, Vec::new(), true, at);
                }
            }
            let answer = f
                .engine
                .assess(&AssessQuery {
                    area: county,
                    span: "2026-10".parse().unwrap(),
                    scheme: Some(SCHEME.into()),
                    figures: Figures::Current,
                })
                .unwrap();
            assert_eq!(answer.rows.len(), towns.len());
            // not a degenerate case: several townships scored, on different totals
            let scored: std::collections::BTreeSet<i64> = answer
                .rows
                .iter()
                .filter_map(|r| r.total.filter(|t| *t > 0.0))
                .map(|t| (t * 100.0) as i64)
                .collect();
            assert!(scored.len() >= 2, "seed {seed}: {:?}", answer.rows);
            let peers: Vec<Plain> = plain.values().cloned().collect();
            let mut expected: Vec<(AreaCode, f64, bool)> = plain
                .iter()
                .map(|(t, p)| (*t, plain_total(p, &peers), !p.complete || p.mass > 0))
                .collect();
            for row in &answer.rows {
                let want = expected.iter().find(|e| e.0 == row.code).unwrap();
                assert_eq!(row.total, Some(want.1), "seed {seed} {}: {row:?}", row.code);
                assert_eq!(
                    row.missing > 0,
                    !plain[&row.code].complete,
                    "seed {seed} {}",
                    row.code
                );
            }
            // ranks: by total, the vetoed and incomplete after, equal totals sharing a rank
            expected.sort_by(|a, b| (a.2, -a.1).partial_cmp(&(b.2, -b.1)).unwrap());
            for row in &answer.rows {
                let me = expected.iter().find(|e| e.0 == row.code).unwrap();
                let before = expected
                    .iter()
                    .filter(|e| (e.2, -e.1) < (me.2, -me.1))
                    .count();
                assert_eq!(row.rank as usize, before + 1, "seed {seed} {}", row.code);
            }
        }
    }
}
