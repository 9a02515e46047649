//! Build script of chorus-llm: link libtorch with its rpath (../build/libtorch.rs).
#[path = "../build/libtorch.rs"]
mod libtorch;

fn main() {
    libtorch::link();
}
