//! Writing the Prometheus text exposition format (version 0.0.4).
//!
//! `/metrics` is a snapshot read from Redis at scrape time, not counters kept
//! in this process, so a client library's registry (built around in-process
//! counters and histograms that it observes itself) would only be a detour:
//! the format is a few lines per family, written here with its escaping rules.

use std::fmt::Write;

use verdict_shared::queue::metrics::HistogramSnapshot;

/// The content type of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The page being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// A metric family's type.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Exposition {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        self.header(name, kind, help);
        self
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape_label(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
        self
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    /// A whole histogram family: `_bucket`, `_sum`, `_count`.
    pub fn histogram(&mut self, name: &str, help: &str, histogram: &HistogramSnapshot) {
        self.header(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (bound, count) in &histogram.buckets {
            let le = number(*bound);
            self.sample(&bucket, &[("le", &le)], *count as f64);
        }
        self.sample(&format!("{name}_sum"), &[], histogram.sum);
        self.sample(&format!("{name}_count"), &[], histogram.count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Integers without a fraction, infinities as Prometheus spells them.
fn number(value: f64) -> String {
    if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else if value.is_nan() {
        "NaN".into()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_samples_and_histograms() {
        let mut page = Exposition::default();
        page.single("verdict_workers", Kind::Gauge, "Live workers.", 2.0);
        page.family("verdict_jobs_failed_total", Kind::Counter, "Failed jobs.")
            .sample("verdict_jobs_failed_total", &[("code", "a\"b\\c\nd")], 3.0);
        page.histogram(
            "verdict_inference_seconds",
            "Inference.",
            &HistogramSnapshot {
                buckets: vec![(0.5, 1), (f64::INFINITY, 2)],
                sum: 1.25,
                count: 2,
            },
        );
        assert_eq!(
            page.finish(),
            "# HELP verdict_workers Live workers.\n# TYPE verdict_workers gauge\nverdict_workers 2\n\
             # HELP verdict_jobs_failed_total Failed jobs.\n# TYPE verdict_jobs_failed_total counter\n\
             verdict_jobs_failed_total{code=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP verdict_inference_seconds Inference.\n# TYPE verdict_inference_seconds histogram\n\
             verdict_inference_seconds_bucket{le=\"0.5\"} 1\nverdict_inference_seconds_bucket{le=\"+Inf\"} 2\n\
             verdict_inference_seconds_sum 1.25\nverdict_inference_seconds_count 2\n"
        );
    }
}
