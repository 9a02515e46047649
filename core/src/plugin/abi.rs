//! The host's copy of a library's function pointers, checked non-NULL once when the library is
//! opened, and the opaque instance pointer the plugin hands out.
use std::ffi::c_void;

use chorus_plugin::abi::{
    DestroyFn, MetricComputeFn, MetricCreateFn, RuleAggregateFn, RuleCreateFn,
};

#[derive(Clone, Copy)]
pub(super) struct RuleAbi {
    pub create: RuleCreateFn,
    pub aggregate: RuleAggregateFn,
    pub destroy: DestroyFn,
}

#[derive(Clone, Copy)]
pub(super) struct MetricAbi {
    pub create: MetricCreateFn,
    pub compute: MetricComputeFn,
    pub destroy: DestroyFn,
}

/// An instance a plugin's `create` returned: opaque, possibly NULL, owned by the wrapper that
/// holds it, which destroys it once.
pub(super) struct Instance(pub *mut c_void);

// SAFETY: the ABI lets an instance be called from any thread ("may be called from any thread;
// an instance is never called from two threads at once"). The wrappers keep every `Instance`
// in a `Mutex`, which provides the second half; so moving one between threads is sound, and
// the `Mutex` makes the wrappers `Sync`.
unsafe impl Send for Instance {}
