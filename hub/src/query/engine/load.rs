//! Loading the rollups at start-up (from the snapshot, or rebuilt from the store) and saving them
//! for a fast restart.

use std::sync::PoisonError;

use pingan_domain::{AreaCode, Period};

use crate::query::cube::PlacedReport;

use super::*;

/// Why stored figures are beyond what validation accepts today, if they are.
fn implausible(values: &[Value], rollup: Option<&Rollup>) -> Option<String> {
    let max = pingan_domain::report::MAX_VALUE;
    for v in values {
        let bad = v.total.is_some_and(|t| !(0..=max).contains(&t))
            || v.parts.values().any(|n| !(0..=max).contains(n));
        if bad {
            return Some(format!("{} out of 0..={max}", v.metric));
        }
    }
    for c in rollup.map_or(&[][..], |r| r.cells.as_slice()) {
        if c.sum < 0 || i128::from(c.sum) > i128::from(c.present) * i128::from(max) {
            return Some(format!(
                "forwarded {} sum {} for {} reports",
                c.metric, c.sum, c.present
            ));
        }
    }
    None
}

/// [`implausible`] of figures by pair number: the first one out of range, named.
fn implausible_numbered(reader: &StoreReader, numbered: &[(u32, i64)]) -> Option<String> {
    let max = pingan_domain::report::MAX_VALUE;
    let &(pair, n) = numbered.iter().find(|(_, n)| !(0..=max).contains(n))?;
    let named = reader.map_pairs(|metric, part| match part {
        "" => metric.to_owned(),
        part => format!("{metric}/{part}"),
    });
    let name = named.get(pair as usize).map_or("?", String::as_str);
    Some(format!("{name} {n} out of 0..={max}"))
}

