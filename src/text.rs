//! Text from suppliers (file names, reasons quoting their bytes) made safe to print on a
//! terminal or in a log: control characters are escaped, so a name with a newline cannot
//! split a line in two and an escape sequence cannot drive the terminal.

use std::borrow::Cow;
use std::path::Path;

/// `s` with every control character written as a Rust-style escape (`\n`, `\u{1b}`).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A path as [`escape`] shows it (non-UTF-8 bytes as U+FFFD).
pub fn path(p: &Path) -> String {
    escape(&p.to_string_lossy()).into_owned()
}

/// `n` and the noun in agreement with it: `1 record`, `2 records`, `0 records`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_never_splits_a_character() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn counts_agree_in_number() {
        assert_eq!(count(1, "record", "records"), "1 record");
        assert_eq!(count(0, "record", "records"), "0 records");
        assert_eq!(count(2, "file", "files"), "2 files");
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape("votes.jsonl"), "votes.jsonl");
        assert_eq!(
            escape("a\nloaded fake.jsonl\u{1b}[31m\té"),
            "a\\nloaded fake.jsonl\\u{1b}[31m\\té"
        );
        assert_eq!(path(Path::new("x/\r.json")), "x/\\r.json");
    }
}
