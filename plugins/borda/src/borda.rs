//! `borda`: the Borda count of the groups' rankings of this round's rollouts. Stateless.
//!
//! Each group ranks the round's R rollouts by its own rewards, rank 0 the worst … R − 1 the
//! best, tied rollouts sharing the mean of the ranks they span; a rollout's aggregate is the
//! mean over groups of its normalised rank:
//!
//! ```text
//! r ↦ Σ_g w_g · rank_g(r) / (R − 1)      in [0, 1]   (½ for every rollout when R = 1)
//! ```
//!
//! with w_g = 1/G, or each group's population share with `weighted: true`. This is J.-C. de
//! Borda's positional voting rule ("Mémoire sur les élections au scrutin", Histoire de
//! l'Académie Royale des Sciences, 1781) with the groups as voters and the rollouts as
//! candidates, applied to the federated RLHF setting of this project's seed papers (Srewa,
//! Zhao & Elmalaki: PluralLLM, arXiv 2503.09925, and arXiv 2512.08786), where the server
//! sees each group's rewards for the rollouts and nothing else.
//!
//! Why ranks: the aggregate is scale-free. Any strictly increasing transform of one group's
//! rewards, a different one per group, leaves it unchanged, so a group whose reward model is
//! miscalibrated or spreads its rewards wider cannot outweigh the others; only each group's
//! order of preference counts. It is `mean` after chorus's `normalize: rank`, as one rule.
//!
//! Logged weights: the group weights w. (The aggregate is piecewise constant in the rewards,
//! so the sensitivity ∂r/∂R[g,r] the other rules log is 0 almost everywhere and says
//! nothing; w is how much each group's ranking counts.)
use chorus_plugin::kit::{group_weights, population_shares};
use chorus_plugin::serde_json::{Map, Value};
use chorus_plugin::{AggregateError, Aggregated, Aggregator, PluginRule, RewardMatrix};

/// The `borda` rule; built by [`PluginRule::new`] from its params.
#[derive(Debug)]
pub struct Borda {
    /// Normalised population shares with `weighted: true`; `None` for equal weights.
    populations: Option<Vec<f64>>,
}

impl PluginRule for Borda {
    const NAME: &'static str = "borda";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Borda count: the mean over groups of each rollout's normalised rank (scale-free)";
    const PARAMS_SCHEMA: &'static str = r#"{
  "type": "object",
  "properties": {
    "weighted": {
      "type": "boolean",
      "default": false,
      "description": "weight each group's ranking by its public population share instead of equally"
    }
  },
  "additionalProperties": false
}"#;

    fn new(params: &Map<String, Value>, populations: &[f64]) -> Result<Self, String> {
        let mut weighted = false;
        for (key, value) in params {
            match key.as_str() {
                "weighted" => {
                    weighted = value
                        .as_bool()
                        .ok_or_else(|| format!("`weighted` must be true or false, not {value}"))?;
                }
                other => {
                    return Err(format!(
                        "borda has no param `{other}`; it takes only `weighted`"
                    ))
                }
            }
        }
        let populations = weighted.then(|| shares(populations)).transpose()?;
        Ok(Borda { populations })
    }
}

/// Population shares as group weights, or why `weighted: true` cannot use them.
fn shares(populations: &[f64]) -> Result<Vec<f64>, String> {
    population_shares(populations).ok_or_else(|| {
        format!(
            "`weighted: true` needs the groups' population shares, but they are {populations:?}"
        )
    })
}

impl Aggregator for Borda {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let groups = rewards.groups();
        let weights = group_weights(self.populations.as_deref(), groups)?;
        let n = rewards.rollouts();
        if n == 1 {
            return Ok(Aggregated {
                rewards: vec![0.5],
                weights,
            });
        }
        let top = (n - 1) as f64;
        let mut out = vec![0.0; n];
        // One ordering buffer for all groups; each sort starts from the last group's order.
        let mut order: Vec<usize> = (0..n).collect();
        for (g, w) in weights.iter().enumerate() {
            let row = rewards.row(g);
            // total_cmp orders every finite value and keeps −0.0 next to 0.0, so the runs of
            // `==` below are exactly the ties.
            order.sort_unstable_by(|&a, &b| row[a].total_cmp(&row[b]));
            let mut start = 0;
            for tied in order.chunk_by(|&a, &b| row[a] == row[b]) {
                // The mean of ranks start ..= start + len − 1.
                let rank = (2 * start + tied.len() - 1) as f64 / 2.0;
                for &r in tied {
                    out[r] += w * (rank / top);
                }
                start += tied.len();
            }
        }
        Ok(Aggregated {
            rewards: out,
            weights,
        })
    }
}

#[cfg(test)]
mod tests {
    use chorus_plugin::serde_json::json;

    use super::*;

    fn borda(params: Value, populations: &[f64]) -> Result<Borda, String> {
        Borda::new(params.as_object().unwrap(), populations)
    }

