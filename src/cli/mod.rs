//! The on-demand commands: they call the same code as the daemon and print for people. One
//! file per group of commands; `format` holds what they share in print. The commands parse
//! nothing themselves (main.rs does, with clap) and own no state.

mod format;
mod history;
mod ingest;
mod maintain;
mod setup;
mod unload;

pub use crate::model::parse_since;
pub use format::outcome_line;
use format::table;
pub use history::{history, status};
use ingest::send_queued;
pub use ingest::{check, ingest, rebuild};
pub use maintain::{maintain, outliers};
pub use setup::{check_config, send_test_email};
pub use unload::{reingest, unload};

/// Exit status when every file was handled.
pub const EXIT_OK: u8 = 0;
/// Exit status when a file was rejected whole or could not be read.
pub const EXIT_FILE_NOT_LOADED: u8 = 1;
/// Exit status of `maintain --verify` when the weekly counts differed (and were repaired).
pub const EXIT_PROBLEM: u8 = 1;
/// Exit status when the configuration or the warehouse is unusable.
pub const EXIT_FATAL: u8 = 2;
