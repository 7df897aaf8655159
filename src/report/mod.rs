//! Reports: what a batch did, as data (`BatchReport`), rendered as text and HTML (`render`) with
//! the weekly chart (`chart`), made into a message (`message`), queued in the outbox on disk
//! (`outbox`), and delivered by the sender task (`sender`) through a transport (`transport`).
//! The model and rendering are pure (tested without a warehouse or a mail server). Must not
//! touch: the warehouse (the loader hands it the numbers), landing/ and work/.

pub mod chart;
pub mod message;
pub mod outbox;
mod render;
pub mod sender;
pub mod transport;
pub mod webhook;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::ReportMode;
use crate::model::FileOutcome;

/// What happened in one batch: each file, where it went, and the outlier-week count after.
#[derive(Debug, Clone)]
pub struct BatchReport {
    pub files: Vec<(FileOutcome, Option<PathBuf>)>,
    pub outlier_weeks: Option<i64>,
    /// What the report is about when it is not an ordinary batch (a rebuild from the
    /// archive): its subject, and the paragraphs before the files.
    pub preface: Option<(String, Vec<String>)>,
    /// The weekly chart, when the warehouse could give it.
    pub chart: Option<crate::report::chart::WeeklyChart>,
}

/// A report ready to send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// A PNG the HTML shows inline (`cid:` `chart::CONTENT_ID`).
    pub chart_png: Option<Vec<u8>>,
    /// What the message is about, when it can be named: the same arrivals give the same key,
    /// and so the same Message-ID, however often the report is queued (a crash between
    /// queueing it and recording that in the ledger queues it again at the restart).
    pub key: Option<String>,
}

/// Makes a file name safe for a header or a one-line text: control characters (newlines
/// among them) become `?`, and the name is cut to a readable length.
pub fn one_line(name: &str) -> String {
    const MAX: usize = 120;
    let mut s: String = name
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX)
        .collect();
    if name.chars().count() > MAX {
        s.push('…');
    }
    s
}

impl BatchReport {
    pub fn new(files: Vec<(FileOutcome, Option<PathBuf>)>, outlier_weeks: Option<i64>) -> Self {
        BatchReport {
            files,
            outlier_weeks,
            chart: None,
            preface: None,
        }
    }

    /// `["2 loaded", "1 failed"]`: files per status, statuses in order.
    fn counts_by_status(&self) -> Vec<String> {
        let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
        for (o, _) in &self.files {
            *by_status.entry(o.status.as_str()).or_default() += 1;
        }
        by_status
            .iter()
            .map(|(s, n)| format!("{n} {}", s.replace('_', " ")))
            .collect()
    }

    /// `votewatch: 3 files — 2 loaded, 1 failed`; with one file, its name and status.
    pub fn subject(&self) -> String {
        if let Some((subject, _)) = &self.preface {
            return format!("votewatch: {}", one_line(subject));
        }
        if let [(only, _)] = self.files.as_slice() {
            return format!(
                "votewatch: {} — {}",
                one_line(&only.name),
                status_words(only)
            );
        }
        let parts = self.counts_by_status();
        format!(
            "votewatch: {} files — {}",
            self.files.len(),
            parts.join(", ")
        )
    }

    /// The one line a person reads first: how many files did what, and whether anyone has to
    /// act (`3 files: 2 loaded, 1 rejected — action needed: a.jsonl (rejected)`).
    pub fn verdict(&self) -> String {
        let parts = self.counts_by_status();
        let files = crate::text::count(self.files.len() as u64, "file", "files");
        // Every file whose section says what to do (`advice`) is named here.
        let act: Vec<String> = self
            .files
            .iter()
            .filter(|(o, _)| advice(o).is_some())
            .map(|(o, _)| format!("{} ({})", one_line(&o.name), o.status))
            .collect();
        let tail = if act.is_empty() {
            "nothing to do".to_string()
        } else {
            format!("action needed: {}", act.join(", "))
        };
        format!("{files}: {} — {tail}", parts.join(", "))
    }

    /// How many messages this report becomes under `mode`.
    pub fn message_count(&self, mode: ReportMode) -> usize {
        match mode {
            _ if self.preface.is_some() => 1,
            ReportMode::PerBatch => 1,
            ReportMode::PerFile => self.files.len(),
        }
    }

