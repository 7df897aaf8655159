//! A report as plain text and as HTML (every supplier string escaped), and what to do about a
//! file that was not loaded whole.

use std::fmt::Write;

use html_escape::encode_text as html;

use super::{one_line, BatchReport};
use crate::model::{FileOutcome, Status};
use crate::pipeline::load::describe_reject;

impl BatchReport {
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if let Some((_, preface)) = &self.preface {
            for p in preface {
                let _ = writeln!(s, "{}\n", one_line_long(p));
            }
        }
        let _ = writeln!(s, "{}\n", self.verdict());
        for (o, placed) in &self.files {
            let c = &o.counts;
            let _ = writeln!(s, "{}", one_line(&o.name));
            let _ = writeln!(
                s,
                "  status {} (ledger {}); read {}, inserted {}, duplicates {}, already in warehouse {}, conflicting {}, rejected {}; {:.2}s; dataset {}",
                o.status,
                o.file_id,
                c.lines,
                c.inserted,
                c.duplicates_in_file,
                c.already_in_warehouse,
                c.conflicting,
                c.rejected,
                o.elapsed.as_secs_f64(),
                o.dataset
            );
            if c.updated > 0 {
                let _ = writeln!(
                    s,
                    "  {} replaced by a newer version (the old ones kept in {}_history)",
                    c.updated, o.dataset
                );
            }
            if let Some(e) = &o.error {
                let _ = writeln!(s, "  {}", one_line(e));
            }
            if let Some(a) = advice(o) {
                let _ = writeln!(s, "  what to do: {a}");
            }
            for r in &o.sample_rejects {
                let _ = writeln!(s, "  reject {}", one_line(&describe_reject(r)));
            }
            if c.rejected > 0 {
                let _ = writeln!(s, "  all rejects: {}", rejects_query(o));
            }
            if !o.unknown_fields.is_empty() {
                let _ = writeln!(
                    s,
                    "  unknown fields: {}",
                    one_line(&o.unknown_fields.join(", "))
                );
            }
            if let Some(p) = placed {
                let _ = writeln!(s, "  moved to {}", one_line(&p.display().to_string()));
            }
            s.push('\n');
        }
        if let Some(n) = self.outlier_weeks {
            let _ = writeln!(s, "Outlier weeks after this batch: {n}");
        }
        if let Some(c) = &self.chart {
            let _ = write!(s, "\n{}", c.to_text_table());
        }
        s
    }

    /// The report as HTML, styled by the console's stylesheet (`templates/style.css`).
    pub fn to_html(&self) -> String {
        let mut s = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><style>\n{STYLE}</style></head>\n\
             <body>\n<main>\n<p><strong>{}</strong></p>\n\
             <table>\n\
             <tr><th>File</th><th>Dataset</th><th>Ledger</th><th>Status</th><th>Read</th><th>Inserted</th><th>Duplicates</th>\
             <th>Already</th><th>Conflicting</th><th>Rejected</th><th>Time</th><th>Moved to</th></tr>\n",
            html(&self.verdict())
        );
        if let Some((_, preface)) = &self.preface {
            let paragraphs: String = preface
                .iter()
                .map(|p| format!("<p>{}</p>\n", html(&one_line_long(p))))
                .collect();
            s = s.replacen("<main>\n", &format!("<main>\n{paragraphs}"), 1);
        }
        for (o, placed) in &self.files {
            let c = &o.counts;
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"status {}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}s</td><td>{}</td></tr>",
                html(&one_line(&o.name)),
                o.dataset,
                o.file_id,
                o.status,
                o.status,
                c.lines,
                c.inserted,
                c.duplicates_in_file,
                c.already_in_warehouse,
                c.conflicting,
                c.rejected,
                o.elapsed.as_secs_f64(),
                placed
                    .as_ref()
                    .map(|p| html(&one_line(&p.display().to_string())).into_owned())
                    .unwrap_or_default()
            );
        }
        s.push_str("</table>\n");
        for (o, _) in &self.files {
            let has_detail = o.error.is_some() || !o.unknown_fields.is_empty();
            if !has_detail {
                continue;
            }
            let _ = writeln!(
                s,
                "<h3>{} (ledger {})</h3>",
                html(&one_line(&o.name)),
                o.file_id
            );
            if let Some(e) = &o.error {
                let _ = writeln!(s, "<p>{}</p>", html(&one_line(e)));
            }
            if let Some(a) = advice(o) {
                let _ = writeln!(s, "<p><em>What to do:</em> {}</p>", html(&a));
            }
            if !o.sample_rejects.is_empty() {
                s.push_str("<ul>\n");
                for r in &o.sample_rejects {
                    let _ = writeln!(s, "<li>{}</li>", html(&one_line(&describe_reject(r))));
                }
                s.push_str("</ul>\n");
            }
            if o.counts.rejected > 0 {
                let _ = writeln!(
                    s,
                    "<p>All rejects: <code>{}</code></p>",
                    html(&rejects_query(o))
                );
            }
            if !o.unknown_fields.is_empty() {
                let _ = writeln!(
                    s,
                    "<p>Unknown fields: {}</p>",
                    html(&one_line(&o.unknown_fields.join(", ")))
                );
            }
        }
        if let Some(n) = self.outlier_weeks {
            let _ = writeln!(s, "<p>Outlier weeks after this batch: {n}</p>");
        }
        if let Some(c) = &self.chart {
            let _ = writeln!(
                s,
                "<h3>Weekly votes</h3>\n<p><img src=\"cid:{}\" width=\"{}\" height=\"{}\" \
                 alt=\"Weekly vote counts by week: bars, the mean as a line, the band within 20% \
                 shaded, outlier weeks in orange, this batch's weeks marked by a triangle\"></p>\n{}",
                crate::report::chart::CONTENT_ID,
                crate::report::chart::WIDTH,
                crate::report::chart::HEIGHT,
                c.to_html_table()
            );
        }
        s.push_str("</main></body></html>\n");
        s
    }
}

