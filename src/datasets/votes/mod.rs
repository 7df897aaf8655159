//! The data contract: turns one JSON record into a validated [`Vote`] or a specific
//! [`RejectReason`]. Pure functions, no I/O.

pub mod arrow;
mod fast;
mod full;
mod timestamp;

use fast::parse_plain;
use full::parse_full;
pub use timestamp::parse_timestamp;

use std::collections::BTreeSet;
use std::fmt;

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

/// Why a record is not a vote. The `Display` text is what the ledger, the log and the report show.
#[derive(Debug, Clone, PartialEq)]
pub enum RejectReason {
    NotJson(String),
    NotObject(&'static str),
    InvalidUtf8 {
        offset: usize,
    },
    BinaryData {
        offset: usize,
    },
    TooLong {
        bytes: u64,
        limit: u64,
    },
    Missing(&'static str),
    DuplicateField(&'static str),
    NotInteger {
        field: &'static str,
        found: String,
    },
    OutOfRange {
        field: &'static str,
        value: String,
        rule: &'static str,
    },
    BadDate {
        found: String,
        why: &'static str,
    },
    NotString {
        field: &'static str,
        found: String,
    },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::NotJson(e) => write!(f, "not JSON: {e}"),
            RejectReason::NotObject(kind) => write!(f, "not a JSON object (found {kind})"),
            RejectReason::InvalidUtf8 { offset } => write!(f, "invalid UTF-8 at byte {offset}"),
            RejectReason::BinaryData { offset } => {
                write!(f, "binary data (NUL byte at byte {offset})")
            }
            RejectReason::TooLong { bytes, limit } => {
                write!(f, "record is {bytes} bytes, over the {limit}-byte limit")
            }
            RejectReason::Missing(field) => write!(f, "missing {field}"),
            RejectReason::DuplicateField(field) => write!(f, "field {field} appears twice"),
            RejectReason::NotInteger { field, found } => {
                write!(f, "{field} not an integer (found {found})")
            }
            RejectReason::OutOfRange { field, value, rule } => {
                write!(f, "{field} out of range ({value}; {rule})")
            }
            RejectReason::BadDate { found, why } => {
                write!(f, "bad date in CreationDate ({found}: {why})")
            }
            RejectReason::NotString { field, found } => {
                write!(f, "{field} not a string (found {found})")
            }
        }
    }
}

/// Names of fields outside the contract, collected per file. Bounded so that a hostile file
/// cannot grow it without limit.
#[derive(Debug, Default, Clone)]
pub struct UnknownFields {
    names: BTreeSet<String>,
    /// Set when more distinct names were seen than are kept.
    pub overflowed: bool,
}

impl UnknownFields {
    const MAX_NAMES: usize = 64;
    const MAX_NAME_CHARS: usize = 100;

    pub fn insert(&mut self, name: &str) {
        if self.names.contains(name) {
            return;
        }
        if self.names.len() >= Self::MAX_NAMES {
            self.overflowed = true;
            return;
        }
        self.names
            .insert(name.chars().take(Self::MAX_NAME_CHARS).collect());
    }

    pub fn merge(&mut self, other: UnknownFields) {
        for name in other.names {
            self.insert(&name);
        }
        self.overflowed |= other.overflowed;
    }

    pub fn names(&self) -> Vec<String> {
        self.names.iter().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
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
