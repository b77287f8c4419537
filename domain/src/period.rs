//! Reporting and reading periods: `2026-10` month, `2026-10-H1`/`2026-10-H2` the first or
//! second half of a month (上半月 the 1st to the 15th, 下半月 the 16th to the month's end),
//! `2026-Q3` quarter, `2026-H2` half year, `2026` year, `2026-W40` ISO week, `2026-10-01` day.

use std::{fmt, str::FromStr};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// One calendar period. Reports are for a month, a half-month, an ISO week or a day;
/// quarters, halves and years are only read (derived from the months, which include their
/// half-months).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    Year(i32),
    Half {
        year: i32,
        half: u8,
    },
    Quarter {
        year: i32,
        quarter: u8,
    },
    Month {
        year: i32,
        month: u8,
    },
    /// 上半月 (`half` 1: the 1st to the 15th) or 下半月 (2: the 16th to the end).
    HalfMonth {
        year: i32,
        month: u8,
        half: u8,
    },
    Week {
        year: i32,
        week: u8,
    },
    Day(NaiveDate),
}

/// What kind of period a [`Period`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    Year,
    Half,
    Quarter,
    Month,
    #[serde(rename = "half_month")]
    HalfMonth,
    Week,
    Day,
}

/// Why a string is not a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodError {
    input: String,
    reason: &'static str,
    /// Said of a period to report for: only the reportable forms are listed.
    for_reports: bool,
}

impl fmt::Display for PeriodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let forms = if self.for_reports {
            REPORT_FORMS
        } else {
            ALL_FORMS
        };
        write!(
            f,
            "期间「{}」无法识别：{}（{forms}）",
            self.input, self.reason
        )
    }
}

impl std::error::Error for PeriodError {}

impl PeriodError {
    /// The same error, listing only the forms a report may be for.
    pub fn for_reports(mut self) -> PeriodError {
        self.for_reports = true;
        self
    }
}

const ALL_FORMS: &str = "应写作 2026-10（月）、2026-10-H1/2026-10-H2（上/下半月）、2026-Q3（季度）、2026-H2（半年）、2026（年）、2026-W40（ISO 周）或 2026-10-01（日）";
const REPORT_FORMS: &str = "上报期间写作 2026-10（月）、2026-10-H1/2026-10-H2（上/下半月）、2026-W40（ISO 周）或 2026-10-01（日），季度和年度由月度汇总";

const MIN_YEAR: i32 = 1949;
const MAX_YEAR: i32 = 9999;

impl Period {
    /// The kind of this period.
    pub fn kind(self) -> PeriodKind {
        match self {
            Period::Year(_) => PeriodKind::Year,
            Period::Half { .. } => PeriodKind::Half,
            Period::Quarter { .. } => PeriodKind::Quarter,
            Period::Month { .. } => PeriodKind::Month,
            Period::HalfMonth { .. } => PeriodKind::HalfMonth,
            Period::Week { .. } => PeriodKind::Week,
            Period::Day(_) => PeriodKind::Day,
        }
    }

    /// Whether offices submit reports for periods of this kind (month, half-month, ISO week,
    /// day).
    pub fn is_reportable(self) -> bool {
        matches!(
            self.kind(),
            PeriodKind::Month | PeriodKind::HalfMonth | PeriodKind::Week | PeriodKind::Day
        )
    }

    /// The half-months of a month (上半月, 下半月); none for other kinds.
    pub fn half_months(self) -> Option<[Period; 2]> {
        match self {
            Period::Month { year, month } => {
                Some([1, 2].map(|half| Period::HalfMonth { year, month, half }))
            }
            _ => None,
        }
    }

