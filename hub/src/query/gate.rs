//! Who may ask how much at once: at most [`PER_IDENTITY`] questions of one identity (a
//! certificate, a dashboard user, a plaintext peer) run at a time and the others wait their
//! turn (a page asks four at once), at most [`AT_ONCE`] run in all, at most [`WAITING`] of one
//! identity wait, and each question has a deadline (the caller's, or [`DEADLINE`]) that covers
//! its wait and stops its work. So any viewer can ask, and none can stall the hub for the
//! others or for ingest.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;

use super::{QueryError, budget};

/// Questions one identity may have running at once.
pub const PER_IDENTITY: usize = 2;
/// Questions of one identity that may wait for their turn; more are refused.
pub const WAITING: usize = 16;
/// Questions running at once in all (the machine has few cores; the rest wait their turn).
pub const AT_ONCE: usize = 4;
/// The longest a question may take, its wait included, when the caller sets no shorter
/// deadline.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// One identity's turns: its running questions' permits, and how many are running or waiting.
#[derive(Debug)]
struct Turns {
    running: Arc<Semaphore>,
    asking: usize,
}

/// The hub's question gate.
#[derive(Debug)]
pub struct Gate {
    identities: Mutex<HashMap<String, Turns>>,
    all: Arc<Semaphore>,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate {
            identities: Mutex::default(),
            all: Arc::new(Semaphore::new(AT_ONCE)),
        }
    }
}

/// One identity's question in the gate; its place is given back when dropped.
struct Asking<'a> {
    gate: &'a Gate,
    who: String,
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        let mut ids = self.gate.identities.lock().expect("not poisoned");
        if let Some(t) = ids.get_mut(&self.who) {
            t.asking -= 1;
            if t.asking == 0 {
                ids.remove(&self.who);
            }
        }
    }
}

impl Gate {
    /// Runs the question `f` for `who` on a blocking thread once its turn comes, within
    /// `deadline` (capped at [`DEADLINE`]) counted from now; refuses it when [`WAITING`] more of
    /// `who`'s questions are already waiting.
    pub async fn run<T: Send + 'static>(
        &self,
        who: &str,
        deadline: Option<Duration>,
        f: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
    ) -> Result<T, QueryError> {
        let limit = deadline.map_or(DEADLINE, |d| d.min(DEADLINE));
        let until = Instant::now() + limit;
        let (running, _asking) = {
            let mut ids = self.identities.lock().expect("not poisoned");
            let t = ids.entry(who.to_owned()).or_insert_with(|| Turns {
                running: Arc::new(Semaphore::new(PER_IDENTITY)),
                asking: 0,
            });
            if t.asking >= PER_IDENTITY + WAITING {
                return Err(QueryError::Busy {
                    who: who.to_owned(),
                    limit: PER_IDENTITY + WAITING,
                });
            }
            t.asking += 1;
            (
                t.running.clone(),
                Asking {
                    gate: self,
                    who: who.to_owned(),
                },
            )
        };
        let turn = async {
            let mine = running.acquire_owned().await;
            let anyone = self.all.clone().acquire_owned().await;
            (mine, anyone)
        };
        let (mine, anyone) = tokio::time::timeout(limit, turn)
            .await
            .map_err(|_| QueryError::DeadlineExceeded)?;
        let closed = |_| QueryError::Engine("the question gate is closed".into());
        let _permits = (mine.map_err(closed)?, anyone.map_err(closed)?);
        tokio::task::spawn_blocking(move || budget::run(Some(until), f))
            .await
            .map_err(|e| QueryError::Engine(format!("query task failed: {e}")))?
    }
}

/// The deadline a gRPC caller set (`grpc-timeout`: digits and a unit, e.g. `5S`, `100m`).
pub fn grpc_timeout(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let v = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (n, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_identity_runs_two_questions_at_a_time_and_the_rest_wait_their_turn() {
        let gate = Arc::new(Gate::default());
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut asked = Vec::new();
        for _ in 0..PER_IDENTITY + 1 {
            let (gate, hold, started) = (gate.clone(), hold.clone(), started.clone());
            asked.push(tokio::spawn(async move {
                gate.run("pingan://viewer/51", None, move || {
                    started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = hold.lock().expect("lock").recv();
                    Ok(())
                })
                .await
            }));
        }
        // two run, the third waits (it has not started)
        while started.load(std::sync::atomic::Ordering::SeqCst) < PER_IDENTITY {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            started.load(std::sync::atomic::Ordering::SeqCst),
            PER_IDENTITY
        );
        // someone else is not held up by that identity
        assert!(
            gate.run("pingan://viewer/5107", None, || Ok(()))
                .await
                .is_ok()
        );
        for _ in 0..=PER_IDENTITY {
            release.send(()).unwrap();
        }
        for a in asked {
            a.await.unwrap().unwrap();
        }
        // a question waiting past its deadline is told so
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut busy = Vec::new();
        for _ in 0..PER_IDENTITY {
            let (gate, hold, started) = (gate.clone(), hold.clone(), started.clone());
            busy.push(tokio::spawn(async move {
                gate.run("pingan://viewer/51", None, move || {
                    started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = hold.lock().expect("lock").recv();
                    Ok(())
                })
                .await
            }));
        }
        // both hold their turns (counted as asking, a question may not have its turn yet: a
        // late one could then take it first)
        while started.load(std::sync::atomic::Ordering::SeqCst) < PER_IDENTITY {
            tokio::task::yield_now().await;
        }
        let late: Result<(), QueryError> = gate
            .run(
                "pingan://viewer/51",
                Some(Duration::from_millis(20)),
                || Ok(()),
            )
            .await;
        assert!(
            matches!(late, Err(QueryError::DeadlineExceeded)),
            "{late:?}"
        );
        for _ in 0..PER_IDENTITY {
            release.send(()).unwrap();
        }
        for b in busy {
            b.await.unwrap().unwrap();
        }
        // a question that works past its deadline is stopped by its own checks
        let stopped: Result<(), QueryError> = gate
            .run("pingan://viewer/51", Some(Duration::from_millis(1)), || {
                loop {
                    budget::check()?;
                    std::thread::yield_now();
                }
            })
            .await;
        assert!(matches!(stopped, Err(QueryError::DeadlineExceeded)));
        let mut md = tonic::metadata::MetadataMap::new();
        md.insert("grpc-timeout", "250m".parse().unwrap());
        assert_eq!(grpc_timeout(&md), Some(Duration::from_millis(250)));
    }
}
