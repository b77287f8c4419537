//! Leaders' questions as domain types. Each front door builds them once: gRPC from the wire
//! request (`TryFrom<&pb::...Request>`), the dashboard from its query string; the hub's engine
//! never parses a code, a period or a level again.

use std::str::FromStr;

use crate::{AreaCode, Level, Span, pb};

/// Why a request is not a question: the code, period or level that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadQuestion(pub String);

/// The area code that names the whole registry (every province of a national hub) in a
/// comparison: "every township in the country ranked".
pub const NATION: &str = "全国";

/// What a comparison is of: one area's subtree, or every area of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Nation,
    Area(AreaCode),
}

impl FromStr for Root {
    type Err = BadQuestion;

    fn from_str(s: &str) -> Result<Root, BadQuestion> {
        if s == NATION {
            return Ok(Root::Nation);
        }
        area(s).map(Root::Area)
    }
}

impl std::fmt::Display for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Root::Nation => f.write_str(NATION),
            Root::Area(a) => a.fmt(f),
        }
    }
}

/// Which page of a long answer: `size` rows (0: the default) from the position `token` names
/// (empty: the start).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paging {
    pub size: u32,
    pub token: String,
}

impl Paging {
    /// Every row in one page (the dashboard shows the first rows and downloads hold all).
    pub fn everything() -> Paging {
        Paging {
            size: u32::MAX,
            token: String::new(),
        }
    }
}

/// Which figures a question reads: every report's current revision (the default; on a form
/// with review, those not yet approved are provisional), or approved ones only (审核: a report
/// counts with its latest approved revision, or not at all until one is approved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Figures {
    #[default]
    Current,
    Approved,
}

impl Figures {
    /// From the wire's `approved_only` flag.
    pub fn approved_only(yes: bool) -> Figures {
        if yes {
            Figures::Approved
        } else {
            Figures::Current
        }
    }

    /// As an answer labels them.
    pub fn zh(self) -> &'static str {
        match self {
            Figures::Current => "全部数据（含未审核）",
            Figures::Approved => "仅已审核数据",
        }
    }
}

/// An area's figures over a span: its own report and its subtree's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupQuery {
    pub area: AreaCode,
    pub span: Span,
    /// Metric or indicator ids or Chinese names; empty: every one.
    pub metrics: Vec<String>,
    /// Parts by category beside each total.
    pub by_category: bool,
    pub figures: Figures,
}

/// The areas of one level under a root ranked on one metric or indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareQuery {
    pub root: Root,
    pub span: Span,
    pub metric: String,
    /// None: the level right below the root (for the nation, its top areas).
    pub level: Option<Level>,
    /// Areas with missing reports get no figure (they are listed, unranked).
    pub complete_only: bool,
    pub page: Paging,
    pub figures: Figures,
    /// The page's rows as columns ([`crate::answer::CompareAnswer::columns`]) rather than rows.
    pub as_columns: bool,
}

/// One area's (or the nation's) series over the last `periods` spans ending with `last`, with
/// 同比; with a level, also the series of every area of that level below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendQuery {
    pub root: Root,
    pub last: Span,
    /// 1 to 120.
    pub periods: u32,
    pub metric: String,
    pub figures: Figures,
    /// None: the root's own series only.
    pub level: Option<Level>,
    /// The series below the root sent as columns (see `trend_columns`).
    pub as_columns: bool,
}

/// Who reported under an area for a span, and who did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletenessQuery {
    pub area: AreaCode,
    pub span: Span,
    /// Only the reporters of this level; none: every reporting level below the area.
    pub level: Option<Level>,
    /// Only this form's reporters and periods (by id or title, checked by the engine).
    pub form: Option<String>,
    pub page: Paging,
}

/// How departments' (条) figures are laid out: one row per department (ranked among
/// themselves), or added up by the area they belong to, or by 系统.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DepartmentGroup {
    #[default]
    Department,
    Area,
    System,
}

