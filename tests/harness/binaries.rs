//! Finding (and building) the binaries under test.
//!
//! They live next to the test executable's parent directory (`target/debug`
//! for `target/debug/deps/queue-...`). Cargo does not build another package's
//! binaries for an integration test, so the first test that needs them runs
//! `cargo build --workspace --all-targets` once (set `VERDICT_E2E_NO_BUILD=1`
//! to skip that and use what is there). That selection, not `-p` on the three
//! binary packages, on purpose: it resolves features exactly as
//! `cargo test --workspace` does, so it reuses every dependency the test run
//! just compiled and only links the binaries; `-p` would unify features
//! without the dev-dependencies and rebuild tract, image and half the tree
//! (minutes on a 2-core CI machine).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The directory that holds the binaries of this build profile.
pub fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test knows its own path");
        let mut dir = exe
            .parent()
            .expect("the test executable is in a directory")
            .to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        if std::env::var_os("VERDICT_E2E_NO_BUILD").is_none() {
            build(&dir);
        }
        dir
    })
    .clone()
}

/// The path of one binary (`fleet`, `verdict-api`, `verdict-worker`), built if needed.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --all-targets`",
        path.display()
    );
    path
}

fn build(dir: &std::path::Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "--workspace", "--all-targets"]);
    if dir.ends_with("release") {
        cmd.arg("--release");
    }
    // The variables cargo sets for this test process describe the test
    // package; some build scripts (ring's) rerun when they change, which would
    // rebuild half the tree at every alternation with a plain `cargo build`.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_for_tests = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || [
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name);
        if set_for_tests {
            cmd.env_remove(name);
        }
    }
    let status = cmd.status().expect("cargo runs");
    assert!(
        status.success(),
        "building fleet, verdict-api and verdict-worker failed"
    );
}
