//! The votes dataset's data contract: turns one JSON record into a validated [`Vote`] or a
//! specific [`RejectReason`]. Pure functions, no I/O.

pub mod arrow;
mod fast;
mod full;
mod timestamp;

use fast::parse_plain;
use full::parse_full;
pub use timestamp::parse_timestamp;
pub(crate) use timestamp::{week_of_day, MICROS_PER_DAY};

pub use crate::datasets::contract::{RejectReason, UnknownFields};

/// A vote that passed every rule of the data contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    pub id: i64,
    pub post_id: i64,
    pub vote_type_id: i16,
    pub user_id: Option<i64>,
    pub bounty_amount: Option<i32>,
    /// Microseconds since 1970-01-01T00:00:00 UTC.
    pub creation_date: i64,
}

/// Validates one record (a line, or an element of a JSON array) without its line end.
pub fn parse_vote(record: &[u8], unknown: &mut UnknownFields) -> Result<Vote, RejectReason> {
    match parse_plain(record, unknown) {
        Some(vote) => Ok(vote),
        None => parse_full(record, unknown),
    }
}

#[cfg(test)]
mod tests;
