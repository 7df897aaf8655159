//! Deterministic vote files shaped like the real DevOps Stack Exchange export, for the
//! benchmark and the tests: Ids rising with gaps, digits as strings, dates at midnight,
//! UserId and BountyAmount only on the vote types that carry them, no final newline, and a
//! chosen share of lines that repeat a recent line exactly (a supplier resending records).

use std::io::{self, Write};

/// A small, fast, seedable generator (SplitMix64); quality is ample for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub rows: u64,
    pub seed: u64,
    /// First vote Id; later Ids rise from it with small gaps.
    pub first_id: i64,
    /// Share of lines (0..1) that repeat one of the previous 1,000 lines exactly.
    pub repeat_share: f64,
}

/// Writes `spec.rows` lines; returns how many of them repeat an earlier line.
pub fn write_votes(out: &mut impl Write, spec: Spec) -> io::Result<u64> {
    let mut rng = Rng::new(spec.seed);
    let mut id = spec.first_id;
    let mut recent: Vec<Vec<u8>> = Vec::with_capacity(1000);
    let mut repeats = 0;
    // About 2,000 distinct days over the file, like the real export's six years.
    let rows_per_day = (spec.rows / 2000).max(1);
    let start = chrono::NaiveDate::from_ymd_opt(2017, 2, 28).expect("valid date");
    let repeat_threshold = (spec.repeat_share.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
    let mut line = Vec::with_capacity(160);
    for i in 0..spec.rows {
        line.clear();
        if !recent.is_empty() && rng.next_u64() < repeat_threshold {
            let pick = rng.below(recent.len() as u64) as usize;
            line.extend_from_slice(&recent[pick]);
            repeats += 1;
        } else {
            id += 1 + (rng.below(8) == 0) as i64;
            let vote_type = match rng.below(100) {
                0..=74 => 2,
                75..=82 => 3,
                83..=89 => 1,
                90..=95 => 5,
                96 => 8,
                97 => 9,
                98 => 6,
                _ => 16,
            };
            let post_id = 1 + rng.below((id as u64 / 4).max(10));
            let day = start + chrono::Days::new(i / rows_per_day);
            write!(line, r#"{{"Id":"{id}","#)?;
            if matches!(vote_type, 5 | 8) {
                write!(line, r#""UserId":"{}","#, 1 + rng.below(20_000))?;
            }
            write!(line, r#""PostId":"{post_id}","VoteTypeId":"{vote_type}","#)?;
            if matches!(vote_type, 8 | 9) {
                let bounty = [50, 100, 200, 500][rng.below(4) as usize];
                write!(line, r#""BountyAmount":"{bounty}","#)?;
            }
            write!(
                line,
                r#""CreationDate":"{}T00:00:00.000"}}"#,
                day.format("%Y-%m-%d")
            )?;
            if recent.len() < 1000 {
                recent.push(line.clone());
            } else {
                let slot = rng.below(1000) as usize;
                recent[slot].clone_from(&line);
            }
        }
        if i > 0 {
            out.write_all(b"\n")?;
        }
        out.write_all(&line)?;
    }
    Ok(repeats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::votes::{parse_vote, UnknownFields};

    #[test]
    fn generated_lines_are_valid_votes_and_repeats_are_counted() {
        let mut buf = Vec::new();
        let repeats = write_votes(
            &mut buf,
            Spec {
                rows: 5000,
                seed: 7,
                first_id: 0,
                repeat_share: 0.01,
            },
        )
        .unwrap();
        assert!(!buf.ends_with(b"\n"));
        let lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 5000);
        let mut unknown = UnknownFields::default();
        let ids: std::collections::HashSet<i64> = lines
            .iter()
            .map(|l| parse_vote(l, &mut unknown).unwrap().id)
            .collect();
        assert!(unknown.is_empty());
        assert!((20..=80).contains(&repeats), "{repeats}");
        assert_eq!(ids.len() as u64, 5000 - repeats);
    }
}