    /// First day of the period.
    pub fn first_day(self) -> NaiveDate {
        let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid by construction");
        match self {
            Period::Year(y) => ymd(y, 1, 1),
            Period::Half { year, half } => ymd(year, 1 + 6 * (u32::from(half) - 1), 1),
            Period::Quarter { year, quarter } => ymd(year, 1 + 3 * (u32::from(quarter) - 1), 1),
            Period::Month { year, month } => ymd(year, month.into(), 1),
            Period::HalfMonth { year, month, half } => {
                ymd(year, month.into(), if half == 1 { 1 } else { 16 })
            }
            Period::Week { year, week } => {
                NaiveDate::from_isoywd_opt(year, week.into(), Weekday::Mon)
                    .expect("valid by construction")
            }
            Period::Day(d) => d,
        }
    }

    /// Last day of the period (inclusive).
    pub fn last_day(self) -> NaiveDate {
        match self {
            Period::Day(d) => d,
            Period::Week { .. } => self.first_day() + chrono::Days::new(6),
            Period::HalfMonth { half: 1, .. } => self.first_day() + chrono::Days::new(14),
            Period::HalfMonth { year, month, .. } => Period::Month { year, month }.last_day(),
            _ => self
                .next()
                .first_day()
                .pred_opt()
                .expect("not the first day ever"),
        }
    }

    /// The period of the same kind right after this one.
    pub fn next(self) -> Period {
        self.shift(1)
    }

    /// The period of the same kind right before this one (环比's base).
    pub fn previous(self) -> Period {
        self.shift(-1)
    }

    /// The same period a year earlier (同比's base). For an ISO week 53 of a year whose
    /// predecessor has 52 weeks, week 52.
    pub fn year_earlier(self) -> Period {
        match self {
            Period::Year(y) => Period::Year(y - 1),
            Period::Half { year, half } => Period::Half {
                year: year - 1,
                half,
            },
            Period::Quarter { year, quarter } => Period::Quarter {
                year: year - 1,
                quarter,
            },
            Period::Month { year, month } => Period::Month {
                year: year - 1,
                month,
            },
            Period::HalfMonth { year, month, half } => Period::HalfMonth {
                year: year - 1,
                month,
                half,
            },
            Period::Week { year, week } => Period::Week {
                year: year - 1,
                week: week.min(iso_weeks_in(year - 1)),
            },
            Period::Day(d) => {
                Period::Day(d.with_year(d.year() - 1).unwrap_or_else(|| {
                    NaiveDate::from_ymd_opt(d.year() - 1, 2, 28).expect("valid")
                }))
            }
        }
    }

    /// The period `n` steps later (earlier for negative `n`) of the same kind.
    pub fn shift(self, n: i64) -> Period {
        fn split(index: i64, per_year: i64) -> (i32, u8) {
            (
                index.div_euclid(per_year) as i32,
                (index.rem_euclid(per_year) + 1) as u8,
            )
        }
        match self {
            Period::Year(y) => Period::Year(y + n as i32),
            Period::Half { year, half } => {
                let (year, half) = split(i64::from(year) * 2 + i64::from(half) - 1 + n, 2);
                Period::Half { year, half }
            }
            Period::Quarter { year, quarter } => {
                let (year, quarter) = split(i64::from(year) * 4 + i64::from(quarter) - 1 + n, 4);
                Period::Quarter { year, quarter }
            }
            Period::Month { year, month } => {
                let (year, month) = split(i64::from(year) * 12 + i64::from(month) - 1 + n, 12);
                Period::Month { year, month }
            }
            Period::HalfMonth { year, month, half } => {
                let index = (i64::from(year) * 12 + i64::from(month) - 1) * 2 + i64::from(half) - 1;
                let (months, half) = split(index + n, 2);
                let (year, month) = split(i64::from(months), 12);
                Period::HalfMonth { year, month, half }
            }
            Period::Week { .. } => {
                let d = self.first_day() + chrono::TimeDelta::days(7 * n);
                let iso = d.iso_week();
                Period::Week {
                    year: iso.year(),
                    week: iso.week() as u8,
                }
            }
            Period::Day(d) => Period::Day(d + chrono::TimeDelta::days(n)),
        }
    }

