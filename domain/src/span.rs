//! Period expressions leaders read: one period (`2026-10`, `2026-Q3`, `2026-H2`, `2026`,
//! `2026-W40`, `2026-10-01`) or a cumulative range (`2026-01..2026-10`, `2025-W50..2026-W02`),
//! expanded into the reported periods (months, ISO weeks or days) they cover.

use std::{fmt, str::FromStr};

use crate::{
    Period,
    period::{PeriodError, PeriodKind},
};

/// A contiguous run of reported periods of one kind (months, weeks or days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// As the user wrote it, normalised: a single period or a range's ends.
    pub from: Period,
    pub to: Period,
}

/// Why a period expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    #[error(transparent)]
    Period(#[from] PeriodError),
    #[error("区间「{0}」：两端应是同一种期间（都是月、都是半月、都是周或都是日）")]
    MixedKinds(String),
    #[error("区间「{0}」：起点在终点之后")]
    Backwards(String),
    #[error("区间「{0}」：累计区间由月、半月、周或日组成（季度写作 2026-Q3，不写成区间）")]
    NotReportable(String),
    #[error("区间「{0}」超过 {MAX_PERIODS} 个期间")]
    TooLong(String),
}

/// Longest span, in reported periods (20 years of months; 10 years of days).
pub const MAX_PERIODS: usize = 3660;

impl Span {
    /// A span of one period.
    pub fn single(p: Period) -> Span {
        Span { from: p, to: p }
    }

    /// The reported periods the span covers, oldest first: months for months, quarters,
    /// halves and years; weeks for weeks; days for days.
    pub fn periods(&self) -> Vec<Period> {
        let (first, last) = (base_first(self.from), base_last(self.to));
        let mut out = vec![first];
        let mut p = first;
        while p != last && out.len() <= MAX_PERIODS {
            p = p.next();
            out.push(p);
        }
        out
    }

    /// The periods whose reports the span reads, oldest first: [`Span::periods`], with each
    /// month followed by its two half-months (a form reported half-monthly counts in the month
    /// as much as one reported monthly).
    pub fn reported(&self) -> Vec<Period> {
        self.periods()
            .into_iter()
            .flat_map(|p| std::iter::once(p).chain(p.half_months().into_iter().flatten()))
            .collect()
    }

    /// The kind of the reported periods it covers.
    pub fn base_kind(&self) -> PeriodKind {
        base_first(self.from).kind()
    }

    /// The same span a year earlier (同比).
    pub fn year_earlier(&self) -> Span {
        Span {
            from: self.from.year_earlier(),
            to: self.to.year_earlier(),
        }
    }

    /// The span of the same length right before this one (环比): the previous month, quarter,
    /// ...; for a range, the run of as many periods just before it.
    pub fn previous(&self) -> Span {
        if self.from == self.to {
            return Span::single(self.from.previous());
        }
        let n = self.periods().len() as i64;
        Span {
            from: self.from.shift(-n),
            to: self.to.shift(-n),
        }
    }

    /// The span `n` single steps later (for trends of single periods).
    pub fn shift(&self, n: i64) -> Span {
        Span {
            from: self.from.shift(n),
            to: self.to.shift(n),
        }
    }

    /// The year whose population a rate over this span divides by: the year of its end.
    pub fn population_year(&self) -> i32 {
        use chrono::Datelike as _;
        self.to.last_day().year()
    }
}

fn base_first(p: Period) -> Period {
    match p {
        Period::Year(_) | Period::Half { .. } | Period::Quarter { .. } => {
            Period::month_of(p.first_day())
        }
        _ => p,
    }
}

fn base_last(p: Period) -> Period {
    match p {
        Period::Year(_) | Period::Half { .. } | Period::Quarter { .. } => {
            Period::month_of(p.last_day())
        }
        _ => p,
    }
}

