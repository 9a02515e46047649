//! The host's copy of a library's function pointers, checked non-NULL once when the library is
//! opened, and the opaque instance pointer the plugin hands out.
use std::ffi::{c_char, c_void};

use chorus_plugin::abi::{ChorusAggregateCall, ChorusAggregateOut};

// The field types of `chorus_plugin::abi`, spelled out because the host stores them apart from
// the descriptor. The compiler checks that they match: `nullable_fn` infers its type from the
// field it reads.
pub(super) type FreeString = unsafe extern "C" fn(*mut c_char);
pub(super) type Destroy = unsafe extern "C" fn(*mut c_void);
pub(super) type RuleCreate = unsafe extern "C" fn(
    *const c_char,
    *const f64,
    usize,
    *mut *mut c_void,
    *mut *mut c_char,
) -> i32;
pub(super) type RuleAggregate =
    unsafe extern "C" fn(*const c_void, *const ChorusAggregateCall, *mut ChorusAggregateOut) -> i32;
pub(super) type MetricCreate =
    unsafe extern "C" fn(*const c_char, *mut *mut c_void, *mut *mut c_char) -> i32;
pub(super) type MetricCompute =
    unsafe extern "C" fn(*const c_void, *const f64, usize, *mut f64, *mut *mut c_char) -> i32;

#[derive(Clone, Copy)]
pub(super) struct RuleAbi {
    pub create: RuleCreate,
    pub aggregate: RuleAggregate,
    pub destroy: Destroy,
}

#[derive(Clone, Copy)]
pub(super) struct MetricAbi {
    pub create: MetricCreate,
    pub compute: MetricCompute,
    pub destroy: Destroy,
}

/// Reads a function-pointer field that a C plugin may have left NULL. A Rust `fn` type cannot
/// be NULL (reading one that is would be undefined behaviour), so the field is read as
/// `Option<F>`, which for a function pointer has the same layout with NULL as `None`.
///
/// # Safety
/// `field` points to a readable, initialised field whose type `F` is a function pointer.
pub(super) unsafe fn nullable_fn<F: Copy>(field: *const F) -> Option<F> {
    const { assert!(size_of::<Option<F>>() == size_of::<F>()) };
    // SAFETY: the caller's promise, and the layout assertion above.
    unsafe { field.cast::<Option<F>>().read() }
}

/// An instance a plugin's `create` returned: opaque, possibly NULL, owned by the wrapper that
/// holds it, which destroys it once.
pub(super) struct Instance(pub *mut c_void);

// SAFETY: the ABI lets an instance be called from any thread ("may be called from any thread;
// an instance is never called from two threads at once"). The wrappers keep every `Instance`
// in a `Mutex`, which provides the second half; so moving one between threads is sound, and
// the `Mutex` makes the wrappers `Sync`.
unsafe impl Send for Instance {}