    /// The messages this report becomes under `mode`.
    pub fn render(&self, mode: ReportMode) -> Vec<Rendered> {
        if self.preface.is_some() {
            // One message: the preface speaks of all the files.
            return vec![self.render_one()];
        }
        match mode {
            ReportMode::PerBatch => vec![self.render_one()],
            ReportMode::PerFile => self
                .files
                .iter()
                .map(|f| {
                    BatchReport::new(vec![f.clone()], self.outlier_weeks)
                        .with_chart(self.chart.clone())
                        .render_one()
                })
                .collect(),
        }
    }

    /// The same report with the weekly chart (PNG inline in the HTML, its numbers in both parts).
    pub fn with_chart(mut self, chart: Option<crate::report::chart::WeeklyChart>) -> Self {
        self.chart = chart;
        self
    }

    fn render_one(&self) -> Rendered {
        Rendered {
            subject: self.subject(),
            text: self.to_text(),
            html: self.to_html(),
            chart_png: self.chart.as_ref().map(|c| c.png()),
            key: Some(self.key()),
        }
    }

    /// The report's key: a digest of its arrivals (ledger id, content hash, name), so the
    /// report of the same files is the same message.
    pub(crate) fn key(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (o, _) in &self.files {
            h.update(format!(
                "{}\0{}\0{}\n",
                o.file_id,
                o.sha256.as_deref().unwrap_or(""),
                o.name
            ));
        }
        let digest = h.finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

pub use render::advice;
use render::status_words;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Counts, RejectRow, Status};
    use std::time::Duration;

    fn outcome(name: &str, status: Status, rejected: u64) -> FileOutcome {
        FileOutcome {
            dataset: crate::datasets::Dataset::Votes,
            forced: false,
            file_id: 7,
            path: PathBuf::from(name),
            name: name.to_string(),
            status,
            counts: Counts {
                lines: 10,
                inserted: 10 - rejected,
                rejected,
                ..Counts::default()
            },
            unknown_fields: vec!["Score".into()],
            error: (rejected > 0).then(|| {
                format!(
                    "{} rejected",
                    crate::text::count(rejected, "record", "records")
                )
            }),
            duplicate_of: None,
            sha256: None,
            elapsed: Duration::from_millis(120),
            sample_rejects: (0..rejected)
                .map(|i| RejectRow {
                    line: i + 3,
                    element: None,
                    raw: "x".into(),
                    truncated: false,
                    reason: "missing <Id>".into(),
                })
                .collect(),
            archived_to: None,
        }
    }

    #[test]
    fn subject_sums_up_the_batch() {
        let r = BatchReport::new(
            vec![
                (outcome("a.jsonl", Status::Loaded, 0), None),
                (outcome("b.jsonl", Status::Loaded, 0), None),
                (outcome("c.jsonl", Status::Failed, 0), None),
            ],
            Some(4),
        );
        assert_eq!(r.subject(), "votewatch: 3 files — 1 failed, 2 loaded");
        let one = BatchReport::new(
            vec![(outcome("a\nb.jsonl", Status::Partial, 1), None)],
            None,
        );
        assert_eq!(one.subject(), "votewatch: a?b.jsonl — partial");
    }

