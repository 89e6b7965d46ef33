//! `verdict-worker bench` as `scripts/bench-model` runs it: one JSON report
//! that names the kernels this binary runs.

#![cfg(target_arch = "x86_64")]

mod common;

use std::process::Command;

/// The worker's own depthwise kernels reach tract's registry through a
/// link-time collection (`inventory`): a binary that dropped them would
/// still work, 1.5 ms an image slower on AVX-512 (docs/benchmarks.md). The
/// binary's bench names the kernel it runs.
#[test]
fn the_binary_runs_the_workers_depthwise_kernel() {
    let out = Command::new(env!("CARGO_BIN_EXE_verdict-worker"))
        .args(["bench", "--runs", "1", "--model"])
        .arg(common::model_dir())
        .arg("--image")
        .arg(common::photos_dir().join("coffee.png"))
        .output()
        .expect("run verdict-worker bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    let want = if std::is_x86_feature_detected!("avx512f") {
        "verdict_avx512f_depthwise_c_f32"
    } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        "verdict_avx2_fma_depthwise_c_f32"
    } else {
        "portable"
    };
    assert_eq!(report["depthwise_kernel"], want, "{report:#}");
    assert!(
        report["image_ms_median"]
            .as_f64()
            .is_some_and(|ms| ms > 0.0),
        "{report:#}"
    );
}
