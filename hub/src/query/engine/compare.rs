//! Compare: the areas of one level under a root ranked on one metric or indicator, with 同比 and
//! 环比, completeness per row and the parent's total.

use std::sync::PoisonError;

use pingan_domain::{
    AreaCode, Level, Period,
    compare_columns::{count_column, figure_column},
    cores,
};

use super::columns::LeafSource;
use super::*;

/// A comparison's rows and what it reads for them: the span, the same span a year earlier and
/// the span before.
struct Plan {
    root: Root,
    tops: Vec<AreaCode>,
    level: Level,
    rows: Vec<AreaCode>,
    /// The rows' ids in the rollups' index, in row order.
    ids: Vec<u32>,
    spans: [Span; 3],
    periods: [Vec<Period>; 3],
}

/// What every row of a comparison is asked, shared by the threads that gather its parts.
#[derive(Clone, Copy)]
struct RowsAsked<'a> {
    plan: &'a Plan,
    measure: &'a Measure,
    leaves: &'a LeafSource,
    complete_only: bool,
    figures: Figures,
    /// The reporting levels at and below each level.
    row_levels: &'a [Vec<Level>],
    /// Every area's population by id for each span's year.
    populations: &'a [std::sync::Arc<Vec<Option<f64>>>; 3],
}

/// Some rows' (numerator, denominator) for the span, the year before and the span before, with
/// their completeness.
struct RowsGathered {
    /// The rows' ids in the rollups' index ([`NONE`] for an area the index lacks).
    ids: Vec<u32>,
    nd: [Vec<(Option<f64>, Option<f64>)>; 3],
    counts: Vec<Counts>,
    withheld: Vec<bool>,
}

/// Rows from which a comparison is gathered on several threads (in unit tests, a county's
/// townships already, so that the tests' plain computations check the parts joined in order).
#[cfg(not(test))]
const PARALLEL_ROWS: usize = 8192;
#[cfg(test)]
const PARALLEL_ROWS: usize = 8;

/// The rows' sums and counts, before polars derives the table's columns.
struct Gathered {
    /// The rows' ids in the rollups' index, in row order (names are read by id).
    ids: Vec<u32>,
    input: TableInput,
    counts: Vec<Counts>,
    withheld: Vec<bool>,
}

