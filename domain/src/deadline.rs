//! When a report is due: monthly figures by the end of the 5th of the next month (configurable),
//! half-monthly ones the same number of days after the half-month, weekly ones a few days after
//! the week, daily ones the same day by 16:00, all in 北京时间; a form's own deadline (the
//! catalogue's `deadline`) wins over these for the levels that report it.

use crate::{Catalogue, Level, Period, form::Deadline, period::PeriodKind};
use chrono::{NaiveTime, TimeZone as _};

/// 北京时间, the time zone periods and deadlines are read in.
pub fn beijing() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

/// A time (milliseconds since the Unix epoch) as users read it: `2026-11-22 10:00`, 北京时间.
pub fn minute_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&beijing())
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// A deadline as offices say it: the end of a day is `2026-12-05 24:00`, not the next midnight.
pub fn due_text(ms: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return String::new();
    };
    let t = t.with_timezone(&beijing());
    if t.format("%H:%M").to_string() == "00:00" {
        let day = t.date_naive().pred_opt().unwrap_or(t.date_naive());
        return format!("{} 24:00", day.format("%Y-%m-%d"));
    }
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// Deadlines of the reported periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Day of the next month by whose end monthly figures are due.
    pub monthly_day: u32,
    /// Days after a week's Sunday by whose end weekly figures are due.
    pub weekly_days: u32,
    /// Hour of the day itself by which daily figures are due.
    pub daily_hour: u32,
    /// The forms' own deadlines, by level and kind of reported period (see [`slot`]).
    pub forms: [[Deadline; 4]; 5],
}

/// Where a level's form for a kind of period keeps its deadline in [`Deadlines::forms`].
fn slot(level: Level, kind: PeriodKind) -> Option<(usize, usize)> {
    let k = match kind {
        PeriodKind::Month => 0,
        PeriodKind::HalfMonth => 1,
        PeriodKind::Week => 2,
        PeriodKind::Day => 3,
        _ => return None,
    };
    Some((level as usize, k))
}

impl Default for Deadlines {
    fn default() -> Deadlines {
        Deadlines {
            monthly_day: 5,
            weekly_days: 2,
            daily_hour: 16,
            forms: Default::default(),
        }
    }
}

impl Deadlines {
    /// These deadlines with the catalogue's forms' own.
    pub fn with_forms(mut self, catalogue: &Catalogue) -> Deadlines {
        for f in catalogue.forms() {
            for l in &f.levels {
                if let Some((a, b)) = slot(*l, f.period) {
                    self.forms[a][b] = f.deadline;
                }
            }
        }
        self
    }

    /// The instant (ms since the epoch) after which a first submission of `level` for `period`
    /// is late.
    pub fn due_ms(&self, level: Level, period: Period) -> i64 {
        let form = slot(level, period.kind())
            .map(|(a, b)| self.forms[a][b])
            .unwrap_or_default();
        self.due_ms_of(form, period)
    }

    /// The instant (ms since the epoch) after which a first submission for `period` of a form
    /// with this deadline (its parts left out: the configured defaults) is late.
    pub fn due_ms_of(&self, form: Deadline, period: Period) -> i64 {
        let (day, time) = match period {
            Period::Day(d) => (
                d,
                NaiveTime::from_hms_opt(form.hour.unwrap_or(self.daily_hour).min(23), 0, 0)
                    .expect("valid"),
            ),
            Period::Week { .. } => (
                period.last_day()
                    + chrono::Days::new(u64::from(form.day.unwrap_or(self.weekly_days)) + 1),
                NaiveTime::MIN,
            ),
            _ => (
                period.last_day()
                    + chrono::Days::new(u64::from(form.day.unwrap_or(self.monthly_day).max(1)) + 1),
                NaiveTime::MIN,
            ),
        };
        beijing()
            .from_local_datetime(&day.and_time(time))
            .single()
            .expect("fixed offset")
            .timestamp_millis()
    }

    /// Whether a first submission of `level` received at `received_at_ms` was on time.
    pub fn on_time(&self, level: Level, period: Period, received_at_ms: i64) -> bool {
        received_at_ms < self.due_ms(level, period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monthly_figures_are_due_by_the_end_of_the_fifth() {
        let d = Deadlines::default();
        let p: Period = "2026-10".parse().unwrap();
        let at = |s: &str| {
            beijing()
                .from_local_datetime(
                    &chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap(),
                )
                .unwrap()
                .timestamp_millis()
        };
        let v = Level::Village;
        assert!(d.on_time(v, p, at("2026-11-05 23:59:59")));
        assert!(!d.on_time(v, p, at("2026-11-06 00:00:00")));
        let day: Period = "2026-10-01".parse().unwrap();
        assert!(d.on_time(v, day, at("2026-10-01 15:59:59")));
        assert!(!d.on_time(v, day, at("2026-10-01 16:00:00")));
        // the shipped forms: the daily one by 12:00 (seed 001), the half-monthly one three days on
        let d = d.with_forms(&Catalogue::builtin());
        assert!(d.on_time(v, day, at("2026-10-01 11:59:59")));
        assert!(!d.on_time(v, day, at("2026-10-01 12:00:00")));
        let h1: Period = "2026-10-H1".parse().unwrap();
        let t = Level::Township;
        assert!(d.on_time(t, h1, at("2026-10-18 23:59:59")));
        assert!(!d.on_time(t, h1, at("2026-10-19 00:00:00")));
        assert!(d.on_time(v, p, at("2026-11-05 23:59:59")));
    }
}
