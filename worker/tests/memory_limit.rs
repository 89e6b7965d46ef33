//! `verdict-worker run` under memory limits from far too small to enough
//! (`RLIMIT_AS`, what `fleet up --worker-memory` sets), with the real
//! default pack: each start either refuses, saying to raise
//! `--worker-memory`, or passes every check and goes on to Redis. None may
//! end in a panic's backtrace or in Rust's allocation failure (`memory
//! allocation of N bytes failed`, an abort): before the checks of
//! `worker/src/cli/memory_limit.rs`, limits of 100 to 300 MB ended in a tract
//! panic and some near 330 MB in that abort, inside the ONNX parser.
//!
//! Redis is not the subject: the worker is pointed at a socket that does not
//! exist and is stopped once it has said that it can judge under its limit.

mod common;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, setrlimit};

const MIB: u64 = 1 << 20;

#[derive(Debug, PartialEq, Eq)]
enum Start {
    /// Refused before loading (the pack's files alone do not fit).
    RefusedBeforeLoading,
    /// Refused while loading or after it (too little left to judge).
    Refused,
    /// Passed every check: judges under this limit.
    Judges,
}

/// Starts the worker under `limit` bytes of address space; returns how its
/// start ended and its log.
fn start_under(limit: u64, dir: &Path) -> (Start, String) {
    let log_path = dir.join(format!("worker-{}.log", limit / MIB));
    let log = File::create(&log_path).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_verdict-worker"));
    cmd.args(["run", "--threads", "1", "--redis"])
        .arg(format!("unix://{}", dir.join("no-redis.sock").display()))
        .arg("--model")
        .arg(common::model_dir())
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: setrlimit is async-signal-safe, and the closure touches only
    // its copied argument.
    unsafe {
        cmd.pre_exec(move || setrlimit(Resource::RLIMIT_AS, limit, limit).map_err(Into::into));
    }
    let mut child = cmd.spawn().expect("start verdict-worker");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("images that would need more than what is spare") {
            child.kill().unwrap();
            child.wait().unwrap();
            return (Start::Judges, text);
        }
        if let Some(status) = child.try_wait().unwrap() {
            use std::os::unix::process::ExitStatusExt;
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            assert_eq!(
                status.code(),
                Some(1),
                "under {} MiB (signal {:?}):\n{text}",
                limit / MIB,
                status.signal()
            );
            let start = if text.contains("loading the model pack") {
                Start::RefusedBeforeLoading
            } else {
                Start::Refused
            };
            return (start, text);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("no verdict within 120 s under {} MiB:\n{text}", limit / MIB);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_limit_is_refused_with_a_reason_or_judges() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for mib in (64..=640).step_by(24) {
        let (start, log) = start_under(mib * MIB, dir.path());
        for forbidden in ["panicked", "memory allocation of", "stack backtrace"] {
            assert!(
                !log.contains(forbidden),
                "{forbidden:?} under {mib} MiB:\n{log}"
            );
        }
        if start != Start::Judges {
            assert!(
                log.contains("raise --worker-memory"),
                "refused under {mib} MiB without saying what to do:\n{log}"
            );
        }
        println!("{mib} MiB: {start:?}");
        seen.push((mib, start));
    }
    // The sweep covers all three outcomes. (Near the boundary a limit may
    // judge on one start and be refused on the next: the threads' malloc
    // arenas are mapped or not depending on how much is left when each
    // thread first allocates.)
    assert_eq!(seen[0].1, Start::RefusedBeforeLoading, "{seen:?}");
    assert!(seen.iter().any(|(_, s)| *s == Start::Refused), "{seen:?}");
    assert_eq!(seen.last().unwrap().1, Start::Judges, "{seen:?}");
}
