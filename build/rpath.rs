//! Build script of the `chorus` binary: link libtorch with its rpath (see libtorch.rs).
#[path = "libtorch.rs"]
mod libtorch;

fn main() {
    libtorch::link();
}