    /// Whether a report for this period may be submitted on `today` (the hub's date, 北京时间):
    /// months and weeks once they have ended; days from the day itself on, since daily reports in
    /// sensitive periods are due the same day.
    pub fn open_for_reports_on(self, today: NaiveDate) -> bool {
        match self {
            Period::Day(d) => today >= d,
            _ => today > self.last_day(),
        }
    }

    /// The reported period of `kind` that contains `date` (for a quarter, half or year: its
    /// month's).
    pub fn containing(kind: PeriodKind, date: NaiveDate) -> Period {
        match kind {
            PeriodKind::Day => Period::Day(date),
            PeriodKind::Week => {
                let iso = date.iso_week();
                Period::Week {
                    year: iso.year(),
                    week: iso.week() as u8,
                }
            }
            PeriodKind::HalfMonth => {
                let month = Period::month_of(date);
                month.half_months().map_or(
                    month,
                    |[h1, h2]| {
                        if date <= h1.last_day() { h1 } else { h2 }
                    },
                )
            }
            _ => Period::month_of(date),
        }
    }

    /// The month containing a day, or the month this period starts in.
    pub fn month_of(date: NaiveDate) -> Period {
        Period::Month {
            year: date.year(),
            month: date.month() as u8,
        }
    }
}

fn iso_weeks_in(year: i32) -> u8 {
    // 28 December is always in the last ISO week of its year
    NaiveDate::from_ymd_opt(year, 12, 28)
        .expect("valid")
        .iso_week()
        .week() as u8
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| PeriodError {
            input: s.to_owned(),
            reason,
            for_reports: false,
        };
        let num = |t: &str, what| -> Result<u32, PeriodError> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || t.len() > 4 {
                return Err(err(what));
            }
            t.parse().map_err(|_| err(what))
        };
        let year_of = |t: &str| -> Result<i32, PeriodError> {
            if t.len() != 4 {
                return Err(err("年份应为四位数字"));
            }
            let y = num(t, "年份应为数字")? as i32;
            if !(MIN_YEAR..=MAX_YEAR).contains(&y) {
                return Err(err("年份超出范围"));
            }
            Ok(y)
        };
        // up to four pieces, the fourth only to tell that there are too many
        let mut pieces = s.split('-');
        let parts: [Option<&str>; 4] = std::array::from_fn(|_| pieces.next());
        match parts {
            [Some(y), None, ..] => Ok(Period::Year(year_of(y)?)),
            [Some(y), Some(rest), None, _] => year_part(year_of(y)?, rest, &err, &num),
            [Some(y), Some(m), Some(h), None] if h.starts_with('H') => {
                let year = year_of(y)?;
                let month = match (m.len(), num(m, "月份应为 01 到 12")?) {
                    (2, m @ 1..=12) => m as u8,
                    _ => return Err(err("月份应为 01 到 12")),
                };
                match h {
                    "H1" | "H2" => Ok(Period::HalfMonth {
                        year,
                        month,
                        half: if h == "H1" { 1 } else { 2 },
                    }),
                    _ => Err(err("半月应为 H1（上半月）或 H2（下半月）")),
                }
            }
            [Some(y), Some(m), Some(d), None] => {
                let year = year_of(y)?;
                if m.len() != 2 || d.len() != 2 {
                    return Err(err("日期写作 YYYY-MM-DD"));
                }
                let (m, d) = (num(m, "月份应为数字")?, num(d, "日应为数字")?);
                NaiveDate::from_ymd_opt(year, m, d)
                    .map(Period::Day)
                    .ok_or_else(|| err("没有这一天"))
            }
            _ => Err(err("格式不对")),
        }
    }
}

