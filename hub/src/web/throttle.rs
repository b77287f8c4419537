//! Sign-in throttling: after a few wrong passwords an account, and after more an address, is
//! refused for a while (429), whatever password comes next; every refusal is recorded in the
//! audit trail (aggregated like any flood of refusals). Time comes from the hub's clock.

use std::{collections::HashMap, sync::Mutex};

/// Wrong passwords an account may take within [`WINDOW_MS`].
pub const ACCOUNT_FAILURES: u32 = 5;
/// Wrong passwords one address may send within [`WINDOW_MS`] (over any accounts).
pub const ADDRESS_FAILURES: u32 = 20;
/// The window failures are counted in, and how long a key stays locked once over its limit.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Clone, Copy)]
struct Tries {
    failures: u32,
    since_ms: i64,
    locked_until_ms: i64,
}

/// Failure counts per key (`user:NAME`, `addr:IP`).
#[derive(Debug, Default)]
pub struct Throttle {
    tries: Mutex<HashMap<String, Tries>>,
}

impl Throttle {
    /// `Err(ms)`: `key` is locked for that much longer.
    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), i64> {
        match self.tries.lock().expect("not poisoned").get(key) {
            Some(t) if t.locked_until_ms > now_ms => Err(t.locked_until_ms - now_ms),
            _ => Ok(()),
        }
    }

    /// Counts a wrong password for `key`; locks it once over `limit` within the window.
    pub fn failed(&self, key: &str, limit: u32, now_ms: i64) {
        let mut tries = self.tries.lock().expect("not poisoned");
        // forget stale keys now and then, so that a scan of names cannot grow the map forever
        if tries.len() > 10_000 {
            tries.retain(|_, t| now_ms - t.since_ms < WINDOW_MS || t.locked_until_ms > now_ms);
        }
        let t = tries.entry(key.to_owned()).or_insert(Tries {
            failures: 0,
            since_ms: now_ms,
            locked_until_ms: 0,
        });
        if now_ms - t.since_ms >= WINDOW_MS {
            *t = Tries {
                failures: 0,
                since_ms: now_ms,
                locked_until_ms: t.locked_until_ms,
            };
        }
        t.failures += 1;
        if t.failures >= limit {
            t.locked_until_ms = now_ms + WINDOW_MS;
        }
    }

    /// A right password: the account's count starts again.
    pub fn succeeded(&self, key: &str) {
        self.tries.lock().expect("not poisoned").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_and_opens_after_the_window() {
        let t = Throttle::default();
        for i in 0..ACCOUNT_FAILURES {
            assert!(t.check("user:a", 1000 + i64::from(i)).is_ok());
            t.failed("user:a", ACCOUNT_FAILURES, 1000 + i64::from(i));
        }
        let wait = t.check("user:a", 2000).unwrap_err();
        assert!(wait > WINDOW_MS - 2000);
        assert!(
            t.check("user:b", 2000).is_ok(),
            "other accounts are not locked"
        );
        assert!(t.check("user:a", 1000 + WINDOW_MS + 10).is_ok());
        t.failed("user:c", 5, 0);
        t.succeeded("user:c");
        assert!(t.check("user:c", 1).is_ok());
    }
}
