//! The host side of the plugin ABI: aggregation rules and fairness metrics from third-party
//! shared libraries, as peers of the built-ins.
//!
//! A plugin is a shared library that exports `chorus_plugin_abi_version` and
//! `chorus_plugin_descriptor` (crate `chorus-plugin`, `plugins/api`). [`Library::open`] loads
//! one and checks everything it can before any of its code runs on data: that the file is a
//! library, the ABI version (first, since a library of another version lays its descriptor
//! out differently), and the descriptor (strings, names, JSON Schemas, function pointers). A
//! library is then shared: every rule or metric built from it holds the `Arc<Library>`, so its
//! code stays loaded as long as anything can call it.
//!
//! A plugin is trusted native code (it runs inside chorus, and no check can stop a wild
//! pointer), but not trusted to keep the contract: [`Library::build_rule`] and
//! [`Library::build_metric`] return wrappers that check every output (lengths, finiteness,
//! weights summing to 1, state that is JSON), so a buggy plugin fails a run with a message
//! naming it instead of feeding NaN to PPO. Every message names the library's path, and the
//! rule or metric, because the person reading it may not have written the plugin.
//!
//! `plugins/c-test` holds the C plugin the tests below compile and load.
mod abi;
mod error;
mod library;
mod metric;
mod rule;
mod schema;
#[cfg(test)]
mod tests;

pub use error::PluginError;
pub use library::{sha256_file, Library, Offer};