impl DepartmentGroup {
    /// As the wire and the command line spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            DepartmentGroup::Department => "department",
            DepartmentGroup::Area => "area",
            DepartmentGroup::System => "system",
        }
    }
}

impl FromStr for DepartmentGroup {
    type Err = BadQuestion;

    fn from_str(s: &str) -> Result<DepartmentGroup, BadQuestion> {
        match s.trim() {
            "" | "department" | "部门" => Ok(DepartmentGroup::Department),
            "area" | "区划" | "地区" => Ok(DepartmentGroup::Area),
            "system" | "系统" => Ok(DepartmentGroup::System),
            other => Err(BadQuestion(format!(
                "分组「{other}」无效：department（部门）、area（所属区划）或 system（系统）"
            ))),
        }
    }
}

/// Departments within an area compared on a metric over a span, by department, area or 系统.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentsQuery {
    pub area: AreaCode,
    pub span: Span,
    pub metric: String,
    pub group: DepartmentGroup,
    /// Only this 系统.
    pub system: Option<String>,
}

/// 考核: an area's children (or descendants at the scheme's level) scored by a scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssessQuery {
    pub area: AreaCode,
    pub span: Span,
    /// The scheme as TOML; none: the hub's own.
    pub scheme: Option<String>,
    pub figures: Figures,
}

impl Question for AssessQuery {
    fn about(&self) -> Root {
        Root::Area(self.area)
    }
}

impl TryFrom<&pb::AssessRequest> for AssessQuery {
    type Error = BadQuestion;

    fn try_from(r: &pb::AssessRequest) -> Result<AssessQuery, BadQuestion> {
        Ok(AssessQuery {
            area: area(&r.area)?,
            span: span(&r.period)?,
            scheme: (!r.scheme.trim().is_empty()).then(|| r.scheme.clone()),
            figures: Figures::approved_only(r.approved_only),
        })
    }
}

/// What a question asks about: the area (or the nation) the caller must be allowed to read.
pub trait Question {
    fn about(&self) -> Root;
}

impl Question for RollupQuery {
    fn about(&self) -> Root {
        Root::Area(self.area)
    }
}

impl Question for CompareQuery {
    fn about(&self) -> Root {
        self.root
    }
}

impl Question for TrendQuery {
    fn about(&self) -> Root {
        self.root
    }
}

impl Question for DepartmentsQuery {
    fn about(&self) -> Root {
        Root::Area(self.area)
    }
}

impl Question for CompletenessQuery {
    fn about(&self) -> Root {
        Root::Area(self.area)
    }
}

/// The most periods a trend reads.
pub const MAX_TREND_PERIODS: u32 = 120;

fn area(s: &str) -> Result<AreaCode, BadQuestion> {
    s.parse()
        .map_err(|e: crate::area::AreaCodeError| BadQuestion(e.to_string()))
}

fn span(s: &str) -> Result<Span, BadQuestion> {
    s.parse()
        .map_err(|e: crate::span::SpanError| BadQuestion(e.to_string()))
}

/// An optional level: empty is none.
fn level(s: &str) -> Result<Option<Level>, BadQuestion> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|e: crate::area::UnknownLevel| BadQuestion(e.to_string()))
}

impl TryFrom<&pb::RollupRequest> for RollupQuery {
    type Error = BadQuestion;

    fn try_from(r: &pb::RollupRequest) -> Result<RollupQuery, BadQuestion> {
        Ok(RollupQuery {
            area: area(&r.area)?,
            span: span(&r.period)?,
            metrics: r.metrics.clone(),
            by_category: r.by_category,
            figures: Figures::approved_only(r.approved_only),
        })
    }
}

impl TryFrom<&pb::CompareRequest> for CompareQuery {
    type Error = BadQuestion;

