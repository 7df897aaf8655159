//! The fast parser: a record of the known fields, every value a plain JSON string or integer
//! without escapes, plus at most a few unknown fields with plain values (a string, an integer,
//! `true`, `false`, `null`), in one pass over the bytes without allocating but for an unknown
//! name the file has not shown before. Anything else (`None`) goes to the full parser, which
//! decides and names the reason.

use super::timestamp::parse_timestamp_bytes;
use super::{UnknownFields, Vote};

/// The most unknown fields a record may carry and still take the fast path.
const MAX_UNKNOWN: usize = 8;

/// A value seen by [`parse_plain`]: the byte range of a string's content or of an integer.
#[derive(Clone, Copy)]
pub(crate) enum Plain {
    Str(usize, usize),
    Int(usize, usize),
}

/// The fast path for the shape nearly every record has: one flat object of contract fields,
/// each once, whose values are strings of printable ASCII without escapes or plain integers.
/// Returns `None` for anything else, valid or not, and for any rule broken; the full parser
/// then decides, so both paths accept exactly the same votes. The names of unknown fields go
/// into `unknown` only when the record is accepted here (as the full parser would report
/// them).
pub(crate) fn parse_plain(b: &[u8], unknown: &mut UnknownFields) -> Option<Vote> {
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
    // The byte ranges of unknown names, each once.
    let mut others: [(usize, usize); MAX_UNKNOWN] = [(0, 0); MAX_UNKNOWN];
    let mut n_others = 0;
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
            name => {
                let seen = others[..n_others].iter().any(|&(s, e)| &b[s..e] == name);
                if seen || n_others == MAX_UNKNOWN {
                    return None;
                }
                others[n_others] = (i + 1, key_end);
                n_others += 1;
                6
            }
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
            b't' | b'f' | b'n' if slot == 6 => {
                let word: &[u8] = match b[i] {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                if !b[i..].starts_with(word) {
                    return None;
                }
                i += word.len();
                Plain::Int(i, i)
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
        if slot < 6 && fields[slot].replace(value).is_some() {
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
    for &(s, e) in &others[..n_others] {
        // ASCII without escapes: the name as written.
        unknown.insert(std::str::from_utf8(&b[s..e]).ok()?);
    }
    Some(Vote {
        id,
        post_id,
        vote_type_id,
        user_id,
        bounty_amount,
        creation_date,
    })
}
