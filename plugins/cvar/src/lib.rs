//! chorus-cvar: the `cvar` aggregation rule as a chorus plugin (`libchorus_cvar.so`).
//!
//! Load it from a pipeline with `plugins: [path/to/libchorus_cvar.so]` and write
//! `rule: cvar` (optionally `q: 0.5`) in the `aggregate` stage; [`Cvar`] documents the rule.
mod cvar;

pub use cvar::Cvar;

chorus_plugin::export! {
    name: "chorus-cvar",
    version: env!("CARGO_PKG_VERSION"),
    rules: [Cvar],
    metrics: [],
}
