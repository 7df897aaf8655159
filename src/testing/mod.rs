//! Support for the tests and the benchmark: crash and stall points (`failpoint`, armed only by
//! `VOTEWATCH_FAILPOINT`, inert otherwise) and synthetic vote files (`synth`). Nothing here is
//! used by a load except the failpoints' checks.
pub mod failpoint;
pub mod synth;
