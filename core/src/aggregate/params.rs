//! The `aggregate` params as a pipeline writes them, and the checks that turn them into a rule.
//!
//! One flat struct with every rule's knobs (not an enum per rule) so that `-s aggregate.rule=min`
//! and `-s aggregate.temperature=0.1` are plain keys that grids can sweep. The price is that a
//! knob can be given to a rule that ignores it; [`AggregateParams::build`] rejects that rather
//! than let a sweep silently vary nothing.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::adaptive_alpha::{AdaptiveAlpha, Mode};
use super::group_dro::GroupDro;
use super::max::Max;
use super::mean::Mean;
use super::min::Min;
use super::nash::Nash;
use super::power_mean::PowerMean;
use super::tilted::Tilted;
use super::{Aggregator, RULES};
use crate::diagnostic::suggest;

/// How `adaptive_alpha` turns its group weights α into one reward per rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// The α-weighted mean of the groups' rewards (the default).
    Weighted,
    /// The plain mean while the groups are evenly served (Jain's index of their history ≥ `tau`),
    /// else the α-weighted soft-min.
    Switching,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateParams {
    /// The rule: min, max, mean, adaptive_alpha, tilted, power_mean, nash or group_dro.
    pub rule: String,
    /// adaptive_alpha: temperature T of the group weights α = softmax((1 − h)/T) and of the
    /// switching soft-min; > 0, default 0.1 (smaller T leans harder on the worst group).
    /// tilted: the tilt t; ≠ 0, default −1.0 (t < 0 leans to the worst group, t > 0 to the best,
    /// t → 0 is the mean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// adaptive_alpha: how much of the alignment history each round keeps,
    /// h ← β·h + (1 − β)·a; in [0, 1), default 0.8 (0 = this round only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// adaptive_alpha with `form: switching`: the Jain's-index threshold at or above which the
    /// groups count as evenly served and the plain mean is used; in (0, 1], default 0.9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau: Option<f64>,
    /// adaptive_alpha: `weighted` (default) or `switching`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<Form>,
    /// power_mean: the fairness exponent α of the α-fair mean; ≥ 0, default 1.0 (geometric
    /// mean; 0 = arithmetic mean, large α approaches the minimum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// group_dro: step size η of the multiplicative weights, w_g ← w_g·exp(η·(1 − a_g));
    /// > 0, default 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<f64>,
    /// nash: the disagreement point d, the reward a group gets without agreement; finite,
    /// default 0.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disagreement: Option<f64>,
    /// mean: weight groups by their public population shares instead of equally; default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighted: Option<bool>,
}

/// Why the params make no rule: `field` is the key to blame in the pipeline file (`rule` or a
/// knob), so the caller can point at its line; `hint` says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParamError {
    pub field: &'static str,
    pub message: String,
    pub hint: String,
}

impl ParamError {
    fn new(field: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        ParamError {
            field,
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// `value` of `field` is outside `range` (said as "be > 0", "lie in [0, 1)").
    fn range(field: &'static str, value: f64, range: &str, default: f64) -> Self {
        Self::new(
            field,
            format!("`{field}` is {value}; it must {range}"),
            format!(
                "set `{field}` to a value that does, or leave it out for the default {default}"
            ),
        )
    }
}

/// The built-in rules; kept in the order of [`RULES`] (a test checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Min,
    Max,
    Mean,
    AdaptiveAlpha,
    Tilted,
    PowerMean,
    Nash,
    GroupDro,
}

impl Rule {
    const ALL: [Rule; 8] = [
        Rule::Min,
        Rule::Max,
        Rule::Mean,
        Rule::AdaptiveAlpha,
        Rule::Tilted,
        Rule::PowerMean,
        Rule::Nash,
        Rule::GroupDro,
    ];

    fn name(self) -> &'static str {
        RULES[self as usize]
    }

    /// The knobs the rule reads; any other knob given with it is an error.
    fn knobs(self) -> &'static [&'static str] {
        match self {
            Rule::Min | Rule::Max => &[],
            Rule::Mean => &["weighted"],
            Rule::AdaptiveAlpha => &["temperature", "beta", "tau", "form"],
            Rule::Tilted => &["temperature"],
            Rule::PowerMean => &["alpha"],
            Rule::Nash => &["disagreement"],
            Rule::GroupDro => &["eta"],
        }
    }
}

impl AggregateParams {
    /// `rule` with every knob at its default.
    pub fn new(rule: impl Into<String>) -> Self {
        AggregateParams {
            rule: rule.into(),
            temperature: None,
            beta: None,
            tau: None,
            form: None,
            alpha: None,
            eta: None,
            disagreement: None,
            weighted: None,
        }
    }