/// The part of a period after its year: `Q3`, `H2`, `W40` or a month `10`.
fn year_part(
    year: i32,
    rest: &str,
    err: &impl Fn(&'static str) -> PeriodError,
    num: &impl Fn(&str, &'static str) -> Result<u32, PeriodError>,
) -> Result<Period, PeriodError> {
    if let Some(q) = rest.strip_prefix('Q') {
        match num(q, "季度应为 1 到 4")? {
            q @ 1..=4 if q.to_string().len() == rest.len() - 1 => Ok(Period::Quarter {
                year,
                quarter: q as u8,
            }),
            _ => Err(err("季度应为 1 到 4")),
        }
    } else if let Some(h) = rest.strip_prefix('H') {
        match (h, num(h, "半年应为 H1 或 H2")?) {
            ("1" | "2", h) => Ok(Period::Half {
                year,
                half: h as u8,
            }),
            _ => Err(err("半年应为 H1 或 H2")),
        }
    } else if let Some(w) = rest.strip_prefix('W') {
        if w.len() != 2 {
            return Err(err("ISO 周应为两位数字 01 到 53"));
        }
        let week = num(w, "ISO 周应为 01 到 53")?;
        if week == 0 || week > u32::from(iso_weeks_in(year)) {
            return Err(err("该年没有这一 ISO 周"));
        }
        Ok(Period::Week {
            year,
            week: week as u8,
        })
    } else {
        if rest.len() != 2 {
            return Err(err("月份应为两位数字 01 到 12"));
        }
        match num(rest, "月份应为 01 到 12")? {
            m @ 1..=12 => Ok(Period::Month {
                year,
                month: m as u8,
            }),
            _ => Err(err("月份应为 01 到 12")),
        }
    }
}

impl Period {
    /// Parses a period as people type it, then strictly: `2026/10`, `2026.10`, `2026-1`,
    /// `202610`, `2026年10月`, `2026年10月1日`, `2026/10/1`, `2026年第40周`, `2026年3季度`,
    /// `2026年下半年`, `2026年`, full-width digits and lower-case `w`/`q`/`h` all become the
    /// canonical form (`2026-10`, `2026-10-01`, `2026-W40`, ...). The wire contract takes only the
    /// canonical form; this is for what a clerk or leader types on a command line or in a file.
    pub fn parse_typed(s: &str) -> Result<Period, PeriodError> {
        normalise(s).parse().map_err(|e: PeriodError| PeriodError {
            input: s.trim().to_owned(),
            ..e
        })
    }
}

/// The canonical spelling of a period typed loosely (see [`Period::parse_typed`]); what it
/// cannot make sense of is returned as it is, for the strict parser to refuse.
fn normalise(s: &str) -> String {
    let s: String = s
        .trim()
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            '－' | '—' | '–' => '-',
            '／' => '/',
            '．' | '。' => '.',
            'w' | 'ｗ' | 'Ｗ' => 'W',
            'q' | 'ｑ' | 'Ｑ' => 'Q',
            'h' | 'ｈ' | 'Ｈ' => 'H',
            c => c,
        })
        .filter(|c| !c.is_whitespace())
        .collect();
    let digits = |t: &str| !t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit());
    let pad = |t: &str| format!("{:0>2}", t);
    if let Some((year, rest)) = s.split_once('年') {
        if rest.is_empty() {
            return year.to_owned();
        }
        match rest {
            "上半年" => return format!("{year}-H1"),
            "下半年" => return format!("{year}-H2"),
            _ => {}
        }
        let rest = rest.strip_prefix('第').unwrap_or(rest);
        if let Some(q) = rest.strip_suffix("季度") {
            let q = match q {
                "一" => "1",
                "二" => "2",
                "三" => "3",
                "四" => "4",
                q => q,
            };
            return format!("{year}-Q{q}");
        }
        if let Some(w) = rest.strip_suffix('周').filter(|w| digits(w)) {
            return format!("{year}-W{}", pad(w));
        }
        if let Some((m, d)) = rest.split_once('月')
            && digits(m)
        {
            match d {
                "上半月" => return format!("{year}-{}-H1", pad(m)),
                "下半月" => return format!("{year}-{}-H2", pad(m)),
                _ => {}
            }
            let d = d.strip_suffix('日').or(d.strip_suffix('号')).unwrap_or(d);
            return if d.is_empty() {
                format!("{year}-{}", pad(m))
            } else if digits(d) {
                format!("{year}-{}-{}", pad(m), pad(d))
            } else {
                s.clone()
            };
        }
        return s.clone();
    }
    if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
        return format!("{}-{}", &s[..4], &s[4..]);
    }
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        return format!("{}-{}-{}", &s[..4], &s[4..6], &s[6..]);
    }
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    match parts.as_slice() {
        [y, m] if y.len() == 4 && digits(m) => format!("{y}-{}", pad(m)),
        [y, w] if y.len() == 4 && w.starts_with('W') && digits(&w[1..]) => {
            format!("{y}-W{}", pad(&w[1..]))
        }
        [y, m, d] if y.len() == 4 && digits(m) && digits(d) => {
            format!("{y}-{}-{}", pad(m), pad(d))
        }
        [y, m, h] if y.len() == 4 && digits(m) && matches!(*h, "H1" | "H2") => {
            format!("{y}-{}-{h}", pad(m))
        }
        _ => s,
    }
}

