//! chorus-borda: the `borda` aggregation rule as a chorus plugin (`libchorus_borda.so`).
//!
//! Load it from a pipeline with `plugins: [path/to/libchorus_borda.so]` and write
//! `rule: borda` (optionally `weighted: true`) in the `aggregate` stage; [`Borda`] documents
//! the rule.
mod borda;

pub use borda::Borda;

chorus_plugin::export! {
    name: "chorus-borda",
    version: env!("CARGO_PKG_VERSION"),
    rules: [Borda],
    metrics: [],
}
