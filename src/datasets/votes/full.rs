//! The full parser: any JSON object, through serde, with a specific reason for every way a
//! record can be wrong (not JSON, a field missing, twice, out of range, not an integer, a date
//! refused) and the unknown fields it carries.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::timestamp::parse_timestamp;
use super::{RejectReason, UnknownFields, Vote};

/// The full parser: any JSON, every rule, a specific reason for each failure.
pub(crate) fn parse_full(record: &[u8], unknown: &mut UnknownFields) -> Result<Vote, RejectReason> {
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
pub(crate) struct RawFields<'de> {
    pub(crate) id: Option<Scalar<'de>>,
    pub(crate) post_id: Option<Scalar<'de>>,
    pub(crate) vote_type_id: Option<Scalar<'de>>,
    pub(crate) user_id: Option<Scalar<'de>>,
    pub(crate) bounty_amount: Option<Scalar<'de>>,
    pub(crate) creation_date: Option<Scalar<'de>>,
}

impl RawFields<'_> {
    pub(crate) fn into_vote(self) -> Result<Vote, RejectReason> {
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

/// A key of the record object; only unknown keys allocate.
pub(crate) enum Key {
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

pub(crate) struct RawFieldsSeed<'u> {
    pub(crate) unknown: &'u mut UnknownFields,
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
