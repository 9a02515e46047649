//! chorus-atkinson: the `atkinson` fairness metric as a chorus plugin
//! (`libchorus_atkinson.so`). [`Atkinson`] documents the metric.
mod atkinson;

pub use atkinson::Atkinson;

chorus_plugin::export! {
    name: "chorus-atkinson",
    version: env!("CARGO_PKG_VERSION"),
    rules: [],
    metrics: [Atkinson],
}
