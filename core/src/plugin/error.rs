//! Why a plugin library or one of its rules or metrics cannot be used. Every message names the
//! library's path (and the rule or metric) and says what to do, because the person reading it
//! runs a pipeline and may not have written the plugin.
use std::path::PathBuf;

use chorus_plugin::abi::{CHORUS_BAD_STATE, CHORUS_ERROR, CHORUS_PANIC};

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin library {} does not exist; check the path, or build the plugin first", path.display())]
    Missing { path: PathBuf },

    #[error(
        "plugin library {} is not a regular file; give the path of the shared library itself \
         (lib<name>.so on Linux, lib<name>.dylib on macOS, <name>.dll on Windows)",
        path.display()
    )]
    NotAFile { path: PathBuf },

    #[error("plugin library {} cannot be read ({cause}); check its permissions", path.display())]
    Unreadable {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error(
        "plugin library {} is not a shared library this system can load ({reason}); build the \
         plugin for this machine (a Rust plugin needs crate-type = [\"cdylib\"])",
        path.display()
    )]
    NotALibrary { path: PathBuf, reason: String },

    #[error(
        "plugin library {} does not export `{symbol}`, so it is not a chorus plugin; build it \
         with chorus_plugin::export! (Rust) or against plugins/api/include/chorus_plugin.h (C)",
        path.display()
    )]
    NoSymbols { path: PathBuf, symbol: String },

    #[error(
        "plugin library {} was built for chorus plugin ABI version {found}, but this chorus \
         speaks version {expected}; rebuild the plugin against this chorus's plugins/api \
         (the chorus-plugin crate or include/chorus_plugin.h)",
        path.display()
    )]
    AbiVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },

    #[error(
        "plugin library {} has a broken descriptor: {problem}; this is a bug in the plugin, \
         report it to its authors",
        path.display()
    )]
    Descriptor { path: PathBuf, problem: String },

    /// The plugin's `create` refused; `message` is the plugin's own words.
    #[error("plugin {kind} `{name}` ({}): {message}", path.display())]
    Create {
        kind: &'static str,
        name: String,
        path: PathBuf,
        message: String,
    },
}

/// What a non-OK status code means, in words, with the plugin's message.
pub(super) fn failure(status: i32, message: Option<Vec<u8>>) -> String {
    let message = message.map_or_else(
        || "(the plugin gave no message)".to_owned(),
        |m| String::from_utf8_lossy(&m).into_owned(),
    );
    match status {
        CHORUS_ERROR | CHORUS_BAD_STATE => message,
        CHORUS_PANIC => {
            format!("panicked: {message}; this is a bug in the plugin, report it to its authors")
        }
        _ => format!(
            "returned the unknown status {status} ({message}); this is a bug in the plugin, \
             report it to its authors"
        ),
    }
}
