//! What a batch run counts, and the summary it ends with.

use std::time::Duration;

use super::label_counts::LabelCounts;

/// Running totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rows in the input.
    pub rows: u64,
    /// Rows skipped because the result file already answers them.
    pub skipped: u64,
    /// Rows done with in this run: answered, failed, or (with
    /// `--submit-only`) submitted.
    pub rows_answered: u64,
    /// Of those, rows submitted without waiting (`--submit-only`): no
    /// verdict yet.
    pub queued: u64,
    /// Sentence verdicts by label.
    pub labels: LabelCounts,
    /// Rows that got an error instead of verdicts.
    pub failed: u64,
}

impl Counts {
    /// `yes 3, no 1, maybe 0, failed 1`.
    pub fn brief(&self) -> String {
        let mut text = format!("{}, failed {}", self.labels, self.failed);
        if self.queued > 0 {
            text.push_str(&format!("  queued {}", self.queued));
        }
        text
    }

    /// The closing lines.
    pub fn summary(&self, elapsed: Duration, interrupted: bool) -> String {
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.rows_answered as f64 / secs
        } else {
            0.0
        };
        let queued = if self.queued > 0 {
            format!("{} submitted without waiting, ", self.queued)
        } else {
            String::new()
        };
        let mut text = format!(
            "{}: {} rows ({} answered now, {queued}{} already answered)\n  \
             verdicts: {}; failed rows: {}",
            if interrupted {
                "batch interrupted"
            } else {
                "batch done"
            },
            self.rows,
            self.rows_answered - self.queued,
            self.skipped,
            self.labels,
            self.failed,
        );
        if self.queued > 0 {
            text.push_str(&format!(
                "; {} rows have no verdict yet (run again without --submit-only to wait for them)",
                self.queued
            ));
        }
        text.push_str(&format!("\n  elapsed {secs:.1} s, {rate:.2} jobs/s"));
        text
    }
}
