//! chorus-testkit: the plugin chorus's own tests and benchmarks load
//! (`libchorus_testkit.so`). Not for pipelines.
//!
//! - `tilted_plugin` ([`TiltedPlugin`]): the built-in `tilted`, bit for bit, to measure what
//!   the plugin boundary costs;
//! - `ema_weighted` ([`EmaWeighted`]): the built-in `adaptive_alpha` (weighted form), a
//!   stateful rule for checkpoint, kill and resume;
//! - fault injectors `panics`, `nan`, `short`, `refuses`, `bad_weights` ([`faults`]), each
//!   breaking the contract one way, for the host's error handling;
//! - metrics `spread` and `panicking_metric` ([`metrics`]).
mod ema;
pub mod faults;
pub mod metrics;
mod params;
mod tilted;

pub use ema::EmaWeighted;
pub use tilted::TiltedPlugin;

use faults::{BadWeights, Nan, Panics, Refuses, Short};
use metrics::{PanickingMetric, Spread};

chorus_plugin::export! {
    name: "chorus-testkit",
    version: env!("CARGO_PKG_VERSION"),
    rules: [TiltedPlugin, EmaWeighted, Panics, Nan, Short, Refuses, BadWeights],
    metrics: [Spread, PanickingMetric],
}

/// The exported descriptor through the C ABI, as the host sees it: the names, and that a
/// panic and a state round-trip cross the boundary as the ABI says.
#[cfg(test)]
mod abi {
    use std::ffi::{c_char, c_void, CStr, CString};
    use std::ptr;

    use chorus_plugin::abi::{
        ChorusAggregateCall, ChorusAggregateOut, ChorusPlugin, ChorusRule, CHORUS_BAD_STATE,
        CHORUS_OK, CHORUS_PANIC,
    };
    use chorus_plugin::ABI_VERSION;

    use super::*;

    fn plugin() -> &'static ChorusPlugin {
        assert_eq!(chorus_plugin_abi_version(), ABI_VERSION);
        // SAFETY: the descriptor is static and never written.
        unsafe { &*chorus_plugin_descriptor() }
    }

    fn text(s: *const c_char) -> String {
        // SAFETY: the descriptor's strings are NUL-terminated and static.
        unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_owned()
    }

    fn rule(name: &str) -> &'static ChorusRule {
        let p = plugin();
        // SAFETY: `rules` points at `rule_count` entries.
        let rules = unsafe { std::slice::from_raw_parts(p.rules, p.rule_count) };
        rules.iter().find(|r| text(r.name) == name).unwrap()
    }

    /// One `aggregate` call on `values` (groups × rollouts): the status, the written rewards,
    /// the new state (or the error message).
    fn call(
        rule: &ChorusRule,
        instance: *mut c_void,
        (groups, rollouts, values): (usize, usize, &[f64]),
        round: u32,
        state: Option<&str>,
    ) -> (i32, Vec<f64>, Option<String>) {
        let state = state.map(|s| CString::new(s).unwrap());
        let call = ChorusAggregateCall {
            rewards: values.as_ptr(),
            len: values.len(),
            groups,
            rollouts,
            round,
            state_json: state.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
        };
        let mut rewards = vec![0.0; rollouts];
        let mut weights = vec![0.0; groups];
        let mut out = ChorusAggregateOut {
            rewards: rewards.as_mut_ptr(),
            rewards_capacity: rollouts,
            rewards_written: 0,
            weights: weights.as_mut_ptr(),
            weights_capacity: groups,
            weights_written: 0,
            state_json: ptr::null_mut(),
            error: ptr::null_mut(),
        };
        // SAFETY: every pointer is valid for the call, as the ABI requires.
        let status = unsafe { (rule.aggregate.unwrap())(instance, &call, &mut out) };
        let returned = if status == CHORUS_OK {
            out.state_json
        } else {
            out.error
        };
        let message = (!returned.is_null()).then(|| {
            let s = text(returned);
            // SAFETY: a string this library returned, freed once.
            unsafe { (plugin().free_string.unwrap())(returned) };
            s
        });
        rewards.truncate(out.rewards_written);
        (status, rewards, message)
    }

    fn create(rule: &ChorusRule, params: &str) -> *mut c_void {
        let params = CString::new(params).unwrap();
        let mut instance = ptr::null_mut();
        let mut error = ptr::null_mut();
        // SAFETY: valid pointers; no populations (groups = 0).
        let status = unsafe {
            (rule.create.unwrap())(params.as_ptr(), ptr::null(), 0, &mut instance, &mut error)
        };
        assert_eq!(status, CHORUS_OK);
        instance
    }

    const TWO_GROUPS: (usize, usize, &[f64]) = (2, 2, &[1.0, 0.8, 0.2, 0.4]);

    #[test]
    fn descriptor_lists_everything() {
        let p = plugin();
        assert_eq!(text(p.name), "chorus-testkit");
        let rules = [
            "tilted_plugin",
            "ema_weighted",
            "panics",
            "nan",
            "short",
            "refuses",
        ];
        for name in rules.into_iter().chain(["bad_weights"]) {
            let r = rule(name);
            assert!(text(r.params_schema).starts_with('{'), "{name}");
        }
        assert_eq!((p.rule_count, p.metric_count), (7, 2));
    }

    #[test]
    fn panic_becomes_a_status() {
        let panics = rule("panics");
        let instance = create(panics, r#"{"from_round": 2}"#);
        let (status, rewards, _) = call(panics, instance, TWO_GROUPS, 1, None);
        assert_eq!((status, rewards.len()), (CHORUS_OK, 2));
        let (status, _, message) = call(panics, instance, TWO_GROUPS, 2, None);
        assert_eq!(status, CHORUS_PANIC);
        assert!(message.unwrap().contains(faults::PANIC_MESSAGE));
        // SAFETY: made by this rule's create, destroyed once.
        unsafe { (panics.destroy.unwrap())(instance) };
    }

    #[test]
    fn state_crosses_as_json() {
        let ema = rule("ema_weighted");
        let instance = create(ema, "{}");
        let (status, _, state) = call(ema, instance, TWO_GROUPS, 1, None);
        assert_eq!(status, CHORUS_OK);
        let state = state.unwrap();
        assert!(state.starts_with(r#"{"h":[0.9"#), "{state}");
        // Fed back, it is read; a foreign one is refused as a bad state.
        let (status, _, _) = call(ema, instance, TWO_GROUPS, 2, Some(&state));
        assert_eq!(status, CHORUS_OK);
        let (status, _, message) = call(ema, instance, TWO_GROUPS, 2, Some(r#"{"w": 1}"#));
        assert_eq!(status, CHORUS_BAD_STATE);
        assert!(message.unwrap().contains("`w`"));
        // SAFETY: made by this rule's create, destroyed once.
        unsafe { (ema.destroy.unwrap())(instance) };
    }
}
