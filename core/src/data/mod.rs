//! Datasets in one shape: questions with K options, and each group's answer distribution.
//! The simulator produces it today; real survey loaders (WVS, GlobalOpinionQA) produce the same.
mod simulator;
mod survey;

pub use simulator::SimulatorSpec;
pub use survey::{GroupInfo, QuestionText, Questions, Survey};
