//! The full parser: any JSON object, through serde, with a specific reason for every way a
//! record can be wrong (not JSON, a field missing, twice, out of range, not an integer, a date
//! refused) and the unknown fields it carries.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::timestamp::parse_timestamp;
use super::{RejectReason, UnknownFields, Vote};
use crate::datasets::contract::{optional_int, positive, quote, required_int, Scalar};

/// The full parser: any JSON, every rule, a specific reason for each failure.
pub(crate) fn parse_full(record: &[u8], unknown: &mut UnknownFields) -> Result<Vote, RejectReason> {
    let text = crate::datasets::contract::json_text(record)?;
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
                field: "CreationDate",
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
