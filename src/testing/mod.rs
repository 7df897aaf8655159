//! Test support.
pub mod failpoint;
pub mod synth;