    fn try_from(r: &pb::CompareRequest) -> Result<CompareQuery, BadQuestion> {
        Ok(CompareQuery {
            root: r.area.parse()?,
            span: span(&r.period)?,
            metric: r.metric.clone(),
            level: level(&r.level)?,
            complete_only: r.complete_only,
            page: Paging {
                size: r.page_size,
                token: r.page_token.clone(),
            },
            figures: Figures::approved_only(r.approved_only),
            as_columns: r.as_columns,
        })
    }
}

impl TryFrom<&pb::TrendRequest> for TrendQuery {
    type Error = BadQuestion;

    fn try_from(r: &pb::TrendRequest) -> Result<TrendQuery, BadQuestion> {
        Ok(TrendQuery {
            root: r.area.parse()?,
            last: span(&r.period)?,
            periods: r.periods.clamp(1, MAX_TREND_PERIODS),
            metric: r.metric.clone(),
            figures: Figures::approved_only(r.approved_only),
            level: level(&r.level)?,
            as_columns: r.as_columns,
        })
    }
}

impl TryFrom<&pb::CompletenessRequest> for CompletenessQuery {
    type Error = BadQuestion;

    fn try_from(r: &pb::CompletenessRequest) -> Result<CompletenessQuery, BadQuestion> {
        Ok(CompletenessQuery {
            area: area(&r.area)?,
            span: span(&r.period)?,
            level: level(&r.level)?,
            form: (!r.form.trim().is_empty()).then(|| r.form.trim().to_owned()),
            page: Paging {
                size: r.page_size,
                token: r.page_token.clone(),
            },
        })
    }
}

impl TryFrom<&pb::DepartmentsRequest> for DepartmentsQuery {
    type Error = BadQuestion;

    fn try_from(r: &pb::DepartmentsRequest) -> Result<DepartmentsQuery, BadQuestion> {
        Ok(DepartmentsQuery {
            area: area(&r.area)?,
            span: span(&r.period)?,
            metric: r.metric.trim().to_owned(),
            group: r.group.parse()?,
            system: (!r.system.trim().is_empty()).then(|| r.system.trim().to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_requests_become_typed_questions_or_say_what_is_wrong() {
        let q = CompareQuery::try_from(&pb::CompareRequest {
            area: NATION.into(),
            period: "2026-10".into(),
            metric: "disputes.mediated".into(),
            level: "township".into(),
            page_size: 10,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.root, Root::Nation);
        assert_eq!(q.level, Some(Level::Township));
        assert_eq!(q.page.size, 10);
        assert_eq!(q.root.to_string(), NATION);

        let q = CompletenessQuery::try_from(&pb::CompletenessRequest {
            area: "510722".into(),
            period: "2026-Q3".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.area, "510722".parse().unwrap());
        assert_eq!(q.level, None);
        assert_eq!(q.span.periods().len(), 3);

        let t = TrendQuery::try_from(&pb::TrendRequest {
            area: "510722".into(),
            period: "2026-10".into(),
            periods: 100_000,
            metric: "x".into(),
            approved_only: true,
            level: String::new(),
            as_columns: true,
        })
        .unwrap();
        assert_eq!(t.periods, MAX_TREND_PERIODS);
        assert_eq!(t.figures, Figures::Approved);
        assert_eq!(t.level, None);
        assert!(t.as_columns);
        let t = TrendQuery::try_from(&pb::TrendRequest {
            area: NATION.into(),
            period: "2026-10".into(),
            periods: 24,
            level: "county".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((t.root, t.level), (Root::Nation, Some(Level::County)));

        for bad in [
            ("51072", "2026-10", ""),
            ("510722", "2026-13", ""),
            ("510722", "2026-10", "street"),
        ] {
            let r = CompareQuery::try_from(&pb::CompareRequest {
                area: bad.0.into(),
                period: bad.1.into(),
                level: bad.2.into(),
                ..Default::default()
            });
            assert!(matches!(r, Err(BadQuestion(_))), "{bad:?}: {r:?}");
        }
    }
}
