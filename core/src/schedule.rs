//! The scheduler: runs each task as soon as the tasks it needs are done, independent tasks in
//! parallel on rayon. A failure stops only what depends on it; everything independent finishes.
//!
//! It is generic over the task's output so the pipeline runner and the no-op benchmark share
//! exactly the same code path.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// What became of one task.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T, E> {
    Done(T),
    Failed(E),
    /// Not run because task `because` (transitively needed) failed.
    Skipped {
        because: usize,
    },
    /// The task chose not to run this time (an evaluation outside an evaluation round); the
    /// tasks needing it idle too.
    Idle,
}

impl<T, E> Outcome<T, E> {
    pub fn done(&self) -> Option<&T> {
        match self {
            Outcome::Done(t) => Some(t),
            _ => None,
        }
    }
}

/// Runs tasks `0..needs.len()`; `needs[i]` lists the tasks whose outputs task i reads (an
/// acyclic relation, as [`crate::graph::Dag`] guarantees). `task(i, inputs)` gets the outputs
/// in `needs[i]` order and returns `Ok(None)` to idle.
pub fn run<T, E, F>(needs: &[Vec<usize>], task: F) -> Vec<Outcome<T, E>>
where
    T: Send + Sync,
    E: Send + Sync,
    F: Fn(usize, &[&T]) -> Result<Option<T>, E> + Sync,
{
    let mut dependants = vec![Vec::new(); needs.len()];
    for (i, ns) in needs.iter().enumerate() {
        for &n in ns {
            dependants[n].push(i);
        }
    }
    let state = State {
        needs,
        dependants,
        waiting: needs.iter().map(|ns| AtomicUsize::new(ns.len())).collect(),
        outcomes: (0..needs.len()).map(|_| OnceLock::new()).collect(),
        task,
    };
    rayon::scope(|scope| {
        let state = &state;
        for (i, ns) in needs.iter().enumerate() {
            if ns.is_empty() {
                scope.spawn(move |s| state.execute(s, i));
            }
        }
    });
    state
        .outcomes
        .into_iter()
        .map(|o| o.into_inner().expect("every task of an acyclic graph runs"))
        .collect()
}

struct State<'a, T, E, F> {
    needs: &'a [Vec<usize>],
    dependants: Vec<Vec<usize>>,
    /// Needs not finished yet; the task whose decrement reaches zero schedules the dependant.
    waiting: Vec<AtomicUsize>,
    outcomes: Vec<OnceLock<Outcome<T, E>>>,
    task: F,
}

impl<'a, T, E, F> State<'a, T, E, F>
where
    T: Send + Sync,
    E: Send + Sync,
    F: Fn(usize, &[&T]) -> Result<Option<T>, E> + Sync,
{
    fn execute<'s>(&'s self, scope: &rayon::Scope<'s>, i: usize) {
        let outcome = self.outcome_of(i);
        // `set` cannot fail: the last finishing need schedules a task exactly once.
        let _ = self.outcomes[i].set(outcome);
        for &d in &self.dependants[i] {
            if self.waiting[d].fetch_sub(1, Ordering::AcqRel) == 1 {
                scope.spawn(move |s| self.execute(s, d));
            }
        }
    }

    fn outcome_of(&self, i: usize) -> Outcome<T, E> {
        let mut inputs = Vec::with_capacity(self.needs[i].len());
        for &n in &self.needs[i] {
            match self.outcomes[n].get() {
                Some(Outcome::Done(t)) => inputs.push(t),
                Some(Outcome::Failed(_)) => return Outcome::Skipped { because: n },
                Some(Outcome::Skipped { because }) => {
                    return Outcome::Skipped { because: *because }
                }
                Some(Outcome::Idle) | None => return Outcome::Idle,
            }
        }
        match (self.task)(i, &inputs) {
            Ok(Some(t)) => Outcome::Done(t),
            Ok(None) => Outcome::Idle,
            Err(e) => Outcome::Failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_flow_along_needs() {
        // 0 → 1 → 3, 0 → 2 → 3: task i outputs i plus the sum of its inputs.
        let needs = vec![vec![], vec![0], vec![0], vec![1, 2]];
        let out = run(&needs, |i, inputs: &[&u64]| -> Result<_, ()> {
            Ok(Some(inputs.iter().copied().sum::<u64>() + i as u64))
        });
        assert_eq!(out[3], Outcome::Done(1 + 2 + 3));
    }

    #[test]
    fn failure_skips_dependants_and_lets_independent_tasks_finish() {
        let needs = vec![vec![], vec![0], vec![1], vec![]];
        let out = run(
            &needs,
            |i, _: &[&u8]| if i == 0 { Err("boom") } else { Ok(Some(1u8)) },
        );
        assert_eq!(out[0], Outcome::Failed("boom"));
        assert_eq!(out[1], Outcome::Skipped { because: 0 });
        assert_eq!(out[2], Outcome::Skipped { because: 0 });
        assert_eq!(out[3], Outcome::Done(1));
    }

    #[test]
    fn idle_propagates() {
        let needs = vec![vec![], vec![0]];
        let out = run(&needs, |i, _: &[&u8]| -> Result<_, ()> {
            Ok((i == 1).then_some(1))
        });
        assert_eq!(out[0], Outcome::Idle);
        assert_eq!(out[1], Outcome::Idle);
    }

    /// Independent tasks overlap in time (given a pool of at least two threads): each waits
    /// until both have started, which only happens if they run at once.
    #[test]
    fn independent_tasks_run_in_parallel() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let arrived = AtomicUsize::new(0);
        let needs = vec![vec![], vec![]];
        let out = pool.install(|| {
            run(&needs, |_, _: &[&bool]| -> Result<_, ()> {
                arrived.fetch_add(1, Ordering::SeqCst);
                let start = std::time::Instant::now();
                while arrived.load(Ordering::SeqCst) < 2 {
                    if start.elapsed().as_secs() >= 5 {
                        return Ok(Some(false));
                    }
                    std::hint::spin_loop();
                }
                Ok(Some(true))
            })
        });
        assert_eq!(out, vec![Outcome::Done(true), Outcome::Done(true)]);
    }
}
