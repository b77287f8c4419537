//! What one hub process at a time must do when several serve one PostgreSQL store: forward the
//! rollups to the parent hub, and send the scheduled reminders (催报). The database decides
//! which process: a process holds a duty while its database session holds the duty's advisory
//! lock. A process that stops, crashes or loses its connection (the database failed over, say)
//! loses the lock with its session, and another process takes the duty within [`TRY_EVERY`].
//! On SQLite (one process per store) a duty is always held.
//!
//! A holder notices a lost connection within [`CHECK_EVERY`]; for that long two processes may
//! both believe they hold a duty. Both duties tolerate it: the parent keeps the latest of two
//! equal rollups, and a reminder already recorded as delivered is not sent again.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use pingan_outbox::CancellationToken;
use tokio::sync::watch;

use super::{
    StoreAt,
    db::{Db, args},
};

/// How often a process that does not hold a duty tries to take it.
pub const TRY_EVERY: Duration = Duration::from_secs(2);

/// How often the holder checks that its session (and so the lock) is still there.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Something exactly one hub process on a store does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// Forwarding rollups to the parent hub (`--parent`).
    Forwarding,
    /// Sending the scheduled reminders (`--remind-webhook`).
    Reminders,
}

impl Duty {
    /// The advisory lock's key (next to the store's others, 7231001..7231004).
    fn key(self) -> i64 {
        match self {
            Duty::Forwarding => 7_231_011,
            Duty::Reminders => 7_231_012,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Duty::Forwarding => "forwarding to the parent hub",
            Duty::Reminders => "sending scheduled reminders",
        }
    }
}

/// Whether this process holds a duty, kept current by a thread of its own.
#[derive(Debug, Clone)]
pub struct Lease {
    duty: Duty,
    held: watch::Receiver<bool>,
    /// Kept so that `held` never sees its sender gone while the lease is in use.
    _sender: Arc<watch::Sender<bool>>,
}

impl Lease {
    /// Takes `duty` on the store at `at` as soon as no other process holds it, and holds it
    /// until `stop` is cancelled or the connection is lost (then it tries again).
    pub fn take(at: &StoreAt, duty: Duty, stop: CancellationToken) -> std::io::Result<Lease> {
        if !matches!(at, StoreAt::Postgres(_)) {
            return Ok(Lease::always(duty));
        }
        let (sender, held) = watch::channel(false);
        let sender = Arc::new(sender);
        let (at, tell) = (at.clone(), sender.clone());
        std::thread::Builder::new()
            .name("store-lease".into())
            .spawn(move || hold(&at, duty, &tell, &stop))?;
        Ok(Lease {
            duty,
            held,
            _sender: sender,
        })
    }

    /// A lease that is always held (one process on its store).
    pub fn always(duty: Duty) -> Lease {
        let (sender, held) = watch::channel(true);
        Lease {
            duty,
            held,
            _sender: Arc::new(sender),
        }
    }

    pub fn duty(&self) -> Duty {
        self.duty
    }

    /// Whether this process holds the duty now.
    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Waits until this process holds the duty, then gives a token that is cancelled when it
    /// no longer does or when `shutdown` is; `None` once `shutdown` is cancelled.
    pub async fn term(&self, shutdown: &CancellationToken) -> Option<CancellationToken> {
        let mut held = self.held.clone();
        tokio::select! {
            got = held.wait_for(|h| *h) => got.ok()?,
            () = shutdown.cancelled() => return None,
        };
        let term = shutdown.child_token();
        let ends = term.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = held.wait_for(|h| !*h) => ends.cancel(),
                () = ends.cancelled() => {}
            }
        });
        Some(term)
    }
}

