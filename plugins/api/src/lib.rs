//! chorus-plugin: what a third-party aggregator or metric library shares with the chorus host.
//!
//! A plugin is a `cdylib` that depends on this crate only (no libtorch, no heavy
//! dependencies), so a plugin author builds in seconds and the ABI stays small enough to keep
//! stable. The host reads the library's ABI version before anything else and refuses a
//! library built against another version, rather than calling into it and crashing.
//!
//! The descriptor and the call signatures (reward matrix + round + opaque state in, weights
//! out; per-group scores in, one number out) arrive with the plugin host; this crate fixes
//! the version contract first so that every later change to the ABI has a number to bump.

/// The ABI version a plugin built against this crate exports, and the host checks first.
pub const ABI_VERSION: u32 = 1;
