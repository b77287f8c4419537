//! Completeness: who reported under an area for a span, on time or late, and who did not.

use std::sync::PoisonError;

use pingan_domain::{AreaCode, Period};

use super::*;

/// Reporters named in an answer, with the period they are named for.
type Named = Vec<(AreaCode, Period)>;

impl Engine {
    /// The title of the form `code`'s office owes for `p`.
    fn form_title(&self, code: AreaCode, p: Period) -> String {
        self.catalogue
            .form_for(code.level(), p.kind())
            .map(|f| f.zh.clone())
            .unwrap_or_default()
    }

    /// Who was expected to report, who did, on time or late, and who is missing.
    pub fn completeness(&self, req: &CompletenessQuery) -> Result<CompletenessAnswer, QueryError> {
        let area = self.registered(req.area)?;
        let span = req.span;
        let only = req.level;
        if let Some(l) = only
            && l < area.level()
        {
            return Err(QueryError::BadRequest(format!(
                "level {l} is above {area} ({})",
                area.level()
            )));
        }
        let mut levels = self.levels_below(area, only);
        let mut periods = span.reported();
        if let Some(name) = &req.form {
            let form = self
                .catalogue
                .form(name)
                .ok_or_else(|| QueryError::BadRequest(self.catalogue.unknown_form(name)))?;
            if form.levels.is_empty() {
                return Err(QueryError::BadRequest(format!(
                    "{} 由部门（条）填报，不由区划上报：部门的上报情况见 pingan-hub query departments 或仪表板的“部门（条）”",
                    form.label()
                )));
            }
            levels.retain(|l| form.reported_by(*l));
            periods.retain(|p| p.kind() == form.period);
            if periods.is_empty() {
                return Err(QueryError::BadRequest(format!(
                    "{} 是{}，{span} 中没有这样的期间",
                    form.label(),
                    pingan_domain::form::period_zh(form.period)
                )));
            }
        }
        // by level, then code: each level's reporters in the subtree are one range of ids
        let mut levels_sorted = levels.clone();
        levels_sorted.sort();
        let (summary, reporters, any_summarized) = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            self.known_here(&cube, area)?;
            let reporters: Vec<u32> = levels_sorted
                .iter()
                .flat_map(|l| cube.index.range_at(area, *l))
                .collect();
            (
                self.counts(&cube, area, &periods, &levels, Figures::Current)
                    .summary(),
                reporters,
                cube.any_summarized(),
            )
        };
        crate::query::budget::within(
            reporters.len() as u64 * periods.len() as u64,
            "这份上报情况",
        )?;
        let (missing, late_keys) =
            self.named_missing_and_late(&periods, &reporters, any_summarized)?;
        let (named_missing, named_late) = (missing.len() as u64, late_keys.len() as u64);
        // one page of the named reporters: the missing ones, then the late ones
        let total_named = named_missing + named_late;
        let all: Vec<(bool, AreaCode, Period)> = missing
            .into_iter()
            .map(|(c, p)| (false, c, p))
            .chain(late_keys.into_iter().map(|(c, p)| (true, c, p)))
            .collect();
        let (shown, next_page_token) = page(all, &req.page)?;
        let missing: Vec<Reporter> = shown
            .iter()
            .filter(|(is_late, _, _)| !is_late)
            .map(|(_, code, p)| Reporter {
                code: *code,
                name: self.areas.name(*code),
                period: *p,
                received_at_ms: 0,
                form: self.form_title(*code, *p),
            })
            .collect();
        let late_keys: Vec<(AreaCode, Period)> = shown
            .iter()
            .filter(|(is_late, _, _)| *is_late)
            .map(|(_, c, p)| (*c, *p))
            .collect();
        let late = self.late_reporters(late_keys)?;
        let review = self.approved(area, &periods, &levels)?;
        Ok(CompletenessAnswer {
            area,
            name: self.areas.name(area),
            span,
            unnamed_missing: summary.missing.saturating_sub(named_missing),
            unnamed_late: summary.late.saturating_sub(named_late),
            summary,
            missing,
            late,
            next_page_token,
            total_named,
            review,
        })
    }

    /// 审核: (received, approved) of the reports at `levels` under `area` that wait for review
    /// (see [`Engine::reviewed`]) over `periods`: how many are in, and how many of those have
    /// their current revision approved; `None` when none of them waits for review.
    pub(super) fn approved(
        &self,
        area: AreaCode,
        periods: &[Period],
        levels: &[Level],
    ) -> Result<Option<(u64, u64)>, QueryError> {
        let reviewed_levels = |p: Period| -> Vec<Level> {
            levels
                .iter()
                .copied()
                .filter(|l| self.reviewed(*l, p))
                .collect()
        };
        if periods.iter().all(|p| reviewed_levels(*p).is_empty()) {
            return Ok(None);
        }
        let received: u64 = {
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            periods
                .iter()
                .map(|p| {
                    self.counts(&cube, area, &[*p], &reviewed_levels(*p), Figures::Current)
                        .received
                })
                .sum()
        };
        let reader = self.reader()?;
        let mut n = 0;
        for &p in periods {
            let wanted = reviewed_levels(p);
            for a in reader.approved_under(area, p)? {
                if a.parse::<AreaCode>()
                    .is_ok_and(|code| wanted.contains(&code.level()))
                {
                    n += 1;
                }
            }
        }
        self.give_back(reader);
        Ok(Some((received, n)))
    }

    /// The reporters (ids, by level and code) missing and late for each period, leaving out
    /// those below a child hub's subtree rollup (known here by their counts only) and those whose
    /// codes were not valid for the period. One period per hold of the rollups' lock.
    fn named_missing_and_late(
        &self,
        periods: &[Period],
        reporters: &[u32],
        any_summarized: bool,
    ) -> Result<(Named, Named), QueryError> {
        let mut missing = Vec::new();
        let mut late_keys = Vec::new();
        // one period per hold of the rollups' lock
        for p in periods {
            crate::query::budget::check()?;
            let cube = self.cube.read().unwrap_or_else(PoisonError::into_inner);
            // reporters below a child hub's subtree rollup are known here by their counts only
            let named = |id: u32| {
                let mut x = cube.index.parent[id as usize];
                while any_summarized && x != NONE {
                    if cube.summarized[x as usize] {
                        return false;
                    }
                    x = cube.index.parent[x as usize];
                }
                true
            };
            let base = self.expected_base(&cube);
            let slab = cube.slabs.get(p);
            for &id in reporters {
                let code = cube.index.codes[id as usize];
                if !self.reports(code.level(), *p) {
                    continue;
                }
                if base.is_bounded[id as usize]
                    && !self.areas.get(code).is_some_and(|a| a.valid_for(*p))
                    || !named(id)
                {
                    continue;
                }
                match slab.map(|s| s.status[id as usize]) {
                    Some(status) if status & REPORTED != 0 => {
                        if status & ON_TIME == 0 {
                            late_keys.push((code, *p));
                        }
                    }
                    _ => missing.push((code, *p)),
                }
            }
        }
        Ok((missing, late_keys))
    }

    /// The late reporters with the time their first report arrived (a forwarded rollup says when
    /// the area's own report reached the child hub).
    fn late_reporters(
        &self,
        late_keys: Vec<(AreaCode, Period)>,
    ) -> Result<Vec<Reporter>, QueryError> {
        let mut late = Vec::with_capacity(late_keys.len());
        if !late_keys.is_empty() {
            let reader = self.reader()?;
            for (code, p) in late_keys {
                let first = reader.revisions(code, p)?.into_iter().next();
                // a forwarded rollup says when the area's own report reached the child hub
                let received_at_ms = match first {
                    Some(first) if first.rollup.is_some() => reader
                        .current(code, p)?
                        .and_then(|r| r.rollup)
                        .map_or(0, |r| r.own_first_received_at_ms),
                    Some(first) => first.received_at_ms,
                    None => 0,
                };
                late.push(Reporter {
                    code,
                    name: self.areas.name(code),
                    period: p,
                    received_at_ms,
                    form: self.form_title(code, p),
                });
            }
            self.give_back(reader);
        }
        Ok(late)
    }
}

