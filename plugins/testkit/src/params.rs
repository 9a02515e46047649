//! Reading params. The host validates them against each rule's schema before `new`, but `new`
//! still refuses anything else with a message, since the tests call it directly.
use chorus_plugin::serde_json::{Map, Value};

/// The schema of a fault injector's one knob.
pub(crate) const FROM_ROUND_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "from_round": {
      "type": "integer",
      "minimum": 1,
      "default": 1,
      "description": "the first round the fault fires in; before it the rule is the equal-weight mean"
    }
  },
  "additionalProperties": false
}"#;

/// Refuses any key of `params` that is not in `known`.
pub(crate) fn only(params: &Map<String, Value>, name: &str, known: &[&str]) -> Result<(), String> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) if known.is_empty() => Err(format!("{name} takes no params, got `{key}`")),
        Some(key) => Err(format!(
            "{name} has no param `{key}`; it takes {}",
            known.join(", ")
        )),
    }
}

/// The number `key`, or `default` when it is absent.
pub(crate) fn number(params: &Map<String, Value>, key: &str, default: f64) -> Result<f64, String> {
    match params.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("`{key}` must be a number, not {v}")),
    }
}

/// `from_round`: an integer ≥ 1, default 1. A float with no fraction (`2.0`) counts, as JSON
/// Schema's `integer` lets it through.
pub(crate) fn from_round(params: &Map<String, Value>, name: &str) -> Result<u32, String> {
    only(params, name, &["from_round"])?;
    let Some(v) = params.get("from_round") else {
        return Ok(1);
    };
    v.as_f64()
        .filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f <= f64::from(u32::MAX))
        .map(|f| f as u32)
        .ok_or_else(|| format!("`from_round` is {v}; it must be a whole number ≥ 1"))
}

#[cfg(test)]
mod tests {
    use chorus_plugin::serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn reads_and_refuses() {
        assert_eq!(from_round(&map(json!({})), "nan"), Ok(1));
        assert_eq!(from_round(&map(json!({ "from_round": 3 })), "nan"), Ok(3));
        assert_eq!(from_round(&map(json!({ "from_round": 3.0 })), "nan"), Ok(3));
        for bad in [json!(0), json!(2.5), json!(-1), json!("3"), json!(1e10)] {
            let err = from_round(&map(json!({ "from_round": bad })), "nan").unwrap_err();
            assert!(err.contains("whole number"), "{err}");
        }
        let err = from_round(&map(json!({ "round": 3 })), "nan").unwrap_err();
        assert!(
            err.contains("`round`") && err.contains("from_round"),
            "{err}"
        );
        let err = only(&map(json!({ "x": 1 })), "short", &[]).unwrap_err();
        assert_eq!(err, "short takes no params, got `x`");
        assert_eq!(number(&map(json!({})), "beta", 0.8), Ok(0.8));
        assert!(number(&map(json!({ "beta": null })), "beta", 0.8).is_err());
    }
}
