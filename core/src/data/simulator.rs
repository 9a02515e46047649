//! The embedded opinion-survey simulator.
//!
//! Each question has K answer options with latent embeddings e_{q,k} ∈ R^D; each group has a
//! latent value vector v_g. Group g answers q with p_g(q) = softmax_k(s · ⟨e_{q,k}, v_g⟩).
//! Majority groups scatter around one centre, each at a typical distance `heterogeneity`;
//! minority groups scatter the same way around a centre `minority_shift` away, and together
//! hold `minority_share` of the population. Both knobs are distances in the value space (the
//! centre itself has norm ≈ √D), so they keep their meaning when D changes.
//! The public question features are the option embeddings, so a policy can in principle
//! learn any group's answers, and how far apart groups are is controlled, not incidental.
use rand::Rng as _;
use rand_distr::StandardNormal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{GroupInfo, Questions, Survey};
use crate::rng;
use crate::spec::is_name;

/// How many groups there are and which of them are minorities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupsSpec {
    /// Number of groups (at least 1).
    pub count: u32,
    /// How many of the groups (the last ones) are minorities: small population, distant values.
    #[serde(default)]
    pub minorities: u32,
    /// Optional names, one per group; default `g0, g1, …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
}

impl GroupsSpec {
    /// Group names in order, generated when the file gives none.
    pub fn resolved_names(&self) -> Vec<String> {
        match &self.names {
            Some(names) => names.clone(),
            None => (0..self.count).map(|g| format!("g{g}")).collect(),
        }
    }

