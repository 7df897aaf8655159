//! The retry policies, in one place, on `backon`: waits that double up to a ceiling (a busy
//! or unreachable warehouse, a lake that failed mid-load, a report the mail server refused),
//! and a step tried again at once while it fails with a conflict (DuckLake's optimistic
//! commits). The callers keep what is theirs: when to give up, what to log, and how to wait (a
//! wait that a stop must cut short, or a due time in the sender's queue).

use std::time::Duration;

use backon::{BackoffBuilder, BlockingRetryable, ConstantBuilder, ExponentialBuilder};

/// Waits that start at `first` and double, up to `max`, without end (no jitter: one process
/// waits on one resource).
pub fn doubling(first: Duration, max: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(first)
        .with_max_delay(max.max(first))
        .without_max_times()
        .build()
}

/// The wait after the `failures`-th failure (1-based) of a [`doubling`] policy.
pub fn wait_after(first: Duration, max: Duration, failures: u32) -> Duration {
    doubling(first, max)
        .nth(failures.saturating_sub(1) as usize)
        .unwrap_or(max)
}

/// Runs `step`, and again at once while it fails with an error `again` accepts, `tries`
/// times in all; `on_retry` sees each error that is tried again. The last result is returned.
pub fn at_once<T, E>(
    tries: usize,
    step: impl FnMut() -> Result<T, E>,
    again: impl FnMut(&E) -> bool,
    mut on_retry: impl FnMut(&E),
) -> Result<T, E> {
    step.retry(
        ConstantBuilder::new()
            .with_delay(Duration::ZERO)
            .with_max_times(tries.saturating_sub(1)),
    )
    .sleep(|_| {})
    .when(again)
    .notify(|e, _| on_retry(e))
    .call()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn waits_double_up_to_the_ceiling_and_stay_there() {
        let waits: Vec<u128> = doubling(MS * 50, MS * 400)
            .take(6)
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(waits, [50, 100, 200, 400, 400, 400]);
        assert_eq!(wait_after(MS * 100, MS * 400, 1), MS * 100);
        assert_eq!(wait_after(MS * 100, MS * 400, 3), MS * 400);
        assert_eq!(wait_after(MS * 100, MS * 400, 1000), MS * 400);
        // A ceiling below the first wait: the first wait.
        assert_eq!(wait_after(MS * 100, MS * 10, 2), MS * 100);
    }

    #[test]
    fn a_step_is_tried_again_only_while_the_error_says_so_and_at_most_n_times() {
        let mut calls = 0;
        let mut retried = 0;
        let r: Result<(), &str> = at_once(
            5,
            || {
                calls += 1;
                Err("conflict")
            },
            |e| *e == "conflict",
            |_| retried += 1,
        );
        assert_eq!((r, calls, retried), (Err("conflict"), 5, 4));

        let mut calls = 0;
        let r: Result<(), &str> = at_once(
            5,
            || {
                calls += 1;
                Err("disk full")
            },
            |e| *e == "conflict",
            |_| {},
        );
        assert_eq!((r, calls), (Err("disk full"), 1));

        let mut calls = 0;
        let r = at_once(
            5,
            || {
                calls += 1;
                if calls < 3 {
                    Err("conflict")
                } else {
                    Ok(calls)
                }
            },
            |e| *e == "conflict",
            |_| {},
        );
        assert_eq!(r, Ok(3));
    }
}