impl Engine {
    /// Children (or descendants at a level) ranked on a metric or indicator.
    pub fn compare(&self, req: &CompareQuery) -> Result<CompareAnswer, QueryError> {
        let plan = self.compare_plan(req)?;
        let all: Vec<Period> = plan.periods.iter().flatten().copied().collect();
        self.approved_view(&all, req.figures)?;
        let measure = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            self.rows_known_here(&cube, &plan.rows)?;
            self.measure(&cube, &req.metric)?
        };
        // villages' own values: columns of the measure's slots, from the villages' cache or
        // the store, read without the rollups' lock
        let leaves = if plan.level == Level::Village {
            self.leaf_columns(&plan.tops, &all, req.figures, &measure.slots())?
        } else {
            LeafSource::default()
        };
        let mut gathered =
            self.gather_rows(&plan, &measure, &leaves, req.complete_only, req.figures)?;
        let parent = self.parent_num_den(&plan, &measure, &LeafValues::default(), req.figures);
        gathered.input.parent_num = parent.0;
        let out = table::compute(&gathered.input).map_err(|e| QueryError::Engine(e.to_string()))?;
        let (order, rank) = ranked(&plan.rows, &out.value);
        let total_rows = order.len() as u64;
        let (order, next_page_token) = page(order, &req.page)?;
        let (rows, columns) = match req.as_columns {
            false => (
                self.rows_in(&plan.rows, &gathered, &out, &rank, &order),
                None,
            ),
            true => (
                Vec::new(),
                Some(self.columns_in(&plan.rows, &gathered, &out, &rank, &order)),
            ),
        };
        let (name, unit) = measure.labels();
        let name_of_root = match plan.root {
            Root::Area(area) => self.areas.name(area),
            Root::Nation => NATION.to_owned(),
        };
        let is_rate = gathered.input.is_rate;
        Ok(CompareAnswer {
            root: plan.root,
            name: name_of_root,
            span: plan.spans[0],
            metric: measure.id().to_owned(),
            metric_name: name.to_owned(),
            unit: unit.to_owned(),
            is_rate,
            parent_total: parent.0,
            parent_rate: if is_rate {
                Engine::value_of(&measure, parent)
            } else {
                None
            },
            rows,
            columns,
            next_page_token,
            total_rows,
            approved_only: req.figures == Figures::Approved,
        })
    }

    /// The root, the level compared, its rows, and the three spans read; refused when the level
    /// is not below the root or the question too large.
    fn compare_plan(&self, req: &CompareQuery) -> Result<Plan, QueryError> {
        let (root, tops) = self.root_and_tops(req.root)?;
        let top = *tops
            .first()
            .ok_or_else(|| QueryError::Engine("the registry is empty".into()))?;
        let level = match (req.level, root) {
            (Some(l), Root::Area(area)) if l <= area.level() => {
                return Err(self.level_not_below(l, area));
            }
            (Some(l), _) => l,
            (None, Root::Nation) => top.level(),
            (None, Root::Area(area)) => area.level().child().ok_or_else(|| {
                QueryError::BadRequest(format!(
                    "{area} 是村（社区）级区划，下面没有可排名的区域：请在上级区域比较"
                ))
            })?,
        };
        // the areas of a level within a subtree are one range of the index's ids, in code order
        // (the registry refuses an area whose parent it lacks, so the range holds exactly the
        // subtree's descendants at that level; a lookup by code per row was a hash probe and a
        // cache miss each)
        let (rows, ids) = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            let mut rows = Vec::new();
            let mut ids = Vec::new();
            for t in &tops {
                let range = cube.index.range_at(*t, level);
                rows.extend_from_slice(&cube.index.codes[range.start as usize..range.end as usize]);
                ids.extend(range);
            }
            (rows, ids)
        };
        debug_assert_eq!(
            rows,
            tops.iter()
                .flat_map(|t| self.areas.descendants_at(*t, level))
                .collect::<Vec<_>>(),
            "the index's ranges are the registry's descendants"
        );
        let span = req.span;
        let spans = [span, span.year_earlier(), span.previous()];
        let periods = spans.map(|s| s.reported());
        let read: u64 = periods.iter().map(|p| p.len() as u64).sum();
        crate::query::budget::within(rows.len() as u64 * read, "这次排名对比")?;
        Ok(Plan {
            root,
            tops,
            level,
            rows,
            ids,
            spans,
            periods,
        })
    }

    /// Refuses rows below a child hub's subtree rollup; the rows of one level are siblings in
    /// runs, so one row stands for its parent's children.
    pub(super) fn rows_known_here(&self, cube: &Cube, rows: &[AreaCode]) -> Result<(), QueryError> {
        if !cube.any_summarized() {
            return Ok(());
        }
        let mut checked = std::collections::HashSet::new();
        for code in rows {
            if let Some(parent) = code.parent()
                && checked.insert(parent)
            {
                self.known_here(cube, *code)?;
            }
        }
        Ok(())
    }

    /// Every row's numerator and denominator over the three spans, and its completeness. The
    /// rollups' lock is held for one chunk of rows at a time: the store's writer, which needs it
    /// before any receipt goes out, waits for a chunk, never for a whole ranking.
    fn gather_rows(
        &self,
        plan: &Plan,
        measure: &Measure,
        leaves: &LeafSource,
        complete_only: bool,
        figures: Figures,
    ) -> Result<Gathered, QueryError> {
        let levels = match plan.root {
            Root::Area(area) => self.levels_below(area, None),
            Root::Nation => self.reporting_levels.clone(),
        };
        let mut input = TableInput {
            is_rate: matches!(measure, Measure::Indicator { .. }),
            ..Default::default()
        };
        if let Measure::Indicator { factor, .. } = measure {
            input.factor = *factor;
        }
        let rows = &plan.rows;
        // the reporting levels at and below each level (rows are mostly of one level)
        let row_levels: Vec<Vec<Level>> = (0..LEVELS)
            .map(|i| {
                levels
                    .iter()
                    .copied()
                    .filter(|l| *l as usize >= i)
                    .collect()
            })
            .collect();
        // every area's population by id for each span's year, looked up once
        let populations = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            plan.spans
                .map(|s| self.populations(&cube, s.population_year()))
        };
        let ask = RowsAsked {
            plan,
            measure,
            leaves,
            complete_only,
            figures,
            row_levels: &row_levels,
            populations: &populations,
        };
        // a long question's rows in parts on the machine's cores, each under the question's
        // deadline; the parts come back in row order
        let threads = cores().min(4);
        let parts: Vec<RowsGathered> = if threads > 1 && rows.len() >= PARALLEL_ROWS {
            let deadline = crate::query::budget::deadline();
            let ask = &ask;
            std::thread::scope(|s| {
                let part = rows.len().div_ceil(threads);
                let handles: Vec<_> = rows
                    .chunks(part)
                    .zip(plan.ids.chunks(part))
                    .map(|(rows, ids)| {
                        s.spawn(move || {
                            crate::query::budget::run(deadline, || self.gather_part(ask, rows, ids))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect::<Result<_, _>>()
            })?
        } else {
            vec![self.gather_part(&ask, rows, &plan.ids)?]
        };
        let (mut counts, mut withheld) = (Vec::with_capacity(rows.len()), Vec::new());
        let mut ids = Vec::with_capacity(rows.len());
        for part in parts {
            ids.extend(part.ids);
            input.num.extend(part.nd[0].iter().map(|x| x.0));
            input.den.extend(part.nd[0].iter().map(|x| x.1));
            input.num_yoy.extend(part.nd[1].iter().map(|x| x.0));
            input.den_yoy.extend(part.nd[1].iter().map(|x| x.1));
            input.num_mom.extend(part.nd[2].iter().map(|x| x.0));
            input.den_mom.extend(part.nd[2].iter().map(|x| x.1));
            counts.extend(part.counts);
            withheld.extend(part.withheld);
        }
        Ok(Gathered {
            ids,
            input,
            counts,
            withheld,
        })
    }

    /// [`Engine::gather_rows`] of some of the rows: the rollups' lock held for one chunk of
    /// rows at a time.
    fn gather_part(
        &self,
        ask: &RowsAsked<'_>,
        rows: &[AreaCode],
        ids: &[u32],
    ) -> Result<RowsGathered, QueryError> {
        let mut out = RowsGathered {
            ids: Vec::with_capacity(rows.len()),
            nd: std::array::from_fn(|_| Vec::with_capacity(rows.len())),
            counts: Vec::with_capacity(rows.len()),
            withheld: Vec::with_capacity(rows.len()),
        };
        for (chunk, ids) in rows.chunks(ROWS_PER_LOCK).zip(ids.chunks(ROWS_PER_LOCK)) {
            crate::query::budget::check()?;
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            let views: Vec<SpanView<'_>> = ask
                .plan
                .periods
                .iter()
                .map(|p| SpanView::new(self, &cube, p, ask.figures))
                .collect();
            self.gather_columns(ask, &cube, &views, chunk, ids, &mut out);
            out.ids.extend_from_slice(ids);
        }
        Ok(out)
    }

    /// [`Engine::gather_part`]'s rows of one chunk (areas of one level): each span's figures
    /// read period by period over the rows (see [`columns`]), from the rollups for inner areas
    /// and from the villages' columns for villages, and the span's completeness.
    fn gather_columns(
        &self,
        ask: &RowsAsked<'_>,
        cube: &Cube,
        views: &[SpanView<'_>],
        chunk: &[AreaCode],
        ids: &[u32],
        out: &mut RowsGathered,
    ) {
        let only = ask.measure.slots();
        let levels = |c: &AreaCode| &ask.row_levels[c.level() as usize];
        let inner = ids.iter().all(|id| cube.index.is_inner(*id));
        let (counts, sums): (Vec<Counts>, Vec<columns::SpanColumns>) = if inner {
            let masks: Vec<u8> = chunk
                .iter()
                .map(|c| levels(c).iter().fold(0u8, |m, l| m | 1 << (*l as usize)))
                .collect();
            (
                columns::span_counts(&views[0], ids, &masks),
                views
                    .iter()
                    .map(|v| columns::span_sums(cube, v, ids, &only))
                    .collect(),
            )
        } else {
            (
                chunk
                    .iter()
                    .zip(ids)
                    .map(|(c, id)| match *id {
                        NONE => Counts::default(),
                        id => self.counts_of(cube, &views[0], *c, id, levels(c)),
                    })
                    .collect(),
                views
                    .iter()
                    .map(|v| columns::leaf_sums(cube, v, ask.leaves, ids, &only))
                    .collect(),
            )
        };
        let nd = |i: usize, j: usize| {
            Engine::num_den_with(
                ask.measure,
                |slot| sums[i].get(slot, j),
                || match ask.populations[i].get(ids[j] as usize) {
                    Some(p) => *p,
                    None => self
                        .areas
                        .population(chunk[j], ask.plan.spans[i].population_year())
                        .map(|p| p as f64),
                },
            )
        };
        for (j, c) in counts.into_iter().enumerate() {
            let hide = ask.complete_only && c.received < c.expected;
            out.nd[0].push(if hide { (None, None) } else { nd(0, j) });
            out.nd[1].push(nd(1, j));
            out.nd[2].push(nd(2, j));
            out.counts.push(c);
            out.withheld.push(hide);
        }
    }

    /// The root's numerator and denominator over the span (the nation: the sum of the
    /// registry's top areas).
    fn parent_num_den(
        &self,
        plan: &Plan,
        measure: &Measure,
        leaves: &LeafValues,
        figures: Figures,
    ) -> (Option<f64>, Option<f64>) {
        let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
        let (span, periods) = (&plan.spans[0], &plan.periods[0]);
        let mut total: (Option<f64>, Option<f64>) = (None, None);
        for t in &plan.tops {
            let vals = self.subtree(&cube, *t, periods, leaves, figures);
            let (n, d) = self.num_den(&cube, measure, &vals, *t, span);
            total = (sum_opt(total.0, n), sum_opt(total.1, d));
        }
        total
    }

    /// The names of rows (by position), by the ids the gather found (a lookup by code per row
    /// misses the cache each time), each given to `put`.
    fn names_in(
        &self,
        rows: &[AreaCode],
        g: &Gathered,
        order: &[usize],
        mut put: impl FnMut(&str),
    ) {
        let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
        for &i in order {
            match cube.index.names.get(g.ids[i] as usize) {
                Some(name) => put(name),
                None => put(&self.areas.name(rows[i])),
            }
        }
    }

    /// The page's rows, in `order` (positions in the plan's rows).
    fn rows_in(
        &self,
        rows: &[AreaCode],
        g: &Gathered,
        out: &table::TableOutput,
        rank: &[u32],
        order: &[usize],
    ) -> Vec<CompareRow> {
        let mut names = Vec::with_capacity(order.len());
        self.names_in(rows, g, order, |name| names.push(name.to_owned()));
        order
            .iter()
            .zip(names)
            .map(|(&i, name)| CompareRow {
                code: rows[i],
                name,
                value: g.input.num[i],
                rate: if g.input.is_rate { out.value[i] } else { None },
                denominator: g.input.den[i],
                rank: rank[i],
                share: out.share[i],
                yoy_base: out.yoy_base[i],
                yoy_change: out.yoy_change[i],
                yoy_pct: out.yoy_pct[i],
                mom_base: out.mom_base[i],
                mom_change: out.mom_change[i],
                mom_pct: out.mom_pct[i],
                completeness: g.counts[i].summary(),
                z: out.z[i],
                outlier: out.z[i].is_some_and(|z| z.abs() > OUTLIER_Z),
                withheld: g.withheld[i],
            })
            .collect()
    }

    /// The page's rows as columns, in `order`: each column read once, at the page's positions,
    /// and written as it goes on the wire. A long page's names and half its figures are
    /// written on a second core (the other waits for the reply meanwhile).
    fn columns_in(
        &self,
        rows: &[AreaCode],
        g: &Gathered,
        out: &table::TableOutput,
        rank: &[u32],
        order: &[usize],
    ) -> CompareColumns {
        let figure = |col: &[Option<f64>]| figure_column(order.iter().map(|&i| col[i]));
        let names = || {
            let mut named = CompareColumns {
                name_ends: Vec::with_capacity(order.len()),
                ..Default::default()
            };
            self.names_in(rows, g, order, |name| named.push_name(name));
            let yoy = [&out.yoy_base, &out.yoy_change, &out.yoy_pct].map(|c| figure(c));
            (named, yoy, figure(&out.share))
        };
        let rest = || {
            let summaries: Vec<Completeness> =
                order.iter().map(|&i| g.counts[i].summary()).collect();
            let count = |f: fn(&Completeness) -> u64| count_column(summaries.iter().map(f));
            CompareColumns {
                code: order.iter().map(|&i| rows[i]).collect(),
                rank: order.iter().map(|&i| rank[i]).collect(),
                value: figure(&g.input.num),
                rate: match g.input.is_rate {
                    true => figure(&out.value),
                    false => Vec::new(),
                },
                denominator: figure(&g.input.den),
                mom_base: figure(&out.mom_base),
                mom_change: figure(&out.mom_change),
                mom_pct: figure(&out.mom_pct),
                z: figure(&out.z),
                expected: count(|k| k.expected),
                received: count(|k| k.received),
                on_time: count(|k| k.on_time),
                late: count(|k| k.late),
                missing: count(|k| k.missing),
                outlier: order
                    .iter()
                    .map(|&i| out.z[i].is_some_and(|z| z.abs() > OUTLIER_Z))
                    .collect(),
                withheld: order.iter().map(|&i| g.withheld[i]).collect(),
                ..Default::default()
            }
        };
        let ((named, [yoy_base, yoy_change, yoy_pct], share), columns) =
            if cores() > 1 && order.len() >= PARALLEL_ROWS {
                std::thread::scope(|s| {
                    let named = s.spawn(names);
                    let columns = rest();
                    let named = named
                        .join()
                        .unwrap_or_else(|e| std::panic::resume_unwind(e));
                    (named, columns)
                })
            } else {
                (names(), rest())
            };
        CompareColumns {
            names: named.names,
            name_ends: named.name_ends,
            share,
            yoy_base,
            yoy_change,
            yoy_pct,
            ..columns
        }
    }
}

/// A figure's bits as a key that sorts largest first (0.0 and -0.0 alike).
fn descending_key(v: f64) -> u64 {
    let bits = (v + 0.0).to_bits();
    // IEEE 754's order as unsigned integers (negatives flipped), then reversed
    !(if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    })
}

/// The rows' positions ranked first, largest value first and equal values by code; the rows
/// without a value last, by code. With it each position's rank: equal values share the lowest
/// (1, 2, 2, 4), a row without a value has 0. One sort gives both (polars' rank sorted the
/// rows a second time).
fn ranked(rows: &[AreaCode], value: &[Option<f64>]) -> (Vec<usize>, Vec<u32>) {
    let key = |i: usize| value[i].map_or(u64::MAX, descending_key);
    let order: Vec<usize> = if rows.is_sorted() {
        // rows in code order (as the registry lists them): the position breaks ties, and one
        // integer per row, built before the sort, is the key (a key looked up per comparison
        // reads the values at random)
        let mut keys: Vec<u128> = (0..rows.len())
            .map(|i| u128::from(key(i)) << 64 | i as u128)
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| k as u64 as usize).collect()
    } else {
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_unstable_by_key(|&i| (key(i), rows[i]));
        order
    };
    let mut rank = vec![0u32; rows.len()];
    let mut previous: Option<(u64, u32)> = None;
    for (n, &i) in order.iter().enumerate() {
        if value[i].is_none() {
            break;
        }
        let r = match previous {
            Some((k, r)) if k == key(i) => r,
            _ => u32::try_from(n + 1).unwrap_or(u32::MAX),
        };
        rank[i] = r;
        previous = Some((key(i), r));
    }
    (order, rank)
}

#[cfg(test)]
mod tests {
    use pingan_domain::Level;

    use super::super::fixture::{Fixture, beijing_ms, code, villages};
    use super::*;

    fn ask(root: Root, span: &str, metric: &str, page: Paging) -> CompareQuery {
        CompareQuery {
            root,
            span: span.parse().unwrap(),
            metric: metric.into(),
            level: None,
            complete_only: false,
            page,
            figures: Figures::Current,
            as_columns: false,
        }
    }

    #[test]
    fn townships_are_ranked_on_their_sums_with_yoy_against_the_year_before() {
        let f = Fixture::new();
        let mut all_towns = f.areas().descendants_at(code("510722"), Level::Township);
        all_towns.sort();
        let towns: Vec<String> = all_towns[..3].iter().map(|t| t.to_string()).collect();
        let towns: Vec<&str> = towns.iter().map(String::as_str).collect();
        // (town, this October, last October), summed over two villages each
        let figures = [
            (towns[0], [3, 4], [1, 1]),
            (towns[1], [10, 2], [6, 6]),
            (towns[2], [0, 5], [5, 0]),
        ];
        for (t, now, before) in figures {
            let vs = villages(&f, t, 2);
            for (i, v) in vs.iter().enumerate() {
                f.report(
                    *v,
                    "2026-10",
                    &[("cases.fraud", now[i])],
                    beijing_ms(2026, 11, 2),
                );
                f.report(
                    *v,
                    "2025-10",
                    &[("cases.fraud", before[i])],
                    beijing_ms(2025, 11, 2),
                );
            }
        }
        let r = f
            .engine
            .compare(&ask(
                Root::Area(code("510722")),
                "2026-10",
                "cases.fraud",
                Paging::default(),
            ))
            .unwrap();
        let townships = f
            .areas()
            .descendants_at(code("510722"), Level::Township)
            .len();
        assert_eq!(r.rows.len(), townships);
        assert_eq!(r.total_rows as usize, townships);
        // the plain computation: sums, then ranks by value descending
        let mut plain: Vec<(&str, i64, i64)> = figures
            .iter()
            .map(|(t, now, before)| (*t, now.iter().sum(), before.iter().sum()))
            .collect();
        plain.sort_by_key(|(_, now, _)| -now);
        for (rank, (t, now, before)) in plain.iter().enumerate() {
            let row = &r.rows[rank];
            assert_eq!(row.code, code(t));
            assert_eq!(row.rank as usize, rank + 1);
            assert_eq!(row.value, Some(*now as f64));
            assert_eq!(row.yoy_base, Some(*before as f64));
            assert_eq!(row.yoy_change, Some((now - before) as f64));
            let c = row.completeness;
            assert_eq!(c.received, 2, "{t}");
        }
        let total: i64 = plain.iter().map(|(_, n, _)| n).sum();
        assert_eq!(r.parent_total, Some(total as f64));
        // townships nobody under reported are listed, unranked
        assert!(
            r.rows[3..]
                .iter()
                .all(|row| row.rank == 0 && row.value.is_none())
        );
    }

    #[test]
    fn villages_asked_again_see_a_correction_and_a_zero_report_as_zero() {
        let f = Fixture::new();
        let town = "510722101";
        let vs = villages(&f, town, 3);
        let metric = "disputes.identified";
        f.report(vs[0], "2026-10", &[(metric, 4)], beijing_ms(2026, 11, 2));
        f.report(vs[1], "2026-10", &[(metric, 7)], beijing_ms(2026, 11, 2));
        let ask_town = || {
            f.engine
                .compare(&ask(
                    Root::Area(code(town)),
                    "2026-10",
                    metric,
                    Paging::default(),
                ))
                .unwrap()
        };
        let value = |a: &CompareAnswer, v: AreaCode| {
            a.rows.iter().find(|r| r.code == v).expect("a row").value
        };
        let first = ask_town();
        assert_eq!(value(&first, vs[0]), Some(4.0));
        assert_eq!(value(&first, vs[1]), Some(7.0));
        assert_eq!(value(&first, vs[2]), None);
        let october: Period = "2026-10".parse().unwrap();
        let held = || f.engine.leaf_cache.lock().unwrap().held(october);
        assert!(held() > 0, "kept");
        // asked again: the same answer, from the villages' cache
        let second = ask_town();
        assert_eq!(
            second
                .rows
                .iter()
                .map(|r| (r.code, r.value))
                .collect::<Vec<_>>(),
            first
                .rows
                .iter()
                .map(|r| (r.code, r.value))
                .collect::<Vec<_>>()
        );
        // a correction and a zero report (the village form asks the metric) commit
        f.report(vs[0], "2026-10", &[(metric, 9)], beijing_ms(2026, 11, 3));
        f.report_values(vs[2], "2026-10", vec![], true, beijing_ms(2026, 11, 3));
        assert_eq!(held(), 0, "forgotten");
        let third = ask_town();
        assert_eq!(value(&third, vs[0]), Some(9.0));
        assert_eq!(value(&third, vs[1]), Some(7.0));
        assert_eq!(value(&third, vs[2]), Some(0.0));
        assert_eq!(third.parent_total, Some(16.0));
        // ranked on the plain order of those values
        let ranked: Vec<AreaCode> = third.rows.iter().take(3).map(|r| r.code).collect();
        assert_eq!(ranked, [vs[0], vs[1], vs[2]]);
    }

    #[test]
    fn pages_hold_every_row_once_and_a_village_has_nothing_below_it() {
        let f = Fixture::new();
        let all = f
            .engine
            .compare(&ask(
                Root::Area(code("510722")),
                "2026-10",
                "cases.fraud",
                Paging::default(),
            ))
            .unwrap();
        let mut paged = Vec::new();
        let mut token = String::new();
        loop {
            let page = f
                .engine
                .compare(&ask(
                    Root::Area(code("510722")),
                    "2026-10",
                    "cases.fraud",
                    Paging { size: 10, token },
                ))
                .unwrap();
            paged.extend(page.rows.into_iter().map(|r| r.code));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let codes: Vec<AreaCode> = all.rows.into_iter().map(|r| r.code).collect();
        assert_eq!(paged, codes);

        let village = villages(&f, "510722101", 1)[0];
        let below = f.engine.compare(&ask(
            Root::Area(village),
            "2026-10",
            "cases.fraud",
            Paging::default(),
        ));
        assert!(matches!(below, Err(QueryError::BadRequest(_))), "{below:?}");
    }

    #[test]
    fn one_sort_ranks_as_counting_the_larger_values_does() {
        // values with many ties, zeros of both signs, negatives and rows without a value
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        let mut rows: Vec<AreaCode> = (0..300)
            .map(|i| code(&format!("{}", 110101001000u64 + i * 1000)))
            .collect();
        let value: Vec<Option<f64>> = (0..rows.len())
            .map(|_| match next() % 9 {
                0 => None,
                1 => Some(-0.0),
                2 => Some(0.0),
                k => Some((k as f64 - 5.0) * 1.5),
            })
            .collect();
        for shuffled in [false, true] {
            if shuffled {
                rows.reverse();
            }
            let (order, rank) = ranked(&rows, &value);
            for i in 0..rows.len() {
                // the plain computation: one more than the rows with a larger value
                let plain = value[i].map_or(0, |v| {
                    1 + value.iter().flatten().filter(|w| **w > v).count() as u32
                });
                assert_eq!(rank[i], plain, "row {i} ({:?})", value[i]);
            }
            // ranked rows by rank then code, the rest after by code
            let key = |i: usize| (rank[i] == 0, rank[i], rows[i]);
            let mut plain: Vec<usize> = (0..rows.len()).collect();
            plain.sort_by_key(|&i| key(i));
            assert_eq!(order, plain, "shuffled: {shuffled}");
        }
    }

    #[test]
    fn a_page_as_columns_holds_the_page_of_rows_in_the_same_order() {
        let f = Fixture::new();
        let mut towns = f.areas().descendants_at(code("510722"), Level::Township);
        towns.sort();
        for (k, t) in towns.iter().take(12).enumerate() {
            let k = k as i64;
            for (i, v) in villages(&f, &t.to_string(), 2).into_iter().enumerate() {
                let i = i as i64;
                let figures = [
                    ("disputes.mediated", 3 + k),
                    ("disputes.resolved", k + i),
                    ("cases.fraud", (k * 7 + i) % 5),
                ];
                f.report(v, "2026-10", &figures, beijing_ms(2026, 11, 2));
                if k % 3 != 0 {
                    f.report(v, "2025-10", &figures, beijing_ms(2025, 11, 2));
                }
            }
        }
        // a rate, a metric, villages; the second page of each, written on one thread (7 rows)
        // and on two (9 rows: at least PARALLEL_ROWS in tests)
        for (root, metric, level, size) in [
            (
                code("510722"),
                "disputes.success_rate",
                Some(Level::Township),
                7,
            ),
            (
                code("510722"),
                "disputes.success_rate",
                Some(Level::Township),
                9,
            ),
            (code("510722"), "cases.fraud", Some(Level::Village), 7),
            (code("510722"), "cases.fraud", Some(Level::Village), 9),
        ] {
            assert!((size as usize >= PARALLEL_ROWS) == (size == 9));
            let page = Paging {
                size,
                token: "3".into(),
            };
            let q = CompareQuery {
                level,
                ..ask(Root::Area(root), "2026-10", metric, page)
            };
            let rows = f.engine.compare(&q).unwrap();
            let columns = f
                .engine
                .compare(&CompareQuery {
                    as_columns: true,
                    ..q.clone()
                })
                .unwrap();
            assert!(!rows.rows.is_empty() && columns.rows.is_empty());
            assert!(rows.rows.iter().any(|r| r.yoy_base.is_some()));
            assert!(rows.rows.iter().any(|r| r.rate.is_some()) == (level == Some(Level::Township)));
            assert_eq!(
                (columns.next_page_token.as_str(), columns.total_rows),
                (rows.next_page_token.as_str(), rows.total_rows)
            );
            assert_eq!(columns.columns, Some(CompareColumns::of_rows(rows.rows)));
        }
    }
}
