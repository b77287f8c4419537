//! 审核: the rollups of approved figures only. On a form with review a report counts there
//! with its latest approved revision, or not at all until one is approved; on other forms (and
//! a child hub's forwarded rollups) with its current revision, as everywhere else.
//!
//! They are built from the store for a period the first time a question (or a child hub that
//! forwards approved figures only) asks for them, and kept current after: a revision on a form
//! without review is applied to both rollups, one with review waits for its decision, and an
//! approval replaces the area's approved revision. Leaders ask for approved figures of a few
//! recent periods, so the slabs are kept for at most [`APPROVED_KEPT`] periods.

use std::sync::PoisonError;

use pingan_domain::{AreaCode, Period};

use super::*;
use crate::store::{Prior, RevisionRecord};

/// Periods whose approved rollups are kept, before they are built again as asked.
const APPROVED_KEPT: usize = 64;

/// A stored revision as the rollups take it.
fn committed(area: AreaCode, period: Period, rec: RevisionRecord, first_at: i64) -> Committed {
    Committed {
        area,
        period,
        revision: rec.revision,
        received_at_ms: rec.received_at_ms,
        first_received_at_ms: first_at,
        zero_report: rec.zero_report,
        values: rec.values,
        rollup: rec.rollup,
        previous: None,
    }
}

impl Engine {
    /// Whether any form of `p`'s kind has review: only then do approved figures differ.
    pub(super) fn review_in(&self, p: Period) -> bool {
        self.catalogue
            .forms()
            .iter()
            .any(|f| f.period == p.kind() && f.review)
    }

    /// Makes sure the approved rollups of `periods` are built (a no-op for current figures).
    /// Building holds the rollups' lock while it reads the period from the store, so that no
    /// commit falls between the read and the slab; a county's month takes milliseconds.
    pub(super) fn approved_view(
        &self,
        periods: &[Period],
        figures: Figures,
    ) -> Result<(), QueryError> {
        if figures != Figures::Approved {
            return Ok(());
        }
        let missing: Vec<Period> = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            periods
                .iter()
                .copied()
                .filter(|p| self.review_in(*p) && !cube.approved.contains_key(p))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let reader = self.reader()?;
        let mut cube = self.cube.write().unwrap_or_else(PoisonError::into_inner);
        if cube.approved.len() + missing.len() > APPROVED_KEPT {
            cube.approved.clear();
        }
        for p in missing {
            if cube.approved.contains_key(&p) {
                continue;
            }
            let slab = self.build_approved(&cube, &reader, p)?;
            cube.approved.insert(p, slab);
        }
        drop(cube);
        self.give_back(reader);
        Ok(())
    }

    /// A period's approved rollups from the store: the current revisions of reports that wait
    /// for no review, and the latest approved revision of those that do.
    fn build_approved(
        &self,
        cube: &Cube,
        reader: &StoreReader,
        p: Period,
    ) -> Result<Slab, QueryError> {
        let mut slab = cube.empty_slab();
        let mut put = |rec: RevisionRecord, first_at: i64, approved: bool| {
            let Ok(area) = rec.area.parse::<AreaCode>() else {
                return;
            };
            let reviewed = rec.rollup.is_none() && self.reviewed(area.level(), p);
            if reviewed != approved {
                return;
            }
            if let Some(id) = cube.index.id(area) {
                cube.apply_to(&mut slab, id, &committed(area, p, rec, first_at));
            }
        };
        reader.for_each_current_of(p, |rec, first_at| put(rec, first_at, false))?;
        reader.for_each_approved_of(p, |rec, first_at| put(rec, first_at, true))?;
        Ok(slab)
    }

