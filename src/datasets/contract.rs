//! What every dataset's contract shares: the reasons a record is refused, the unknown fields
//! a file carries, and reading a JSON value the way the contracts read them (numbers by their
//! literal text, absent and `null` alike). Pure: no I/O.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde_json::value::RawValue;

/// Why a record is not a valid record of its dataset. The `Display` text is what the ledger, the log and the report show.
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
        field: &'static str,
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
            RejectReason::BadDate { field, found, why } => {
                write!(f, "bad date in {field} ({found}: {why})")
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

pub(crate) fn positive(value: i64, field: &'static str) -> Result<(), RejectReason> {
    if value > 0 {
        Ok(())
    } else {
        Err(RejectReason::OutOfRange {
            field,
            value: value.to_string(),
            rule: "must be > 0",
        })
    }
}

pub(crate) fn required_int(
    value: Option<Scalar<'_>>,
    field: &'static str,
) -> Result<i64, RejectReason> {
    match value {
        None | Some(Scalar::Null) => Err(RejectReason::Missing(field)),
        Some(v) => v.to_int(field),
    }
}

/// Absent, `null` and `""` all mean "no value".
pub(crate) fn optional_int(
    value: Option<Scalar<'_>>,
    field: &'static str,
) -> Result<Option<i64>, RejectReason> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) if s.is_empty() => Ok(None),
        Some(v) => v.to_int(field).map(Some),
    }
}

/// Longest found value a reason quotes, so that a reason stays one readable line.
pub(crate) const MAX_QUOTED: usize = 40;

/// Quotes a found value for a reason text, cut to `MAX_QUOTED` characters.
pub(crate) fn quote(s: &str) -> String {
    if s.chars().count() > MAX_QUOTED {
        let cut: String = s.chars().take(MAX_QUOTED).collect();
        format!("{:?}…", cut)
    } else {
        format!("{s:?}")
    }
}

/// A number's literal text, cut like [`quote`] (a literal is ASCII).
pub(crate) fn cut(literal: &str) -> String {
    match literal.get(..MAX_QUOTED) {
        Some(head) if head.len() < literal.len() => format!("{head}…"),
        _ => literal.to_string(),
    }
}

/// A JSON value as far as the contract cares about it. Numbers keep their literal text, so
/// that an integer beyond 64 bits or `1e400` is reported as written, and `-0` means 0 exactly
/// as it does on the fast path.
pub(crate) enum Scalar<'de> {
    Number(&'de str),
    Str(Cow<'de, str>),
    Bool(bool),
    Null,
    Array,
    Object,
}

impl<'de> Scalar<'de> {
    /// Classifies a syntactically valid JSON value by its text.
    pub(crate) fn from_raw(raw: &'de RawValue) -> Result<Scalar<'de>, serde_json::Error> {
        let text = raw.get();
        Ok(match text.as_bytes().first() {
            Some(b'"') => match serde_json::from_str::<&'de str>(text) {
                Ok(s) => Scalar::Str(Cow::Borrowed(s)),
                // Escapes: the unescaped text needs its own buffer.
                Err(_) => Scalar::Str(Cow::Owned(serde_json::from_str::<String>(text)?)),
            },
            Some(b't') => Scalar::Bool(true),
            Some(b'f') => Scalar::Bool(false),
            Some(b'n') => Scalar::Null,
            Some(b'[') => Scalar::Array,
            Some(b'{') => Scalar::Object,
            _ => Scalar::Number(text),
        })
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Scalar::Number(n) => cut(n),
            Scalar::Str(s) => quote(s),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Null => "null".to_string(),
            Scalar::Array => "an array".to_string(),
            Scalar::Object => "an object".to_string(),
        }
    }

    pub(crate) fn to_int(&self, field: &'static str) -> Result<i64, RejectReason> {
        let (text, shown) = match self {
            Scalar::Number(n) => (*n, cut(n)),
            Scalar::Str(s) => (s.as_ref(), quote(s)),
            other => {
                return Err(RejectReason::NotInteger {
                    field,
                    found: other.describe(),
                })
            }
        };
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RejectReason::NotInteger {
                field,
                found: shown,
            });
        }
        text.parse::<i64>().map_err(|_| RejectReason::OutOfRange {
            field,
            value: shown,
            rule: "must fit a 64-bit integer",
        })
    }
}

/// A record's bytes as the text of a JSON object: refused with the specific reason when they
/// hold a NUL byte, are not UTF-8, or are valid JSON of another kind or not JSON at all.
pub(crate) fn json_text(record: &[u8]) -> Result<&str, RejectReason> {
    if let Some(offset) = memchr::memchr(0, record) {
        return Err(RejectReason::BinaryData { offset });
    }
    let text = std::str::from_utf8(record).map_err(|e| RejectReason::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let first = text.trim_start().as_bytes().first().copied();
    if first != Some(b'{') {
        // Tell "valid JSON but not an object" apart from "not JSON at all".
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => RejectReason::NotObject(match first {
                Some(b'[') => "an array",
                Some(b'"') => "a string",
                Some(b't' | b'f') => "a boolean",
                Some(b'n') => "null",
                _ => "a number",
            }),
            Err(e) => RejectReason::NotJson(e.to_string()),
        });
    }
    Ok(text)
}
