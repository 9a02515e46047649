//! A plugin's fairness metric behind the [`Metric`] trait, its value checked before it is
//! reported.
use std::ffi::c_char;
use std::fmt;
use std::ptr::null_mut;
use std::sync::{Arc, Mutex, PoisonError};

use chorus_plugin::abi::CHORUS_OK;
use chorus_plugin::{Metric, MetricError};
use serde_json::{Map, Value};

use super::abi::{Instance, MetricAbi};
use super::error::failure;
use super::library::c_json;
use super::{Library, PluginError};

pub(super) struct PluginMetric {
    /// "plugin metric `name` (path)", the start of every message about this metric.
    who: String,
    abi: MetricAbi,
    instance: Mutex<Instance>,
    /// Keeps the code behind `abi` loaded; dropped after `instance` was destroyed.
    library: Arc<Library>,
}

impl fmt::Debug for PluginMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.who)
    }
}

impl PluginMetric {
    pub(super) fn build(
        library: &Arc<Library>,
        index: usize,
        abi: MetricAbi,
        params: &Map<String, Value>,
    ) -> Result<PluginMetric, PluginError> {
        let name = &library.metrics()[index].name;
        let params = c_json(&Value::Object(params.clone()));
        let (mut instance, mut error) = (null_mut(), null_mut::<c_char>());
        // SAFETY: `create` came from this library's checked descriptor; `params` is a
        // NUL-terminated JSON object and both out-pointers are writable.
        let status = unsafe { (abi.create)(params.as_ptr(), &mut instance, &mut error) };
        // SAFETY: `error` is NULL or a string the plugin returned just now.
        let instance = unsafe { library.created("metric", name, status, instance, error) }?;
        Ok(PluginMetric {
            who: library.who("metric", name),
            abi,
            instance: Mutex::new(instance),
            library: Arc::clone(library),
        })
    }
}

impl Metric for PluginMetric {
    fn compute(&self, scores: &[f64]) -> Result<f64, MetricError> {
        let (mut value, mut error) = (f64::NAN, null_mut::<c_char>());
        let status = {
            let instance = self.instance.lock().unwrap_or_else(PoisonError::into_inner);
            // SAFETY: `compute` came from the checked descriptor; `instance` came from `create`
            // and is not destroyed before drop; the lock keeps other threads out; `scores` is
            // `scores.len()` values and both out-pointers are writable, for the call.
            unsafe {
                (self.abi.compute)(
                    instance.0,
                    scores.as_ptr(),
                    scores.len(),
                    &mut value,
                    &mut error,
                )
            }
        };
        // SAFETY: `error` is NULL or a string the plugin returned just now.
        let message = unsafe { self.library.take_string(error) };
        if status != CHORUS_OK {
            return Err(MetricError(format!(
                "{}: {}",
                self.who,
                failure(status, message)
            )));
        }
        if !value.is_finite() {
            return Err(MetricError(format!(
                "{} broke the plugin contract: returned {value} for the scores {scores:?}; \
                 report this to the plugin's authors",
                self.who
            )));
        }
        Ok(value)
    }
}

impl Drop for PluginMetric {
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
