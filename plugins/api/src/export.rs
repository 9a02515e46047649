//! The plugin side of the ABI for Rust authors: implement [`PluginRule`] or [`PluginMetric`]
//! and list the types in [`export!`](crate::export!). Every entry point below catches panics
//! and turns them into [`CHORUS_PANIC`] plus the message, so no unwinding crosses into the
//! host.
use std::borrow::Cow;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::abi::{
    ChorusAggregateCall, ChorusAggregateOut, ChorusMetric, ChorusPlugin, ChorusRule,
    CHORUS_BAD_STATE, CHORUS_ERROR, CHORUS_OK, CHORUS_PANIC,
};
use crate::{AggregateError, Aggregator, Metric, RewardMatrix, ABI_VERSION};

/// The params schema of a rule or metric without knobs: an object with no properties.
pub const NO_PARAMS: &str = r#"{"type": "object", "additionalProperties": false}"#;

/// An aggregation rule a library exports: the same [`Aggregator`] the built-ins implement,
/// plus its name, version, params schema and constructor.
pub trait PluginRule: Aggregator + Sized + 'static {
    /// The name pipelines write in `rule:`; letters, digits and `_`.
    const NAME: &'static str;
    const VERSION: &'static str;
    /// One line, shown by `chorus plugins inspect`.
    const DESCRIPTION: &'static str;
    /// A JSON Schema for the params (without `rule`); the host validates against it before a
    /// run starts, so `new` only sees params that passed.
    const PARAMS_SCHEMA: &'static str = NO_PARAMS;

    /// Builds the rule from its params and the groups' public population shares (sum 1).
    fn new(params: &Map<String, Value>, populations: &[f64]) -> Result<Self, String>;
}

/// A fairness metric a library exports.
pub trait PluginMetric: Metric + Sized + 'static {
    const NAME: &'static str;
    const VERSION: &'static str;
    const DESCRIPTION: &'static str;
    const PARAMS_SCHEMA: &'static str = NO_PARAMS;
    /// Whether a larger value is fairer (Jain's index) or less fair (Gini).
    const HIGHER_IS_FAIRER: bool;

    fn new(params: &Map<String, Value>) -> Result<Self, String>;
}

/// A message for the host: allocated here, freed by [`free_string`] (here).
fn message(text: &str) -> *mut c_char {
    CString::new(text.replace('\0', "\\0"))
        .expect("NULs were replaced")
        .into_raw()
}

/// The `free_string` of every Rust plugin.
///
/// # Safety
/// `s` is NULL or a string this library returned and the host has not freed yet.
pub unsafe extern "C" fn free_string(s: *mut c_char) {
    if !s.is_null() {
        drop(CString::from_raw(s));
    }
}

/// Runs `body`, turning a panic into `CHORUS_PANIC` with its message in `*error`.
fn guarded(error: *mut *mut c_char, body: impl FnOnce() -> Result<(), (i32, String)>) -> i32 {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("a panic without a message");
        Err((CHORUS_PANIC, what.to_owned()))
    });
    match outcome {
        Ok(()) => CHORUS_OK,
        Err((code, text)) => {
            if !error.is_null() {
                // SAFETY: the host passes a writable pointer (checked non-NULL above).
                unsafe { *error = message(&text) };
            }
            code
        }
    }
}

/// The host's buffer as a slice; an empty one for NULL or length 0 (where `from_raw_parts`
/// would be undefined behaviour on a NULL pointer).
///
/// # Safety
/// Unless NULL, `ptr` points to `len` readable values that outlive the call.
unsafe fn slice<'a>(ptr: *const f64, len: usize) -> &'a [f64] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, len)
    }
}

/// # Safety
/// As for [`slice`], writable.
unsafe fn slice_mut<'a>(ptr: *mut f64, len: usize) -> &'a mut [f64] {
    if ptr.is_null() || len == 0 {
        &mut []
    } else {
        std::slice::from_raw_parts_mut(ptr, len)
    }
}