impl Engine {
    /// Points the engine at the store's database and loads the rollups: from the snapshot at
    /// `snapshot` for every period the store has not changed since it was taken, and from the
    /// store's current revisions for every other period. Later [`Engine::save_snapshot`] calls
    /// write to the same file.
    pub fn load(
        &self,
        db: impl Into<crate::store::StoreAt>,
        snapshot: Option<PathBuf>,
    ) -> Result<Loaded, QueryError> {
        let _ = self.db.set(db.into());
        if let Some(path) = &snapshot {
            let _ = self.snapshot.set(path.clone());
        }
        let saved = match &snapshot {
            None => None,
            Some(path) => {
                let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
                match snapshot::read(path, &cube) {
                    Ok(saved) => saved,
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "rollup snapshot unreadable, rebuilding from the store");
                        None
                    }
                }
            }
        };
        let mut reader = self.reader()?;
        let loaded = reader.read_consistently(|reader| self.load_from(reader, saved))?;
        self.give_back(reader);
        let loaded = loaded?;
        *self.saved_rows.lock().expect("not poisoned") = loaded.unchanged.clone();
        *self.loaded.lock().expect("not poisoned") = loaded.clone();
        // the expected reporters per area, once, at start-up rather than in the first question
        self.expected_base(&self.cube.read().unwrap_or_else(PoisonError::into_inner));
        Ok(loaded)
    }

    /// How the last [`Engine::load`] got the rollups.
    pub fn loaded(&self) -> Loaded {
        self.loaded.lock().expect("not poisoned").clone()
    }

    fn load_from(
        &self,
        reader: &StoreReader,
        saved: Option<Saved>,
    ) -> Result<Result<Loaded, QueryError>, StoreError> {
        let mut counts = HashMap::new();
        for (p, n) in reader.revisions_per_period()? {
            match p.parse::<Period>() {
                Ok(p) => {
                    counts.insert(p, n);
                }
                Err(_) => return Ok(Err(QueryError::Engine(format!("stored period {p:?}")))),
            }
        }
        let mut loaded = Loaded::default();
        let mut rebuild: Vec<Period> = counts.keys().copied().collect();
        rebuild.sort();
        if let Some(saved) = saved {
            let mut cube = self.cube.write().unwrap_or_else(PoisonError::into_inner);
            for (p, s) in saved.slabs {
                if counts.get(&p) == Some(&s.rows) {
                    cube.slabs.insert(p, s.slab);
                    loaded.unchanged.insert(p, s.rows);
                }
            }
            for (flag, was) in cube.summarized.iter_mut().zip(saved.summarized) {
                *flag |= was;
            }
            rebuild.retain(|p| !loaded.unchanged.contains_key(p));
        }
        let failed = self.rebuild_periods(reader, &rebuild, &mut loaded)?;
        loaded.rebuilt = rebuild;
        if !loaded.implausible.is_empty() {
            tracing::warn!(
                count = loaded.implausible.len(),
                first = ?loaded.implausible.iter().take(20).collect::<Vec<_>>(),
                "the store holds figures no valid report carries (written before the checks that refuse them now); they are rolled up saturated, never panicking: correct them with a new revision"
            );
        }
        // what the slabs reflect: every stored revision, current or not
        self.cube
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .rows = counts;
        Ok(match failed {
            Some(e) => Err(QueryError::Engine(e)),
            None => Ok(loaded),
        })
    }

    /// Rebuilds `periods` from the store, on as many threads as there are cores (at most 4):
    /// each period's slab is built apart and put in the cube when done. `reader` takes the first
    /// thread's periods; the others open their own. Nothing writes while the hub opens, so every
    /// reader sees the same store. Returns a stored area that does not parse, if any.
    fn rebuild_periods(
        &self,
        reader: &StoreReader,
        periods: &[Period],
        loaded: &mut Loaded,
    ) -> Result<Option<String>, StoreError> {
        let threads = pingan_domain::cores().clamp(1, 4).min(periods.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = |reader: &StoreReader| -> Result<(Loaded, Option<String>), StoreError> {
            let mut part = Loaded::default();
            let mut failed = None;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(p) = periods.get(i) else {
                    break;
                };
                if let Some(e) = self.rebuild_period(reader, *p, &mut part)? {
                    failed = Some(e);
                }
            }
            Ok((part, failed))
        };
        let results = std::thread::scope(|s| {
            let others: Vec<_> = (1..threads)
                .map(|_| {
                    s.spawn(|| {
                        let reader = self.reader().map_err(|e| match e {
                            QueryError::Store(e) => e,
                            other => StoreError::Corrupt {
                                area: String::new(),
                                period: String::new(),
                                reason: other.to_string(),
                            },
                        })?;
                        let out = work(&reader);
                        self.give_back(reader);
                        out
                    })
                })
                .collect();
            let mut results = vec![work(reader)];
            for t in others {
                results.push(t.join().expect("a rebuilding thread panicked"));
            }
            results
        });
        let mut failed = None;
        for r in results {
            let (part, f) = r?;
            loaded.revisions += part.revisions;
            loaded.implausible.extend(part.implausible);
            failed = failed.or(f);
        }
        Ok(failed)
    }

    /// Rolls up a period's current revisions from the store into a slab of its own (the cube
    /// only read meanwhile), then puts it in the cube; counts them in `loaded` and names the
    /// implausible ones; a stored area that does not parse is returned. Compactly stored
    /// figures go to their slots by pair number, never named (a cold start reads every stored
    /// report, and naming each figure was a third of it).
    fn rebuild_period(
        &self,
        reader: &StoreReader,
        p: Period,
        loaded: &mut Loaded,
    ) -> Result<Option<String>, StoreError> {
        let mut failed = None;
        let mut summarized = Vec::new();
        let slab = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            let layout = cube.layout.clone();
            // the store's pair numbers mapped to slots once (again when a row names a pair
            // numbered since)
            let map = || reader.map_pairs(|metric, part| layout.slot(metric, part));
            let mut slots = map();
            let mut slab = cube.empty_slab();
            reader.for_each_current_numbered(p, |rec| {
                let Ok(area) = rec.area.parse::<AreaCode>() else {
                    failed = Some(format!("stored revision with bad area {}", rec.area));
                    return;
                };
                let why = match &rec.figures {
                    LeafFigures::Numbered(numbered) => implausible_numbered(reader, numbered),
                    LeafFigures::Named(values) => implausible(values, rec.rollup.as_ref()),
                };
                if let Some(why) = why {
                    loaded.implausible.push(format!(
                        "{} {} revision {}: {why}",
                        rec.area, p, rec.revision
                    ));
                }
                loaded.revisions += 1;
                let Some(id) = cube.index.id(area) else {
                    tracing::warn!(%area, "revision for an area outside the registry, not rolled up");
                    return;
                };
                match rec.figures {
                    LeafFigures::Numbered(numbered) => {
                        if numbered.iter().any(|(pair, _)| *pair as usize >= slots.len()) {
                            slots = map();
                        }
                        let placed = numbered.iter().filter_map(|(pair, v)| {
                            slots.get(*pair as usize).copied().flatten().map(|s| (s, *v))
                        });
                        let cells =
                            layout.cells_placed(area.level(), p.kind(), rec.zero_report, placed);
                        let own = PlacedReport {
                            area,
                            period: p,
                            revision: rec.revision,
                            first_received_at_ms: rec.first_received_at_ms,
                            cells,
                        };
                        cube.add_placed_to(&mut slab, id, own);
                    }
                    LeafFigures::Named(values) => {
                        if rec.rollup.as_ref().is_some_and(|r| r.scope == Scope::Subtree) {
                            summarized.push(id);
                        }
                        let c = Committed {
                            area,
                            period: p,
                            revision: rec.revision,
                            received_at_ms: rec.received_at_ms,
                            first_received_at_ms: rec.first_received_at_ms,
                            zero_report: rec.zero_report,
                            values,
                            rollup: rec.rollup,
                            previous: None,
                        };
                        cube.apply_to(&mut slab, id, &c);
                    }
                }
            })?;
            slab
        };
        let mut cube = self.cube.write().unwrap_or_else(PoisonError::into_inner);
        cube.slabs.insert(p, slab);
        // approved figures are built again from the store when next asked
        cube.approved.remove(&p);
        for id in summarized {
            cube.summarized[id as usize] = true;
        }
        Ok(failed)
    }

    /// Saves the rollups to the snapshot file given to [`Engine::load`], unless nothing changed
    /// since they were loaded or last saved. Each period's slab is copied under a short read
    /// lock, so ingest goes on meanwhile. Returns the number of periods written (0: skipped).
    pub fn save_snapshot(&self) -> std::io::Result<u64> {
        let Some(path) = self.snapshot.get() else {
            return Ok(0);
        };
        if self.distrusted.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(0);
        }
        let _one_at_a_time = self.saving.lock().expect("not poisoned");
        let (fingerprint, mut periods, rows, summarized) = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            (
                snapshot::fingerprint(&cube),
                cube.slabs.keys().copied().collect::<Vec<_>>(),
                cube.rows.clone(),
                cube.summarized.clone(),
            )
        };
        if rows == *self.saved_rows.lock().expect("not poisoned") {
            return Ok(0);
        }
        periods.sort();
        let mut taken = HashMap::new();
        let written = snapshot::write(
            path,
            fingerprint,
            &periods,
            |p| {
                let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
                let slab = cube.slabs.get(&p)?.clone();
                let rows = cube.rows.get(&p).copied().unwrap_or(0);
                taken.insert(p, rows);
                Some((rows, slab))
            },
            &summarized,
        )?;
        *self.saved_rows.lock().expect("not poisoned") = taken;
        Ok(written)
    }
}
