//! Which dataset a file belongs to, by its name: each dataset's patterns (case-insensitive
//! globs). When patterns of both match, the more specific one decides — the one with more
//! literal characters (`posts*.jsonl` over `*.jsonl`); a tie is ambiguous, refused at
//! config check for the names the patterns describe, and left in landing/ with a warning
//! for any other.

use globset::{GlobBuilder, GlobMatcher};

use super::Dataset;

/// A name that belongs to no dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unrouted {
    /// No dataset's pattern matches it.
    NoPattern,
    /// Patterns of two datasets match it, equally specific.
    Ambiguous(Dataset, Dataset),
}

impl std::fmt::Display for Unrouted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unrouted::NoPattern => f.write_str("name matches no configured pattern"),
            Unrouted::Ambiguous(a, b) => write!(
                f,
                "name matches the patterns of datasets {a} and {b} equally; make one more specific"
            ),
        }
    }
}

/// One dataset's patterns: each as written, compiled, and its weight.
type Patterns = Vec<(String, GlobMatcher, usize)>;

/// Every dataset's patterns, compiled.
#[derive(Debug, Clone)]
pub struct DatasetNames {
    sets: Vec<(Dataset, Patterns)>,
}

/// How specific a pattern is: its characters that are not wildcards or glob syntax.
fn weight(pattern: &str) -> usize {
    pattern
        .chars()
        .filter(|c| !matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | ','))
        .count()
}

impl DatasetNames {
    /// Compiles `patterns` per dataset; an invalid glob is an error naming it.
    pub fn new(patterns: &[(Dataset, Vec<String>)]) -> Result<DatasetNames, String> {
        let mut sets = Vec::new();
        for (dataset, list) in patterns {
            let mut globs = Vec::new();
            for p in list {
                if p.trim().is_empty() {
                    return Err(format!(
                        "datasets.{dataset}.patterns: an empty pattern matches nothing"
                    ));
                }
                let g = GlobBuilder::new(p)
                    .case_insensitive(true)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| format!("datasets.{dataset}.patterns: {e}"))?;
                globs.push((p.clone(), g.compile_matcher(), weight(p)));
            }
            sets.push((*dataset, globs));
        }
        Ok(DatasetNames { sets })
    }

    /// The dataset a file of this name belongs to.
    pub fn of(&self, name: &str) -> Result<Dataset, Unrouted> {
        let mut best: Option<(Dataset, usize)> = None;
        // A dataset as specific as the best so far.
        let mut tie: Option<Dataset> = None;
        for (dataset, globs) in &self.sets {
            let Some(w) = globs
                .iter()
                .filter(|(_, g, _)| g.is_match(name))
                .map(|(_, _, w)| *w)
                .max()
            else {
                continue;
            };
            match best {
                Some((_, bw)) if bw > w => {}
                Some((_, bw)) if bw == w => tie = Some(*dataset),
                _ => {
                    best = Some((*dataset, w));
                    tie = None;
                }
            }
        }
        match (best, tie) {
            (None, _) => Err(Unrouted::NoPattern),
            (Some((d, _)), Some(t)) => Err(Unrouted::Ambiguous(d, t)),
            (Some((d, _)), None) => Ok(d),
        }
    }

    /// Names the patterns describe (each wildcard taken as the shortest text it matches) that
    /// two datasets' patterns match equally: the configuration's ambiguities, as errors.
    pub fn ambiguities(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (_, globs) in &self.sets {
            for (pattern, _, _) in globs {
                let probe = example(pattern);
                if let Err(Unrouted::Ambiguous(a, b)) = self.of(&probe) {
                    found.push(format!(
                        "a file named {probe:?} (pattern {pattern:?}) matches the patterns of datasets {a} and {b} equally; make one more specific"
                    ));
                }
            }
        }
        found.sort();
        found.dedup();
        found
    }
}

/// A name the pattern matches: `*` as nothing, `?` as `x`, a class or a set of alternatives
/// as its first choice.
fn example(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {}
            '?' => out.push('x'),
            '[' => {
                let mut first = None;
                for d in chars.by_ref() {
                    if d == ']' && first.is_some() {
                        break;
                    }
                    if first.is_none() && d != '!' && d != '^' {
                        first = Some(d);
                    }
                }
                out.extend(first);
            }
            '{' => {
                let mut taking = true;
                for d in chars.by_ref() {
                    match d {
                        '}' => break,
                        ',' => taking = false,
                        _ if taking => out.push(d),
                        _ => {}
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(votes: &[&str], posts: &[&str]) -> DatasetNames {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        DatasetNames::new(&[(Dataset::Votes, v(votes)), (Dataset::Posts, v(posts))]).unwrap()
    }

    #[test]
    fn the_more_specific_pattern_decides() {
        let n = names(
            &["*.jsonl", "*.jsonl.gz", "*.json"],
            &["posts*.jsonl", "posts*.jsonl.gz", "*Posts*.json*"],
        );
        assert_eq!(n.of("votes-2024.jsonl"), Ok(Dataset::Votes));
        assert_eq!(n.of("posts.jsonl"), Ok(Dataset::Posts));
        assert_eq!(n.of("POSTS-2.jsonl.gz"), Ok(Dataset::Posts));
        assert_eq!(n.of("DevOps.Posts.json"), Ok(Dataset::Posts));
        assert_eq!(n.of("notes.txt"), Err(Unrouted::NoPattern));
        assert!(n.ambiguities().is_empty(), "{:?}", n.ambiguities());
    }

    #[test]
    fn equally_specific_patterns_of_two_datasets_are_refused() {
        let n = names(&["*.jsonl"], &["*.jsonl", "p?.ndjson"]);
        assert_eq!(
            n.of("a.jsonl"),
            Err(Unrouted::Ambiguous(Dataset::Votes, Dataset::Posts))
        );
        let found = n.ambiguities();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("\".jsonl\""), "{found:?}");
        assert_eq!(example("a[bc]?{x,y}*.gz"), "abxx.gz");
    }
}