    #[test]
    fn hostile_names_and_reasons_are_escaped_in_html() {
        let name = "<script>alert(\"x\")</script>&.jsonl";
        let r = BatchReport::new(
            vec![(
                outcome(name, Status::Partial, 2),
                Some(PathBuf::from("processed/<b>.jsonl")),
            )],
            Some(3),
        );
        let html = r.to_html();
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(\"x\")&lt;/script&gt;&amp;.jsonl"),
            "{html}"
        );
        assert!(html.contains("processed/&lt;b&gt;.jsonl"));
        assert!(
            html.contains("<li>line 3: missing &lt;Id&gt;</li>"),
            "{html}"
        );
        assert!(html.contains("Outlier weeks after this batch: 3"));
        let text = r.to_text();
        assert!(text.contains("reject line 4: missing <Id>"), "{text}");
        assert!(text.contains("WHERE file_id = 7"));
        assert!(text.contains("unknown fields: Score"));
    }

    /// The same files give the same key (so the same Message-ID), other files another.
    #[test]
    fn a_report_of_the_same_files_has_the_same_key() {
        let one =
            |name: &str| BatchReport::new(vec![(outcome(name, Status::Loaded, 0), None)], None);
        let a = one("a.jsonl").render(ReportMode::PerBatch);
        let again = one("a.jsonl").render(ReportMode::PerBatch);
        let b = one("b.jsonl").render(ReportMode::PerBatch);
        assert!(a[0].key.is_some());
        assert_eq!(a[0].key, again[0].key);
        assert_ne!(a[0].key, b[0].key);
    }

    /// The report's HTML is styled by the console's stylesheet.
    #[test]
    fn the_html_carries_the_consoles_stylesheet() {
        let r = BatchReport::new(vec![(outcome("a.jsonl", Status::Loaded, 0), None)], None);
        let html = r.to_html();
        let css = include_str!("../../templates/style.css");
        assert!(html.contains(&format!("<style>\n{css}</style>")), "{html}");
    }

    /// The HTML table gives every file its ledger id, as the text part does.
    #[test]
    fn the_html_table_has_each_files_ledger_id() {
        let mut loaded = outcome("a.jsonl", Status::Loaded, 0);
        loaded.file_id = 41;
        let r = BatchReport::new(vec![(loaded, None)], None);
        let html = r.to_html();
        assert!(html.contains("<th>Ledger</th>"), "{html}");
        assert!(
            html.contains("<tr><td>a.jsonl</td><td>votes</td><td class=\"n\">41</td><td class=\"status loaded\">loaded</td>"),
            "{html}"
        );
        assert!(r.to_text().contains("(ledger 41)"));
    }

    #[test]
    fn per_file_mode_makes_one_message_per_file() {
        let r = BatchReport::new(
            vec![
                (outcome("a.jsonl", Status::Loaded, 0), None),
                (outcome("b.jsonl", Status::Rejected, 0), None),
            ],
            None,
        );
        let per_file = r.render(ReportMode::PerFile);
        let subjects: Vec<&str> = per_file.iter().map(|m| m.subject.as_str()).collect();
        assert_eq!(
            subjects,
            [
                "votewatch: a.jsonl — loaded",
                "votewatch: b.jsonl — rejected"
            ]
        );
        assert_eq!(r.render(ReportMode::PerBatch).len(), 1);
        assert_eq!(r.message_count(ReportMode::PerFile), per_file.len());
        assert_eq!(r.message_count(ReportMode::PerBatch), 1);
    }

    #[test]
    fn the_verdict_comes_first_and_a_file_not_loaded_says_what_to_do() {
        let r = BatchReport::new(
            vec![
                (outcome("a.jsonl", Status::Loaded, 0), None),
                (outcome("b.jsonl", Status::Partial, 2), None),
                (outcome("c.jsonl", Status::Rejected, 9), None),
            ],
            None,
        );
        assert_eq!(
            r.verdict(),
            "3 files: 1 loaded, 1 partial, 1 rejected — action needed: b.jsonl (partial), c.jsonl (rejected)"
        );
        let text = r.to_text();
        assert!(text.starts_with(&r.verdict()), "{text}");
        assert!(
            text.contains("what to do: 2 records were rejected and the rest loaded"),
            "{text}"
        );
        assert!(
            text.contains("what to do: nothing of it was loaded: ask the supplier to fix"),
            "{text}"
        );
        assert!(
            r.to_html().contains("<p><strong>3 files: 1 loaded"),
            "{}",
            r.to_html()
        );
        // A partial file needs an action too, and the counts agree in number.
        let partial = BatchReport::new(
            vec![
                (outcome("a.jsonl", Status::Loaded, 0), None),
                (outcome("b.jsonl", Status::Partial, 1), None),
            ],
            None,
        );
        assert_eq!(
            partial.verdict(),
            "2 files: 1 loaded, 1 partial — action needed: b.jsonl (partial)"
        );
        let text = partial.to_text();
        assert!(
            text.contains("what to do: 1 record was rejected and the rest loaded; if it matters"),
            "{text}"
        );
        assert!(!text.contains("1 records"), "{text}");
        let fine = BatchReport::new(vec![(outcome("a.jsonl", Status::Loaded, 0), None)], None);
        assert_eq!(fine.verdict(), "1 file: 1 loaded — nothing to do");
        assert!(!fine.to_text().contains("what to do"));
    }
}
