//! What a child hub forwards to its parent for one area and period (federation).

use std::sync::PoisonError;

use pingan_proto::{AreaCode, Level, Period, pb};

use super::*;

impl Engine {
    /// What this hub forwards to its parent for `area` and `period` (federation): the area's own
    /// report and its rollup over `scope`. `None` when nothing within the scope has reported.
    pub fn forward_rollup(
        &self,
        area: AreaCode,
        period: Period,
        scope: pb::rollup::Scope,
    ) -> Result<Option<ForwardedRollup>, QueryError> {
        // the store is read first, without the rollups' lock (the writer needs it); a report
        // committed in between marks this record again, so the next pass forwards it
        let reader = self.reader()?;
        let own = reader.current(area, period)?;
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
        let Some(slab) = cube.slabs.get(&period) else {
            return Ok(None);
        };
        let status = slab.status[id];
        let own_reported = status & REPORTED != 0;
        let first_at = if own_reported { own_first_at } else { 0 };
        let (zero_report, values) = match &own {
            Some(r) if own_reported => (r.zero_report, r.values.clone()),
            _ => (false, Vec::new()),
        };
        let mut rollup = pb::Rollup {
            scope: scope as i32,
            own_reported,
            own_on_time: status & ON_TIME != 0,
            own_first_received_at_ms: first_at,
            ..Default::default()
        };
        let slots = cube.layout.slots();
        let names = cube.layout.slot_names();
        if scope == pb::rollup::Scope::Subtree && cube.index.is_inner(id as u32) {
            let base = id * slots;
            for (slot, (metric, part)) in names.into_iter().enumerate() {
                if slab.present[base + slot] > 0 {
                    rollup.cells.push(pb::RollupCell {
                        metric,
                        part,
                        sum: slab.sums[base + slot],
                        present: slab.present[base + slot],
                    });
                }
            }
            for l in Level::ALL {
                let i = id * LEVELS + l as usize;
                if slab.received[i] > 0 {
                    rollup.reporters.push(pb::LevelCount {
                        level: l.as_str().to_owned(),
                        received: slab.received[i],
                        on_time: slab.on_time_n[i],
                    });
                }
            }
        } else {
            if cube.index.is_inner(id as u32)
                && own
                    .as_ref()
                    .and_then(|r| r.rollup.as_ref())
                    .is_some_and(|r| r.scope() == pb::rollup::Scope::Subtree)
            {
                return Err(QueryError::Engine(format!(
                    "{area} {period}: this hub holds {area}'s subtree as one rollup from a child hub, so it cannot forward {area}'s own figures alone: forward at a depth no finer than its child hubs do"
                )));
            }
            if own_reported {
                rollup.cells = cube
                    .layout
                    .cells(zero_report, &values)
                    .into_iter()
                    .map(|(slot, sum)| pb::RollupCell {
                        metric: names[slot].0.clone(),
                        part: names[slot].1.clone(),
                        sum,
                        present: 1,
                    })
                    .collect();
                rollup.reporters.push(pb::LevelCount {
                    level: area.level().as_str().to_owned(),
                    received: 1,
                    on_time: u32::from(rollup.own_on_time),
                });
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
