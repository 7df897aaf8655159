//! The datasets votewatch loads.
pub mod votes;
