//! `adaptive_alpha`: the seed paper's scheme (Srewa, Zhao & Elmalaki, "A Systematic Evaluation
//! of Preference Aggregation in Federated RLHF for Pluralistic Alignment of LLMs",
//! arXiv 2512.08786): weight each group by how badly it has been served so far.
//!
//! Per round, with a_g the mean of group g's rewards this round:
//! - history h_g ← β·h_g + (1 − β)·a_g, and h = a at the first round (state `null`);
//! - weights α = softmax((1 − h)/T), so the less-aligned a group's history, the larger its α;
//! - form `weighted`: r ↦ Σ_g α_g R[g,r];
//! - form `switching`: if Jain's index of h ≥ τ the groups are evenly served and r is the plain
//!   mean; else the α-weighted soft-min r ↦ −T·log Σ_g α_g exp(−R[g,r]/T).
//!
//! The paper tracks each group's alignment; the server may see nothing but rewards, so a_g is
//! the group's mean reward, its own reward model's verdict on this round's rollouts. Defaults
//! (β = 0.8, T = 0.1, τ = 0.9) are this project's, chosen for rewards in [0, 1]: a history with
//! a half-life of about three rounds, and a temperature at which a 0.1 gap in h is a factor e
//! in weight. State: `{"h": [h_g …]}`.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::entry::{builtin, RuleEntry};
use crate::registry::ParamError;

use super::{
    check_finite, check_state, log_softmax, per_rollout, read_state, softmax, weighted_sum,
    AggregateError, Aggregated, Aggregator, RewardMatrix,
};
use crate::metric::jain;

/// How the rule turns its group weights α into one reward per rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Form {
    /// The α-weighted mean of the groups' rewards (the default).
    #[default]
    Weighted,
    /// The plain mean while the groups are evenly served (Jain's index of their history ≥ `tau`),
    /// else the α-weighted soft-min.
    Switching,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Knobs {
    /// Temperature T of the group weights α = softmax((1 − h)/T) and of the switching
    /// soft-min; > 0, default 0.1 (smaller T leans harder on the worst group).
    #[serde(default = "default_temperature")]
    temperature: f64,
    /// How much of the alignment history each round keeps, h ← β·h + (1 − β)·a; in [0, 1),
    /// default 0.8 (0 = this round only).
    #[serde(default = "default_beta")]
    beta: f64,
    /// With `form: switching`: the Jain's-index threshold at or above which the groups count
    /// as evenly served and the plain mean is used; in (0, 1], default 0.9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tau: Option<f64>,
    /// `weighted` (default) or `switching`.
    #[serde(default)]
    form: Form,
}

fn default_temperature() -> f64 {
    0.1
}

fn default_beta() -> f64 {
    0.8
}

pub(super) fn rule() -> RuleEntry {
    builtin::<Knobs>(
        "adaptive_alpha",
        "the seed paper's adaptive weights: softmax of each group's under-alignment history",
        |k, _| Ok(Box::new(AdaptiveAlpha::new(k)?)),
    )
}

/// The two forms, with τ only where it is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Mode {
    Weighted,
    Switching { tau: f64 },
}

#[derive(Debug)]
pub(super) struct AdaptiveAlpha {
    /// T > 0.
    pub(super) temperature: f64,
    /// β in [0, 1).
    pub(super) beta: f64,
    pub(super) mode: Mode,
}

/// The state this rule writes and reads back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct History {
    h: Vec<f64>,
}

impl AdaptiveAlpha {
    fn new(k: Knobs) -> Result<Self, ParamError> {
        let temperature = k.temperature;
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(ParamError::range("temperature", temperature, "be > 0", 0.1));
        }
        let beta = k.beta;
        if !(0.0..1.0).contains(&beta) {
            return Err(ParamError::range("beta", beta, "lie in [0, 1)", 0.8));
        }
        let mode = match k.form {
            Form::Weighted if k.tau.is_some() => {
                return Err(ParamError::invalid(
                    "tau",
                    "`tau` is only used by `form: switching`",
                    "add `form: switching`, or remove `tau`",
                ))
            }
            Form::Weighted => Mode::Weighted,
            Form::Switching => {
                let tau = k.tau.unwrap_or(0.9);
                if !(tau > 0.0 && tau <= 1.0) {
                    return Err(ParamError::range("tau", tau, "lie in (0, 1]", 0.9));
                }
                Mode::Switching { tau }
            }
        };
        Ok(AdaptiveAlpha {
            temperature,
            beta,
            mode,
        })
    }
}

impl Aggregator for AdaptiveAlpha {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let groups = rewards.groups();
        let a = rewards.group_means();
        let h = match read_state::<History>(state)? {
            None => a,
            Some(History { mut h }) => {
                check_state("h", &h, groups)?;
                for (h, a) in h.iter_mut().zip(&a) {
                    *h = self.beta * *h + (1.0 - self.beta) * a;
                }
                h
            }
        };
        check_finite("history", &h)?;
        let t = self.temperature;
        let mut log_alpha: Vec<f64> = h.iter().map(|h| (1.0 - h) / t).collect();
        log_softmax(&mut log_alpha);
        let out = match self.mode {
            Mode::Weighted => weighted_sum(rewards, log_alpha.iter().map(|l| l.exp()).collect())?,
            Mode::Switching { tau } if jain(&h) >= tau => {
                weighted_sum(rewards, vec![1.0 / groups as f64; groups])?
            }
            // −T·log Σ α_g e^{−R_g/T} = −T·logsumexp(log α_g − R_g/T); the softmax left in the
            // column is the posterior α_g e^{−R_g/T} / Σ, which is ∂r/∂R_g.
            Mode::Switching { .. } => per_rollout(rewards, |column| {
                for (v, l) in column.iter_mut().zip(&log_alpha) {
                    *v = l - *v / t;
                }
                -t * softmax(column)
            })?,
        };
        *state = serde_json::json!({ "h": h });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{close, two_groups};
    use super::super::RewardMatrix;
    use super::*;

