//! Showing a batch run's progress: an indicatif bar (rows, rate, ETA, counts)
//! when stderr is a terminal, and a plain line every few seconds otherwise
//! (a log file, CI), so a long run never goes silent.
//!
//! The rate is smoothed (a sample a second at most, each weighing 30 %), shown
//! rounded, and the ETA is "?" until there is a first sample: no eight-minute
//! estimate from the first two answers of a run, and no "eta 0s" after
//! Ctrl-C.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::summary::Counts;

/// How often the plain line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// The shortest span a rate sample covers.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How much a new sample weighs in the smoothed rate.
const WEIGHT: f64 = 0.3;

/// Rows per second, smoothed.
#[derive(Debug, Clone)]
struct Rate {
    smoothed: Option<f64>,
    sampled_at: Instant,
    sampled_done: u64,
}

impl Rate {
    fn new(now: Instant) -> Rate {
        Rate {
            smoothed: None,
            sampled_at: now,
            sampled_done: 0,
        }
    }

    /// `done` rows are answered at `now`.
    fn observe(&mut self, done: u64, now: Instant) {
        let span = now.duration_since(self.sampled_at);
        if span < SAMPLE_EVERY {
            return;
        }
        let sample = done.saturating_sub(self.sampled_done) as f64 / span.as_secs_f64();
        self.smoothed = Some(match self.smoothed {
            None => sample,
            Some(rate) => rate * (1.0 - WEIGHT) + sample * WEIGHT,
        });
        self.sampled_at = now;
        self.sampled_done = done;
    }

    /// `12 rows/s`, `0.8 rows/s`, or `? rows/s` before the first sample.
    fn text(&self) -> String {
        match self.smoothed {
            Some(rate) if rate >= 10.0 => format!("{rate:.0} rows/s"),
            Some(rate) => format!("{rate:.1} rows/s"),
            None => "? rows/s".to_string(),
        }
    }

    /// The time left for `remaining` rows (those in flight count as left).
    fn eta(&self, remaining: u64) -> String {
        match self.smoothed {
            _ if remaining == 0 => "0s".to_string(),
            Some(rate) if rate > 0.0 => duration_text(remaining as f64 / rate),
            _ => "?".to_string(),
        }
    }
}

/// `45s`, `3m05s`, `2h10m`.
fn duration_text(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The progress display of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    rate: Rate,
    last_line: Instant,
}

impl Progress {
    /// `total`: rows to answer in this run.
    pub fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{bar:30.green/dim} {pos}/{len} rows  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            total,
            rate: Rate::new(now),
            last_line: now,
        }
    }

    /// A row was answered; `counts` are the totals so far.
    pub fn update(&mut self, counts: &Counts) {
        let done = counts.rows_answered;
        self.rate.observe(done, Instant::now());
        let left = self.total.saturating_sub(done);
        let status = format!(
            "{}  eta {}  {}",
            self.rate.text(),
            self.rate.eta(left),
            counts.brief()
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(status);
            }
            None => {
                if self.last_line.elapsed() >= PLAIN_EVERY || done == self.total {
                    self.last_line = Instant::now();
                    eprintln!("batch: {done}/{} rows, {status}", self.total);
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

    /// The run ended (`interrupted`: by Ctrl-C): the bar stays, without an
    /// estimate.
    pub fn finish(&self, interrupted: bool) {
        if let Some(bar) = &self.bar {
            if interrupted {
                bar.abandon_with_message("interrupted (run the same command to resume)");
            } else {
                bar.abandon();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_smoothed_rounded_and_unknown_at_first() {
        let start = Instant::now();
        let mut rate = Rate::new(start);
        // Two quick answers in the first moments: no estimate yet.
        rate.observe(2, start + Duration::from_millis(300));
        assert_eq!(rate.text(), "? rows/s");
        assert_eq!(rate.eta(500), "?");
        // 20 rows in 2 s: 10 rows/s.
        rate.observe(20, start + Duration::from_secs(2));
        assert_eq!(rate.text(), "10 rows/s");
        assert_eq!(rate.eta(100), "10s");
        // A burst (100 rows in 1 s) moves it by 30 % only.
        rate.observe(120, start + Duration::from_secs(3));
        assert_eq!(rate.text(), "37 rows/s");
        // A slow stretch.
        let mut slow = Rate::new(start);
        slow.observe(3, start + Duration::from_secs(4));
        assert_eq!(slow.text(), "0.8 rows/s");
        assert_eq!(slow.eta(400), "8m53s");
        assert_eq!(slow.eta(0), "0s");
        assert_eq!(duration_text(7300.0), "2h01m");
    }
}