/// A NUL-terminated JSON string from the host, parsed; NULL reads as `null`.
///
/// # Safety
/// `text` is NULL or a valid NUL-terminated string.
unsafe fn json(text: *const c_char) -> Result<Value, String> {
    if text.is_null() {
        return Ok(Value::Null);
    }
    let text = CStr::from_ptr(text)
        .to_str()
        .map_err(|e| format!("not UTF-8: {e}"))?;
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

/// The params object the host passes to `create` (NULL reads as no params).
///
/// # Safety
/// As for [`json`].
unsafe fn params(params_json: *const c_char) -> Result<Map<String, Value>, (i32, String)> {
    match json(params_json).map_err(|e| (CHORUS_ERROR, e))? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err((
            CHORUS_ERROR,
            format!("params must be an object, not {other}"),
        )),
    }
}

/// # Safety
/// As for `ChorusRule::create`.
unsafe extern "C" fn rule_create<R: PluginRule>(
    params_json: *const c_char,
    populations: *const f64,
    groups: usize,
    instance: *mut *mut c_void,
    error: *mut *mut c_char,
) -> i32 {
    guarded(error, || {
        let params = params(params_json)?;
        let populations = slice(populations, groups);
        let rule = R::new(&params, populations).map_err(|e| (CHORUS_ERROR, e))?;
        *instance = Box::into_raw(Box::new(rule)).cast();
        Ok(())
    })
}

/// # Safety
/// As for `ChorusRule::aggregate`.
unsafe extern "C" fn rule_aggregate<R: PluginRule>(
    instance: *const c_void,
    call: *const ChorusAggregateCall,
    out: *mut ChorusAggregateOut,
) -> i32 {
    let out = &mut *out;
    guarded(&mut out.error, || {
        let rule = &*instance.cast::<R>();
        let call = &*call;
        let values = slice(call.rewards, call.len);
        let matrix = RewardMatrix::shaped(call.groups, call.rollouts, Cow::Borrowed(values))
            .map_err(|e| (CHORUS_ERROR, e.to_string()))?;
        let mut state = json(call.state_json).map_err(|e| (CHORUS_BAD_STATE, e))?;
        let result = rule
            .aggregate(&matrix, call.round, &mut state)
            .map_err(|e| match e {
                AggregateError::State(_) => (CHORUS_BAD_STATE, e.to_string()),
                e => (CHORUS_ERROR, e.to_string()),
            })?;
        out.rewards_written = result.rewards.len();
        out.weights_written = result.weights.len();
        let rewards = slice_mut(out.rewards, out.rewards_capacity);
        let n = result.rewards.len().min(rewards.len());
        rewards[..n].copy_from_slice(&result.rewards[..n]);
        let weights = slice_mut(out.weights, out.weights_capacity);
        let n = result.weights.len().min(weights.len());
        weights[..n].copy_from_slice(&result.weights[..n]);
        out.state_json = if state.is_null() {
            std::ptr::null_mut()
        } else {
            message(&state.to_string())
        };
        Ok(())
    })
}

/// # Safety
/// `instance` came from `rule_create::<R>` and is freed once.
unsafe extern "C" fn rule_destroy<R: PluginRule>(instance: *mut c_void) {
    if !instance.is_null() {
        // A panic in a destructor must not unwind into the host either; there is no one to
        // tell, so it is dropped.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(Box::from_raw(instance.cast::<R>()))
        }));
    }
}

/// # Safety
/// As for `ChorusMetric::create`.
unsafe extern "C" fn metric_create<M: PluginMetric>(
    params_json: *const c_char,
    instance: *mut *mut c_void,
    error: *mut *mut c_char,
) -> i32 {
    guarded(error, || {
        let params = params(params_json)?;
        let metric = M::new(&params).map_err(|e| (CHORUS_ERROR, e))?;
        *instance = Box::into_raw(Box::new(metric)).cast();
        Ok(())
    })
}

/// # Safety
/// As for `ChorusMetric::compute`.
unsafe extern "C" fn metric_compute<M: PluginMetric>(
    instance: *const c_void,
    scores: *const f64,
    len: usize,
    value: *mut f64,
    error: *mut *mut c_char,
) -> i32 {
    guarded(error, || {
        let metric = &*instance.cast::<M>();
        let scores = slice(scores, len);
        *value = metric
            .compute(scores)
            .map_err(|e| (CHORUS_ERROR, e.to_string()))?;
        Ok(())
    })
}

/// # Safety
/// `instance` came from `metric_create::<M>` and is freed once.
unsafe extern "C" fn metric_destroy<M: PluginMetric>(instance: *mut c_void) {
    if !instance.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(Box::from_raw(instance.cast::<M>()))
        }));
    }
}