impl Span {
    /// Parses a span as people type it: each end as [`Period::parse_typed`] reads it, and
    /// `至` or `~` as well as `..` between them (`2026年1月至2026年10月`).
    pub fn parse_typed(s: &str) -> Result<Span, SpanError> {
        let ends = s
            .split_once("..")
            .or_else(|| s.split_once('至'))
            .or_else(|| s.split_once('~'))
            .or_else(|| s.split_once('～'));
        match ends {
            None => Ok(Span::single(Period::parse_typed(s)?)),
            Some((a, b)) => Span::from_ends(s, Period::parse_typed(a)?, Period::parse_typed(b)?),
        }
    }

    fn from_ends(s: &str, from: Period, to: Period) -> Result<Span, SpanError> {
        if !from.is_reportable() || !to.is_reportable() {
            return Err(SpanError::NotReportable(s.to_owned()));
        }
        if from.kind() != to.kind() {
            return Err(SpanError::MixedKinds(s.to_owned()));
        }
        if from > to {
            return Err(SpanError::Backwards(s.to_owned()));
        }
        let span = Span { from, to };
        if span.periods().len() > MAX_PERIODS {
            return Err(SpanError::TooLong(s.to_owned()));
        }
        Ok(span)
    }
}

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((a, b)) = s.split_once("..") else {
            return Ok(Span::single(s.trim().parse()?));
        };
        Span::from_ends(s, a.trim().parse()?, b.trim().parse()?)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}..{}", self.from, self.to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Span {
        x.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn strs(v: Vec<Period>) -> Vec<String> {
        v.into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn expands_to_reported_periods() {
        assert_eq!(
            strs(s("2026-Q3").periods()),
            ["2026-07", "2026-08", "2026-09"]
        );
        assert_eq!(s("2026").periods().len(), 12);
        assert_eq!(s("2026-H2").periods()[0].to_string(), "2026-07");
        assert_eq!(
            strs(s("2025-11..2026-02").periods()),
            ["2025-11", "2025-12", "2026-01", "2026-02"]
        );
        assert_eq!(
            strs(s("2025-W52..2026-W02").periods()),
            ["2025-W52", "2026-W01", "2026-W02"]
        );
        assert_eq!(s("2026-10-01..2026-10-07").periods().len(), 7);
        assert_eq!(
            strs(s("2026-09..2026-10").reported()),
            [
                "2026-09",
                "2026-09-H1",
                "2026-09-H2",
                "2026-10",
                "2026-10-H1",
                "2026-10-H2"
            ]
        );
        assert_eq!(s("2026-Q3").reported().len(), 9);
        assert_eq!(
            strs(s("2026-10-H2..2026-11-H1").reported()),
            ["2026-10-H2", "2026-11-H1"]
        );
        assert_eq!(strs(s("2026-W40").reported()), ["2026-W40"]);
        assert_eq!(s("2026-10").to_string(), "2026-10");
        assert_eq!(s("2026-01..2026-10").to_string(), "2026-01..2026-10");
    }

    #[test]
    fn comparison_bases() {
        assert_eq!(s("2026-01..2026-10").year_earlier(), s("2025-01..2025-10"));
        assert_eq!(s("2026-01..2026-10").previous(), s("2025-03..2025-12"));
        assert_eq!(s("2026-Q1").previous(), s("2025-Q4"));
        assert_eq!(s("2026-10").previous(), s("2026-09"));
        assert_eq!(s("2026-Q3").population_year(), 2026);
    }

    #[test]
    fn typed_spans() {
        assert_eq!(
            Span::parse_typed("2026年1月至2026年10月").unwrap(),
            s("2026-01..2026-10")
        );
        assert_eq!(
            Span::parse_typed("2026/1..2026/3").unwrap(),
            s("2026-01..2026-03")
        );
        assert_eq!(Span::parse_typed("2026年第三季度").unwrap(), s("2026-Q3"));
        assert!(Span::parse_typed("2026年10月至2026年1月").is_err());
    }

    #[test]
    fn refuses_bad_ranges() {
        for bad in [
            "2026-10..2026-01",
            "2026-01..2026-W02",
            "2026-Q1..2026-Q2",
            "2026-01..",
            "2000-01-01..2026-01-01",
        ] {
            assert!(bad.parse::<Span>().is_err(), "{bad}");
        }
    }
}
