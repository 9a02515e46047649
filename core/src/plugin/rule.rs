//! A plugin's aggregation rule behind the [`Aggregator`] trait, so the run cannot tell it from
//! a built-in. The host trusts the plugin with nothing it returns: every output is checked
//! against the contract before PPO sees it, and a failed round leaves the state untouched.
use std::ffi::c_char;
use std::fmt;
use std::ptr::null_mut;
use std::sync::{Arc, Mutex, PoisonError};

use chorus_plugin::abi::{ChorusAggregateCall, ChorusAggregateOut, CHORUS_BAD_STATE, CHORUS_OK};
use chorus_plugin::{AggregateError, Aggregated, Aggregator, RewardMatrix};
use serde_json::{Map, Value};

use super::abi::{Instance, RuleAbi};
use super::error::failure;
use super::library::c_json;
use super::{Library, PluginError};

/// How far the returned weights may sum from 1.
const WEIGHT_SUM_TOLERANCE: f64 = 1e-6;

pub(super) struct PluginRule {
    /// "plugin rule `name` (path)", the start of every message about this rule.
    who: String,
    abi: RuleAbi,
    /// The number of groups it was built for (0 when built without population shares).
    groups: usize,
    instance: Mutex<Instance>,
    /// Keeps the code behind `abi` loaded; dropped after `instance` was destroyed.
    library: Arc<Library>,
}

impl fmt::Debug for PluginRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.who)
    }
}

impl PluginRule {
    pub(super) fn build(
        library: &Arc<Library>,
        index: usize,
        abi: RuleAbi,
        params: &Map<String, Value>,
        populations: &[f64],
    ) -> Result<PluginRule, PluginError> {
        let name = &library.rules()[index].name;
        let params = c_json(&Value::Object(params.clone()));
        let (mut instance, mut error) = (null_mut(), null_mut::<c_char>());
        // SAFETY: `create` came from this library's checked descriptor (non-NULL, of the ABI's
        // type); every pointer is valid for the call: a NUL-terminated JSON object,
        // `populations.len()` shares, and two writable out-pointers.
        let status = unsafe {
            (abi.create)(
                params.as_ptr(),
                populations.as_ptr(),
                populations.len(),
                &mut instance,
                &mut error,
            )
        };
        // SAFETY: `error` is NULL or a string the plugin returned just now.
        let instance = unsafe { library.created("rule", name, status, instance, error) }?;
        Ok(PluginRule {
            who: library.who("rule", name),
            abi,
            groups: populations.len(),
            instance: Mutex::new(instance),
            library: Arc::clone(library),
        })
    }

    /// A broken promise of the ABI: the plugin's bug, not the user's.
    fn broken(&self, what: String) -> AggregateError {
        AggregateError::Other(format!(
            "{} broke the plugin contract: {what}; report this to the plugin's authors",
            self.who
        ))
    }

    /// Checks one round's outputs and reads the new state; the state is only replaced once
    /// everything passed.
    fn check(
        &self,
        out: &ChorusAggregateOut,
        rewards: &[f64],
        weights: &[f64],
        state: Option<Vec<u8>>,
    ) -> Result<Value, AggregateError> {
        let (rollouts, groups) = (rewards.len(), weights.len());
        if out.rewards_written != rollouts {
            let n = out.rewards_written;
            return Err(self.broken(format!("returned {n} rewards for {rollouts} rollouts")));
        }
        if out.weights_written != groups {
            let n = out.weights_written;
            return Err(self.broken(format!("returned {n} weights for {groups} groups")));
        }
        if let Some(r) = rewards.iter().position(|v| !v.is_finite()) {
            let v = rewards[r];
            return Err(self.broken(format!("returned {v} as the reward of rollout {r}")));
        }
        if let Some(g) = weights.iter().position(|v| !v.is_finite()) {
            let v = weights[g];
            return Err(self.broken(format!("returned {v} as the weight of group {g}")));
        }
        let sum: f64 = weights.iter().sum();
        if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            return Err(self.broken(format!("returned weights summing to {sum}, not 1")));
        }
        match state {
            None => Ok(Value::Null),
            Some(json) => serde_json::from_slice(&json)
                .map_err(|e| self.broken(format!("returned a state that is not JSON ({e})"))),
        }
    }
}

impl Aggregator for PluginRule {
    fn aggregate(
        &self,
        m: &RewardMatrix<'_>,
        round: u32,
        state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let (groups, rollouts) = (m.groups(), m.rollouts());
        if self.groups != 0 && groups != self.groups {
            let e = AggregateError::Groups {
                expected: self.groups,
                groups,
            };
            return Err(AggregateError::Other(format!("{}: {e}", self.who)));
        }
        let state_json = c_json(state);
        let call = ChorusAggregateCall {
            rewards: m.values().as_ptr(),
            len: m.values().len(),
            groups,
            rollouts,
            round,
            state_json: state_json.as_ptr(),
        };
        let (mut rewards, mut weights) = (vec![0.0; rollouts], vec![0.0; groups]);
        let mut out = ChorusAggregateOut {
            rewards: rewards.as_mut_ptr(),
            rewards_capacity: rollouts,
            rewards_written: 0,
            weights: weights.as_mut_ptr(),
            weights_capacity: groups,
            weights_written: 0,
            state_json: null_mut(),
            error: null_mut(),
        };
        let status = {
            let instance = self.instance.lock().unwrap_or_else(PoisonError::into_inner);
            // SAFETY: `aggregate` came from the checked descriptor; `instance` is what `create`
            // returned and not destroyed (that happens only in drop); the lock keeps other
            // threads out; `call` points to the borrowed matrix and a NUL-terminated state, and
            // `out` to two buffers of the announced capacities, all alive for the call.
            unsafe { (self.abi.aggregate)(instance.0, &call, &mut out) }
        };
        // SAFETY: both are NULL or strings the plugin returned just now; each is freed once.
        let (new_state, message) = unsafe {
            (
                self.library.take_string(out.state_json),
                self.library.take_string(out.error),
            )
        };
        match status {
            CHORUS_OK => {}
            CHORUS_BAD_STATE => {
                let message = failure(status, message);
                return Err(AggregateError::State(format!("{}: {message}", self.who)));
            }
            _ => {
                let message = failure(status, message);
                return Err(AggregateError::Other(format!("{}: {message}", self.who)));
            }
        }
        *state = self.check(&out, &rewards, &weights, new_state)?;
        Ok(Aggregated { rewards, weights })
    }
}

impl Drop for PluginRule {
    fn drop(&mut self) {
        let instance = self
            .instance
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        // SAFETY: `destroy` came from the checked descriptor; the instance came from `create`
        // and is destroyed once, here, while `library` still keeps its code loaded.
        unsafe { (self.abi.destroy)(instance.0) };
    }
}