impl fmt::Display for Period {
    /// Written by hand: every report stored and every row of an answer carries a period, and
    /// `{:02}`-style formatting costs several times more.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Text::default();
        match self.write(&mut text) {
            Some(()) => f.write_str(text.as_str()),
            None => self.fmt_by_formatter(f),
        }
    }
}

/// A period's text as it is written ([`Period::write`]).
#[derive(Default)]
struct Text {
    buf: [u8; 10],
    len: usize,
}

impl Text {
    /// `n` zero-padded to `width` digits; `None` when `n` has more digits or there is no room.
    fn digits(&mut self, mut n: u32, width: usize) -> Option<&mut Text> {
        for b in self
            .buf
            .get_mut(self.len..self.len + width)?
            .iter_mut()
            .rev()
        {
            *b = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += width;
        (n == 0).then_some(self)
    }

    fn year(&mut self, y: i32) -> Option<&mut Text> {
        self.digits(u32::try_from(y).ok()?, 4)
    }

    fn put(&mut self, text: &[u8]) -> Option<&mut Text> {
        self.buf
            .get_mut(self.len..self.len + text.len())?
            .copy_from_slice(text);
        self.len += text.len();
        Some(self)
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl Period {
    /// Writes the period's text, when its year has four digits (always, for a period parsed
    /// or reported).
    fn write(&self, t: &mut Text) -> Option<()> {
        match *self {
            Period::Year(y) => t.year(y)?,
            Period::Half { year, half } => t.year(year)?.put(b"-H")?.digits(half.into(), 1)?,
            Period::Quarter { year, quarter } => {
                t.year(year)?.put(b"-Q")?.digits(quarter.into(), 1)?
            }
            Period::Month { year, month } => t.year(year)?.put(b"-")?.digits(month.into(), 2)?,
            Period::HalfMonth { year, month, half } => t
                .year(year)?
                .put(b"-")?
                .digits(month.into(), 2)?
                .put(b"-H")?
                .digits(half.into(), 1)?,
            Period::Week { year, week } => t.year(year)?.put(b"-W")?.digits(week.into(), 2)?,
            Period::Day(d) => t
                .year(d.year())?
                .put(b"-")?
                .digits(d.month(), 2)?
                .put(b"-")?
                .digits(d.day(), 2)?,
        };
        Some(())
    }

    /// The period written by the formatter: a year outside 0–9999, a half or quarter past 9
    /// (neither is made by parsing), and the plain computation the tests compare [`Period::write`]
    /// with.
    fn fmt_by_formatter(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Half { year, half } => write!(f, "{year:04}-H{half}"),
            Period::Quarter { year, quarter } => write!(f, "{year:04}-Q{quarter}"),
            Period::Month { year, month } => write!(f, "{year:04}-{month:02}"),
            Period::HalfMonth { year, month, half } => {
                write!(f, "{year:04}-{month:02}-H{half}")
            }
            Period::Week { year, week } => write!(f, "{year:04}-W{week:02}"),
            Period::Day(d) => write!(f, "{}", d.format("%Y-%m-%d")),
        }
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Period {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_form_round_trips() {
        for s in [
            "2026-10",
            "2026-Q3",
            "2026-H2",
            "2026",
            "2026-W40",
            "2026-10-01",
            "2020-W53",
            "2026-10-H1",
            "2026-10-H2",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    /// [`Period::write`] against the formatter's writing, for every period of every kind over
    /// three years, and for values no parse makes (years outside 0–9999, a 10th quarter).
    #[test]
    fn the_hand_written_text_is_the_formatters() {
        struct ByFormatter(Period);
        impl fmt::Display for ByFormatter {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt_by_formatter(f)
            }
        }
        let mut periods = vec![
            Period::Year(0),
            Period::Year(7),
            Period::Year(9999),
            Period::Year(10000),
            Period::Year(-1),
            Period::Quarter {
                year: 2026,
                quarter: 10,
            },
            Period::Half { year: 99, half: 2 },
            Period::Month {
                year: 12345,
                month: 1,
            },
        ];
        for year in 2024..=2026 {
            periods.push(Period::Year(year));
            periods.extend((1..=2).map(|half| Period::Half { year, half }));
            periods.extend((1..=4).map(|quarter| Period::Quarter { year, quarter }));
            for month in 1..=12 {
                periods.push(Period::Month { year, month });
                periods.extend((1..=2).map(|half| Period::HalfMonth { year, month, half }));
            }
            periods.extend((1..=53).map(|week| Period::Week { year, week }));
            let mut d = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
            while d.year() == year {
                periods.push(Period::Day(d));
                d = d.succ_opt().unwrap();
            }
        }
        for p in periods {
            assert_eq!(p.to_string(), ByFormatter(p).to_string(), "{p:?}");
        }
        assert_eq!(Period::Year(7).to_string(), "0007");
        assert_eq!(Period::Year(10000).to_string(), "10000");
    }

    #[test]
    fn bounds_are_calendar_exact() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            (p("2026-02").first_day(), p("2026-02").last_day()),
            (d("2026-02-01"), d("2026-02-28"))
        );
        assert_eq!(p("2024-02").last_day(), d("2024-02-29"));
        assert_eq!(
            (p("2026-Q3").first_day(), p("2026-Q3").last_day()),
            (d("2026-07-01"), d("2026-09-30"))
        );
        assert_eq!(p("2026-H2").last_day(), d("2026-12-31"));
        assert_eq!(
            (p("2026-02-H1").first_day(), p("2026-02-H1").last_day()),
            (d("2026-02-01"), d("2026-02-15"))
        );
        assert_eq!(
            (p("2024-02-H2").first_day(), p("2024-02-H2").last_day()),
            (d("2024-02-16"), d("2024-02-29"))
        );
        assert_eq!(
            p("2026-10").half_months(),
            Some([p("2026-10-H1"), p("2026-10-H2")])
        );
        // ISO week 1 of 2026 starts on Monday 2025-12-29
        assert_eq!(
            (p("2026-W01").first_day(), p("2026-W01").last_day()),
            (d("2025-12-29"), d("2026-01-04"))
        );
    }

    #[test]
    fn neighbours() {
        assert_eq!(p("2026-01").previous(), p("2025-12"));
        assert_eq!(p("2026-12").next(), p("2027-01"));
        assert_eq!(p("2026-Q1").previous(), p("2025-Q4"));
        assert_eq!(p("2026-H1").previous(), p("2025-H2"));
        assert_eq!(p("2026-W01").previous(), p("2025-W52"));
        assert_eq!(p("2021-W01").previous(), p("2020-W53"));
        assert_eq!(p("2026-03-01").previous(), p("2026-02-28"));
        assert_eq!(p("2026-10").year_earlier(), p("2025-10"));
        assert_eq!(p("2020-W53").year_earlier(), p("2019-W52"));
        assert_eq!(p("2024-02-29").year_earlier(), p("2023-02-28"));
        assert_eq!(p("2026-10").shift(-24), p("2024-10"));
        assert_eq!(p("2026-01-H1").previous(), p("2025-12-H2"));
        assert_eq!(p("2026-12-H2").next(), p("2027-01-H1"));
        assert_eq!(p("2026-10-H2").previous(), p("2026-10-H1"));
        assert_eq!(p("2026-10-H1").shift(-4), p("2026-08-H1"));
        assert_eq!(p("2026-10-H2").year_earlier(), p("2025-10-H2"));
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "26-10",
            "2026-13",
            "2026-00",
            "2026-1",
            "2026-Q5",
            "2026-Q0",
            "2026-H3",
            "2026-W54",
            "2026-10-H3",
            "2026-13-H1",
            "2026-10-H",
            "2026-W00",
            "2025-W53",
            "2026-02-30",
            "2026/10",
            "2026-10-01-01",
            "abcd",
            "2026-Q03",
            "2026-W4",
            "0000",
        ] {
            assert!(s.parse::<Period>().is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn what_people_type_becomes_the_canonical_form() {
        for (typed, canonical) in [
            ("2026/10", "2026-10"),
            ("2026.10", "2026-10"),
            ("2026-1", "2026-01"),
            ("202610", "2026-10"),
            ("2026年10月", "2026-10"),
            ("２０２６年１０月", "2026-10"),
            (" 2026年1月 ", "2026-01"),
            ("2026年10月1日", "2026-10-01"),
            ("2026/10/1", "2026-10-01"),
            ("20261001", "2026-10-01"),
            ("2026年第40周", "2026-W40"),
            ("2026-w40", "2026-W40"),
            ("2026-W4", "2026-W04"),
            ("2026年第三季度", "2026-Q3"),
            ("2026年3季度", "2026-Q3"),
            ("2026年下半年", "2026-H2"),
            ("2026年", "2026"),
            ("2026-10", "2026-10"),
            ("2026年10月上半月", "2026-10-H1"),
            ("2026年1月下半月", "2026-01-H2"),
            ("2026-1-h2", "2026-01-H2"),
        ] {
            assert_eq!(
                Period::parse_typed(typed).map(|p| p.to_string()),
                Ok(canonical.to_owned()),
                "{typed:?}"
            );
        }
        for bad in ["2026/13", "2026年13月", "10月", "2026-10-01-01", "明年"] {
            let e = Period::parse_typed(bad).unwrap_err();
            assert!(e.to_string().contains(bad.trim()), "{e}");
        }
        let e = Period::parse_typed("2026年13月").unwrap_err();
        assert!(e.to_string().contains("月份应为 01 到 12"), "{e}");
        assert!(!e.clone().for_reports().to_string().contains("Q3"), "{e}");
    }

    #[test]
    fn only_ended_periods_take_reports_but_days_from_the_day_itself() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(!p("2026-10").open_for_reports_on(d("2026-10-31")));
        assert!(p("2026-10").open_for_reports_on(d("2026-11-01")));
        assert!(!p("2026-W40").open_for_reports_on(d("2026-10-04")));
        assert!(p("2026-W40").open_for_reports_on(d("2026-10-05")));
        assert!(p("2026-10-01").open_for_reports_on(d("2026-10-01")));
        assert!(!p("2026-10-02").open_for_reports_on(d("2026-10-01")));
    }
}
