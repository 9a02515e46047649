//! Datasets in one shape: questions with their options (and features or wording), and each
//! group's answer distribution. The simulator generates one; real surveys (WVS,
//! GlobalOpinionQA, read by chorus-surveys) load into the same.
mod simulator;
mod source;
mod survey;

pub use simulator::{GroupsSpec, SimulatorSpec};
pub use source::DataSpec;
pub use survey::{GroupInfo, QuestionText, Questions, Survey};
