//! The posts dataset's data contract: records shaped like the Stack Exchange Posts export as
//! JSON lines (every value a JSON string; absent fields left out). `Id`, `PostTypeId` and
//! `CreationDate` are required; the others optional, absent, `null` or (for numbers and dates)
//! `""` meaning no value. Pure functions, no I/O.
//!
//! A post changes over time (its score, views, edits): the table keeps one current version
//! per Id, chosen by `LastActivityDate` (see the warehouse's posts load).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::datasets::contract::{
    optional_int, positive, quote, required_int, RejectReason, Scalar, UnknownFields,
};
use crate::datasets::votes::parse_timestamp;

/// How a field's value is checked and typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A positive 64-bit integer (an Id of another post).
    Id,
    /// Any 64-bit integer (a user: the Community user is -1).
    User,
    /// A 16-bit integer above 0.
    Type,
    /// A 32-bit integer, negative allowed (a score).
    Signed,
    /// A 32-bit integer, 0 or more (a count).
    Count,
    /// A date and time, as votes' `CreationDate`.
    Date,
    /// Any text.
    Text,
}

/// One field of the contract: its name in the export, its column, how it is checked, and
/// whether a record needs it.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub column: &'static str,
    pub kind: Kind,
    pub required: bool,
}

const fn field(name: &'static str, column: &'static str, kind: Kind, required: bool) -> Field {
    Field {
        name,
        column,
        kind,
        required,
    }
}

/// The contract, in the order of the table's columns.
pub const FIELDS: [Field; 20] = [
    field("Id", "id", Kind::Id, true),
    field("PostTypeId", "post_type_id", Kind::Type, true),
    field("CreationDate", "creation_date", Kind::Date, true),
    field("ParentId", "parent_id", Kind::Id, false),
    field("AcceptedAnswerId", "accepted_answer_id", Kind::Id, false),
    field("Score", "score", Kind::Signed, false),
    field("ViewCount", "view_count", Kind::Count, false),
    field("Body", "body", Kind::Text, false),
    field("OwnerUserId", "owner_user_id", Kind::User, false),
    field("LastEditorUserId", "last_editor_user_id", Kind::User, false),
    field("LastEditDate", "last_edit_date", Kind::Date, false),
    field("LastActivityDate", "last_activity_date", Kind::Date, false),
    field("Title", "title", Kind::Text, false),
    field("Tags", "tags", Kind::Text, false),
    field("AnswerCount", "answer_count", Kind::Count, false),
    field("CommentCount", "comment_count", Kind::Count, false),
    field("FavoriteCount", "favorite_count", Kind::Count, false),
    field("ClosedDate", "closed_date", Kind::Date, false),
    field(
        "CommunityOwnedDate",
        "community_owned_date",
        Kind::Date,
        false,
    ),
    field("ContentLicense", "content_license", Kind::Text, false),
];

/// Where `Id`, `CreationDate` and `LastActivityDate` are in [`FIELDS`].
pub const ID: usize = 0;
pub const CREATION_DATE: usize = 2;
pub const LAST_ACTIVITY_DATE: usize = 11;

/// A field's value once checked: integers and dates (microseconds since the epoch, UTC) as
/// `i64`, text as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Int(i64),
    Text(String),
}

/// A post that passed every rule: one value per field of [`FIELDS`], `None` when absent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Post {
    pub values: Vec<Option<Value>>,
}

impl Post {
    pub fn id(&self) -> i64 {
        match &self.values[ID] {
            Some(Value::Int(v)) => *v,
            _ => unreachable!("Id is required and an integer"),
        }
    }

