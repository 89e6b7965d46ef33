//! Stepping processes' wall clocks for real: Debian's libfaketime, preloaded
//! (`scripts/test-setup` installs it).
//!
//! A process started with [`FakeClock::env`] reads its wall clock
//! (`CLOCK_REALTIME`, so `SystemTime::now`) as the real one plus the offset
//! in a file the test rewrites ([`FakeClock::set`]: `+120s`, `-1h`), read
//! again at every call, so a step reaches a running process at once. Its
//! monotonic clock is left alone, as a real clock step leaves it.

use std::path::{Path, PathBuf};

/// Where Debian's `libfaketime` package puts the preload library.
pub const LIBRARY: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The offset file the processes read.
#[derive(Debug)]
pub struct FakeClock {
    file: PathBuf,
}

impl FakeClock {
    /// A clock `offset` away from the real one (`+0s` for none yet), kept
    /// in `file`. Panics, naming the fix, without libfaketime.
    pub fn new(file: PathBuf, offset: &str) -> FakeClock {
        assert!(
            Path::new(LIBRARY).exists(),
            "{LIBRARY} is missing: run scripts/test-setup (it installs Debian's libfaketime)"
        );
        let clock = FakeClock { file };
        clock.set(offset);
        clock
    }

    /// Steps every process started with [`FakeClock::env`] to `offset`
    /// from the real clock.
    pub fn set(&self, offset: &str) {
        std::fs::write(&self.file, format!("{offset}\n")).expect("write the faketime offset");
    }

    /// The environment that puts a process on this clock.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", LIBRARY.to_owned()),
            (
                "FAKETIME_TIMESTAMP_FILE",
                self.file.to_str().expect("UTF-8 path").to_owned(),
            ),
            ("FAKETIME_NO_CACHE", "1".to_owned()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
        ]
    }
}