fn c_string(text: &str) -> CString {
    CString::new(text).unwrap_or_else(|_| panic!("{text:?} contains a NUL byte"))
}

/// One exported entry and the strings its descriptor points into.
pub struct Entry<T> {
    strings: [CString; 4],
    build: fn(&[CString; 4]) -> T,
}

/// The descriptor of rule `R` (used by [`export!`](crate::export!)).
pub fn rule<R: PluginRule>() -> Entry<ChorusRule> {
    Entry {
        strings: [R::NAME, R::VERSION, R::DESCRIPTION, R::PARAMS_SCHEMA].map(c_string),
        build: |s| ChorusRule {
            name: s[0].as_ptr(),
            version: s[1].as_ptr(),
            description: s[2].as_ptr(),
            params_schema: s[3].as_ptr(),
            create: Some(rule_create::<R>),
            aggregate: Some(rule_aggregate::<R>),
            destroy: Some(rule_destroy::<R>),
        },
    }
}

/// The descriptor of metric `M` (used by [`export!`](crate::export!)).
pub fn metric<M: PluginMetric>() -> Entry<ChorusMetric> {
    Entry {
        strings: [M::NAME, M::VERSION, M::DESCRIPTION, M::PARAMS_SCHEMA].map(c_string),
        build: |s| ChorusMetric {
            name: s[0].as_ptr(),
            version: s[1].as_ptr(),
            description: s[2].as_ptr(),
            params_schema: s[3].as_ptr(),
            higher_is_fairer: i32::from(M::HIGHER_IS_FAIRER),
            create: Some(metric_create::<M>),
            compute: Some(metric_compute::<M>),
            destroy: Some(metric_destroy::<M>),
        },
    }
}

/// What a library exports, before it is laid out for C.
pub struct Library {
    pub name: &'static str,
    pub version: &'static str,
    pub rules: Vec<Entry<ChorusRule>>,
    pub metrics: Vec<Entry<ChorusMetric>>,
}

/// The laid-out descriptor with everything it points into.
struct Laid {
    _strings: Vec<[CString; 4]>,
    _names: [CString; 2],
    _rules: Vec<ChorusRule>,
    _metrics: Vec<ChorusMetric>,
    plugin: ChorusPlugin,
}

// SAFETY: a `Laid` is built once and never written afterwards; its raw pointers point into
// heap buffers that it owns and that live as long as it (a static).
unsafe impl Send for Laid {}
unsafe impl Sync for Laid {}

/// The static behind `chorus_plugin_descriptor` (used by [`export!`](crate::export!)).
pub struct Descriptor(OnceLock<Laid>);

impl Default for Descriptor {
    fn default() -> Self {
        Self::new()
    }
}

impl Descriptor {
    pub const fn new() -> Self {
        Descriptor(OnceLock::new())
    }

    /// The descriptor, laid out on first use. Returns NULL if laying out panicked (a name
    /// with a NUL byte), which the host reports as a library with a broken descriptor.
    pub fn get(&'static self, library: fn() -> Library) -> *const ChorusPlugin {
        catch_unwind(|| &self.0.get_or_init(|| lay_out(library())).plugin as *const _)
            .unwrap_or(std::ptr::null())
    }
}

fn lay_out(library: Library) -> Laid {
    let names = [c_string(library.name), c_string(library.version)];
    let mut strings = Vec::new();
    let rules: Vec<ChorusRule> = library
        .rules
        .into_iter()
        .map(|e| {
            let built = (e.build)(&e.strings);
            strings.push(e.strings);
            built
        })
        .collect();
    let metrics: Vec<ChorusMetric> = library
        .metrics
        .into_iter()
        .map(|e| {
            let built = (e.build)(&e.strings);
            strings.push(e.strings);
            built
        })
        .collect();
    let plugin = ChorusPlugin {
        abi_version: ABI_VERSION,
        name: names[0].as_ptr(),
        version: names[1].as_ptr(),
        rules: rules.as_ptr(),
        rule_count: rules.len(),
        metrics: metrics.as_ptr(),
        metric_count: metrics.len(),
        free_string: Some(free_string),
    };
    Laid {
        _strings: strings,
        _names: names,
        _rules: rules,
        _metrics: metrics,
        plugin,
    }
}
