//! The C ABI between the chorus host and a plugin library, exactly as
//! `include/chorus_plugin.h` declares it. Every type is `#[repr(C)]`; nothing of the Rust ABI
//! crosses the boundary. `plugins/api/README.md` documents the calling rules.
use std::ffi::{c_char, c_void};

/// The symbol every plugin exports: `uint32_t chorus_plugin_abi_version(void)`. The host reads
/// it before anything else and refuses a library whose number differs from its own.
pub const ABI_VERSION_SYMBOL: &[u8] = b"chorus_plugin_abi_version";
/// `const ChorusPlugin *chorus_plugin_descriptor(void)`: what the library offers.
pub const DESCRIPTOR_SYMBOL: &[u8] = b"chorus_plugin_descriptor";

/// Status codes of every call that can fail.
pub const CHORUS_OK: i32 = 0;
/// The rule or metric refused (bad params, data it cannot handle); `error` says why.
pub const CHORUS_ERROR: i32 = 1;
/// The state JSON handed in is not one this rule can read; `error` says why.
pub const CHORUS_BAD_STATE: i32 = 2;
/// The plugin panicked (or threw); the call was abandoned and `error` holds the message.
pub const CHORUS_PANIC: i32 = 3;

pub type AbiVersionFn = unsafe extern "C" fn() -> u32;
pub type DescriptorFn = unsafe extern "C" fn() -> *const ChorusPlugin;

// The entry points' signatures. The fields below hold them as `Option`s: a C plugin may leave
// a pointer NULL, and a plain Rust `fn` that is NULL would be undefined behaviour to read;
// `Option<fn>` has the same layout, with NULL as `None`, so the host can check.
pub type FreeStringFn = unsafe extern "C" fn(s: *mut c_char);
pub type DestroyFn = unsafe extern "C" fn(instance: *mut c_void);
pub type RuleCreateFn = unsafe extern "C" fn(
    params_json: *const c_char,
    populations: *const f64,
    groups: usize,
    instance: *mut *mut c_void,
    error: *mut *mut c_char,
) -> i32;
pub type RuleAggregateFn = unsafe extern "C" fn(
    instance: *const c_void,
    call: *const ChorusAggregateCall,
    out: *mut ChorusAggregateOut,
) -> i32;
pub type MetricCreateFn = unsafe extern "C" fn(
    params_json: *const c_char,
    instance: *mut *mut c_void,
    error: *mut *mut c_char,
) -> i32;
pub type MetricComputeFn = unsafe extern "C" fn(
    instance: *const c_void,
    scores: *const f64,
    len: usize,
    value: *mut f64,
    error: *mut *mut c_char,
) -> i32;

/// What a library offers. Static: valid from the first `chorus_plugin_descriptor` call until
/// the library is unloaded, and never written to.
#[repr(C)]
pub struct ChorusPlugin {
    /// Equal to `chorus_plugin_abi_version()`.
    pub abi_version: u32,
    /// The library's name and version (NUL-terminated UTF-8), recorded in run manifests.
    pub name: *const c_char,
    pub version: *const c_char,
    pub rules: *const ChorusRule,
    pub rule_count: usize,
    pub metrics: *const ChorusMetric,
    pub metric_count: usize,
    /// Frees a string the plugin returned (`state_json`, `error`): whoever allocates frees.
    pub free_string: Option<FreeStringFn>,
}

/// One aggregation rule.
#[repr(C)]
pub struct ChorusRule {
    /// The name pipelines write in `rule:`; letters, digits and `_`.
    pub name: *const c_char,
    pub version: *const c_char,
    /// One line for `chorus plugins inspect`.
    pub description: *const c_char,
    /// A JSON Schema (draft 2020-12) for the rule's params without `rule` itself.
    pub params_schema: *const c_char,
    /// Builds an instance from `params_json` (a JSON object, NUL-terminated) and the groups'
    /// public population shares (`groups` values summing to 1). On `CHORUS_OK` it writes the
    /// instance to `*instance`; otherwise a message to `*error`.
    pub create: Option<RuleCreateFn>,
    /// Aggregates one round. May be called from any thread; an instance is never called from
    /// two threads at once.
    pub aggregate: Option<RuleAggregateFn>,
    /// Frees an instance made by `create`.
    pub destroy: Option<DestroyFn>,
}

/// The inputs of one `aggregate` call; all host-owned and valid for the call only.
#[repr(C)]
pub struct ChorusAggregateCall {
    /// `groups × rollouts` rewards, row-major (row g = group g), every one finite.
    pub rewards: *const f64,
    pub len: usize,
    pub groups: usize,
    pub rollouts: usize,
    /// The training round, from 1.
    pub round: u32,
    /// The state this rule returned last round as JSON; the text `null` before its first
    /// round (the host never passes NULL, but plugins should read NULL as `null` too).
    pub state_json: *const c_char,
}

/// Where `aggregate` writes. The host owns both buffers; the plugin owns the strings it puts
/// in `state_json` and `error`, which the host frees with `free_string`.
#[repr(C)]
pub struct ChorusAggregateOut {
    /// Room for `rollouts` aggregated rewards.
    pub rewards: *mut f64,
    pub rewards_capacity: usize,
    /// How many rewards the plugin produced (the host checks it equals `rollouts`).
    pub rewards_written: usize,
    /// Room for `groups` weights, which must sum to 1.
    pub weights: *mut f64,
    pub weights_capacity: usize,
    pub weights_written: usize,
    /// The new state as JSON, or NULL for `null`.
    pub state_json: *mut c_char,
    /// The message of a non-OK status.
    pub error: *mut c_char,
}

/// One fairness metric.
#[repr(C)]
pub struct ChorusMetric {
    pub name: *const c_char,
    pub version: *const c_char,
    pub description: *const c_char,
    pub params_schema: *const c_char,
    /// 1 if a larger value is fairer (Jain's index), 0 if it is less fair (Gini).
    pub higher_is_fairer: i32,
    pub create: Option<MetricCreateFn>,
    /// The metric of `len` per-group scores (each finite); writes `*value`.
    pub compute: Option<MetricComputeFn>,
    pub destroy: Option<DestroyFn>,
}