    /// (field under `groups`, message, hint) for each problem.
    fn problems(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut err = |field: &str, message: String, hint: &str| {
            out.push((format!("groups.{field}"), message, hint.to_owned()))
        };
        if self.count == 0 {
            err(
                "count",
                "`data.groups.count` must be at least 1".into(),
                "set `count: 2` or more to compare groups",
            );
        }
        if self.minorities > self.count {
            err(
                "minorities",
                format!("{} minorities among {} groups", self.minorities, self.count),
                "minorities are a subset of the groups: lower `minorities` or raise `count`",
            );
        }
        if let Some(names) = &self.names {
            if names.len() != self.count as usize {
                err(
                    "names",
                    format!("{} names for {} groups", names.len(), self.count),
                    "give one name per group, or drop `names` to get g0, g1, …",
                );
            }
            for (i, n) in names.iter().enumerate() {
                if names[..i].contains(n) {
                    err(
                        &format!("names[{i}]"),
                        format!("group name `{n}` appears twice"),
                        "give every group its own name",
                    );
                } else if !is_name(n) {
                    err(
                        &format!("names[{i}]"),
                        format!("`{n}` is not a usable group name"),
                        "use letters, digits, `-`, `_` and `.` only",
                    );
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSpec {
    /// The simulated groups (countries, demographics).
    pub groups: GroupsSpec,
    /// Number of survey questions (≥ 1).
    #[serde(default = "d_questions")]
    pub questions: u32,
    /// Answer options per question, K (≥ 2).
    #[serde(default = "d_options")]
    pub options: u32,
    /// Dimension D of the latent value space (≥ 1).
    #[serde(default = "d_features")]
    pub features: u32,
    /// Typical distance of a group from its centre (≥ 0; 0 = identical majority groups).
    #[serde(default = "d_heterogeneity")]
    pub heterogeneity: f64,
    /// Distance between the majority and the minority centre (≥ 0).
    #[serde(default = "d_minority_shift")]
    pub minority_shift: f64,
    /// Inverse temperature s of the answer softmax (> 0; larger = more decided groups).
    #[serde(default = "d_sharpness")]
    pub sharpness: f64,
    /// Population share held by all minority groups together, in (0, 1).
    #[serde(default = "d_minority_share")]
    pub minority_share: f64,
}

fn d_questions() -> u32 {
    200
}
fn d_options() -> u32 {
    4
}
fn d_features() -> u32 {
    8
}
fn d_heterogeneity() -> f64 {
    0.5
}
fn d_minority_shift() -> f64 {
    2.0
}
fn d_sharpness() -> f64 {
    1.5
}
fn d_minority_share() -> f64 {
    0.1
}

impl SimulatorSpec {
    /// Out-of-range settings as (field, message, hint).
    pub fn problems(&self) -> Vec<(String, String, String)> {
        let mut out = self.groups.problems();
        out.extend(self.ranges().into_iter().map(|(field, why)| {
            (
                field.to_owned(),
                why,
                "see schemas/pipeline.schema.json for the valid range".to_owned(),
            )
        }));
        out
    }

    /// Knobs out of range as (field, message).
    fn ranges(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.questions == 0 {
            out.push(("questions", "`questions` must be at least 1".to_owned()));
        }
        if self.options < 2 {
            out.push((
                "options",
                format!(
                    "`options` is {}; a question needs at least 2 options",
                    self.options
                ),
            ));
        }
        if self.features == 0 {
            out.push(("features", "`features` must be at least 1".to_owned()));
        }
        for (name, v) in [
            ("heterogeneity", self.heterogeneity),
            ("minority_shift", self.minority_shift),
        ] {
            if v < 0.0 {
                out.push((name, format!("`{name}` is {v}; it must be ≥ 0")));
            }
        }
        if self.sharpness <= 0.0 {
            out.push((
                "sharpness",
                format!("`sharpness` is {}; it must be > 0", self.sharpness),
            ));
        }
        if !(self.minority_share > 0.0 && self.minority_share < 1.0) {
            out.push((
                "minority_share",
                format!(
                    "`minority_share` is {}; it must lie in (0, 1)",
                    self.minority_share
                ),
            ));
        }
        out
    }

    /// Draws the survey of its groups, the last `groups.minorities` of them minorities.
    pub fn generate(&self, seed: u64) -> Survey {
        let names = self.groups.resolved_names();
        let minorities = self.groups.minorities as usize;
        let (q_n, k_n, d_n) = (
            self.questions as usize,
            self.options as usize,
            self.features as usize,
        );
        let mut r = rng::stream(seed, &["simulator"]);
        let normal = |r: &mut rng::Rng, n: usize, scale: f64| -> Vec<f64> {
            (0..n)
                .map(|_| r.sample::<f64, _>(StandardNormal) * scale)
                .collect()
        };
        let emb_scale = 1.0 / (d_n as f64).sqrt();
        let embeddings: Vec<Vec<f64>> = (0..q_n)
            .map(|_| normal(&mut r, k_n * d_n, emb_scale))
            .collect();
        let centre = normal(&mut r, d_n, 1.0);
        let direction = normal(&mut r, d_n, 1.0);
        let norm = direction
            .iter()
            .map(|x| x * x)
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        let minority_centre: Vec<f64> = centre
            .iter()
            .zip(&direction)
            .map(|(c, u)| c + self.minority_shift * u / norm)
            .collect();
        let g_n = names.len();
        let majority = g_n - minorities;
        let groups: Vec<GroupInfo> = names
            .iter()
            .enumerate()
            .map(|(g, name)| {
                let minority = g >= majority;
                let population = match (minority, majority, minorities) {
                    (true, 0, m) | (false, m, 0) => 1.0 / m as f64,
                    (true, _, m) => self.minority_share / m as f64,
                    (false, m, _) => (1.0 - self.minority_share) / m as f64,
                };
                GroupInfo {
                    name: name.clone(),
                    population,
                    minority,
                    eval_only: false,
                }
            })
            .collect();
        let values: Vec<Vec<f64>> = groups
            .iter()
            .map(|info| {
                let base = if info.minority {
                    &minority_centre
                } else {
                    &centre
                };
                let noise = normal(&mut r, d_n, self.heterogeneity * emb_scale);
                base.iter().zip(noise).map(|(b, n)| b + n).collect()
            })
            .collect();
        let truth = values
            .iter()
            .map(|v| {
                embeddings
                    .iter()
                    .map(|e| {
                        let logits: Vec<f64> = e
                            .chunks(d_n)
                            .map(|opt| {
                                self.sharpness * opt.iter().zip(v).map(|(a, b)| a * b).sum::<f64>()
                            })
                            .collect();
                        softmax(&logits)
                    })
                    .collect()
            })
            .collect();
        let features = embeddings
            .iter()
            .map(|e| e.iter().map(|&x| x as f32).collect())
            .collect();
        let questions = Questions {
            options: vec![k_n; q_n],
            features,
            text: vec![None; q_n],
        };
        Survey::new(questions, groups, truth)
    }
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::alignment;

    fn spec(count: u32, minorities: u32) -> SimulatorSpec {
        serde_json::from_value(serde_json::json!({
            "groups": {"count": count, "minorities": minorities}
        }))
        .unwrap()
    }

    #[test]
    fn same_seed_same_survey_and_valid_distributions() {
        let a = spec(4, 1).generate(5);
        let b = spec(4, 1).generate(5);
        assert_eq!(a.distribution(2, 7), b.distribution(2, 7));
        for g in 0..4 {
            for q in 0..a.len() {
                let p = a.distribution(g, q);
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                assert!(p.iter().all(|&x| x > 0.0));
            }
        }
        let pop: f64 = a.groups.iter().map(|g| g.population).sum();
        assert!((pop - 1.0).abs() < 1e-12);
        assert!((a.groups[3].population - 0.1).abs() < 1e-12);
    }

    /// Minorities must actually disagree more with the majority than majority groups do
    /// among themselves, or minority-protection experiments measure nothing.
    #[test]
    fn minorities_are_further_from_the_majority() {
        let s = spec(5, 2).generate(11);
        let agree = |a: usize, b: usize| {
            (0..s.len())
                .map(|q| alignment(s.distribution(a, q), s.distribution(b, q)))
                .sum::<f64>()
                / s.len() as f64
        };
        let within = (agree(0, 1) + agree(0, 2) + agree(1, 2)) / 3.0;
        let across =
            (agree(0, 3) + agree(1, 3) + agree(2, 3) + agree(0, 4) + agree(1, 4) + agree(2, 4))
                / 6.0;
        assert!(
            within > across,
            "within-majority {within} vs majority–minority {across}"
        );
    }

    #[test]
    fn zero_heterogeneity_makes_majority_groups_identical() {
        let mut sp = spec(3, 0);
        sp.heterogeneity = 0.0;
        let s = sp.generate(3);
        assert_eq!(s.distribution(0, 4), s.distribution(2, 4));
    }
}
