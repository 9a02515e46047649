//! Metrics: how well a policy matches each group, and how fairly that is spread.
//!
//! A fairness metric is a function of the per-group scores only (`&[f64] -> f64`); that is the
//! shape a metric plugin will export, so built-ins and plugins are interchangeable.
mod alignment;
mod fairness;

pub use alignment::{alignment, js_distance};
pub use fairness::Fairness;
