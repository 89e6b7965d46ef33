//! Showing a batch run's progress: an indicatif bar (rows, rate, ETA, counts)
//! when stderr is a terminal, and a plain line every few seconds otherwise
//! (a log file, CI), so a long run never goes silent.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::summary::Counts;

/// How often the plain line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The progress display of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// `total`: rows to answer in this run.
    pub fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{bar:30.green/dim} {pos}/{len} rows  {per_sec}  eta {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            total,
            started: now,
            last_line: now,
        }
    }

    /// A row was answered; `counts` are the totals so far.
    pub fn update(&mut self, counts: &Counts) {
        let done = counts.rows_answered;
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(counts.brief());
            }
            None => {
                if self.last_line.elapsed() >= PLAIN_EVERY || done == self.total {
                    self.last_line = Instant::now();
                    let elapsed = self.started.elapsed().as_secs_f64();
                    let rate = if elapsed > 0.0 {
                        done as f64 / elapsed
                    } else {
                        0.0
                    };
                    let eta = if rate > 0.0 {
                        format!("{:.0}s", (self.total.saturating_sub(done)) as f64 / rate)
                    } else {
                        "?".into()
                    };
                    eprintln!(
                        "batch: {done}/{} rows, {rate:.1} rows/s, eta {eta}, {}",
                        self.total,
                        counts.brief()
                    );
                }
            }
        }
    }

    /// Prints a line without breaking the bar.
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}
