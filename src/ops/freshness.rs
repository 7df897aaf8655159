//! Freshness: is the supplier sending what `[expect]` says (a loaded file at least every N
//! hours, at least M new votes a day)? Pure state with the clock passed in: the loader feeds
//! it what the ledger says and asks it, now and then, whether to alert.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

use crate::config::ExpectConfig;

/// What the daemon should say.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Expectations are not met (first time, or a reminder one period later).
    Late { problems: Vec<String> },
    /// They are met again after an alert.
    BackToNormal { late_for: Duration },
}

#[derive(Debug)]
pub struct Freshness {
    expect: ExpectConfig,
    /// When the last file was loaded.
    last_file: Option<DateTime<Utc>>,
    /// New votes per load over the last day.
    recent: VecDeque<(DateTime<Utc>, u64)>,
    /// When watching began (a daemon that just started with no file yet is not late before
    /// one period has passed).
    since: DateTime<Utc>,
    /// Since when expectations are not met, and when the last alert went out.
    late_since: Option<DateTime<Utc>>,
    last_alert: Option<DateTime<Utc>>,
}

impl Freshness {
    pub fn new(expect: ExpectConfig, now: DateTime<Utc>) -> Self {
        Freshness {
            expect,
            last_file: None,
            recent: VecDeque::new(),
            since: now,
            late_since: None,
            last_alert: None,
        }
    }

    pub fn set_expect(&mut self, expect: ExpectConfig) {
        self.expect = expect;
    }

    pub fn enabled(&self) -> bool {
        self.expect.file_every_hours > 0.0 || self.expect.min_rows_per_day > 0
    }

    /// A file was loaded at `at` with `rows` new votes.
    pub fn loaded(&mut self, at: DateTime<Utc>, rows: u64) {
        self.last_file = Some(self.last_file.map_or(at, |l| l.max(at)));
        self.recent.push_back((at, rows));
    }

    fn period(&self) -> Duration {
        if self.expect.file_every_hours > 0.0 {
            Duration::milliseconds((self.expect.file_every_hours * 3_600_000.0) as i64)
        } else {
            Duration::days(1)
        }
    }

    /// What is not met at `now` (empty: all is well).
    fn problems(&mut self, now: DateTime<Utc>) -> Vec<String> {
        let day_ago = now - Duration::days(1);
        while self.recent.front().is_some_and(|(t, _)| *t < day_ago) {
            self.recent.pop_front();
        }
        let mut out = Vec::new();
        if self.expect.file_every_hours > 0.0 {
            let from = self.last_file.unwrap_or(self.since);
            let quiet = now - from;
            if quiet > self.period() {
                out.push(match self.last_file {
                    Some(t) => format!(
                        "no file loaded for {} (since {}); one is expected at least every {} h",
                        human(quiet),
                        t.format("%Y-%m-%d %H:%M UTC"),
                        self.expect.file_every_hours
                    ),
                    None => format!(
                        "no file loaded since watching began {} ago; one is expected at least every {} h",
                        human(quiet),
                        self.expect.file_every_hours
                    ),
                });
            }
        }
        if self.expect.min_rows_per_day > 0 && now - self.since >= Duration::days(1) {
            let rows: u64 = self.recent.iter().map(|(_, r)| r).sum();
            if rows < self.expect.min_rows_per_day {
                out.push(format!(
                    "{rows} new votes in the last 24 h; at least {} are expected",
                    self.expect.min_rows_per_day
                ));
            }
        }
        out
    }

    /// Whether to say something now: an alert when expectations stop being met, a reminder
    /// at most once a period while they stay unmet, one "back to normal" when they are met
    /// again.
    pub fn check(&mut self, now: DateTime<Utc>) -> Option<Notice> {
        if !self.enabled() {
            return None;
        }
        let problems = self.problems(now);
        match (problems.is_empty(), self.late_since) {
            (true, None) => None,
            (true, Some(since)) => {
                self.late_since = None;
                self.last_alert = None;
                Some(Notice::BackToNormal {
                    late_for: now - since,
                })
            }
            (false, since) => {
                self.late_since = Some(since.unwrap_or(now));
                let due = self.last_alert.is_none_or(|t| now - t >= self.period());
                if due {
                    self.last_alert = Some(now);
                    Some(Notice::Late { problems })
                } else {
                    None
                }
            }
        }
    }