/// The lease's thread: takes the lock when free, checks it is still held, and says so.
fn hold(at: &StoreAt, duty: Duty, tell: &watch::Sender<bool>, stop: &CancellationToken) {
    let mut conn: Option<Db> = None;
    let mut warned: Option<Instant> = None;
    while !stop.is_cancelled() {
        let held = *tell.borrow();
        let db = match conn.take() {
            Some(db) => db,
            None => match Db::open(at) {
                Ok(db) => db,
                Err(e) => {
                    // once a minute, not every attempt, while the database is away
                    if warned.is_none_or(|w| w.elapsed() > Duration::from_secs(60)) {
                        tracing::warn!(error = %e, duty = duty.name(), "no connection to the store to hold a duty on; trying again");
                        warned = Some(Instant::now());
                    }
                    pause(TRY_EVERY, stop);
                    continue;
                }
            },
        };
        let asked = if held {
            db.one("SELECT 1::BIGINT", &[], |r| r.int(0))
        } else {
            db.one(
                "SELECT (CASE WHEN pg_try_advisory_lock(?1) THEN 1 ELSE 0 END)::BIGINT",
                args![duty.key()],
                |r| r.int(0),
            )
        };
        match asked {
            Ok(Some(1)) => {
                if !held {
                    tracing::info!(duty = duty.name(), "this hub process now holds the duty");
                    tell.send_replace(true);
                }
                conn = Some(db);
            }
            Ok(_) => conn = Some(db),
            Err(e) => {
                // the session is gone or going, and the lock with it
                if held {
                    tracing::warn!(error = %e, duty = duty.name(), "lost the connection holding the duty; another hub process may take it");
                    tell.send_replace(false);
                }
            }
        }
        pause(
            if *tell.borrow() {
                CHECK_EVERY
            } else {
                TRY_EVERY
            },
            stop,
        );
    }
    // the connection closes here, and the lock with it
    tell.send_replace(false);
}

/// Sleeps `d`, or less when `stop` is cancelled meanwhile.
fn pause(d: Duration, stop: &CancellationToken) {
    let until = Instant::now() + d;
    while !stop.is_cancelled() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < until, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn one_process_at_a_time_holds_a_duty_and_another_takes_it_over() {
        let Some(at) = StoreAt::fresh_test_database() else {
            // on SQLite every duty is held: one process per store
            let lease = Lease::take(
                &StoreAt::Sqlite(std::path::PathBuf::from("unused")),
                Duty::Forwarding,
                CancellationToken::new(),
            )
            .unwrap();
            assert!(lease.is_held());
            return;
        };
        let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
        let a = Lease::take(&at, Duty::Forwarding, stop_a.clone()).unwrap();
        wait_until("the first lease is held", || a.is_held());
        let b = Lease::take(&at, Duty::Forwarding, stop_b.clone()).unwrap();
        // the other duty is free for b
        let b_reminders = Lease::take(&at, Duty::Reminders, stop_b.clone()).unwrap();
        wait_until("b holds the reminders", || b_reminders.is_held());
        std::thread::sleep(TRY_EVERY * 2);
        assert!(a.is_held());
        assert!(!b.is_held(), "two processes hold one duty");
        // a stops (its session ends): b takes over
        stop_a.cancel();
        wait_until("a let go", || !a.is_held());
        wait_until("b took over", || b.is_held());
        stop_b.cancel();
    }

    #[tokio::test]
    async fn a_term_ends_when_the_duty_is_lost() {
        let (sender, held) = watch::channel(false);
        let lease = Lease {
            duty: Duty::Reminders,
            held,
            _sender: Arc::new(sender),
        };
        let shutdown = CancellationToken::new();
        let waiting = {
            let (lease, shutdown) = (lease.clone(), shutdown.clone());
            tokio::spawn(async move { lease.term(&shutdown).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a term began without the duty");
        lease._sender.send_replace(true);
        let term = waiting.await.unwrap().expect("a term once held");
        assert!(!term.is_cancelled());
        lease._sender.send_replace(false);
        tokio::time::timeout(Duration::from_secs(5), term.cancelled())
            .await
            .expect("the term ends when the duty is lost");
        shutdown.cancel();
        assert!(lease.term(&shutdown).await.is_none());
    }
}
