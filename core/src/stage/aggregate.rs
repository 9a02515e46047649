//! The `aggregate` stage: the server turns the groups' reward matrix into one reward per
//! rollout. It sees the matrix, the round and its own previous state: nothing else.
//!
//! Its params are `{rule, normalize, ...the rule's own knobs}`. `rule` is looked up in the
//! run's [`Registry`] (built-ins and plugins alike) and the knobs are checked by that rule;
//! `normalize` belongs to the stage and is applied before any rule sees the matrix.
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use super::artifact::Reading;
use super::{Artifact, Context, Inputs, Rewards, Stage, StageError};
use crate::aggregate::{Aggregator, Normalize, ParamError, RewardMatrix, Source};
use crate::diagnostic::{suggest, Diagnostic};
use crate::registry::Registry;
use crate::spec::{params, Blame};

/// The aggregated rewards, with the rule's state to carry into the next round.
#[derive(Debug)]
pub struct Aggregated {
    /// One per rollout of the round.
    pub rewards: Vec<f64>,
    /// Rollouts whose written answer named no option (when the policy writes its answers).
    pub unparsed: Option<usize>,
    pub groups: Vec<String>,
    /// The effective weight each group got this round.
    pub weights: Vec<f64>,
    /// Each group's mean reward this round, before normalisation: the signal each group
    /// sent, logged beside the weights so what was optimised can be followed per group.
    /// Empty for an artifact restored from a checkpoint (its rows are already recorded).
    pub group_rewards: Vec<f64>,
    /// The rule's state after this round (checkpointed with the run).
    pub state: Value,
}

impl Aggregated {
    pub fn readings(&self) -> Vec<Reading> {
        let weights = self
            .groups
            .iter()
            .zip(&self.weights)
            .map(|(g, w)| Reading::group(g, "aggregate_weight", *w));
        let rewards = self
            .groups
            .iter()
            .zip(&self.group_rewards)
            .map(|(g, r)| Reading::group(g, "group_reward", *r));
        weights
            .chain(rewards)
            .chain(
                self.unparsed
                    .map(|n| Reading::all("unparsed_answers", n as f64)),
            )
            .collect()
    }
}

/// The stage as resolved: which rule with which knobs, built once per run on its first round
/// (it needs the groups' population shares, which only the data knows).
#[derive(Debug)]
pub struct AggregateStage {
    rule: String,
    knobs: Map<String, Value>,
    normalize: Normalize,
    /// The reward of a written answer that names no option (see [`expand`]).
    unparsed: Option<f64>,
    registry: Arc<Registry>,
    built: OnceLock<Result<Box<dyn Aggregator>, String>>,
}

/// The keys the stage reads itself; every other key is the rule's.
const STAGE_KEYS: [&str; 3] = ["rule", "normalize", "unparsed_reward"];