    fn rule(form: Form) -> Box<dyn Aggregator> {
        let knobs = serde_json::json!({ "form": form });
        super::rule()
            .build(knobs.as_object().unwrap(), &[])
            .unwrap()
    }

    /// α at round 1 on [[1.0, 0.8], [0.2, 0.4]]: h = a = [0.9, 0.3],
    /// (1 − h)/T = [1, 7], α = [e^1, e^7]/(e^1 + e^7) = [1/(1 + e^6), e^6/(1 + e^6)]
    /// = [0.0024726, 0.9975274].
    const A0: f64 = 0.0024726231566347743;

    #[test]
    fn weighted_hand_matrix() {
        let mut state = Value::Null;
        let out = rule(Form::Weighted)
            .aggregate(&two_groups(), 1, &mut state)
            .unwrap();
        assert!(close(out.weights[0], A0, 1e-12) && close(out.weights[1], 1.0 - A0, 1e-12));
        // α0·1.0 + α1·0.2 = 0.2019781, α0·0.8 + α1·0.4 = 0.4009890
        assert!(close(out.rewards[0], 0.2019781, 1e-7), "{:?}", out.rewards);
        assert!(close(out.rewards[1], 0.4009890, 1e-7), "{:?}", out.rewards);
        let h: Vec<f64> = serde_json::from_value(state["h"].clone()).unwrap();
        assert!(
            close(h[0], 0.9, 1e-15) && close(h[1], 0.3, 1e-15),
            "{state}"
        );
    }

    #[test]
    fn history_keeps_weight_on_the_under_aligned_group() {
        let agg = rule(Form::Weighted);
        let mut state = Value::Null;
        agg.aggregate(&two_groups(), 1, &mut state).unwrap();
        // Round 2 serves both groups equally (a = [0.5, 0.5]), but history remembers:
        // h = 0.8·[0.9, 0.3] + 0.2·[0.5, 0.5] = [0.82, 0.34];
        // α1 = 1/(1 + e^{−(0.82 − 0.34)/0.1}) = 1/(1 + e^{−4.8}) = 0.9918374.
        let even = RewardMatrix::new(2, 2, vec![0.5; 4]).unwrap();
        let out = agg.aggregate(&even, 2, &mut state).unwrap();
        assert!(close(out.weights[1], 0.9918374, 1e-7), "{:?}", out.weights);
        // As rounds keep serving both equally, h converges and the weights even out, slowly.
        let mut previous = out.weights[1];
        for round in 3..=40 {
            let out = agg.aggregate(&even, round, &mut state).unwrap();
            assert!(out.weights[1] < previous && out.weights[1] > 0.5);
            previous = out.weights[1];
        }
        assert!(previous < 0.51, "{previous}");
    }

    #[test]
    fn switching_takes_mean_when_even_and_soft_min_when_not() {
        let agg = rule(Form::Switching);
        // Equal groups: a = [0.6, 0.6], Jain = 1 ≥ 0.9, so the plain mean [0.6, 0.6].
        let even = RewardMatrix::new(2, 2, vec![0.5, 0.7, 0.7, 0.5]).unwrap();
        let mut state = Value::Null;
        let out = agg.aggregate(&even, 1, &mut state).unwrap();
        assert!(close(out.rewards[0], 0.6, 1e-15) && close(out.rewards[1], 0.6, 1e-15));
        assert_eq!(out.weights, [0.5, 0.5]);
        // Unequal: h = [0.9, 0.3], Jain = 1.2²/(2·0.9) = 0.8 < 0.9, so the soft-min with
        // α = [0.0024726, 0.9975274], T = 0.1:
        // −0.1·ln(α0·e^−10 + α1·e^−2) = 0.2002475, −0.1·ln(α0·e^−8 + α1·e^−4) = 0.4002430
        let mut state = Value::Null;
        let out = agg.aggregate(&two_groups(), 1, &mut state).unwrap();
        assert!(close(out.rewards[0], 0.2002475, 1e-7), "{:?}", out.rewards);
        assert!(close(out.rewards[1], 0.4002430, 1e-7), "{:?}", out.rewards);
        // Nearly all of the posterior sits on group 1.
        assert!(out.weights[1] > 0.9999, "{:?}", out.weights);
    }

    #[test]
    fn state_round_trips_and_foreign_state_is_an_error() {
        let agg = rule(Form::Switching);
        let m = RewardMatrix::new(3, 2, vec![0.91, 0.13, 0.37, 0.59, 0.6, 0.71]).unwrap();
        let mut state = Value::Null;
        agg.aggregate(&m, 1, &mut state).unwrap();
        let mut reread: Value =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(reread, state);
        let a = agg.aggregate(&m, 2, &mut state).unwrap();
        let b = agg.aggregate(&m, 2, &mut reread).unwrap();
        assert_eq!(a, b);
        assert_eq!(state, reread);
        for bad in [
            serde_json::json!({ "w": [0.5, 0.25, 0.25] }),
            serde_json::json!({ "h": [0.5, 0.5] }),
            serde_json::json!({ "h": [0.5, "x", 0.5] }),
            serde_json::json!({ "h": [0.5, 0.5, 0.5], "extra": 1 }),
            serde_json::json!("h"),
        ] {
            let mut state = bad.clone();
            let err = agg.aggregate(&m, 2, &mut state).unwrap_err();
            assert!(matches!(err, AggregateError::State(_)), "{err}");
            assert_eq!(state, bad, "state must be left alone on error");
        }
    }
}
