//! `cvar`: per rollout, the mean reward of the worst-served q-fraction of the groups, the
//! lower-tail conditional value at risk (CVaR) of the groups' rewards. Stateless.
//!
//! With G groups, the rewards of rollout r sorted ascending, x₍₁₎ ≤ … ≤ x₍G₎, and k = ⌊qG⌋:
//!
//! ```text
//! r ↦ ( x₍₁₎ + … + x₍k₎ + (qG − k)·x₍k+1₎ ) / (qG)
//! ```
//!
//! which is Rockafellar & Uryasev's CVaR of the groups' rewards taken as equally likely
//! outcomes, r ↦ max_η { η − E[(η − R)⁺]/q } (R. T. Rockafellar & S. Uryasev, "Optimization of
//! conditional value-at-risk", Journal of Risk 2(3), 2000). The fractional term makes it
//! continuous in q: q ≤ 1/G is `min`, q = 1 is `mean`, and in between it protects the worst
//! q-share of the groups instead of the single worst one, whose identity flips from rollout to
//! rollout and makes `min`'s signal noisy. Default q = 0.25, our choice: the worst quarter.
//!
//! Logged weights: per rollout the sensitivity shares ∂r/∂R[g,r], which are the CVaR weights
//! (1/(qG) for a group below the cut, the rest of the mass for the group at it, 0 above),
//! averaged over rollouts. Where groups tie at the cut value they split its mass evenly, as
//! `min` splits a rollout between tied worst groups.
use chorus_plugin::kit::per_rollout;
use chorus_plugin::serde_json::{Map, Value};
use chorus_plugin::{AggregateError, Aggregated, Aggregator, PluginRule, RewardMatrix};

/// The `cvar` rule; built by [`PluginRule::new`] from its params.
#[derive(Debug)]
pub struct Cvar {
    /// The tail fraction q, in (0, 1].
    q: f64,
}

impl PluginRule for Cvar {
    const NAME: &'static str = "cvar";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "lower-tail CVaR: per rollout, the mean reward of the worst q-fraction of the groups";
    const PARAMS_SCHEMA: &'static str = r#"{
  "type": "object",
  "properties": {
    "q": {
      "type": "number",
      "exclusiveMinimum": 0,
      "maximum": 1,
      "default": 0.25,
      "description": "the tail fraction: each rollout's reward is the mean of the worst q-share of the groups (q <= 1/groups is min, q = 1 is mean)"
    }
  },
  "additionalProperties": false
}"#;

    fn new(params: &Map<String, Value>, _populations: &[f64]) -> Result<Self, String> {
        let mut q = 0.25;
        for (key, value) in params {
            match key.as_str() {
                "q" => {
                    q = value
                        .as_f64()
                        .ok_or_else(|| format!("`q` must be a number, not {value}"))?;
                }
                other => return Err(format!("cvar has no param `{other}`; it takes only `q`")),
            }
        }
        if !(q > 0.0 && q <= 1.0) {
            return Err(format!("`q` is {q}; it must lie in (0, 1]"));
        }
        Ok(Cvar { q })
    }
}

impl Aggregator for Cvar {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let groups = rewards.groups();
        // qG, the tail's mass in groups: in (0, G] since 0 < q ≤ 1 and rounding is monotone.
        let mass = self.q * groups as f64;
        // The last sorted position with mass, ⌈qG⌉ − 1; its value is the cut.
        let cut_at = mass.ceil() as usize - 1;
        let mut sorted = vec![0.0; groups];
        per_rollout(rewards, |column| {
            sorted.copy_from_slice(column);
            let (_, &mut cut, _) = sorted.select_nth_unstable_by(cut_at, f64::total_cmp);
            let below = column.iter().filter(|&&v| v < cut).count() as f64;
            let ties = column.iter().filter(|&&v| v == cut).count() as f64;
            // Below the cut a group carries a whole unit of the mass, the tied groups share
            // what is left (at most one unit each, since the cut is the last position with mass).
            let tied_share = (mass - below) / ties / mass;
            // Σ_g share_g·R[g,r] with shares summing to 1: a convex combination, so the sum
            // stays finite for any finite rewards, unlike Σ x / qG. The shares are left in the
            // column: they are ∂r/∂R[g,r], which per_rollout averages into the weights.
            let mut reward = 0.0;
            for v in column.iter_mut() {
                let share = if *v < cut {
                    1.0 / mass
                } else if *v == cut {
                    tied_share
                } else {
                    0.0
                };
                reward += share * *v;
                *v = share;
            }
            reward
        })
    }
}

#[cfg(test)]
mod tests {
    use chorus_plugin::serde_json::json;

    use super::*;

    fn cvar(q: f64) -> Cvar {
        let params = json!({ "q": q });
        Cvar::new(params.as_object().unwrap(), &[]).unwrap()
    }