impl AggregateStage {
    /// Checks `raw` (the params at `path`) against the registry and builds the stage. The rule
    /// is built once here, with equal population shares, so that every knob error is found
    /// before the run starts.
    pub fn resolve(
        raw: &Map<String, Value>,
        path: &str,
        blame: &Blame<'_>,
        registry: &Arc<Registry>,
        groups: usize,
    ) -> Result<Self, Vec<Diagnostic>> {
        let at = |key: &str| blame.at(&format!("{path}.{key}"));
        let rule = match raw.get("rule") {
            Some(Value::String(rule)) => rule.clone(),
            Some(other) => {
                return Err(vec![Diagnostic::new(
                    at("rule"),
                    format!("`rule` must be a rule's name, not {other}"),
                    suggest("", &registry.rules.names(), "rules"),
                )])
            }
            None => {
                return Err(vec![Diagnostic::new(
                    blame.at(path),
                    "the `aggregate` params need the field `rule`",
                    format!("add `rule:` ({})", registry.rules.names().join(", ")),
                )])
            }
        };
        let Some(entry) = registry.rules.get(&rule) else {
            return Err(vec![Diagnostic::new(
                at("rule"),
                format!("unknown aggregation rule `{rule}`"),
                format!(
                    "{}; a plugin's rule needs its library under `plugins:`",
                    suggest(&rule, &registry.rules.names(), "rules")
                ),
            )]);
        };
        let normalize = match raw.get("normalize") {
            None => Normalize::None,
            Some(v) => {
                params::<Normalize>(v, &format!("{path}.normalize"), blame).map_err(|d| vec![d])?
            }
        };
        let unparsed = match raw.get("unparsed_reward") {
            None => None,
            Some(v) => match v.as_f64().filter(|x| x.is_finite()) {
                Some(x) => Some(x),
                None => {
                    return Err(vec![Diagnostic::new(
                        at("unparsed_reward"),
                        format!("`unparsed_reward` must be a finite number, not {v}"),
                        "e.g. `unparsed_reward: -5`, or leave it out for the round's lowest reward",
                    )])
                }
            },
        };
        let knobs: Map<String, Value> = raw
            .iter()
            .filter(|(k, _)| !STAGE_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let g = groups.max(1);
        if let Err(errors) = entry.build(&knobs, &vec![1.0 / g as f64; g]) {
            let describe = |e: ParamError| match e {
                ParamError::Shape {
                    path: inner,
                    message,
                } => {
                    let full = crate::spec::child_path(path, &inner);
                    let mut d = blame.serde_at(&full, &message);
                    if let Some(knob) = unknown_field(&message) {
                        let users: Vec<&str> = registry
                            .rules
                            .iter()
                            .filter(|r| r.takes(knob))
                            .map(|r| r.name.as_str())
                            .collect();
                        if !users.is_empty() {
                            d.hint = format!(
                                "`{knob}` is a knob of {}, not of `{rule}`; remove it",
                                users.join(", ")
                            );
                        }
                    }
                    d
                }
                ParamError::Invalid {
                    field,
                    message,
                    hint,
                } => Diagnostic::new(
                    blame.at(&crate::spec::child_path(path, &field)),
                    format!("rule `{rule}` ({}): {message}", entry.source),
                    hint,
                ),
            };
            return Err(errors.into_iter().map(describe).collect());
        }
        Ok(AggregateStage {
            rule,
            knobs,
            normalize,
            unparsed,
            registry: Arc::clone(registry),
            built: OnceLock::new(),
        })
    }

    /// The rule, built on first use with the groups' real population shares.
    fn rule(&self, populations: &[f64]) -> Result<&dyn Aggregator, StageError> {
        let built = self.built.get_or_init(|| {
            let entry = self
                .registry
                .rules
                .get(&self.rule)
                .expect("the rule was found when the stage was resolved");
            entry.build(&self.knobs, &shares(populations)).map_err(|e| {
                let lines: Vec<&str> = e.iter().map(ParamError::message).collect();
                lines.join("; ")
            })
        });
        match built {
            Ok(rule) => Ok(rule.as_ref()),
            Err(e) => Err(StageError(format!("rule `{}`: {e}", self.rule))),
        }
    }
}

/// The round's rewards for every rollout from the aggregated rewards of the answered ones:
/// a written answer that names no option gets `unparsed`, the server's format penalty, by
/// default the lowest aggregated reward of the round (never better than the worst real
/// answer, whatever the rewards' scale). Groups never see such answers, so no rule's weights
/// are moved by them.
fn expand(rewards: &[f64], answered: &[usize], rollouts: usize, unparsed: Option<f64>) -> Vec<f64> {
    if answered.len() == rollouts {
        return rewards.to_vec();
    }
    let penalty = unparsed.unwrap_or_else(|| rewards.iter().copied().fold(f64::INFINITY, f64::min));
    let mut all = vec![penalty; rollouts];
    for (&i, &r) in answered.iter().zip(rewards) {
        all[i] = r;
    }
    all
}

/// A round in which no written answer named an option: the rule has nothing to weigh, so every
/// rollout gets the format penalty (0 unless `unparsed_reward` is set: with equal rewards
/// the update's whitened advantages are then the value baseline's alone) and the rule's
/// weights and state carry over unchanged.
fn unanswered(
    rewards: &Rewards,
    previous: Option<&Artifact>,
    state: Value,
    unparsed: Option<f64>,
) -> Aggregated {
    let groups: Vec<String> = rewards.groups.iter().map(|g| g.name.clone()).collect();
    let g = groups.len();
    let weights = match previous {
        Some(Artifact::Aggregated(prev)) => prev.weights.clone(),
        _ => vec![1.0 / g.max(1) as f64; g],
    };
    Aggregated {
        rewards: vec![unparsed.unwrap_or(0.0); rewards.rollouts],
        unparsed: Some(rewards.rollouts),
        groups,
        weights,
        // No group scored anything: no group reward to log.
        group_rewards: Vec::new(),
        state,
    }
}

/// `unknown field `x`` in a serde message: the knob's name.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// Population counts or shares as shares summing to 1 (left as they are if they cannot be,
/// for the rule to refuse with its own message).
fn shares(populations: &[f64]) -> Vec<f64> {
    let sum: f64 = populations.iter().sum();
    if sum > 0.0 && sum.is_finite() {
        populations.iter().map(|p| p / sum).collect()
    } else {
        populations.to_vec()
    }
}

impl Stage for AggregateStage {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        let rewards = inputs.rewards()?;
        let populations: Vec<f64> = rewards.groups.iter().map(|g| g.population).collect();
        let rule = self.rule(&populations)?;
        let mut state = match ctx.previous {
            Some(Artifact::Aggregated(prev)) => prev.state.clone(),
            _ => Value::Null,
        };
        let Some(raw) = &rewards.matrix else {
            return Ok(Artifact::Aggregated(Arc::new(unanswered(
                rewards,
                ctx.previous,
                state,
                self.unparsed,
            ))));
        };
        let matrix = match self.normalize {
            Normalize::None => Cow::Borrowed(raw),
            how => {
                let mut values = raw.values().to_vec();
                for row in values.chunks_mut(raw.rollouts()) {
                    how.apply(row);
                }
                let m = RewardMatrix::new(raw.groups(), raw.rollouts(), values)
                    .map_err(|e| StageError(format!("normalize: {e}")))?;
                Cow::Owned(m)
            }
        };
        let round = ctx.round.unwrap_or(0);
        let out = rule.aggregate(&matrix, round, &mut state).map_err(|e| {
            match self.registry.rules.get(&self.rule).map(|r| &r.source) {
                // A plugin's errors name the rule and the library themselves.
                Some(Source::Plugin(_)) => StageError(e.to_string()),
                _ => StageError(format!("rule `{}`: {e}", self.rule)),
            }
        })?;
        Ok(Artifact::Aggregated(Arc::new(Aggregated {
            unparsed: rewards
                .written
                .then(|| rewards.rollouts - rewards.answered.len()),
            rewards: expand(
                &out.rewards,
                &rewards.answered,
                rewards.rollouts,
                self.unparsed,
            ),
            groups: rewards.groups.iter().map(|g| g.name.clone()).collect(),
            weights: out.weights,
            group_rewards: raw.group_means(),
            state,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers that name no option get the set penalty, or the round's lowest reward.
    #[test]
    fn unparsed_answers_get_the_format_penalty() {
        let answered = [0, 2, 3];
        let rewards = [-1.0, -3.0, -2.0];
        assert_eq!(
            expand(&rewards, &answered, 5, None),
            vec![-1.0, -3.0, -3.0, -2.0, -3.0]
        );
        assert_eq!(
            expand(&rewards, &answered, 5, Some(-9.0)),
            vec![-1.0, -9.0, -3.0, -2.0, -9.0]
        );
        assert_eq!(expand(&rewards, &answered, 3, Some(-9.0)), rewards.to_vec());
    }
}
