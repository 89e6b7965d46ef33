//! Sentence verdicts counted by label: the one count that the progress line,
//! the closing summary, the result file's tally and the HTML report share.

use std::fmt;

use super::results::ResultLine;

/// Verdicts by label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelCounts {
    pub yes: u64,
    pub no: u64,
    pub maybe: u64,
}

impl LabelCounts {
    /// Counts `line`'s verdict; `false` when it has none (an error line, or
    /// a row submitted without waiting).
    pub fn add(&mut self, line: &ResultLine) -> bool {
        match line.label.as_deref() {
            Some("yes") => self.yes += 1,
            Some("no") => self.no += 1,
            Some("maybe") => self.maybe += 1,
            _ => return false,
        }
        true
    }
}

/// `yes 3, no 1, maybe 0`.
impl fmt::Display for LabelCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "yes {}, no {}, maybe {}", self.yes, self.no, self.maybe)
    }
}