    /// The value of field `i` as an integer (or date), if it has one.
    pub fn int(&self, i: usize) -> Option<i64> {
        match &self.values[i] {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn text(&self, i: usize) -> Option<&str> {
        match &self.values[i] {
            Some(Value::Text(s)) => Some(s),
            _ => None,
        }
    }
}

/// Validates one record (a line, or an element of a JSON array) without its line end.
pub fn parse_post(record: &[u8], unknown: &mut UnknownFields) -> Result<Post, RejectReason> {
    let text = crate::datasets::contract::json_text(record)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let raw = RawSeed { unknown }
        .deserialize(&mut de)
        .and_then(|fields| de.end().map(|()| fields))
        .map_err(|e| RejectReason::NotJson(e.to_string()))?;
    let raw = raw?;
    let mut values = Vec::with_capacity(FIELDS.len());
    for (f, value) in FIELDS.iter().zip(raw) {
        values.push(check(f, value)?);
    }
    Ok(Post { values })
}

fn check(f: &Field, value: Option<Scalar<'_>>) -> Result<Option<Value>, RejectReason> {
    let absent = matches!(value, None | Some(Scalar::Null));
    if absent {
        return match f.required {
            true => Err(RejectReason::Missing(f.name)),
            false => Ok(None),
        };
    }
    let int = |v: Option<Scalar<'_>>| match f.required {
        true => required_int(v, f.name).map(Some),
        false => optional_int(v, f.name),
    };
    let fits = |v: i64, lo: i64, hi: i64, rule: &'static str| {
        if (lo..=hi).contains(&v) {
            Ok(Some(Value::Int(v)))
        } else {
            Err(RejectReason::OutOfRange {
                field: f.name,
                value: v.to_string(),
                rule,
            })
        }
    };
    match f.kind {
        Kind::Text => match value {
            Some(Scalar::Str(s)) => Ok(Some(Value::Text(s.into_owned()))),
            Some(other) => Err(RejectReason::NotString {
                field: f.name,
                found: other.describe(),
            }),
            None => Ok(None),
        },
        Kind::Date => match value {
            Some(Scalar::Str(s)) if s.is_empty() && !f.required => Ok(None),
            Some(Scalar::Str(s)) => {
                parse_timestamp(&s)
                    .map(|t| Some(Value::Int(t)))
                    .map_err(|why| RejectReason::BadDate {
                        field: f.name,
                        found: quote(&s),
                        why,
                    })
            }
            Some(other) => Err(RejectReason::NotString {
                field: f.name,
                found: other.describe(),
            }),
            None => Ok(None),
        },
        Kind::Id => match int(value)? {
            Some(v) => positive(v, f.name).map(|()| Some(Value::Int(v))),
            None => Ok(None),
        },
        Kind::User => Ok(int(value)?.map(Value::Int)),
        Kind::Type => match int(value)? {
            Some(v) => fits(v, 1, i16::MAX as i64, "must be between 1 and 32767"),
            None => Ok(None),
        },
        Kind::Signed => match int(value)? {
            Some(v) => fits(
                v,
                i32::MIN as i64,
                i32::MAX as i64,
                "must fit a 32-bit integer",
            ),
            None => Ok(None),
        },
        Kind::Count => match int(value)? {
            Some(v) => fits(v, 0, i32::MAX as i64, "must be between 0 and 2147483647"),
            None => Ok(None),
        },
    }
}

/// Reads a record's object into one slot per field of [`FIELDS`]; unknown keys are named in
/// `unknown` and skipped, a key given twice refuses the record.
struct RawSeed<'u> {
    unknown: &'u mut UnknownFields,
}

type Slots<'de> = Vec<Option<Scalar<'de>>>;

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = Result<Slots<'de>, RejectReason>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawSeed<'_> {
    type Value = Result<Slots<'de>, RejectReason>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots: Slots<'de> = (0..FIELDS.len()).map(|_| None).collect();
        let mut duplicate = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let Some(i) = FIELDS.iter().position(|f| f.name == key.as_ref()) else {
                self.unknown.insert(&key);
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let value =
                Scalar::from_raw(map.next_value::<&'de RawValue>()?).map_err(de::Error::custom)?;
            if slots[i].replace(value).is_some() && duplicate.is_none() {
                duplicate = Some(FIELDS[i].name);
            }
        }
        Ok(match duplicate {
            Some(name) => Err(RejectReason::DuplicateField(name)),
            None => Ok(slots),
        })
    }
}

#[cfg(test)]
mod tests;