    fn run(rule: &Borda, groups: usize, rollouts: usize, values: Vec<f64>) -> Aggregated {
        let m = RewardMatrix::new(groups, rollouts, values).unwrap();
        let mut state = Value::Null;
        let out = rule.aggregate(&m, 1, &mut state).unwrap();
        assert_eq!(state, Value::Null, "borda is stateless");
        assert_eq!(out.rewards.len(), rollouts);
        let sum: f64 = out.weights.iter().sum();
        assert!((sum - 1.0).abs() < 1e-12, "weights sum to {sum}");
        out
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    /// Two groups that disagree about three rollouts.
    const TWO_BY_THREE: [f64; 6] = [0.9, 0.5, 0.1, 0.2, 0.3, 0.8];

    #[test]
    fn hand_matrix() {
        // Group 0 [0.9, 0.5, 0.1]: ranks [2, 1, 0] → /2 → [1, 0.5, 0].
        // Group 1 [0.2, 0.3, 0.8]: ranks [0, 1, 2] → [0, 0.5, 1].
        // Mean: [0.5, 0.5, 0.5]: each rollout is one group's best and the other's worst.
        let rule = borda(json!({}), &[]).unwrap();
        let out = run(&rule, 2, 3, TWO_BY_THREE.to_vec());
        assert!(close(&out.rewards, &[0.5, 0.5, 0.5]), "{:?}", out.rewards);
        assert_eq!(out.weights, [0.5, 0.5]);
        // Three groups, four rollouts:
        // g0 [0.1, 0.4, 0.2, 0.3] ranks [0, 3, 1, 2]
        // g1 [5.0, 1.0, 3.0, 2.0] ranks [3, 0, 2, 1]
        // g2 [0.0, 0.9, 0.8, 0.7] ranks [0, 3, 2, 1]
        // sums [3, 6, 5, 4] / (3 groups · 3) = [1/3, 2/3, 5/9, 4/9]
        let values = vec![0.1, 0.4, 0.2, 0.3, 5.0, 1.0, 3.0, 2.0, 0.0, 0.9, 0.8, 0.7];
        let out = run(&rule, 3, 4, values);
        let want = [1.0 / 3.0, 2.0 / 3.0, 5.0 / 9.0, 4.0 / 9.0];
        assert!(close(&out.rewards, &want), "{:?}", out.rewards);
    }

    #[test]
    fn ties_share_their_mean_rank() {
        // One group [0.5, 0.2, 0.5, 0.5]: 0.2 is rank 0, the three 0.5s span ranks 1..=3 and
        // get 2 each; /3 → [2/3, 0, 2/3, 2/3].
        let rule = borda(json!({}), &[]).unwrap();
        let out = run(&rule, 1, 4, vec![0.5, 0.2, 0.5, 0.5]);
        assert!(close(&out.rewards, &[2.0 / 3.0, 0.0, 2.0 / 3.0, 2.0 / 3.0]));
        assert_eq!(out.weights, [1.0]);
        // A constant row: everything ties at the middle rank, ½; −0.0 equals 0.0.
        let out = run(&rule, 1, 3, vec![0.0, -0.0, 0.0]);
        assert!(close(&out.rewards, &[0.5, 0.5, 0.5]), "{:?}", out.rewards);
    }

    #[test]
    fn one_rollout_is_a_half() {
        let rule = borda(json!({}), &[]).unwrap();
        let out = run(&rule, 3, 1, vec![0.1, 7.0, -3.0]);
        assert_eq!(out.rewards, [0.5]);
    }

    #[test]
    fn scale_free() {
        // Any strictly increasing transform per group leaves the aggregate as it was.
        let rule = borda(json!({}), &[]).unwrap();
        let before = run(&rule, 2, 3, TWO_BY_THREE.to_vec());
        let squashed: Vec<f64> = TWO_BY_THREE
            .iter()
            .enumerate()
            .map(|(i, v)| if i < 3 { 1000.0 * v - 7.0 } else { v.exp() })
            .collect();
        let after = run(&rule, 2, 3, squashed);
        assert_eq!(before.rewards, after.rewards);
    }

    #[test]
    fn population_weighted() {
        // Shares 3:1 → [0.75, 0.25]; normalised ranks [1, 0.5, 0] and [0, 0.5, 1]:
        // [0.75, 0.5, 0.25].
        let rule = borda(json!({ "weighted": true }), &[3.0, 1.0]).unwrap();
        let out = run(&rule, 2, 3, TWO_BY_THREE.to_vec());
        assert!(close(&out.rewards, &[0.75, 0.5, 0.25]), "{:?}", out.rewards);
        assert_eq!(out.weights, [0.75, 0.25]);
        // Shares for three groups do not fit a two-group matrix.
        let rule = borda(json!({ "weighted": true }), &[0.2, 0.3, 0.5]).unwrap();
        let m = RewardMatrix::new(2, 3, TWO_BY_THREE.to_vec()).unwrap();
        assert_eq!(
            rule.aggregate(&m, 1, &mut Value::Null),
            Err(AggregateError::Groups {
                expected: 3,
                groups: 2
            })
        );
        // Unweighted ignores the populations.
        let rule = borda(json!({ "weighted": false }), &[3.0, 1.0]).unwrap();
        assert_eq!(run(&rule, 2, 3, TWO_BY_THREE.to_vec()).weights, [0.5, 0.5]);
    }

    #[test]
    fn bad_params_are_refused() {
        assert!(borda(json!({ "weighted": "yes" }), &[]).is_err());
        assert!(borda(json!({ "q": 0.5 }), &[]).unwrap_err().contains("`q`"));
        for bad in [&[][..], &[0.0, 0.0], &[1.0, -1.0], &[f64::NAN, 1.0]] {
            let err = borda(json!({ "weighted": true }), bad).unwrap_err();
            assert!(err.contains("population shares"), "{err}");
        }
    }

    #[test]
    fn schema_is_json() {
        let schema: Value = chorus_plugin::serde_json::from_str(Borda::PARAMS_SCHEMA).unwrap();
        assert_eq!(schema["properties"]["weighted"]["default"], false);
    }
}