    fn run(rule: &Cvar, groups: usize, rollouts: usize, values: Vec<f64>) -> Aggregated {
        let m = RewardMatrix::new(groups, rollouts, values).unwrap();
        let mut state = Value::Null;
        let out = rule.aggregate(&m, 1, &mut state).unwrap();
        assert_eq!(state, Value::Null, "cvar is stateless");
        assert_eq!(out.rewards.len(), rollouts);
        assert_eq!(out.weights.len(), groups);
        let sum: f64 = out.weights.iter().sum();
        assert!((sum - 1.0).abs() < 1e-12, "weights sum to {sum}");
        out
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn fractional_tail() {
        // Four groups, q = 0.3: qG = 1.2, k = 1. Column [0.1, 0.5, 0.9, 0.3] sorted is
        // [0.1, 0.3, 0.5, 0.9]: (0.1 + 0.2·0.3) / 1.2 = 0.16 / 1.2 = 0.133333.
        // Shares: group 0 1/1.2 = 0.833333, group 3 0.2/1.2 = 0.166667.
        let out = run(&cvar(0.3), 4, 1, vec![0.1, 0.5, 0.9, 0.3]);
        assert!(close(out.rewards[0], 0.16 / 1.2), "{:?}", out.rewards);
        assert!(close(out.weights[0], 1.0 / 1.2) && close(out.weights[3], 0.2 / 1.2));
        assert_eq!((out.weights[1], out.weights[2]), (0.0, 0.0));
        // q = 0.5: qG = 2, the two worst in full: (0.1 + 0.3) / 2 = 0.2.
        let out = run(&cvar(0.5), 4, 1, vec![0.1, 0.5, 0.9, 0.3]);
        assert!(close(out.rewards[0], 0.2));
        assert_eq!(out.weights, [0.5, 0.0, 0.0, 0.5]);
    }

    #[test]
    fn small_q_is_min_and_q_one_is_mean() {
        // [[0.1, 0.9, 0.5, 0.7], [0.6, 0.3, 0.5, 0.2]] (built-in min's hand matrix): with
        // q ≤ 1/2 the min per column, [0.1, 0.3, 0.5, 0.2]; group 0 is worst on rollout 0,
        // group 1 on 1 and 3, they tie on 2: weights [1.5, 2.5] / 4 = [0.375, 0.625].
        let values = vec![0.1, 0.9, 0.5, 0.7, 0.6, 0.3, 0.5, 0.2];
        for q in [1e-9, 0.25, 0.5] {
            let out = run(&cvar(q), 2, 4, values.clone());
            assert_eq!(out.rewards, [0.1, 0.3, 0.5, 0.2], "q = {q}");
            assert!(close(out.weights[0], 0.375) && close(out.weights[1], 0.625));
        }
        // q = 1: the mean, (0.1 + 0.6)/2 = 0.35, 0.6, 0.5, 0.45, every group weighted ½.
        let out = run(&cvar(1.0), 2, 4, values);
        for (got, want) in out.rewards.iter().zip([0.35, 0.6, 0.5, 0.45]) {
            assert!(close(*got, want), "{:?}", out.rewards);
        }
        assert_eq!(out.weights, [0.5, 0.5]);
    }

    #[test]
    fn ties_at_the_cut_share_its_mass() {
        // [0.1, 0.4, 0.4, 0.9], q = 0.5: qG = 2, cut 0.4 with one group below it; the two
        // tied groups share the remaining unit: shares [0.5, 0.25, 0.25, 0],
        // r = 0.05 + 0.1 + 0.1 = 0.25 = (0.1 + 0.4) / 2.
        let out = run(&cvar(0.5), 4, 1, vec![0.1, 0.4, 0.4, 0.9]);
        assert!(close(out.rewards[0], 0.25));
        assert_eq!(out.weights, [0.5, 0.25, 0.25, 0.0]);
        // [0.2, 0.2, 0.9, 0.5], q = 0.25: qG = 1, both 0.2s tie at the cut: ½ each, r = 0.2.
        let out = run(&cvar(0.25), 4, 1, vec![0.2, 0.2, 0.9, 0.5]);
        assert_eq!(out.rewards, [0.2]);
        assert_eq!(out.weights, [0.5, 0.5, 0.0, 0.0]);
        // q = 0.75: qG = 3, cut 0.5 above the tied pair: (0.2 + 0.2 + 0.5) / 3 = 0.3.
        let out = run(&cvar(0.75), 4, 1, vec![0.2, 0.2, 0.9, 0.5]);
        assert!(close(out.rewards[0], 0.3));
        assert!([0, 1, 3].iter().all(|&g| close(out.weights[g], 1.0 / 3.0)));
        // Every group equal: each carries 1/G whatever q.
        let out = run(&cvar(0.3), 3, 1, vec![0.7; 3]);
        assert!(close(out.rewards[0], 0.7));
        assert!(out.weights.iter().all(|&w| close(w, 1.0 / 3.0)));
    }

    #[test]
    fn one_group_is_its_reward() {
        for q in [0.01, 0.25, 1.0] {
            let out = run(&cvar(q), 1, 3, vec![0.3, -2.0, 5.0]);
            assert_eq!(out.rewards, [0.3, -2.0, 5.0]);
            assert_eq!(out.weights, [1.0]);
        }
    }

    #[test]
    fn extreme_rewards_stay_finite() {
        // Σ x / qG would overflow; the convex combination does not: (MAX + MAX)/2 = MAX.
        let out = run(&cvar(1.0), 2, 1, vec![f64::MAX, f64::MAX]);
        assert_eq!(out.rewards, [f64::MAX]);
    }

    #[test]
    fn bad_params_are_refused() {
        let new = |params: Value| Cvar::new(params.as_object().unwrap(), &[]);
        assert_eq!(new(json!({})).unwrap().q, 0.25);
        for bad in [0.0, -0.5, 1.5] {
            let err = new(json!({ "q": bad })).unwrap_err();
            assert!(err.contains("(0, 1]"), "{err}");
        }
        assert!(new(json!({ "q": "half" })).unwrap_err().contains("number"));
        assert!(new(json!({ "tau": 0.5 })).unwrap_err().contains("`tau`"));
    }

    #[test]
    fn schema_is_json() {
        let schema: Value = chorus_plugin::serde_json::from_str(Cvar::PARAMS_SCHEMA).unwrap();
        assert_eq!(schema["properties"]["q"]["default"], 0.25);
    }
}
