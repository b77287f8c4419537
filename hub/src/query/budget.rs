//! What one question may cost: a bound on its size, checked before any work (areas × periods
//! read), and a deadline checked as it works, so that no viewer can hold the engine, or the
//! rollups' lock the store's writer needs, for long. The deadline is the calling thread's
//! (questions run on blocking threads, one each): [`run`] sets it, [`check`] reads it.

use std::{cell::Cell, time::Instant};

use super::QueryError;

/// Most area-periods one question may read (every township of the country over ten months,
/// with 同比 and 环比, is 1.2 M; every village of the country over a month 1.9 M).
pub const MAX_COST: u64 = 20_000_000;

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with `deadline` for the [`check`]s it makes.
pub fn run<T>(deadline: Option<Instant>, f: impl FnOnce() -> T) -> T {
    let before = DEADLINE.with(|d| d.replace(deadline));
    let out = f();
    DEADLINE.with(|d| d.set(before));
    out
}

/// The calling thread's deadline, for threads a question starts to work on its parts (each
/// runs its part with it: [`run`]).
pub fn deadline() -> Option<Instant> {
    DEADLINE.with(Cell::get)
}

/// Stops a question whose deadline has passed.
pub fn check() -> Result<(), QueryError> {
    match DEADLINE.with(Cell::get) {
        Some(d) if Instant::now() >= d => Err(QueryError::DeadlineExceeded),
        _ => Ok(()),
    }
}

/// Refuses a question that would read more than [`MAX_COST`] area-periods.
pub fn within(cost: u64, what: &str) -> Result<(), QueryError> {
    if cost > MAX_COST {
        return Err(QueryError::TooLarge {
            cost,
            limit: MAX_COST,
            what: what.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_deadline_stops_the_work_and_the_bound_refuses_before_it() {
        assert!(check().is_ok(), "no deadline, no stop");
        let past = Instant::now() - std::time::Duration::from_millis(1);
        assert!(matches!(
            run(Some(past), check),
            Err(QueryError::DeadlineExceeded)
        ));
        assert!(check().is_ok(), "the deadline ends with the question");
        assert!(within(MAX_COST, "x").is_ok());
        assert!(matches!(
            within(MAX_COST + 1, "x"),
            Err(QueryError::TooLarge { .. })
        ));
    }
}