#[cfg(test)]
mod tests {
    use pingan_domain::Level;

    use super::super::fixture::{Fixture, beijing_ms, code, villages};
    use super::*;

    #[test]
    fn who_reported_on_time_late_or_not_at_all_is_counted_and_named() {
        let f = Fixture::new();
        let town = "510722101";
        let vs = villages(&f, town, 3);
        // due on the 5th: two on time, one late
        f.report(
            vs[0],
            "2026-10",
            &[("grid.visits", 1)],
            beijing_ms(2026, 11, 3),
        );
        f.report(
            vs[1],
            "2026-10",
            &[("grid.visits", 1)],
            beijing_ms(2026, 11, 4),
        );
        f.report(
            vs[2],
            "2026-10",
            &[("grid.visits", 1)],
            beijing_ms(2026, 11, 20),
        );
        let q = CompletenessQuery {
            area: code(town),
            span: "2026-10".parse().unwrap(),
            level: None,
            form: None,
            page: Paging::default(),
        };
        let c = f.engine.completeness(&q).unwrap();
        let s = c.summary;
        // the plain count: the township itself and every village under it on the monthly form,
        // and the township's two half-months on its half-monthly one
        let expected = 1 + 2 + f.areas().descendants_at(code(town), Level::Village).len() as u64;
        assert_eq!(
            (s.expected, s.received, s.on_time, s.late),
            (expected, 3, 2, 1)
        );
        assert_eq!(s.missing, expected - 3);
        assert_eq!(c.missing.len() as u64, expected - 3);
        assert!(c.missing.iter().any(|r| r.code == code(town)));
        assert_eq!(c.late.len(), 1);
        assert_eq!(c.late[0].code, vs[2]);
        assert_eq!(c.late[0].received_at_ms, beijing_ms(2026, 11, 20));

        // villages only
        let villages_only = f
            .engine
            .completeness(&CompletenessQuery {
                level: Some(Level::Village),
                ..q
            })
            .unwrap();
        assert_eq!(villages_only.summary.expected, expected - 3);
    }
}
