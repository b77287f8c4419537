//! Who may ask how much at once: at most [`PER_IDENTITY`] questions of one identity (a
//! certificate, a dashboard user, a plaintext peer) run at a time, at most [`AT_ONCE`] in all,
//! each within a deadline (the caller's, or [`DEADLINE`]) that stops its work. So any viewer can
//! ask, and none can stall the hub for the others or for ingest.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;

use super::{QueryError, budget};

/// Questions one identity may have running at once.
pub const PER_IDENTITY: usize = 2;
/// Questions running at once in all (the machine has few cores; the rest wait their turn).
pub const AT_ONCE: usize = 4;
/// The longest a question may take when the caller sets no shorter deadline.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The hub's question gate.
#[derive(Debug)]
pub struct Gate {
    running: Mutex<HashMap<String, usize>>,
    all: Arc<Semaphore>,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate {
            running: Mutex::default(),
            all: Arc::new(Semaphore::new(AT_ONCE)),
        }
    }
}

/// One identity's running question; its place is given back when dropped.
struct Running<'a> {
    gate: &'a Gate,
    who: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = self.gate.running.lock().expect("not poisoned");
        if let Some(n) = running.get_mut(&self.who) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.who);
            }
        }
    }
}

impl Gate {
    /// Runs the question `f` for `who` on a blocking thread, within `deadline` (capped at
    /// [`DEADLINE`]), or refuses it when `who` has [`PER_IDENTITY`] running already.
    pub async fn run<T: Send + 'static>(
        &self,
        who: &str,
        deadline: Option<Duration>,
        f: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
    ) -> Result<T, QueryError> {
        let limit = deadline.map_or(DEADLINE, |d| d.min(DEADLINE));
        let until = Instant::now() + limit;
        let _running = {
            let mut running = self.running.lock().expect("not poisoned");
            let n = running.entry(who.to_owned()).or_default();
            if *n >= PER_IDENTITY {
                return Err(QueryError::Busy {
                    who: who.to_owned(),
                    limit: PER_IDENTITY,
                });
            }
            *n += 1;
            Running {
                gate: self,
                who: who.to_owned(),
            }
        };
        let _permit = tokio::time::timeout(limit, self.all.clone().acquire_owned())
            .await
            .map_err(|_| QueryError::DeadlineExceeded)?
            .map_err(|_| QueryError::Engine("the question gate is closed".into()))?;
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

    #[tokio::test]
    async fn one_identity_runs_at_most_two_questions_and_a_deadline_stops_the_work() {
        let gate = Arc::new(Gate::default());
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let mut running = Vec::new();
        for _ in 0..PER_IDENTITY {
            let (gate, hold) = (gate.clone(), hold.clone());
            running.push(tokio::spawn(async move {
                gate.run("pingan://viewer/51", None, move || {
                    let _ = hold.lock().expect("lock").recv();
                    Ok(())
                })
                .await
            }));
        }
        // wait until both hold their places
        while gate.running.lock().unwrap().get("pingan://viewer/51") != Some(&PER_IDENTITY) {
            tokio::task::yield_now().await;
        }
        let third = gate.run("pingan://viewer/51", None, || Ok(())).await;
        assert!(matches!(third, Err(QueryError::Busy { .. })));
        // someone else is not held up by that identity
        assert!(
            gate.run("pingan://viewer/5107", None, || Ok(()))
                .await
                .is_ok()
        );
        for _ in 0..PER_IDENTITY {
            release.send(()).unwrap();
        }
        for r in running {
            r.await.unwrap().unwrap();
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