    /// Takes an approval (审核通过) of `revision` of (area, period) into the approved rollups,
    /// when they are kept for that period. Safe to repeat: a revision the rollups hold already
    /// changes nothing.
    pub fn take_approval(
        &self,
        area: AreaCode,
        period: Period,
        revision: u32,
    ) -> Result<(), QueryError> {
        if !self
            .cube
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .approved
            .contains_key(&period)
        {
            return Ok(());
        }
        let reader = self.reader()?;
        let revisions = reader.revisions(area, period)?;
        self.give_back(reader);
        let Some(first_at) = revisions.first().map(|r| r.received_at_ms) else {
            return Ok(());
        };
        let mut cube = self.cube.write().unwrap_or_else(PoisonError::into_inner);
        let (Some(id), Some(slab)) = (cube.index.id(area), cube.approved.get(&period)) else {
            return Ok(());
        };
        let before = slab.revision[id as usize];
        let Some(new) = revisions.iter().find(|r| r.revision == revision) else {
            return Ok(());
        };
        let mut c = committed(area, period, new.clone(), first_at);
        c.previous = revisions
            .iter()
            .find(|r| r.revision == before)
            .map(|r| Prior {
                zero_report: r.zero_report,
                values: r.values.clone(),
                rollup: r.rollup.clone(),
            });
        cube.approve(&c);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::{Rng as _, SeedableRng as _, rngs::StdRng};

    use super::super::fixture::{Fixture, beijing_ms, code, villages};
    use super::*;
    use crate::store::ReviewEvent;

    fn decide(f: &Fixture, area: AreaCode, period: &str, revision: u32, approve: bool) {
        f.store
            .decide(ReviewEvent {
                area: area.to_string(),
                period: period.into(),
                revision,
                approved: approve,
                by: "镇综治中心".into(),
                identity: "test".into(),
                at_ms: 0,
                reason: if approve {
                    String::new()
                } else {
                    "不符".into()
                },
            })
            .unwrap();
        if approve {
            f.engine
                .take_approval(area, period.parse().unwrap(), revision)
                .unwrap();
        }
    }

    fn rollup(f: &Fixture, area: &str, figures: Figures) -> Option<i64> {
        f.engine
            .rollup(&RollupQuery {
                area: code(area),
                span: "2026-10".parse().unwrap(),
                metrics: vec!["grid.visits".into()],
                by_category: false,
                figures,
            })
            .unwrap()
            .figures[0]
            .total
    }

    #[test]
    fn approved_figures_hold_the_latest_approved_revision_and_wait_for_the_rest() {
        let f = Fixture::new();
        let vs = villages(&f, "510722101", 3);
        let at = beijing_ms(2026, 11, 2);
        f.report(vs[0], "2026-10", &[("grid.visits", 4)], at);
        f.report(vs[1], "2026-10", &[("grid.visits", 7)], at);
        assert_eq!(rollup(&f, "510722101", Figures::Current), Some(11));
        // nothing approved yet: no approved figure at all
        assert_eq!(rollup(&f, "510722101", Figures::Approved), None);
        decide(&f, vs[0], "2026-10", 1, true);
        assert_eq!(rollup(&f, "510722101", Figures::Approved), Some(4));
        // a correction waits for review: the approved figure stays, the current one moves
        f.report(vs[0], "2026-10", &[("grid.visits", 40)], at);
        assert_eq!(rollup(&f, "510722101", Figures::Current), Some(47));
        assert_eq!(rollup(&f, "510722101", Figures::Approved), Some(4));
        assert_eq!(rollup(&f, "510722", Figures::Approved), Some(4));
        decide(&f, vs[0], "2026-10", 2, true);
        decide(&f, vs[1], "2026-10", 1, false);
        assert_eq!(rollup(&f, "510722101", Figures::Approved), Some(40));
        // a village's own approved figure is read from the store
        assert_eq!(rollup(&f, &vs[0].to_string(), Figures::Approved), Some(40));
        assert_eq!(rollup(&f, &vs[1].to_string(), Figures::Approved), None);
        assert_eq!(rollup(&f, &vs[1].to_string(), Figures::Current), Some(7));
        // the half-monthly form has no review: its figures count as stored in both
        let town = code("510722101");
        f.report(town, "2026-10-H1", &[("disputes.identified", 3)], at);
        let half = |figures| {
            f.engine
                .rollup(&RollupQuery {
                    area: town,
                    span: "2026-10-H1".parse().unwrap(),
                    metrics: vec!["disputes.identified".into()],
                    by_category: false,
                    figures,
                })
                .unwrap()
                .figures[0]
                .total
        };
        assert_eq!(half(Figures::Approved), Some(3));
        assert_eq!(half(Figures::Current), Some(3));
    }

    #[test]
    fn two_reviewers_at_once_one_decides_and_the_other_is_told_who() {
        let f = Fixture::new();
        let v = villages(&f, "510722101", 1)[0];
        f.report(v, "2026-10", &[("grid.visits", 4)], beijing_ms(2026, 11, 2));
        let decide = |revision: u32, approve: bool, by: &str| ReviewEvent {
            area: v.to_string(),
            period: "2026-10".into(),
            revision,
            approved: approve,
            by: by.into(),
            identity: by.into(),
            at_ms: 0,
            reason: "不符".into(),
        };
        for revision in 1..=5 {
            let store = &f.store;
            let (a, b) = std::thread::scope(|s| {
                let a = s.spawn(|| store.decide(decide(revision, true, "潼川镇")));
                let b = s.spawn(|| store.decide(decide(revision, false, "三台县")));
                (a.join().unwrap(), b.join().unwrap())
            });
            assert!(a.is_ok() != b.is_ok(), "exactly one decides: {a:?} {b:?}");
            let loser = a.err().or(b.err()).unwrap().to_string();
            assert!(
                loser.contains("已由 潼川镇 审核通过") || loser.contains("已由 三台县 退回"),
                "{loser}"
            );
            // the next round is about a new revision
            f.report(v, "2026-10", &[("grid.visits", 5)], beijing_ms(2026, 11, 2));
        }
    }

    /// Reports, corrections, approvals and returns in random order; every area's approved
    /// total (built before and kept current during, or built after) against a plain
    /// computation over the same events.
    #[test]
    fn approved_rollups_equal_a_plain_replay_of_the_reports_and_decisions() {
        for seed in 0..4u64 {
            let f = Fixture::new();
            let mut rng = StdRng::seed_from_u64(seed);
            let mut all_towns = f
                .areas()
                .descendants_at(code("510722"), pingan_domain::Level::Township);
            all_towns.sort();
            let names: Vec<String> = all_towns[..2].iter().map(|t| t.to_string()).collect();
            let towns = [names[0].as_str(), names[1].as_str()];
            let vs: Vec<AreaCode> = towns.iter().flat_map(|t| villages(&f, t, 4)).collect();
            let at = beijing_ms(2026, 11, 2);
            // the plain model: per village, (current revision, value) and approved value
            let mut current: HashMap<AreaCode, (u32, i64)> = HashMap::new();
            let mut decided: HashMap<(AreaCode, u32), bool> = HashMap::new();
            let mut approved: HashMap<AreaCode, i64> = HashMap::new();
            if seed % 2 == 0 {
                // built first, then kept current
                assert_eq!(rollup(&f, "510722", Figures::Approved), None);
            }
            for _ in 0..60 {
                let v = vs[rng.random_range(0..vs.len())];
                match (rng.random_range(0..3), current.get(&v).copied()) {
                    (0, _) | (_, None) => {
                        let n = rng.random_range(0..50);
                        f.report(v, "2026-10", &[("grid.visits", n)], at);
                        let rev = current.get(&v).map_or(1, |c| c.0 + 1);
                        current.insert(v, (rev, n));
                    }
                    (k, Some((rev, n))) => {
                        if decided.contains_key(&(v, rev)) {
                            continue;
                        }
                        decide(&f, v, "2026-10", rev, k == 1);
                        decided.insert((v, rev), k == 1);
                        if k == 1 {
                            approved.insert(v, n);
                        }
                    }
                }
            }
            for area in ["510722", towns[0], towns[1]] {
                let plain: Option<i64> = approved
                    .iter()
                    .filter(|(v, _)| v.is_within(code(area)))
                    .map(|(_, n)| *n)
                    .reduce(|a, b| a + b);
                assert_eq!(
                    rollup(&f, area, Figures::Approved),
                    plain,
                    "seed {seed} {area}"
                );
                let current_sum: Option<i64> = current
                    .iter()
                    .filter(|(v, _)| v.is_within(code(area)))
                    .map(|(_, c)| c.1)
                    .reduce(|a, b| a + b);
                assert_eq!(rollup(&f, area, Figures::Current), current_sum);
            }
            // and the comparison of townships reads the same approved rollups
            let ranked = f
                .engine
                .compare(&CompareQuery {
                    root: Root::Area(code("510722")),
                    span: "2026-10".parse().unwrap(),
                    metric: "grid.visits".into(),
                    level: None,
                    complete_only: false,
                    page: Paging::default(),
                    figures: Figures::Approved,
                    as_columns: false,
                })
                .unwrap();
            for t in towns {
                let row = ranked.rows.iter().find(|r| r.code == code(t)).unwrap();
                let plain = approved
                    .iter()
                    .filter(|(v, _)| v.is_within(code(t)))
                    .map(|(_, n)| *n as f64)
                    .reduce(|a, b| a + b);
                assert_eq!(row.value, plain, "seed {seed} {t}");
                let n_approved = approved.keys().filter(|v| v.is_within(code(t))).count();
                assert_eq!(row.completeness.received as usize, n_approved);
            }
            // villages ranked from the store's approved revisions
            let villages_ranked = f
                .engine
                .compare(&CompareQuery {
                    root: Root::Area(code(towns[0])),
                    span: "2026-10".parse().unwrap(),
                    metric: "grid.visits".into(),
                    level: None,
                    complete_only: false,
                    page: Paging::default(),
                    figures: Figures::Approved,
                    as_columns: false,
                })
                .unwrap();
            for row in &villages_ranked.rows {
                assert_eq!(
                    row.value,
                    approved.get(&row.code).map(|n| *n as f64),
                    "seed {seed} {}",
                    row.code
                );
            }
        }
    }
}
