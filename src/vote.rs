//! The data contract: turns one JSON record into a validated [`Vote`] or a specific
//! [`RejectReason`]. Pure functions, no I/O.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

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
    match parse_plain(record) {
        Some(vote) => Ok(vote),
        None => parse_full(record, unknown),
    }
}

/// The full parser: any JSON, every rule, a specific reason for each failure.
fn parse_full(record: &[u8], unknown: &mut UnknownFields) -> Result<Vote, RejectReason> {
    if let Some(offset) = memchr::memchr(0, record) {
        return Err(RejectReason::BinaryData { offset });
    }
    let text = std::str::from_utf8(record).map_err(|e| RejectReason::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let first = text.trim_start().as_bytes().first().copied();
    if first != Some(b'{') {
        // Tell "valid JSON but not an object" apart from "not JSON at all".
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
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
    let mut de = serde_json::Deserializer::from_str(text);
    let fields = RawFieldsSeed { unknown }
        .deserialize(&mut de)
        .and_then(|fields| de.end().map(|()| fields))
        .map_err(|e| RejectReason::NotJson(e.to_string()))?;
    fields?.into_vote()
}

/// The contract's fields as they came, before their values are checked.
#[derive(Default)]
struct RawFields<'de> {
    id: Option<Scalar<'de>>,
    post_id: Option<Scalar<'de>>,
    vote_type_id: Option<Scalar<'de>>,
    user_id: Option<Scalar<'de>>,
    bounty_amount: Option<Scalar<'de>>,
    creation_date: Option<Scalar<'de>>,
}

impl RawFields<'_> {
    fn into_vote(self) -> Result<Vote, RejectReason> {
        let id = required_int(self.id, "Id")?;
        let post_id = required_int(self.post_id, "PostId")?;
        let vote_type_id = required_int(self.vote_type_id, "VoteTypeId")?;
        let creation_date = match self.creation_date {
            None | Some(Scalar::Null) => return Err(RejectReason::Missing("CreationDate")),
            Some(Scalar::Str(s)) => parse_timestamp(&s).map_err(|why| RejectReason::BadDate {
                found: quote(&s),
                why,
            })?,
            Some(other) => {
                return Err(RejectReason::NotString {
                    field: "CreationDate",
                    found: other.describe(),
                })
            }
        };
        positive(id, "Id")?;
        positive(post_id, "PostId")?;
        positive(vote_type_id, "VoteTypeId")?;
        let vote_type_id = i16::try_from(vote_type_id).map_err(|_| RejectReason::OutOfRange {
            field: "VoteTypeId",
            value: vote_type_id.to_string(),
            rule: "must be at most 32767",
        })?;
        let user_id = optional_int(self.user_id, "UserId")?;
        let bounty_amount = optional_int(self.bounty_amount, "BountyAmount")?
            .map(|b| {
                i32::try_from(b).map_err(|_| RejectReason::OutOfRange {
                    field: "BountyAmount",
                    value: b.to_string(),
                    rule: "must fit a 32-bit integer",
                })
            })
            .transpose()?;
        Ok(Vote {
            id,
            post_id,
            vote_type_id,
            user_id,
            bounty_amount,
            creation_date,
        })
    }
}

