//! The hub's clock, injected so that deadlines and "has this period ended" are testable.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

pub use pingan_domain::deadline::{beijing, minute_text};

/// Where the hub reads the time from.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock that a test or the demo sets (milliseconds since the Unix epoch).
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `at`.
    pub fn manual(at: DateTime<FixedOffset>) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(at.timestamp_millis())))
    }

    /// Sets a manual clock; no effect on the system clock.
    pub fn set(&self, at: DateTime<FixedOffset>) {
        if let Clock::Manual(ms) = self {
            ms.store(at.timestamp_millis(), Ordering::SeqCst);
        }
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => Utc::now().timestamp_millis(),
            Clock::Manual(ms) => ms.load(Ordering::SeqCst),
        }
    }

    /// Today's date in 北京时间.
    pub fn today(&self) -> NaiveDate {
        DateTime::from_timestamp_millis(self.now_ms())
            .expect("in range")
            .with_timezone(&beijing())
            .date_naive()
    }
}
