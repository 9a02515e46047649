//! What to read: a data spec, on its own in a file or (later) under a pipeline's `data:`.
use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::DataError;
use crate::{global_opinion_qa, wvs};

/// A real survey dataset and the groups to take from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSpec {
    /// World Values Survey answer distributions, one JSON file per country.
    WvsJson(WvsSpec),
    /// Anthropic's GlobalOpinionQA CSV (Pew Global Attitudes and WVS questions).
    GlobalOpinionQa(GlobalOpinionQaSpec),
}

/// `kind: wvs_json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WvsSpec {
    /// Group name → its JSON file, relative to the spec file's folder. Groups come out ordered
    /// by name (a YAML mapping's order does not survive).
    pub groups: BTreeMap<String, String>,
    /// The group whose file supplies question and option text (files may be in different
    /// languages; answers are matched by option number).
    pub text_from: String,
    /// Groups that are evaluated but never train; a subset of `groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eval_only: Vec<String>,
    /// The smallest sum of a question's listed shares that is accepted (0 < m ≤ 1). The rest
    /// answered none of the listed options ("don't know", no answer); within
    /// [`min_answered`, 1 + `max_excess`] the shares are divided by their sum, the distribution
    /// among those who chose a listed option. Below it, too few did for their distribution to
    /// stand for the group: `too_little_answered`.
    #[serde(default = "default_min_answered")]
    pub min_answered: f64,
    /// How far above 1 the sum of a question's listed shares may go (rounding) before the
    /// numbers are taken as wrong (0 ≤ e < 1): `sum_above_one`.
    #[serde(default = "default_max_excess")]
    pub max_excess: f64,
}

/// `kind: global_opinion_qa`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobalOpinionQaSpec {
    /// The CSV file, relative to the spec file's folder.
    pub path: String,
    /// Countries as the CSV spells them after normalising duplicate spellings, in the order
    /// the dataset lists them.
    pub groups: Vec<String>,
    /// Groups that are evaluated but never train; a subset of `groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eval_only: Vec<String>,
    /// The smallest sum of a question's listed shares that is accepted (0 < m ≤ 1). The rest
    /// answered none of the listed options ("don't know", no answer); within
    /// [`min_answered`, 1 + `max_excess`] the shares are divided by their sum, the distribution
    /// among those who chose a listed option. Below it, too few did for their distribution to
    /// stand for the group: `too_little_answered`.
    #[serde(default = "default_min_answered")]
    pub min_answered: f64,
    /// How far above 1 the sum of a question's listed shares may go (rounding) before the
    /// numbers are taken as wrong (0 ≤ e < 1): `sum_above_one`.
    #[serde(default = "default_max_excess")]
    pub max_excess: f64,
}

/// Half the respondents: below it, the distribution over the listed options describes a
/// minority of the group. Shares of non-substantive answers ("don't know", no answer) are not
/// among a question's options, and in the World Values Survey they reach 44% (Japan); the
/// survey-alignment literature (Santurkar et al. 2023, OpinionQA; Durmus et al. 2023,
/// GlobalOpinionQA) compares models with the distribution over the substantive options, i.e.
/// renormalised over those who chose one.
pub const DEFAULT_MIN_ANSWERED: f64 = 0.5;

/// Two-decimal shares over up to 8 options round to within 0.04 of their true sum; a sum
/// further above 1 cannot come from rounding (overlapping options, a typo).
pub const DEFAULT_MAX_EXCESS: f64 = 0.05;

fn default_min_answered() -> f64 {
    DEFAULT_MIN_ANSWERED
}

fn default_max_excess() -> f64 {
    DEFAULT_MAX_EXCESS
}

impl DataSpec {
    /// Reads the dataset; relative paths resolve against `base_dir` (the spec file's folder).
    pub fn load(&self, base_dir: &Path) -> Result<Dataset, DataError> {
        self.validate()?;
        match self {
            DataSpec::WvsJson(s) => wvs::load(s, base_dir),
            DataSpec::GlobalOpinionQa(s) => global_opinion_qa::load(s, base_dir),
        }
    }

