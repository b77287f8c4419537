//! The rollups kept current as reports arrive. For every reported period there is one slab of
//! dense arrays: per area, the current revision and whether its first revision came on time;
//! per inner area (every level above village), the subtree sums of every slot, how many current
//! reports carry each slot, and how many reporters of each level have reported. A new revision
//! adds its difference to the old one to its area and every ancestor: O(depth × values).
//! Villages' own values are not held here; they are read from the store when asked for.

use std::collections::HashMap;

use pingan_proto::{AreaCode, Areas, Level, Period};

use super::{deadline::Deadlines, layout::Layout};
use crate::store::Committed;

/// No parent.
pub(crate) const NONE: u32 = u32::MAX;
/// Levels, for per-level counters.
pub(crate) const LEVELS: usize = 5;

/// Dense ids for the registry's areas: inner areas (above village) first.
#[derive(Debug)]
pub(crate) struct AreaIndex {
    pub(crate) codes: Vec<AreaCode>,
    pub(crate) by_code: HashMap<AreaCode, u32>,
    pub(crate) parent: Vec<u32>,
    pub(crate) n_inner: usize,
}

impl AreaIndex {
    pub(crate) fn new(areas: &Areas) -> AreaIndex {
        let mut codes: Vec<AreaCode> = areas.iter().map(|a| a.code).collect();
        codes.sort_by_key(|c| (c.level() == Level::Village, *c));
        let n_inner = codes
            .iter()
            .take_while(|c| c.level() != Level::Village)
            .count();
        let by_code: HashMap<AreaCode, u32> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i as u32))
            .collect();
        let parent = codes
            .iter()
            .map(|c| {
                c.parent()
                    .and_then(|p| by_code.get(&p).copied())
                    .unwrap_or(NONE)
            })
            .collect();
        AreaIndex {
            codes,
            by_code,
            parent,
            n_inner,
        }
    }

    pub(crate) fn id(&self, code: AreaCode) -> Option<u32> {
        self.by_code.get(&code).copied()
    }

    pub(crate) fn is_inner(&self, id: u32) -> bool {
        (id as usize) < self.n_inner
    }
}

/// One reported period's rollups.
#[derive(Debug)]
pub(crate) struct Slab {
    /// Current revision per area (0: no report).
    pub(crate) revision: Vec<u32>,
    /// Whether the area's first revision arrived before the deadline.
    pub(crate) on_time: Vec<bool>,
    /// Subtree sums per inner area and slot.
    pub(crate) sums: Vec<i64>,
    /// Number of current reports in the subtree carrying the slot.
    pub(crate) present: Vec<u32>,
    /// Reporters of each level in the subtree that have reported.
    pub(crate) received: Vec<u32>,
    /// ... of which on time.
    pub(crate) on_time_n: Vec<u32>,
}

impl Slab {
    fn new(n: usize, n_inner: usize, slots: usize) -> Slab {
        Slab {
            revision: vec![0; n],
            on_time: vec![false; n],
            sums: vec![0; n_inner * slots],
            present: vec![0; n_inner * slots],
            received: vec![0; n_inner * LEVELS],
            on_time_n: vec![0; n_inner * LEVELS],
        }
    }
}

/// All slabs.
#[derive(Debug)]
pub(crate) struct Cube {
    pub(crate) index: AreaIndex,
    pub(crate) layout: Layout,
    pub(crate) deadlines: Deadlines,
    pub(crate) slabs: HashMap<Period, Slab>,
}

impl Cube {
    pub(crate) fn new(index: AreaIndex, layout: Layout, deadlines: Deadlines) -> Cube {
        Cube {
            index,
            layout,
            deadlines,
            slabs: HashMap::new(),
        }
    }

    /// Applies a committed revision. Stale revisions (lower than the current one) are ignored.
    pub(crate) fn apply(&mut self, c: &Committed) {
        let Some(a) = self.index.id(c.area) else {
            tracing::warn!(area = %c.area, "revision for an area outside the registry, not rolled up");
            return;
        };
        let (n, n_inner, slots) = (
            self.index.codes.len(),
            self.index.n_inner,
            self.layout.slots(),
        );
        let slab = self
            .slabs
            .entry(c.period)
            .or_insert_with(|| Slab::new(n, n_inner, slots));
        let current = slab.revision[a as usize];
        if c.revision <= current {
            return;
        }
        let first = current == 0;
        let new = self.layout.cells(c.zero_report, &c.values);
        let old = match (&c.previous, first) {
            (Some((zero, values)), false) => self.layout.cells(*zero, values),
            _ => Vec::new(),
        };
        slab.revision[a as usize] = c.revision;
        let on_time = if first {
            let t = self.deadlines.on_time(c.period, c.first_received_at_ms);
            slab.on_time[a as usize] = t;
            t
        } else {
            slab.on_time[a as usize]
        };
        let level = c.area.level() as usize;
        let mut x = if self.index.is_inner(a) {
            a
        } else {
            self.index.parent[a as usize]
        };
        while x != NONE {
            let base = x as usize * slots;
            for &(slot, v) in &new {
                slab.sums[base + slot] += v;
                slab.present[base + slot] += 1;
            }
            for &(slot, v) in &old {
                slab.sums[base + slot] -= v;
                slab.present[base + slot] -= 1;
            }
            if first {
                slab.received[x as usize * LEVELS + level] += 1;
                if on_time {
                    slab.on_time_n[x as usize * LEVELS + level] += 1;
                }
            }
            x = self.index.parent[x as usize];
        }
    }
}
