//! Support for the tests and the benchmark: crash and stall points (`failpoint`, armed by
//! `VOTEWATCH_FAILPOINT` in a build with the `testing` feature, inert in a release build) and
//! synthetic vote files (`synth`, only with the feature). Nothing here is used by a load except
//! the failpoints' checks.
pub mod failpoint;
#[cfg(any(test, feature = "testing"))]
pub mod synth;
