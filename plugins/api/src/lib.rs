//! chorus-plugin: the contract between chorus and an aggregation rule or fairness metric,
//! whether built into chorus or loaded from a third party's shared library.
//!
//! - [`RewardMatrix`], [`Aggregator`], [`Aggregated`], [`AggregateError`]: a rule sees one
//!   round's groups × rollouts rewards, the round and its own JSON state, and nothing else
//!   (the federation boundary).
//! - [`Metric`], [`MetricError`]: a metric turns per-group scores into one number.
//! - [`kit`]: the loops and stable helpers the built-in rules are made of, for plugins too.
//! - [`abi`]: the same interfaces as a C ABI (`include/chorus_plugin.h`), and [`export!`] with
//!   [`PluginRule`] / [`PluginMetric`], which put a Rust type behind it.
//!
//! A plugin depends on this crate only (serde_json and thiserror; no libtorch), so it builds
//! in seconds. `README.md` beside this crate documents the ABI and its versioning rule.
pub mod abi;
mod contract;
pub mod export;
pub mod kit;
mod matrix;

pub use contract::{AggregateError, Aggregated, Aggregator, Metric, MetricError};
pub use export::{PluginMetric, PluginRule, NO_PARAMS};
pub use matrix::RewardMatrix;
pub use serde_json;

/// The ABI version a plugin built against this crate exports, and the host checks first.
/// Bumped on any change to `abi` that an old plugin or an old host would misread
/// (README.md, "Versioning").
pub const ABI_VERSION: u32 = 1;

/// Exports rules and metrics from a `cdylib`: writes `chorus_plugin_abi_version` and
/// `chorus_plugin_descriptor`.
///
/// ```ignore
/// chorus_plugin::export! {
///     name: "my-plugin",
///     version: env!("CARGO_PKG_VERSION"),
///     rules: [Cvar],
///     metrics: [Atkinson],
/// }
/// ```
#[macro_export]
macro_rules! export {
    (
        name: $name:expr,
        version: $version:expr,
        rules: [$($rule:ty),* $(,)?],
        metrics: [$($metric:ty),* $(,)?] $(,)?
    ) => {
        /// The chorus plugin ABI version this library was built against.
        #[unsafe(no_mangle)]
        pub extern "C" fn chorus_plugin_abi_version() -> u32 {
            $crate::ABI_VERSION
        }

        /// What this library offers (see chorus_plugin.h).
        #[unsafe(no_mangle)]
        pub extern "C" fn chorus_plugin_descriptor() -> *const $crate::abi::ChorusPlugin {
            static DESCRIPTOR: $crate::export::Descriptor = $crate::export::Descriptor::new();
            DESCRIPTOR.get(|| $crate::export::Library {
                name: $name,
                version: $version,
                rules: ::std::vec![$($crate::export::rule::<$rule>()),*],
                metrics: ::std::vec![$($crate::export::metric::<$metric>()),*],
            })
        }
    };
}
