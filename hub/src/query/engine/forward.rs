//! What a child hub forwards to its parent for one area and period (federation).

use std::sync::PoisonError;

use pingan_domain::{AreaCode, Level, Period};

use super::*;

impl Engine {
    /// What this hub forwards to its parent for `area` and `period` (federation): the area's own
    /// report and its rollup over `scope`, of current or approved figures. `None` when nothing
    /// within the scope has reported (or been approved).
    pub fn forward_rollup(
        &self,
        area: AreaCode,
        period: Period,
        scope: Scope,
        figures: Figures,
    ) -> Result<Option<ForwardedRollup>, QueryError> {
        self.approved_view(&[period], figures)?;
        // the store is read first, without the rollups' lock (the writer needs it); a report
        // committed in between marks this record again, so the next pass forwards it
        let reader = self.reader()?;
        let mut own = reader.current(area, period)?;
        if figures == Figures::Approved
            && own.as_ref().is_some_and(|r| r.rollup.is_none())
            && self.reviewed(area.level(), period)
        {
            own = reader.approved(area, period)?;
        }
        let own_first_at = match &own {
            Some(r) => match &r.rollup {
                Some(ru) => ru.own_first_received_at_ms,
                None => reader
                    .revisions(area, period)?
                    .first()
                    .map_or(0, |f| f.received_at_ms),
            },
            None => 0,
        };
        self.give_back(reader);
        let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
        let id = cube
            .index
            .id(area)
            .ok_or_else(|| QueryError::UnknownArea(area.to_string()))? as usize;
        let slab = match figures {
            Figures::Approved if self.review_in(period) => cube.approved.get(&period),
            _ => cube.slabs.get(&period),
        };
        let Some(slab) = slab else {
            return Ok(None);
        };
        let status = slab.status[id];
        let own_reported = status & REPORTED != 0;
        let first_at = if own_reported { own_first_at } else { 0 };
        let (zero_report, values) = match &own {
            Some(r) if own_reported => (r.zero_report, r.values.clone()),
            _ => (false, Vec::new()),
        };
        let mut rollup = Rollup {
            scope,
            own_reported,
            own_on_time: status & ON_TIME != 0,
            own_first_received_at_ms: first_at,
            cells: Vec::new(),
            reporters: Vec::new(),
            lock: None,
        };
        if scope == Scope::Subtree && cube.index.is_inner(id as u32) {
            subtree_cells(&cube, slab, id, &mut rollup);
        } else {
            if cube.index.is_inner(id as u32)
                && own
                    .as_ref()
                    .and_then(|r| r.rollup.as_ref())
                    .is_some_and(|r| r.scope == Scope::Subtree)
            {
                return Err(QueryError::Engine(format!(
                    "{area} {period}: this hub holds {area}'s subtree as one rollup from a child hub, so it cannot forward {area}'s own figures alone: forward at a depth no finer than its child hubs do"
                )));
            }
            if own_reported {
                own_cells(&cube, area, period, zero_report, &values, &mut rollup);
            }
        }
        if !own_reported && rollup.cells.is_empty() && rollup.reporters.is_empty() {
            return Ok(None);
        }
        Ok(Some(ForwardedRollup {
            zero_report,
            values,
            rollup,
        }))
    }
}

/// A subtree's sums, report counts and reporters by level, from the rollups.
fn subtree_cells(cube: &Cube, slab: &Slab, id: usize, rollup: &mut Rollup) {
    for (slot, (metric, part)) in cube.layout.slot_names().into_iter().enumerate() {
        let i = slab.cell(id, slot);
        if slab.present[i] > 0 {
            rollup.cells.push(RollupCell {
                metric,
                part,
                sum: slab.sums[i],
                present: slab.present[i],
            });
        }
    }
    for l in Level::ALL {
        let i = id * LEVELS + l as usize;
        if slab.received[i] > 0 {
            rollup.reporters.push(LevelCount {
                level: l,
                received: slab.received[i],
                on_time: slab.on_time_n[i],
            });
        }
    }
}

/// An area's own report as a rollup of one report.
fn own_cells(
    cube: &Cube,
    area: AreaCode,
    period: Period,
    zero_report: bool,
    values: &[Value],
    rollup: &mut Rollup,
) {
    let names = cube.layout.slot_names();
    rollup.cells = cube
        .layout
        .cells(area.level(), period.kind(), zero_report, values)
        .into_iter()
        .map(|(slot, sum)| RollupCell {
            metric: names[slot].0.clone(),
            part: names[slot].1.clone(),
            sum,
            present: 1,
        })
        .collect();
    rollup.reporters.push(LevelCount {
        level: area.level(),
        received: 1,
        on_time: u32::from(rollup.own_on_time),
    });
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Fixture, beijing_ms, code, villages};
    use super::*;

    #[test]
    fn a_subtree_rollup_carries_the_sums_counts_and_reporters_under_it() {
        let f = Fixture::new();
        let town = code("510722101");
        let period: Period = "2026-10".parse().unwrap();
        assert_eq!(
            f.engine
                .forward_rollup(town, period, Scope::Subtree, Figures::Current)
                .unwrap(),
            None
        );
        let vs = villages(&f, "510722101", 3);
        for (i, v) in vs.iter().enumerate() {
            f.report(
                *v,
                "2026-10",
                &[("hazards.found", 2 * i as i64 + 1)],
                beijing_ms(2026, 11, 2),
            );
        }
        let fwd = f
            .engine
            .forward_rollup(town, period, Scope::Subtree, Figures::Current)
            .unwrap()
            .expect("reports under it");
        assert!(!fwd.rollup.own_reported);
        let cell = fwd
            .rollup
            .cells
            .iter()
            .find(|c| c.metric == "hazards.found" && c.part.is_empty())
            .expect("a cell for the metric");
        assert_eq!((cell.sum, cell.present), (1 + 3 + 5, 3));
        let villages_counted: Vec<_> = fwd
            .rollup
            .reporters
            .iter()
            .filter(|l| l.level == Level::Village)
            .collect();
        assert_eq!(
            (villages_counted[0].received, villages_counted[0].on_time),
            (3, 3)
        );

        // its own report alone: nothing of the villages
        f.report(
            town,
            "2026-10",
            &[("hazards.found", 9)],
            beijing_ms(2026, 11, 2),
        );
        let own = f
            .engine
            .forward_rollup(town, period, Scope::Own, Figures::Current)
            .unwrap()
            .unwrap();
        assert!(own.rollup.own_reported);
        assert_eq!(own.values[0].total, Some(9));
        let sum: i64 = own
            .rollup
            .cells
            .iter()
            .filter(|c| c.metric == "hazards.found")
            .map(|c| c.sum)
            .sum();
        assert_eq!(sum, 9);
    }
}
