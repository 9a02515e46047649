//! Operation-for-operation copies of the helpers in chorus-core's `aggregate` module
//! (`per_rollout`, `weighted_sum`, `finish`, `softmax`, `log_softmax`), so that the ported
//! rules give bit-identical results to the built-ins they copy. Change them only together
//! with core's.
use chorus_plugin::{AggregateError, Aggregated, RewardMatrix};

/// Runs a rule that looks at one rollout at a time: `per` gets the rollout's rewards (one per
/// group), returns the aggregate and leaves its sensitivity shares in the buffer; their mean
/// over rollouts is the logged weight.
pub(crate) fn per_rollout(
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

/// r ↦ Σ_g w_g R[g,r], walking the matrix row by row.
pub(crate) fn weighted_sum(
    m: &RewardMatrix<'_>,
    weights: Vec<f64>,
) -> Result<Aggregated, AggregateError> {
    let mut rewards = vec![0.0; m.rollouts()];
    for (g, w) in weights.iter().enumerate() {
        for (out, v) in rewards.iter_mut().zip(m.row(g)) {
            *out += w * v;
        }
    }
    finish(rewards, weights)
}

/// The equal-weight mean, what the fault injectors do while they are not failing.
pub(crate) fn mean(m: &RewardMatrix<'_>) -> Result<Aggregated, AggregateError> {
    weighted_sum(m, vec![1.0 / m.groups() as f64; m.groups()])
}

/// Every output must be finite; an overflow becomes an error, not a NaN.
fn finish(rewards: Vec<f64>, weights: Vec<f64>) -> Result<Aggregated, AggregateError> {
    if let Some(r) = rewards.iter().position(|v| !v.is_finite()) {
        return Err(AggregateError::NotFinite(format!(
            "the aggregate of rollout {r}"
        )));
    }
    check_finite("weight", &weights)?;
    Ok(Aggregated { rewards, weights })
}

pub(crate) fn check_finite(what: &str, values: &[f64]) -> Result<(), AggregateError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(g) => Err(AggregateError::NotFinite(format!(
            "the {what} of group {g}"
        ))),
        None => Ok(()),
    }
}

/// log Σ_i exp(x_i), with the largest term factored out.
fn log_sum_exp(x: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = x.clone().fold(f64::NEG_INFINITY, f64::max);
    m + x.map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Turns `x` into softmax(x) in place and returns log Σ_i exp(x_i).
pub(crate) fn softmax(x: &mut [f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    x.iter_mut().for_each(|v| *v /= sum);
    m + sum.ln()
}

/// log softmax(x) in place.
pub(crate) fn log_softmax(x: &mut [f64]) {
    let lse = log_sum_exp(x.iter().copied());
    x.iter_mut().for_each(|v| *v -= lse);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_helpers() {
        // As core's test: softmax of [1000, 1000 + ln 3] = [1/4, 3/4], lse = 1000 + ln 4.
        let mut x = [1000.0, 1000.0 + 3f64.ln()];
        let lse = softmax(&mut x);
        assert!((x[0] - 0.25).abs() < 1e-12 && (x[1] - 0.75).abs() < 1e-12);
        assert!((lse - (1000.0 + 4f64.ln())).abs() < 1e-12);
        let mut x = [0.0, 3f64.ln()];
        log_softmax(&mut x);
        assert!((x[0] - 0.25f64.ln()).abs() < 1e-15 && (x[1] - 0.75f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn overflow_is_an_error() {
        let m = RewardMatrix::new(2, 1, vec![f64::MAX, f64::MAX]).unwrap();
        let err = weighted_sum(&m, vec![1.0, 1.0]).unwrap_err();
        assert_eq!(
            err,
            AggregateError::NotFinite("the aggregate of rollout 0".into())
        );
    }
}
