//! Building blocks of aggregation rules, shared by chorus's built-in rules and any plugin:
//! the per-rollout and weighted-sum loops with their logged weights, numerically stable
//! softmax helpers, and the checks every output and state must pass. A plugin that uses them
//! computes exactly what a built-in written with them computes.
use crate::{AggregateError, Aggregated, RewardMatrix};

/// Runs a rule that looks at one rollout at a time. `rule` gets the rollout's rewards (one
/// per group) in a reusable buffer, returns the aggregate, and leaves in the buffer its
/// sensitivity shares (∂r/∂R[g,r], summing to 1); their mean is the logged weight. One buffer
/// for the whole matrix keeps the loop free of allocations.
pub fn per_rollout(
    m: &RewardMatrix<'_>,
    mut per: impl FnMut(&mut [f64]) -> f64,
) -> Result<Aggregated, AggregateError> {
    let mut rewards = Vec::with_capacity(m.rollouts());
    let mut weights = vec![0.0; m.groups()];
    let mut column = vec![0.0; m.groups()];
    for r in 0..m.rollouts() {
        m.column_into(r, &mut column);
        rewards.push(per(&mut column));
        for (w, share) in weights.iter_mut().zip(&column) {
            *w += share;
        }
    }
    let n = m.rollouts() as f64;
    weights.iter_mut().for_each(|w| *w /= n);
    finish(rewards, weights)
}

/// r ↦ Σ_g w_g R[g,r] for weights that are fixed for the round; walks the matrix row by row,
/// the order it is stored in.
pub fn weighted_sum(m: &RewardMatrix<'_>, weights: Vec<f64>) -> Result<Aggregated, AggregateError> {
    let mut rewards = vec![0.0; m.rollouts()];
    for (g, w) in weights.iter().enumerate() {
        for (out, v) in rewards.iter_mut().zip(m.row(g)) {
            *out += w * v;
        }
    }
    finish(rewards, weights)
}

/// Every output must be finite (the contract the host also enforces on plugins); extreme
/// rewards and parameters can still overflow, which becomes an error, not a NaN in PPO.
pub fn finish(rewards: Vec<f64>, weights: Vec<f64>) -> Result<Aggregated, AggregateError> {
    if let Some(r) = rewards.iter().position(|v| !v.is_finite()) {
        return Err(AggregateError::NotFinite(format!(
            "the aggregate of rollout {r} (the rewards are too large for this rule's parameters)"
        )));
    }
    check_finite("weight", &weights)?;
    Ok(Aggregated { rewards, weights })
}

pub fn check_finite(what: &str, values: &[f64]) -> Result<(), AggregateError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(g) => Err(AggregateError::NotFinite(format!(
            "the {what} of group {g} (the rewards are too large for this rule's parameters)"
        ))),
        None => Ok(()),
    }
}

/// Shares for `min`/`max`: the groups attaining `extreme` split the rollout evenly.
pub fn tie_shares(column: &mut [f64], extreme: f64) {
    let ties = column.iter().filter(|&&v| v == extreme).count() as f64;
    for v in column {
        *v = if *v == extreme { 1.0 / ties } else { 0.0 };
    }
}

/// log Σ_i exp(x_i), with the largest term factored out so that nothing overflows.
pub fn log_sum_exp(x: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = x.clone().fold(f64::NEG_INFINITY, f64::max);
    m + x.map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Turns `x` into softmax(x) in place and returns log Σ_i exp(x_i): one exp per entry, for the
/// per-rollout loops, where the softmax is the rollout's sensitivity shares.
pub fn softmax(x: &mut [f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    x.iter_mut().for_each(|v| *v /= sum);
    m + sum.ln()
}

/// log softmax(x) in place: the log-weights of the multiplicative and softmax-weighted rules.
pub fn log_softmax(x: &mut [f64]) {
    let lse = log_sum_exp(x.iter().copied());
    x.iter_mut().for_each(|v| *v -= lse);
}

/// Population shares as group weights (`weighted: true`): every share finite and ≥ 0, not all
/// 0; normalised to sum 1. `None` for shares no weighting can use.
pub fn population_shares(populations: &[f64]) -> Option<Vec<f64>> {
    let sum: f64 = populations.iter().sum();
    let usable = !populations.is_empty()
        && populations.iter().all(|p| p.is_finite() && *p >= 0.0)
        && sum > 0.0
        && sum.is_finite();
    usable.then(|| populations.iter().map(|p| p / sum).collect())
}

/// This round's group weights: the shares a rule was built with, or equal weights without;
/// shares for another number of groups than the matrix has are an error.
pub fn group_weights(shares: Option<&[f64]>, groups: usize) -> Result<Vec<f64>, AggregateError> {
    match shares {
        None => Ok(vec![1.0 / groups as f64; groups]),
        Some(p) if p.len() == groups => Ok(p.to_vec()),
        Some(p) => Err(AggregateError::Groups {
            expected: p.len(),
            groups,
        }),
    }
}

/// A per-group state vector must fit this round's matrix and be finite.
pub fn check_state(name: &str, values: &[f64], groups: usize) -> Result<(), AggregateError> {
    let fail = |message| Err(AggregateError::State(message));
    if values.len() != groups {
        return fail(format!(
            "`{name}` has {} entries but the reward matrix has {groups} groups",
            values.len()
        ));
    }
    if let Some(g) = values.iter().position(|v| !v.is_finite()) {
        return fail(format!("`{name}` of group {g} is not finite"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn stable_helpers() {
        // log(e^1000 + e^1000) = 1000 + ln 2, where the naive sum overflows.
        assert!(close(
            log_sum_exp([1000.0, 1000.0].into_iter()),
            1000.0 + 2f64.ln(),
            1e-12
        ));
        let mut x = [1000.0, 1000.0 + 3f64.ln()];
        let lse = softmax(&mut x);
        // softmax = [1/4, 3/4] (to the precision of 1000 + ln 3); lse = 1000 + ln 4
        assert!(close(x[0], 0.25, 1e-12) && close(x[1], 0.75, 1e-12));
        assert!(close(lse, 1000.0 + 4f64.ln(), 1e-12));
        let mut x = [0.0, 3f64.ln()];
        log_softmax(&mut x);
        assert!(close(x[0], 0.25f64.ln(), 1e-15) && close(x[1], 0.75f64.ln(), 1e-15));
    }

    #[test]
    fn overflow_is_an_error_not_a_nan() {
        let m = RewardMatrix::new(2, 1, vec![f64::MAX, f64::MAX]).unwrap();
        let err = weighted_sum(&m, vec![1.0, 1.0]).unwrap_err();
        assert!(matches!(err, AggregateError::NotFinite(_)), "{err}");
        assert!(err.to_string().contains("rollout 0"), "{err}");
    }
}