fn positive(value: i64, field: &'static str) -> Result<(), RejectReason> {
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

fn required_int(value: Option<Scalar<'_>>, field: &'static str) -> Result<i64, RejectReason> {
    match value {
        None | Some(Scalar::Null) => Err(RejectReason::Missing(field)),
        Some(v) => v.to_int(field),
    }
}

/// Absent, `null` and `""` all mean "no value".
fn optional_int(
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
const MAX_QUOTED: usize = 40;

/// Quotes a found value for a reason text, cut to `MAX_QUOTED` characters.
fn quote(s: &str) -> String {
    if s.chars().count() > MAX_QUOTED {
        let cut: String = s.chars().take(MAX_QUOTED).collect();
        format!("{:?}…", cut)
    } else {
        format!("{s:?}")
    }
}

/// A number's literal text, cut like [`quote`] (a literal is ASCII).
fn cut(literal: &str) -> String {
    match literal.get(..MAX_QUOTED) {
        Some(head) if head.len() < literal.len() => format!("{head}…"),
        _ => literal.to_string(),
    }
}

/// A JSON value as far as the contract cares about it. Numbers keep their literal text, so
/// that an integer beyond 64 bits or `1e400` is reported as written, and `-0` means 0 exactly
/// as it does on the fast path.
enum Scalar<'de> {
    Number(&'de str),
    Str(Cow<'de, str>),
    Bool(bool),
    Null,
    Array,
    Object,
}

impl<'de> Scalar<'de> {
    /// Classifies a syntactically valid JSON value by its text.
    fn from_raw(raw: &'de RawValue) -> Result<Scalar<'de>, serde_json::Error> {
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

    fn describe(&self) -> String {
        match self {
            Scalar::Number(n) => cut(n),
            Scalar::Str(s) => quote(s),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Null => "null".to_string(),
            Scalar::Array => "an array".to_string(),
            Scalar::Object => "an object".to_string(),
        }
    }

    fn to_int(&self, field: &'static str) -> Result<i64, RejectReason> {
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

/// A key of the record object; only unknown keys allocate.
enum Key {
    Id,
    PostId,
    VoteTypeId,
    UserId,
    BountyAmount,
    CreationDate,
    Other(String),
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "Id" => Key::Id,
                    "PostId" => Key::PostId,
                    "VoteTypeId" => Key::VoteTypeId,
                    "UserId" => Key::UserId,
                    "BountyAmount" => Key::BountyAmount,
                    "CreationDate" => Key::CreationDate,
                    other => Key::Other(other.to_owned()),
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct RawFieldsSeed<'u> {
    unknown: &'u mut UnknownFields,
}

impl<'de> DeserializeSeed<'de> for RawFieldsSeed<'_> {
    /// The outer error is a JSON syntax error; the inner one a contract violation found while
    /// reading (a field given twice).
    type Value = Result<RawFields<'de>, RejectReason>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawFieldsSeed<'_> {
    type Value = Result<RawFields<'de>, RejectReason>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = RawFields::default();
        let mut duplicate = None;
        while let Some(key) = map.next_key::<Key>()? {
            let (slot, name) = match key {
                Key::Id => (&mut fields.id, "Id"),
                Key::PostId => (&mut fields.post_id, "PostId"),
                Key::VoteTypeId => (&mut fields.vote_type_id, "VoteTypeId"),
                Key::UserId => (&mut fields.user_id, "UserId"),
                Key::BountyAmount => (&mut fields.bounty_amount, "BountyAmount"),
                Key::CreationDate => (&mut fields.creation_date, "CreationDate"),
                Key::Other(name) => {
                    self.unknown.insert(&name);
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let value =
                Scalar::from_raw(map.next_value::<&'de RawValue>()?).map_err(de::Error::custom)?;
            if slot.replace(value).is_some() && duplicate.is_none() {
                duplicate = Some(name);
            }
        }
        Ok(match duplicate {
            Some(name) => Err(RejectReason::DuplicateField(name)),
            None => Ok(fields),
        })
    }
}

/// A value seen by [`parse_plain`]: the byte range of a string's content or of an integer.
#[derive(Clone, Copy)]
enum Plain {
    Str(usize, usize),
    Int(usize, usize),
}

/// The fast path for the shape nearly every record has: one flat object of contract fields,
/// each once, whose values are strings of printable ASCII without escapes or plain integers.
/// Returns `None` for anything else, valid or not, and for any rule broken; the full parser
/// then decides, so both paths accept exactly the same votes.
fn parse_plain(b: &[u8]) -> Option<Vote> {
    let ws = |mut i: usize| {
        while matches!(b.get(i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            i += 1;
        }
        i
    };
    // The end of a string whose content starts at `i`: no escapes, no control or non-ASCII
    // bytes (so the record is valid UTF-8 without checking).
    let string_end = |mut i: usize| loop {
        match *b.get(i)? {
            b'"' => return Some(i),
            b'\\' | 0..=0x1f | 0x80..=0xff => return None,
            _ => i += 1,
        }
    };
    let mut fields: [Option<Plain>; 6] = [None; 6];
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = ws(i);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(i + 1)?;
        let slot = match &b[i + 1..key_end] {
            b"Id" => 0,
            b"PostId" => 1,
            b"VoteTypeId" => 2,
            b"UserId" => 3,
            b"BountyAmount" => 4,
            b"CreationDate" => 5,
            _ => return None,
        };
        i = ws(key_end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(i + 1);
        let value = match *b.get(i)? {
            b'"' => {
                let end = string_end(i + 1)?;
                let v = Plain::Str(i + 1, end);
                i = end + 1;
                v
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += usize::from(b[i] == b'-');
                let digits = i;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                // JSON forbids leading zeros; fractions and exponents are not integers.
                let n = i - digits;
                if n == 0
                    || (n > 1 && b[digits] == b'0')
                    || matches!(b.get(i), Some(b'.' | b'e' | b'E'))
                {
                    return None;
                }
                Plain::Int(start, i)
            }
            _ => return None,
        };
        if fields[slot].replace(value).is_some() {
            return None;
        }
        i = ws(i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => break,
            _ => return None,
        }
    }
    if ws(i + 1) != b.len() {
        return None;
    }
    let int = |f: Option<Plain>| -> Option<i64> {
        let (s, e) = match f? {
            Plain::Str(s, e) | Plain::Int(s, e) => (s, e),
        };
        let (neg, digits) = match &b[s..e] {
            [b'-', rest @ ..] => (true, rest),
            all => (false, all),
        };
        // Up to 18 digits cannot overflow; longer ones take the full path.
        if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = digits
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        Some(if neg { -v } else { v })
    };
    let optional = |f: Option<Plain>| -> Option<Option<i64>> {
        match f {
            None => Some(None),
            Some(Plain::Str(s, e)) if s == e => Some(None),
            Some(_) => int(f).map(Some),
        }
    };
    let id = int(fields[0]).filter(|&v| v > 0)?;
    let post_id = int(fields[1]).filter(|&v| v > 0)?;
    let vote_type_id = int(fields[2])
        .filter(|&v| v > 0)
        .and_then(|v| i16::try_from(v).ok())?;
    let user_id = optional(fields[3])?;
    let bounty_amount = match optional(fields[4])? {
        Some(v) => Some(i32::try_from(v).ok()?),
        None => None,
    };
    let creation_date = match fields[5]? {
        Plain::Str(s, e) => parse_timestamp_bytes(&b[s..e]).ok()?,
        Plain::Int(..) => return None,
    };
    Some(Vote {
        id,
        post_id,
        vote_type_id,
        user_id,
        bounty_amount,
        creation_date,
    })
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Parses an ISO-8601 date or date-time into microseconds since the epoch, UTC.
///
/// Accepted: `YYYY-MM-DD`, then optionally `T` (or a space) and `HH:MM`, `:SS`, a fraction of
/// a second of any length (cut to microseconds), and a zone: `Z`, `±HH`, `±HHMM` or
/// `±HH:MM`. No zone means UTC. Refused: a fraction of a minute (`HH:MM.f`), a leap second
/// (`:60`), and a moment outside 0001-01-01 to 9999-12-31 once converted to UTC.
pub fn parse_timestamp(s: &str) -> Result<i64, &'static str> {
    parse_timestamp_bytes(s.as_bytes())
}

/// 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z, in microseconds since the epoch.
const FIRST_MICROS: i64 = -719_162 * MICROS_PER_DAY;
const END_MICROS: i64 = 2_932_897 * MICROS_PER_DAY;

/// [`parse_timestamp`] on bytes (the fast path has checked they are ASCII).
fn parse_timestamp_bytes(b: &[u8]) -> Result<i64, &'static str> {
    let micros = parse_local_then_utc(b)?;
    if (FIRST_MICROS..END_MICROS).contains(&micros) {
        Ok(micros)
    } else {
        Err("outside the years 0001 to 9999 (in UTC)")
    }
}

fn parse_local_then_utc(b: &[u8]) -> Result<i64, &'static str> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err("expected YYYY-MM-DD");
    }
    let year = digits(&b[0..4]).ok_or("expected YYYY-MM-DD")?;
    let month = digits(&b[5..7]).ok_or("expected YYYY-MM-DD")?;
    let day = digits(&b[8..10]).ok_or("expected YYYY-MM-DD")?;
    let days = days_from_civil(i64::from(year), month, day).ok_or("no such calendar date")?;
    let mut micros = days * MICROS_PER_DAY;
    let mut rest = &b[10..];
    if rest.is_empty() {
        return Ok(micros);
    }
    if !matches!(rest[0], b'T' | b't' | b' ') {
        return Err("expected T between date and time");
    }
    rest = &rest[1..];
    if rest.len() < 5 || rest[2] != b':' {
        return Err("expected HH:MM after the date");
    }
    let hour = digits(&rest[0..2]).ok_or("expected HH:MM after the date")?;
    let minute = digits(&rest[3..5]).ok_or("expected HH:MM after the date")?;
    rest = &rest[5..];
    let mut second = 0;
    match rest.first() {
        Some(b':') => {
            second = rest
                .get(1..3)
                .and_then(digits)
                .ok_or("expected two-digit seconds")?;
            rest = &rest[3..];
        }
        // ISO 8601 reads HH:MM.5 as half a minute; votes never carry that, so it is refused
        // rather than guessed.
        Some(b'.' | b',') => return Err("a fraction of a minute (HH:MM.f); write HH:MM:SS.f"),
        _ => {}
    }
    if second == 60 && hour == 23 && minute == 59 {
        return Err("a leap second (23:59:60) cannot be stored");
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err("time of day out of range");
    }
    micros +=
        (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * MICROS_PER_SECOND;
    if matches!(rest.first(), Some(b'.' | b',')) {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err("expected digits after the decimal sign");
        }
        // Digits beyond microseconds are cut.
        let frac = &rest[1..1 + n];
        let mut us = 0i64;
        for i in 0..6 {
            us = us * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
        }
        micros += us;
        rest = &rest[1 + n..];
    }
    match rest {
        [] | [b'Z' | b'z'] => Ok(micros),
        [sign @ (b'+' | b'-'), zone @ ..] => {
            let (h, m) = match zone {
                [h1, h2] => (digits(&[*h1, *h2]), Some(0)),
                [h1, h2, m1, m2] => (digits(&[*h1, *h2]), digits(&[*m1, *m2])),
                [h1, h2, b':', m1, m2] => (digits(&[*h1, *h2]), digits(&[*m1, *m2])),
                _ => (None, None),
            };
            let (h, m) = h.zip(m).ok_or("expected zone as Z, ±HH, ±HHMM or ±HH:MM")?;
            if h > 23 || m > 59 {
                return Err("zone offset out of range");
            }
            let offset = (i64::from(h) * 60 + i64::from(m)) * 60 * MICROS_PER_SECOND;
            // Local time = UTC + offset, so UTC = local - offset.
            Ok(if *sign == b'+' {
                micros - offset
            } else {
                micros + offset
            })
        }
        _ => Err("unexpected text after the time"),
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar, or `None` when the
/// date does not exist (2022-02-30, month 13, day 0).
fn days_from_civil(year: i64, month: u16, day: u16) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    // Count from 0000-03-01 so that the leap day ends a year (H. Hinnant's method).
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

fn digits(b: &[u8]) -> Option<u16> {
    b.iter().try_fold(0u16, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u16::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        parse_timestamp(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn timestamps_in_every_accepted_form() {
        // 2022-01-02T00:00:00Z
        let midnight = 1_641_081_600 * MICROS_PER_SECOND;
        let cases = [
            ("2022-01-02", midnight),
            ("2022-01-02T00:00:00.000", midnight),
            ("2022-01-02T00:00:00", midnight),
            ("2022-01-02T00:00", midnight),
            ("2022-01-02 00:00:00Z", midnight),
            ("2022-01-02T01:30:00+01:30", midnight),
            ("2022-01-01T23:00:00-0100", midnight),
            ("2022-01-02T05:00:00+05", midnight),
            ("2022-01-02T00:00:00.123456789Z", midnight + 123_456),
            // Digits beyond microseconds are cut, however many there are.
            ("2022-01-02T00:00:00.1234567891234Z", midnight + 123_456),
            ("2022-01-02T00:00:00,5", midnight + 500_000),
            ("2022-01-02T00:00:01.5", midnight + 1_500_000),
            ("1970-01-01T00:00:00Z", 0),
            ("0001-01-01T00:00:00Z", FIRST_MICROS),
            ("9999-12-31T23:59:59.999999Z", END_MICROS - 1),
            (
                "0001-01-01T00:30:00-01:00",
                FIRST_MICROS + 5_400 * MICROS_PER_SECOND,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(ts(input), want, "{input}");
        }
    }

    #[test]
    fn calendar_arithmetic_matches_chrono() {
        use chrono::{Datelike, NaiveDate};
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for year in [
            0, 1, 1600, 1899, 1900, 1969, 1970, 2000, 2017, 2024, 2100, 9999,
        ] {
            for month in 0..=13u16 {
                for day in 0..=32u16 {
                    let want = NaiveDate::from_ymd_opt(year as i32, month.into(), day.into())
                        .map(|d| (d - epoch).num_days());
                    assert_eq!(
                        days_from_civil(year, month, day),
                        want,
                        "{year}-{month}-{day}"
                    );
                }
            }
        }
        assert_eq!(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap().day(), 29);
    }

    #[test]
    fn impossible_or_malformed_timestamps_are_refused() {
        let cases = [
            ("2022-02-30", "no such calendar date"),
            ("2021-02-29T00:00:00", "no such calendar date"),
            ("2022-13-01", "no such calendar date"),
            ("2022-1-02", "expected YYYY-MM-DD"),
            ("02/01/2022", "expected YYYY-MM-DD"),
            ("2022-01-02T24:00:00", "time of day out of range"),
            ("2022-01-02T10:61", "time of day out of range"),
            (
                "2022-01-02T10:00:00.",
                "expected digits after the decimal sign",
            ),
            (
                "2022-01-02T10:30.5",
                "a fraction of a minute (HH:MM.f); write HH:MM:SS.f",
            ),
            (
                "2016-12-31T23:59:60Z",
                "a leap second (23:59:60) cannot be stored",
            ),
            ("2016-12-31T12:00:60Z", "time of day out of range"),
            ("0000-06-01", "outside the years 0001 to 9999 (in UTC)"),
            (
                "0001-01-01T00:30:00+01:00",
                "outside the years 0001 to 9999 (in UTC)",
            ),
            (
                "9999-12-31T23:30:00-01:00",
                "outside the years 0001 to 9999 (in UTC)",
            ),
            (
                "2022-01-02T10:00:00+5",
                "expected zone as Z, ±HH, ±HHMM or ±HH:MM",
            ),
            ("2022-01-02T10:00:00 junk", "unexpected text after the time"),
            ("2022-01-02X10:00", "expected T between date and time"),
        ];
        for (input, want) in cases {
            assert_eq!(parse_timestamp(input), Err(want), "{input}");
        }
    }

    fn parse(line: &str) -> Result<Vote, String> {
        parse_vote(line.as_bytes(), &mut UnknownFields::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn real_data_line_parses() {
        let v = parse(r#"{"Id":"6364","UserId":"14","PostId":"742","VoteTypeId":"8","BountyAmount":"50","CreationDate":"2017-05-21T00:00:00.000"}"#).unwrap();
        assert_eq!(
            v,
            Vote {
                id: 6364,
                post_id: 742,
                vote_type_id: 8,
                user_id: Some(14),
                bounty_amount: Some(50),
                creation_date: ts("2017-05-21"),
            }
        );
    }

    #[test]
    fn numbers_strings_and_absent_optionals() {
        let v = parse(r#"{"Id":7,"PostId":3,"VoteTypeId":2,"UserId":-1,"BountyAmount":"","CreationDate":"2022-01-16"}"#).unwrap();
        assert_eq!((v.id, v.user_id, v.bounty_amount), (7, Some(-1), None));
        let v = parse(
            r#"{"Id":"7","PostId":"3","VoteTypeId":"2","UserId":null,"CreationDate":"2022-01-16"}"#,
        )
        .unwrap();
        assert_eq!(v.user_id, None);
    }

    #[test]
    fn each_broken_rule_has_its_own_reason() {
        let cases = [
            ("not json", "not JSON: expected ident at line 1 column 2"),
            ("[1,2]", "not a JSON object (found an array)"),
            ("42", "not a JSON object (found a number)"),
            (
                r#"{"Id":"1","PostId":"1","VoteTypeId":"2""#,
                "not JSON: EOF while parsing an object at line 1 column 39",
            ),
            (
                r#"{"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                "missing Id",
            ),
            (
                r#"{"Id":null,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                "missing Id",
            ),
            (
                r#"{"Id":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                "missing PostId",
            ),
            (
                r#"{"Id":"1","PostId":"1","CreationDate":"2022-01-01"}"#,
                "missing VoteTypeId",
            ),
            (
                r#"{"Id":"1","PostId":"1","VoteTypeId":"2"}"#,
                "missing CreationDate",
            ),
            (
                r#"{"Id":"x1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                r#"Id not an integer (found "x1")"#,
            ),
            (
                r#"{"Id":1.5,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                "Id not an integer (found 1.5)",
            ),
            (
                r#"{"Id":"","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                r#"Id not an integer (found "")"#,
            ),
            (
                r#"{"Id":"0","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                "Id out of range (0; must be > 0)",
            ),
            (
                r#"{"Id":"1","PostId":-4,"VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                "PostId out of range (-4; must be > 0)",
            ),
            (
                r#"{"Id":"99999999999999999999","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                r#"Id out of range ("99999999999999999999"; must fit a 64-bit integer)"#,
            ),
            (
                r#"{"Id":"1","PostId":"1","VoteTypeId":"40000","CreationDate":"2022-01-01"}"#,
                "VoteTypeId out of range (40000; must be at most 32767)",
            ),
            (
                r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":"abc","CreationDate":"2022-01-01"}"#,
                r#"UserId not an integer (found "abc")"#,
            ),
            (
                r#"{"Id":"1","PostId":"1","VoteTypeId":"2","BountyAmount":true,"CreationDate":"2022-01-01"}"#,
                "BountyAmount not an integer (found true)",
            ),
            (
                r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-02-30"}"#,
                r#"bad date in CreationDate ("2022-02-30": no such calendar date)"#,
            ),
            (
                r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":20220101}"#,
                "CreationDate not a string (found 20220101)",
            ),
            (
                r#"{"Id":"1","Id":"2","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                "field Id appears twice",
            ),
            ("{\"Id\":\"1\"\u{0}}", "binary data (NUL byte at byte 9)"),
            // Numbers are reported as written, with the field they were given for.
            (
                r#"{"Id":18446744073709551616,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                "Id out of range (18446744073709551616; must fit a 64-bit integer)",
            ),
            (
                r#"{"Id":"1","PostId":1e400,"VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                "PostId not an integer (found 1e400)",
            ),
            (
                r#"{"Id":"1","PostId":"1","VoteTypeId":-0.0,"CreationDate":"2022-01-01"}"#,
                "VoteTypeId not an integer (found -0.0)",
            ),
            (
                r#"{"Id":-0,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
                "Id out of range (0; must be > 0)",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Err(want.to_string()), "{input}");
        }
    }

    #[test]
    fn invalid_utf8_names_the_offset() {
        let mut unknown = UnknownFields::default();
        let err = parse_vote(b"{\"Id\":\"\xff\"}", &mut unknown).unwrap_err();
        assert_eq!(err, RejectReason::InvalidUtf8 { offset: 7 });
    }

    #[test]
    fn unknown_fields_are_accepted_and_named() {
        let mut unknown = UnknownFields::default();
        let v = parse_vote(
            br#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01","Extra":{"a":[1]},"Note":"x"}"#,
            &mut unknown,
        );
        assert!(v.is_ok());
        assert_eq!(
            unknown.names(),
            vec!["Extra".to_string(), "Note".to_string()]
        );
    }

    /// Both parsers must accept exactly the same votes: every input here is checked against
    /// the full parser alone.
    #[test]
    fn the_fast_path_agrees_with_the_full_parser() {
        let mut inputs: Vec<String> = vec![
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#.into(),
            r#" { "Id" : 1 , "PostId":2,"VoteTypeId":3,"CreationDate":"2022-01-01T10:00:00Z" } "#.into(),
            r#"{"Id":"007","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#.into(),
            r#"{"Id":007,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#.into(),
            r#"{"Id":-0,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#.into(),
            r#"{"Id":1e3,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":"","BountyAmount":"","CreationDate":"2022-01-01"}"#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":"-1","CreationDate":"2022-01-01"}"#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":"- 1","CreationDate":"2022-01-01"}"#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":"-","CreationDate":"2022-01-01"}"#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","BountyAmount":"3000000000","CreationDate":"2022-01-01"}"#.into(),
            r#"{"Id":"9223372036854775807","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01",}"#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"} x"#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01""#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":2022}"#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"0","CreationDate":"2022-01-01"}"#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01","Id":"1"}"#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01","X":"1"}"#.into(),
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01A"}"#.into(),
            r#"{}"#.into(),
            "{\"Id\":\"1\",\"PostId\":\"1\",\"VoteTypeId\":\"2\",\"CreationDate\":\"2022-01-01\u{e9}\"}".into(),
        ];
        let mut gen = Vec::new();
        crate::synth::write_votes(
            &mut gen,
            crate::synth::Spec {
                rows: 2000,
                seed: 1,
                first_id: 0,
                repeat_share: 0.0,
            },
        )
        .unwrap();
        inputs.extend(String::from_utf8(gen).unwrap().lines().map(String::from));
        let mut fast_hits = 0;
        for input in &inputs {
            let full = parse_full(input.as_bytes(), &mut UnknownFields::default());
            if let Some(fast) = parse_plain(input.as_bytes()) {
                fast_hits += 1;
                assert_eq!(Ok(fast), full, "{input}");
            }
            assert_eq!(
                parse_vote(input.as_bytes(), &mut UnknownFields::default()),
                full,
                "{input}"
            );
        }
        assert!(
            fast_hits >= 2000,
            "the fast path took only {fast_hits} inputs"
        );
    }

    /// `-0` is 0 whichever parser reads the record (an unknown field sends it to the full one).
    #[test]
    fn negative_zero_means_zero_on_both_paths() {
        let plain =
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":-0,"CreationDate":"2022-01-01"}"#;
        let with_extra = r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":-0,"CreationDate":"2022-01-01","X":1}"#;
        assert_eq!(parse(plain).unwrap().user_id, Some(0));
        assert_eq!(parse(with_extra).unwrap().user_id, Some(0));
    }

    /// A small deterministic generator (xorshift), so the property test needs no crate and
    /// fails the same way every run.
    struct Rng(u64);

    impl Rng {
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            from[(self.0 % from.len() as u64) as usize]
        }
    }

    /// Hostile records built from numbers, keys and escapes at the edges of the contract: the
    /// fast path, when it answers, agrees with the full parser, and `parse_vote` always does.
    #[test]
    fn the_fast_path_agrees_with_the_full_parser_on_generated_hostile_records() {
        let numbers = [
            "0",
            "-0",
            "1",
            "-1",
            "007",
            "-007",
            "1.0",
            "-0.0",
            "1e3",
            "1E+2",
            "2e-1",
            "32767",
            "32768",
            "-32768",
            "2147483647",
            "2147483648",
            "999999999999999999",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
            "1e400",
            "-",
            "+1",
            "0x1",
            ".5",
            "\"1\"",
            "\"-0\"",
            "\"007\"",
            "\"\"",
            "\" 1\"",
            "\"1 \"",
            "\"+1\"",
            "\"1e3\"",
            "\"\\u0031\"",
            "\"9223372036854775808\"",
            "null",
            "true",
            "[]",
            "{}",
            "\"\u{e9}\"",
        ];
        let dates = [
            "\"2022-01-01\"",
            "\"2022-01-01T10:30\"",
            "\"2022-01-01T10:30.5\"",
            "\"2022-01-01T10:30:00.1234567891\"",
            "\"2016-12-31T23:59:60Z\"",
            "\"0000-01-01\"",
            "\"0001-01-01T00:00:00+00:01\"",
            "\"9999-12-31T23:59:59-00:01\"",
            "\"2022-01-01T10:30:00\\u002B01:00\"",
            "\"2022-02-29\"",
            "\"2022-01-01t10:30z\"",
            "\"2022-01-01 10:30:00,5+0530\"",
            "20220101",
            "null",
            "\"\"",
        ];
        let keys = [
            "Id",
            "PostId",
            "VoteTypeId",
            "UserId",
            "BountyAmount",
            "CreationDate",
            "\\u0049d",
            "Post\\u0049d",
            "id",
            "Id ",
            "Extra",
            "",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut fast_hits = 0;
        for _ in 0..20_000 {
            let mut fields = vec![
                format!("\"Id\":{}", rng.pick(&numbers)),
                format!("\"PostId\":{}", rng.pick(&numbers)),
                format!("\"VoteTypeId\":{}", rng.pick(&numbers)),
                format!("\"CreationDate\":{}", rng.pick(&dates)),
            ];
            if rng.pick(&["a", "b"]) == "a" {
                fields.push(format!("\"UserId\":{}", rng.pick(&numbers)));
            }
            if rng.pick(&["a", "b", "c"]) == "a" {
                fields.push(format!("\"BountyAmount\":{}", rng.pick(&numbers)));
            }
            if rng.pick(&["a", "b", "c"]) == "a" {
                let value = rng.pick(&numbers);
                fields.push(format!("\"{}\":{value}", rng.pick(&keys)));
            }
            // Valid values often enough that acceptance is tested too.
            if rng.pick(&["a", "b"]) == "a" {
                fields[0] = "\"Id\":\"42\"".into();
                fields[1] = "\"PostId\":7".into();
                fields[2] = "\"VoteTypeId\":\"2\"".into();
            }
            let record = format!("{{{}}}", fields.join(","));
            let full = parse_full(record.as_bytes(), &mut UnknownFields::default());
            if let Some(fast) = parse_plain(record.as_bytes()) {
                fast_hits += 1;
                assert_eq!(Ok(fast), full, "{record}");
            }
            assert_eq!(
                parse_vote(record.as_bytes(), &mut UnknownFields::default()),
                full,
                "{record}"
            );
        }
        assert!(
            fast_hits > 1000,
            "the fast path took only {fast_hits} records"
        );
    }

    #[test]
    fn escaped_keys_and_values_are_understood() {
        let v = parse(
            r#"{"\u0049d":"1","PostId":"\u0031","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
        )
        .unwrap();
        assert_eq!((v.id, v.post_id), (1, 1));
    }
}
