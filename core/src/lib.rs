//! chorus-core: the library behind the `chorus` CLI.
//!
//! A pipeline file is parsed and checked ([`spec`]), resolved into a DAG ([`graph`]), and run by
//! the scheduler ([`schedule`], [`run`]) into a run folder ([`record`]). Stages ([`stage`]) pass
//! typed artifacts to each other; [`data`] makes the surveys and [`metric`] scores policies.
pub mod aggregate;
pub mod checkpoint;
pub mod data;
pub mod diagnostic;
pub mod graph;
pub mod grid;
pub mod metric;
pub mod plot;
pub mod plugin;
pub mod policy;
pub mod ppo;
pub mod record;
pub mod registry;
pub mod reward;
pub mod rng;
pub mod run;
pub mod schedule;
pub mod spec;
pub mod stage;

/// SHA-256 of the code that computes a run's numbers (chorus-core's and chorus-plugin's
/// sources and Cargo.lock), made by the build script; part of every run's identity.
pub const CODE_DIGEST: &str = env!("CHORUS_CODE_DIGEST");

/// The libtorch this build linked (read by the build script from the libtorch install).
pub const LIBTORCH_VERSION: &str = env!("CHORUS_LIBTORCH_VERSION");

/// Where torch would run tensors: `cuda` when a GPU is usable, else `cpu`. Calling into
/// libtorch here also proves at start-up that the linked library loads.
pub fn torch_device() -> &'static str {
    if tch::Cuda::is_available() {
        "cuda"
    } else {
        "cpu"
    }
}
