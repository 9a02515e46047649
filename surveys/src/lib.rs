//! Real survey datasets read critically into one in-memory form.
//!
//! Published survey files are hand-assembled: shares that do not sum to 1, option lists that
//! disagree with the shares beside them, questions present for one country and not another.
//! Training on such data without noticing makes every later number suspect, so each reader
//! here applies a fixed, documented rule to each kind of anomaly and counts every use of a
//! rule in a [`Report`]: nothing is repaired or dropped silently.
//!
//! - [`spec`]: what to read ([`DataSpec`], embeddable in a pipeline under `data:`).
//! - [`wvs`], [`global_opinion_qa`]: the two readers and their rules.
//! - [`dataset`]: the result every reader produces ([`Dataset`]).
//! - [`report`]: what was found, kept, renormalised, repaired and dropped, and why.
//! - [`spec_file`]: a YAML file holding a spec on its own or as a pipeline's `data:`.
pub mod dataset;
pub mod error;
pub mod global_opinion_qa;
mod join;
mod python_literal;
pub mod report;
mod shares;
pub mod spec;
pub mod spec_file;
pub mod wvs;

pub use dataset::{Dataset, Group, Question};
pub use error::DataError;
pub use report::{DropReason, GroupReport, Repair, Report, SkippedRow};
pub use spec::DataSpec;
