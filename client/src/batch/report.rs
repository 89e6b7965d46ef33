//! `--report FILE.html`: what a result file holds, as a page a moderation
//! lead can forward: the counts by label, each sentence's verdicts across
//! the catalogue, the rows that failed and why, and the slowest rows. One
//! self-contained file (no script, no outside resource), every text escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use super::label_counts::LabelCounts;
use super::results::{Format, ResultLine, read_lines};

/// How many of the slowest rows the report lists.
const SLOWEST: usize = 10;

/// Writes the report of `out` (a result file in `format`) to `report`.
pub fn write(out: &Path, format: Format, report: &Path) -> anyhow::Result<()> {
    let lines: Vec<ResultLine> = read_lines(out, format)?.into_iter().flatten().collect();
    let html = render(&out.display().to_string(), &lines);
    std::fs::write(report, html).with_context(|| format!("cannot write {}", report.display()))
}

/// Counts of one sentence (or of the whole file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    labels: LabelCounts,
    failed: u64,
}

impl Counts {
    fn add(&mut self, line: &ResultLine) {
        if !self.labels.add(line) && line.error.is_some() {
            self.failed += 1;
        }
    }
}

fn render(source: &str, lines: &[ResultLine]) -> String {
    let mut total = Counts::default();
    let mut by_sentence: BTreeMap<&str, Counts> = BTreeMap::new();
    for line in lines {
        total.add(line);
        by_sentence.entry(line.text.as_str()).or_default().add(line);
    }
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>verdict batch report</title><style>{STYLE}</style></head><body>\n\
         <h1>verdict batch report</h1>\n<p>From <code>{}</code>: {} sentence verdicts \
         and failures.</p>\n<h2>Verdicts</h2>\n<table><tr><th>yes</th><th>no</th>\
         <th>maybe</th><th>failed</th></tr><tr>{}</tr></table>\n",
        escape(source),
        lines.len(),
        counts_cells(total),
    );
    html.push_str("<h2>By sentence</h2>\n<table><tr><th>sentence</th><th>yes</th><th>no</th><th>maybe</th><th>failed</th></tr>\n");
    for (sentence, counts) in &by_sentence {
        let _ = writeln!(
            html,
            "<tr><td>{}</td>{}</tr>",
            escape(sentence),
            counts_cells(*counts)
        );
    }
    html.push_str("</table>\n");
    failed_section(&mut html, lines);
    slowest_section(&mut html, lines);
    html.push_str("</body></html>\n");
    html
}

fn counts_cells(c: Counts) -> String {
    format!(
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        c.labels.yes, c.labels.no, c.labels.maybe, c.failed
    )
}

fn failed_section(html: &mut String, lines: &[ResultLine]) {
    let failed: Vec<&ResultLine> = lines.iter().filter(|l| l.error.is_some()).collect();
    let _ = writeln!(html, "<h2>Failed ({})</h2>", failed.len());
    if failed.is_empty() {
        html.push_str("<p>None.</p>\n");
        return;
    }
    html.push_str(
        "<table><tr><th>id</th><th>image</th><th>sentence</th><th>code</th><th>why</th></tr>\n",
    );
    for line in failed {
        let error = line.error.as_ref().expect("filtered on errors");
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            escape(&line.id),
            escape(&line.image),
            escape(&line.text),
            escape(&error.code),
            escape(&error.message)
        );
    }
    html.push_str("</table>\n");
}

fn slowest_section(html: &mut String, lines: &[ResultLine]) {
    let mut timed: Vec<&ResultLine> = lines.iter().filter(|l| l.seconds.is_some()).collect();
    timed.sort_by(|a, b| {
        b.seconds
            .partial_cmp(&a.seconds)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    timed.dedup_by(|a, b| a.id == b.id && a.job == b.job);
    let _ = writeln!(html, "<h2>Slowest rows</h2>");
    if timed.is_empty() {
        html.push_str("<p>No timings (rows submitted without waiting, or none judged).</p>\n");
        return;
    }
    html.push_str(
        "<table><tr><th>id</th><th>image</th><th>seconds, submission to verdict</th></tr>\n",
    );
    for line in timed.into_iter().take(SLOWEST) {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
            escape(&line.id),
            escape(&line.image),
            line.seconds.unwrap_or(0.0)
        );
    }
    html.push_str("</table>\n");
}

/// Text made safe for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:2em;color:#1f2328}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #d1d9e0;\
padding:4px 10px;text-align:left}th{background:#f6f8fa}code{font-size:13px}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::input::Row;
    use std::path::PathBuf;

    #[test]
    fn counts_failures_slowest_rows_and_escapes_everything() {
        let row = Row {
            id: "<r1>".into(),
            image: "a.png".into(),
            image_path: PathBuf::from("a.png"),
            texts: vec!["A cup & saucer.".into()],
            premise: None,
            problem: None,
        };
        let mut yes = ResultLine::for_row(&row, "A cup & saucer.");
        yes.label = Some("yes".into());
        yes.seconds = Some(1.5);
        yes.job = Some("j1".into());
        let mut slow = yes.clone();
        slow.id = "r2".into();
        slow.label = Some("no".into());
        slow.seconds = Some(9.25);
        slow.job = Some("j2".into());
        let failed = ResultLine::failed(&row, "A cup & saucer.", "image_unreadable", "no <file>");
        let html = render("out.jsonl", &[yes, slow, failed]);
        assert!(
            html.contains("<tr><td>1</td><td>1</td><td>0</td><td>1</td></tr></table>"),
            "{html}"
        );
        assert!(
            html.contains("<td>A cup &amp; saucer.</td><td>1</td><td>1</td><td>0</td><td>1</td>"),
            "{html}"
        );
        assert!(html.contains("<h2>Failed (1)</h2>"));
        assert!(html.contains("<code>image_unreadable</code></td><td>no &lt;file&gt;</td>"));
        assert!(html.contains("&lt;r1&gt;") && !html.contains("<r1>"));
        let slowest = html.find("<td>9.25</td>").expect("the slow row");
        assert!(slowest < html.find("<td>1.50</td>").expect("the fast row"));
    }
}
