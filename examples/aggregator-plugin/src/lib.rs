//! my-aggregator: a chorus plugin with one aggregation rule, `softmin` (src/rule.rs), and one
//! fairness metric, `min_max_ratio` (src/metric.rs).
//!
//! This file only tells chorus what the library offers. To make your own rule or metric, edit
//! src/rule.rs or src/metric.rs (or add files beside them) and list every rule type in
//! `rules: [...]` and every metric type in `metrics: [...]` below.
mod metric;
mod rule;

pub use metric::MinMaxRatio;
pub use rule::Softmin;

chorus_plugin::export! {
    name: "my-aggregator",
    version: env!("CARGO_PKG_VERSION"),
    rules: [Softmin],
    metrics: [MinMaxRatio],
}
