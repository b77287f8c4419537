//! When a report is due: monthly figures by the end of the 5th of the next month (configurable),
//! weekly ones a few days after the week, daily ones the same day by 16:00, all in 北京时间.

use chrono::{NaiveTime, TimeZone as _};
use pingan_domain::Period;

use crate::clock::beijing;

/// Deadlines of the reported periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Day of the next month by whose end monthly figures are due.
    pub monthly_day: u32,
    /// Days after a week's Sunday by whose end weekly figures are due.
    pub weekly_days: u32,
    /// Hour of the day itself by which daily figures are due.
    pub daily_hour: u32,
}

impl Default for Deadlines {
    fn default() -> Deadlines {
        Deadlines {
            monthly_day: 5,
            weekly_days: 2,
            daily_hour: 16,
        }
    }
}

impl Deadlines {
    /// The instant (ms since the epoch) after which a first submission for `period` is late.
    pub fn due_ms(&self, period: Period) -> i64 {
        let (day, time) = match period {
            Period::Day(d) => (
                d,
                NaiveTime::from_hms_opt(self.daily_hour.min(23), 0, 0).expect("valid"),
            ),
            Period::Week { .. } => (
                period.last_day() + chrono::Days::new(u64::from(self.weekly_days) + 1),
                NaiveTime::MIN,
            ),
            _ => (
                period.last_day() + chrono::Days::new(u64::from(self.monthly_day.max(1)) + 1),
                NaiveTime::MIN,
            ),
        };
        beijing()
            .from_local_datetime(&day.and_time(time))
            .single()
            .expect("fixed offset")
            .timestamp_millis()
    }

    /// Whether a first submission received at `received_at_ms` was on time.
    pub fn on_time(&self, period: Period, received_at_ms: i64) -> bool {
        received_at_ms < self.due_ms(period)
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
        assert!(d.on_time(p, at("2026-11-05 23:59:59")));
        assert!(!d.on_time(p, at("2026-11-06 00:00:00")));
        let day: Period = "2026-10-01".parse().unwrap();
        assert!(d.on_time(day, at("2026-10-01 15:59:59")));
        assert!(!d.on_time(day, at("2026-10-01 16:00:00")));
    }
}
