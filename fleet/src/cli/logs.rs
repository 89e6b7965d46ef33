//! `fleet logs [NAME] [-f] [--level LEVEL] [-n LINES]`: the processes' log
//! files, rendered for people (see `crate::log_line`), optionally followed.
//!
//! Without NAME, every log in `logs/` is shown, each line prefixed with its
//! process name. Following polls the files for growth every 250 ms (the files
//! are plain appends by their processes) and starts over when a file shrinks
//! (rotated when its process restarted).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

use anyhow::bail;
use verdict_shared::outln;

use crate::log_line::{self, Level};
use verdict_supervisor::home::Home;
use verdict_supervisor::names;

#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// A process name (api, redis, worker-0, watchdog) [default: all]
    pub name: Option<String>,
    /// Keep printing new lines as they are written
    #[arg(short, long)]
    pub follow: bool,
    /// Show only lines at this level or above (lines without a level are always shown)
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub level: Option<Level>,
    /// How many of the last lines of each file to show first
    #[arg(short = 'n', long, default_value_t = 50, value_name = "LINES")]
    pub lines: usize,
    /// Print lines as written (JSON), without rendering
    #[arg(long)]
    pub raw: bool,
}

pub fn main(home_flag: Option<&Path>, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let home = Home::resolve(home_flag)?;
    let files = select(&home, args.name.as_deref())?;
    let prefix = files.len() > 1;
    let show = |name: &str, line: &str| {
        let parsed = log_line::parse(line);
        if !parsed.passes(args.level) {
            return;
        }
        let text = if args.raw {
            line.trim_end()
        } else {
            parsed.text.as_str()
        };
        if prefix {
            outln!("{name:<10} | {text}");
        } else {
            outln!("{text}");
        }
    };
    let mut offsets = Vec::new();
    for (name, path) in &files {
        for line in tail_lines(path, args.lines)? {
            show(name, &line);
        }
        offsets.push(path.metadata().map(|m| m.len()).unwrap_or(0));
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut partial: Vec<String> = vec![String::new(); files.len()];
    loop {
        for (i, (name, path)) in files.iter().enumerate() {
            let len = path.metadata().map(|m| m.len()).unwrap_or(0);
            if len < offsets[i] {
                offsets[i] = 0; // rotated or truncated: start over
                partial[i].clear();
            }
            if len == offsets[i] {
                continue;
            }
            let mut file = File::open(path)?;
            file.seek(SeekFrom::Start(offsets[i]))?;
            let mut bytes = Vec::new();
            file.take(len - offsets[i]).read_to_end(&mut bytes)?;
            offsets[i] = len;
            partial[i].push_str(&String::from_utf8_lossy(&bytes));
            while let Some(end) = partial[i].find('\n') {
                let line: String = partial[i].drain(..=end).collect();
                show(name, &line);
            }
        }
        sleep(Duration::from_millis(250));
    }
}

/// The log files to show: one by name, or all, in fleet order.
fn select(home: &Home, name: Option<&str>) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut all: Vec<String> = match std::fs::read_dir(home.logs_dir()) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".log")
                    .map(str::to_string)
            })
            .collect(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err.into()),
    };
    all.sort_by(|a, b| names::order(a, b));
    match name {
        Some(name) => {
            if !all.iter().any(|n| n == name) {
                if all.is_empty() {
                    bail!("no logs in {}", home.logs_dir().display());
                }
                bail!(
                    "no log for {name:?} in {} (there are: {})",
                    home.logs_dir().display(),
                    all.join(", ")
                );
            }
            Ok(vec![(name.to_string(), home.log_file(name))])
        }
        None => {
            if all.is_empty() {
                bail!("no logs in {}", home.logs_dir().display());
            }
            Ok(all
                .into_iter()
                .map(|n| (n.clone(), home.log_file(&n)))
                .collect())
        }
    }
}

/// The last `count` lines of a file, reading at most its last few MiB.
pub fn tail_lines(path: &Path, count: usize) -> io::Result<Vec<String>> {
    const WINDOW: u64 = 4 * 1024 * 1024;
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(WINDOW);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // probably cut in the middle
    }
    let skip = lines.len().saturating_sub(count);
    Ok(lines[skip..].iter().map(|l| l.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_returns_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        assert_eq!(tail_lines(&path, 2).unwrap(), ["line 98", "line 99"]);
        assert_eq!(tail_lines(&path, 500).unwrap().len(), 100);
    }
}