    /// True while an alert stands.
    pub fn is_late(&self) -> bool {
        self.late_since.is_some()
    }

    /// One line for the console: late since when, on time (and the last file), or that
    /// nothing is expected.
    pub fn summary(&self, now: DateTime<Utc>) -> String {
        let last = match self.last_file {
            Some(t) => format!("last file {} ago", human(now - t)),
            None => "no file loaded yet".to_string(),
        };
        match (self.enabled(), self.late_since) {
            (false, _) => format!("nothing expected ([expect] is off); {last}"),
            (true, Some(since)) => format!(
                "late since {} ({} ago); {last}",
                since.format("%Y-%m-%d %H:%M UTC"),
                human(now - since)
            ),
            (true, None) => format!("on time; {last}"),
        }
    }
}

/// "3 h 20 min", "2 d 4 h", "45 s".
fn human(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        s if s >= 86_400 => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

impl Notice {
    /// The e-mail of this notice.
    pub fn render(&self) -> crate::report::Rendered {
        let (subject, body) = match self {
            Notice::Late { problems } => (
                "votewatch: the supplier is late — action needed".to_string(),
                format!(
                    "The supplier is not sending what is expected:\n{}\n\nAsk the supplier whether deliveries stopped, and check that files still reach landing/.\n",
                    problems.iter().map(|p| format!("- {p}\n")).collect::<String>()
                ),
            ),
            Notice::BackToNormal { late_for } => (
                "votewatch: deliveries are back to normal".to_string(),
                format!(
                    "Files arrive as expected again, after {} without.\n",
                    human(*late_for)
                ),
            ),
        };
        let html = format!(
            "<p>{}</p>\n",
            html_escape::encode_text(&body).replace('\n', "<br>\n")
        );
        crate::report::Rendered {
            subject,
            text: body,
            html,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap() + Duration::minutes(h * 60)
    }

    #[test]
    fn an_alert_fires_once_reminds_once_a_period_and_clears_once() {
        let expect = ExpectConfig {
            file_every_hours: 4.0,
            min_rows_per_day: 0,
        };
        let mut f = Freshness::new(expect, at(0));
        f.loaded(at(0), 10);
        assert_eq!(f.check(at(3)), None);
        assert_eq!(f.check(at(4)), None, "exactly the period is not late");
        let Some(Notice::Late { problems }) = f.check(at(5)) else {
            panic!("no alert after 5 h without a file")
        };
        assert!(
            problems[0].contains("no file loaded for 5 h"),
            "{problems:?}"
        );
        assert!(f.is_late());
        assert_eq!(f.check(at(6)), None, "not repeated within the period");
        assert_eq!(f.check(at(8)), None);
        assert!(
            matches!(f.check(at(9)), Some(Notice::Late { .. })),
            "one reminder a period"
        );
        f.loaded(at(10), 10);
        assert!(matches!(f.check(at(10)), Some(Notice::BackToNormal { .. })));
        assert!(!f.is_late());
        assert_eq!(f.check(at(11)), None, "back to normal is said once");
    }

    #[test]
    fn too_few_rows_a_day_is_late_too_and_a_fresh_start_waits_a_period() {
        let expect = ExpectConfig {
            file_every_hours: 0.0,
            min_rows_per_day: 100,
        };
        let mut f = Freshness::new(expect, at(0));
        f.loaded(at(1), 40);
        assert_eq!(
            f.check(at(12)),
            None,
            "not judged before a whole day was watched"
        );
        f.loaded(at(20), 40);
        let Some(Notice::Late { problems }) = f.check(at(24)) else {
            panic!("no alert for 80 votes a day")
        };
        assert!(problems[0].starts_with("80 new votes"), "{problems:?}");
        f.loaded(at(25), 100);
        assert!(matches!(f.check(at(25)), Some(Notice::BackToNormal { .. })));
        let off = ExpectConfig::default();
        let mut g = Freshness::new(off, at(0));
        assert_eq!(g.check(at(1000)), None);
    }
}