    /// The knobs that were given, by name.
    fn given(&self) -> impl Iterator<Item = &'static str> {
        [
            ("temperature", self.temperature.is_some()),
            ("beta", self.beta.is_some()),
            ("tau", self.tau.is_some()),
            ("form", self.form.is_some()),
            ("alpha", self.alpha.is_some()),
            ("eta", self.eta.is_some()),
            ("disagreement", self.disagreement.is_some()),
            ("weighted", self.weighted.is_some()),
        ]
        .into_iter()
        .filter_map(|(knob, given)| given.then_some(knob))
    }

    /// Checks the params and builds the rule. `populations` are the groups' public population
    /// shares (or counts: they are normalised), read only by `mean` with `weighted: true`.
    pub fn build(&self, populations: &[f64]) -> Result<Box<dyn Aggregator>, ParamError> {
        let Some(rule) = Rule::ALL.into_iter().find(|r| r.name() == self.rule) else {
            return Err(ParamError::new(
                "rule",
                format!("unknown aggregation rule `{}`", self.rule),
                suggest(&self.rule, &RULES, "rules"),
            ));
        };
        if let Some(knob) = self.given().find(|k| !rule.knobs().contains(k)) {
            let users: Vec<&str> = Rule::ALL
                .into_iter()
                .filter(|r| r.knobs().contains(&knob))
                .map(Rule::name)
                .collect();
            let takes = match rule.knobs() {
                [] => "no knobs".to_owned(),
                knobs => format!("only {}", knobs.join(", ")),
            };
            return Err(ParamError::new(
                knob,
                format!("rule `{}` does not use `{knob}`", rule.name()),
                format!(
                    "`{knob}` is a knob of {}; `{}` takes {takes}, so remove `{knob}`",
                    users.join(", "),
                    rule.name()
                ),
            ));
        }
        Ok(match rule {
            Rule::Min => Box::new(Min),
            Rule::Max => Box::new(Max),
            Rule::Mean => Box::new(Mean::new(
                self.weighted
                    .unwrap_or(false)
                    .then(|| population_weights(populations))
                    .transpose()?,
            )),
            Rule::AdaptiveAlpha => Box::new(self.adaptive_alpha()?),
            Rule::Tilted => {
                let t = self.temperature.unwrap_or(-1.0);
                if !(t.is_finite() && t != 0.0) {
                    return Err(ParamError::range(
                        "temperature",
                        t,
                        "be finite and ≠ 0",
                        -1.0,
                    ));
                }
                Box::new(Tilted { t })
            }
            Rule::PowerMean => {
                let alpha = self.alpha.unwrap_or(1.0);
                if !(alpha.is_finite() && alpha >= 0.0) {
                    return Err(ParamError::range("alpha", alpha, "be ≥ 0", 1.0));
                }
                Box::new(PowerMean { alpha })
            }
            Rule::Nash => {
                let d = self.disagreement.unwrap_or(0.0);
                if !d.is_finite() {
                    return Err(ParamError::range("disagreement", d, "be finite", 0.0));
                }
                Box::new(Nash { d })
            }
            Rule::GroupDro => {
                let eta = self.eta.unwrap_or(1.0);
                if !(eta.is_finite() && eta > 0.0) {
                    return Err(ParamError::range("eta", eta, "be > 0", 1.0));
                }
                Box::new(GroupDro { eta })
            }
        })
    }

    fn adaptive_alpha(&self) -> Result<AdaptiveAlpha, ParamError> {
        let temperature = self.temperature.unwrap_or(0.1);
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(ParamError::range("temperature", temperature, "be > 0", 0.1));
        }
        let beta = self.beta.unwrap_or(0.8);
        if !(0.0..1.0).contains(&beta) {
            return Err(ParamError::range("beta", beta, "lie in [0, 1)", 0.8));
        }
        let mode = match self.form.unwrap_or(Form::Weighted) {
            Form::Weighted if self.tau.is_some() => {
                return Err(ParamError::new(
                    "tau",
                    "`tau` is only used by `form: switching`",
                    "add `form: switching`, or remove `tau`",
                ))
            }
            Form::Weighted => Mode::Weighted,
            Form::Switching => {
                let tau = self.tau.unwrap_or(0.9);
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

/// Population shares as mean weights: finite, ≥ 0, not all 0; normalised to sum 1.
fn population_weights(populations: &[f64]) -> Result<Vec<f64>, ParamError> {
    let sum: f64 = populations.iter().sum();
    if populations.is_empty()
        || !populations.iter().all(|p| p.is_finite() && *p >= 0.0)
        || !(sum > 0.0 && sum.is_finite())
    {
        return Err(ParamError::new(
            "weighted",
            format!(
                "`weighted: true` needs the groups' population shares, but they are {populations:?}"
            ),
            "give every group a finite, non-negative population share, or remove `weighted`",
        ));
    }
    Ok(populations.iter().map(|p| p / sum).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(params: AggregateParams) -> &'static str {
        params.build(&[]).unwrap_err().field
    }

    #[test]
    fn rule_names_match() {
        let names: Vec<&str> = Rule::ALL.into_iter().map(Rule::name).collect();
        assert_eq!(names, RULES);
        for (i, rule) in Rule::ALL.into_iter().enumerate() {
            assert_eq!(rule as usize, i);
        }
    }

    #[test]
    fn unknown_rule_suggests_the_nearest() {
        let err = AggregateParams::new("adaptive_alfa")
            .build(&[])
            .unwrap_err();
        assert_eq!(err.field, "rule");
        assert!(err.message.contains("adaptive_alfa"), "{}", err.message);
        assert!(
            err.hint.contains("did you mean `adaptive_alpha`?"),
            "{}",
            err.hint
        );
        assert!(err.hint.contains("group_dro"), "{}", err.hint);
        let err = AggregateParams::new("median").build(&[]).unwrap_err();
        assert!(
            err.hint.starts_with("valid rules: min, max"),
            "{}",
            err.hint
        );
    }

    #[test]
    fn knob_of_another_rule_is_an_error() {
        let p = AggregateParams {
            beta: Some(0.5),
            ..AggregateParams::new("min")
        };
        let err = p.build(&[]).unwrap_err();
        assert_eq!(err.field, "beta");
        assert!(err.hint.contains("adaptive_alpha"), "{}", err.hint);
        assert!(err.hint.contains("no knobs"), "{}", err.hint);
        let p = AggregateParams {
            temperature: Some(0.5),
            ..AggregateParams::new("nash")
        };
        let err = p.build(&[]).unwrap_err();
        assert_eq!(err.field, "temperature");
        assert!(err.hint.contains("adaptive_alpha, tilted"), "{}", err.hint);
        assert!(err.hint.contains("only disagreement"), "{}", err.hint);
        let p = AggregateParams {
            tau: Some(0.5),
            ..AggregateParams::new("adaptive_alpha")
        };
        assert_eq!(field_of(p), "tau");
    }

    #[test]
    fn out_of_range_knobs_name_their_field() {
        let aa = || AggregateParams::new("adaptive_alpha");
        let cases = [
            (
                AggregateParams {
                    temperature: Some(0.0),
                    ..aa()
                },
                "temperature",
            ),
            (
                AggregateParams {
                    temperature: Some(-0.1),
                    ..aa()
                },
                "temperature",
            ),
            (
                AggregateParams {
                    beta: Some(-0.1),
                    ..aa()
                },
                "beta",
            ),
            (
                AggregateParams {
                    beta: Some(1.0),
                    ..aa()
                },
                "beta",
            ),
            (
                AggregateParams {
                    form: Some(Form::Switching),
                    tau: Some(0.0),
                    ..aa()
                },
                "tau",
            ),
            (
                AggregateParams {
                    form: Some(Form::Switching),
                    tau: Some(1.5),
                    ..aa()
                },
                "tau",
            ),
            (
                AggregateParams {
                    temperature: Some(0.0),
                    ..AggregateParams::new("tilted")
                },
                "temperature",
            ),
            (
                AggregateParams {
                    temperature: Some(f64::NAN),
                    ..AggregateParams::new("tilted")
                },
                "temperature",
            ),
            (
                AggregateParams {
                    alpha: Some(-1.0),
                    ..AggregateParams::new("power_mean")
                },
                "alpha",
            ),
            (
                AggregateParams {
                    eta: Some(0.0),
                    ..AggregateParams::new("group_dro")
                },
                "eta",
            ),
            (
                AggregateParams {
                    eta: Some(-1.0),
                    ..AggregateParams::new("group_dro")
                },
                "eta",
            ),
            (
                AggregateParams {
                    disagreement: Some(f64::INFINITY),
                    ..AggregateParams::new("nash")
                },
                "disagreement",
            ),
        ];
        for (params, field) in cases {
            let err = params.build(&[]).unwrap_err();
            assert_eq!(err.field, field, "{params:?}");
            assert!(err.message.contains(field), "{}", err.message);
        }
    }

    #[test]
    fn edges_of_ranges_are_accepted() {
        let ok = [
            AggregateParams {
                beta: Some(0.0),
                form: Some(Form::Switching),
                tau: Some(1.0),
                ..AggregateParams::new("adaptive_alpha")
            },
            AggregateParams {
                alpha: Some(0.0),
                ..AggregateParams::new("power_mean")
            },
            AggregateParams {
                temperature: Some(2.0),
                ..AggregateParams::new("tilted")
            },
        ];
        for params in ok {
            assert!(params.build(&[]).is_ok(), "{params:?}");
        }
    }

    #[test]
    fn weighted_mean_needs_usable_populations() {
        let p = AggregateParams {
            weighted: Some(true),
            ..AggregateParams::new("mean")
        };
        for bad in [&[][..], &[0.5, -0.1], &[0.0, 0.0], &[f64::NAN, 1.0]] {
            assert_eq!(p.build(bad).unwrap_err().field, "weighted", "{bad:?}");
        }
        assert!(p.build(&[0.75, 0.25]).is_ok());
        // Unweighted, the populations are not read at all.
        assert!(AggregateParams::new("mean").build(&[]).is_ok());
    }

    #[test]
    fn yaml_shaped_params_parse_and_reject_typos() {
        let p: AggregateParams =
            serde_json::from_str(r#"{"rule": "adaptive_alpha", "form": "switching", "tau": 0.8}"#)
                .unwrap();
        assert_eq!(p.form, Some(Form::Switching));
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"rule":"adaptive_alpha","tau":0.8,"form":"switching"}"#
        );
        assert!(
            serde_json::from_str::<AggregateParams>(r#"{"rule": "min", "temprature": 1}"#).is_err()
        );
    }
}