    /// What serde cannot say: the groups exist, `eval_only` and `text_from` name some of them,
    /// someone is left to train, the bounds on a question's share sum are bounds. The error
    /// names no file; a caller that read the spec from one adds it.
    pub fn validate(&self) -> Result<(), DataError> {
        let (groups, eval_only): (Vec<&String>, _) = match self {
            DataSpec::WvsJson(s) => (s.groups.keys().collect(), &s.eval_only),
            DataSpec::GlobalOpinionQa(s) => (s.groups.iter().collect(), &s.eval_only),
        };
        let (min_answered, max_excess) = self.sum_bounds();
        let invalid = |message: String, hint: &str| DataError::Spec {
            path: None,
            message,
            hint: hint.to_owned(),
        };
        if groups.is_empty() {
            return Err(invalid(
                "`groups` is empty".into(),
                "name at least one group to read",
            ));
        }
        if let DataSpec::GlobalOpinionQa(s) = self {
            let mut seen = std::collections::HashSet::new();
            if let Some(twice) = s.groups.iter().find(|g| !seen.insert(*g)) {
                return Err(invalid(
                    format!("`groups` names `{twice}` twice"),
                    "name each country once",
                ));
            }
        }
        let listing = || {
            groups
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(stranger) = eval_only.iter().find(|e| !groups.contains(e)) {
            return Err(invalid(
                format!(
                    "`eval_only` names `{stranger}`, which is not among the groups ({})",
                    listing()
                ),
                "list in `eval_only` only groups that `groups` names",
            ));
        }
        if groups.iter().all(|g| eval_only.contains(g)) {
            return Err(invalid(
                "every group is `eval_only`, so no group would train".into(),
                "leave at least one group out of `eval_only`",
            ));
        }
        if let DataSpec::WvsJson(s) = self {
            if !s.groups.contains_key(&s.text_from) {
                return Err(invalid(
                    format!(
                        "`text_from: {}` is not among the groups ({})",
                        s.text_from,
                        listing()
                    ),
                    "set `text_from` to the group whose file should supply question and option text",
                ));
            }
        }
        // Written so that NaN fails too.
        if !(min_answered > 0.0 && min_answered <= 1.0) {
            return Err(invalid(
                format!("`min_answered: {min_answered}` is outside 0 < m ≤ 1"),
                "use the smallest share of respondents who chose a listed option that still \
                 stands for the group, such as 0.5",
            ));
        }
        if !(0.0..1.0).contains(&max_excess) {
            return Err(invalid(
                format!("`max_excess: {max_excess}` is outside 0 ≤ e < 1"),
                "use a small rounding allowance such as 0.05",
            ));
        }
        Ok(())
    }

    /// `(min_answered, max_excess)`: a question's listed shares are accepted when their sum
    /// lies in [min_answered, 1 + max_excess].
    pub fn sum_bounds(&self) -> (f64, f64) {
        match self {
            DataSpec::WvsJson(s) => (s.min_answered, s.max_excess),
            DataSpec::GlobalOpinionQa(s) => (s.min_answered, s.max_excess),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_have_a_schema_a_pipeline_can_embed() {
        let spec = DataSpec::WvsJson(WvsSpec {
            groups: [("US".to_owned(), "US.json".to_owned())].into(),
            text_from: "US".into(),
            eval_only: vec![],
            min_answered: 0.8,
            max_excess: 0.1,
        });
        let value = serde_json::to_value(&spec).unwrap();
        assert_eq!(value["kind"], "wvs_json");
        assert_eq!(serde_json::from_value::<DataSpec>(value).unwrap(), spec);
        let schema = serde_json::to_string(&schemars::schema_for!(DataSpec)).unwrap();
        for word in [
            "wvs_json",
            "global_opinion_qa",
            "text_from",
            "min_answered",
            "max_excess",
        ] {
            assert!(schema.contains(word), "{word} not in {schema}");
        }
    }
}