/// The stylesheet the console's pages and the reports' HTML share.
const STYLE: &str = include_str!("../../templates/style.css");

pub(super) fn status_words(o: &FileOutcome) -> String {
    o.status.as_str().replace('_', " ")
}

pub(super) fn rejects_query(o: &FileOutcome) -> String {
    format!(
        "SELECT line_number, reason, raw FROM blog_analysis.rejected_{} WHERE file_id = {} ORDER BY line_number;",
        o.dataset, o.file_id
    )
}

/// What someone should do about a file that was not loaded whole, in a sentence for the
/// supplier or the operator; `None` when there is nothing to do.
pub fn advice(o: &FileOutcome) -> Option<String> {
    let error = o.error.as_deref().unwrap_or("");
    Some(match o.status {
        Status::Loaded | Status::DuplicateFile => return None,
        Status::Partial => {
            let n = o.counts.rejected;
            let (were, they, matter) = if n == 1 {
                ("was", "it", "matters")
            } else {
                ("were", "they", "matter")
            };
            format!(
                "{} {were} rejected and the rest loaded; if {they} {matter}, ask the supplier to send {} corrected in a new file",
                crate::text::count(n, "record", "records"),
                if n == 1 { "it" } else { "them" }
            )
        }
        Status::Rejected if error.contains("empty file") || error.contains("no records") => {
            "the file holds no votes: ask the supplier to send it again with its content".into()
        }
        Status::Rejected => format!(
            "nothing of it was loaded: ask the supplier to fix the records listed and send the file again (ledger {}; `votewatch reingest {}` loads this copy once the limits allow it)",
            o.file_id, o.file_id
        ),
        Status::Failed => format!(
            "votewatch could not load it (see the reason); once the cause is fixed, `votewatch reingest {}` loads it",
            o.file_id
        ),
    })
}

/// A paragraph of votewatch's own that may quote names: control characters made safe, no cut.
fn one_line_long(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
