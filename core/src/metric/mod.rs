//! Metrics: how well a policy matches each group, and how fairly that is spread.
//!
//! A fairness metric is a function of the per-group scores only; that is the shape the
//! plugin ABI exports too, so built-ins and plugins sit in one [`Metrics`] table.
mod alignment;
mod entry;
mod fairness;

pub use alignment::{alignment, js_distance};
pub use entry::{MetricEntry, Metrics};
pub use fairness::jain;
