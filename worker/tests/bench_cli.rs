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

/// The binary runs its 1 x 1 convolutions on the widest kernel this CPU
/// has, `--pointwise-kernel` picks another for a measurement, and a kernel
/// the CPU lacks or a name that is none is refused with a clear error.
#[test]
fn the_binary_runs_the_widest_pointwise_kernel_and_refuses_others() {
    let bench = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_verdict-worker"))
            .args(["bench", "--runs", "1", "--model"])
            .arg(common::model_dir())
            .arg("--image")
            .arg(common::photos_dir().join("coffee.png"))
            .args(extra)
            .output()
            .expect("run verdict-worker bench")
    };
    let kernel = |out: &std::process::Output| -> String {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("one JSON report");
        report["pointwise_kernel"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let avx512 = std::is_x86_feature_detected!("avx512f");
    let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    let want = match (avx512, avx2) {
        (true, _) => "verdict_avx512_pointwise_f32",
        (false, true) => "verdict_avx2_fma_pointwise_f32",
        _ => "tract",
    };
    assert_eq!(kernel(&bench(&[])), want);
    assert_eq!(kernel(&bench(&["--pointwise-kernel", "tract"])), "tract");
    let out = bench(&["--pointwise-kernel", "avx512"]);
    match avx512 {
        true => assert_eq!(kernel(&out), "verdict_avx512_pointwise_f32"),
        false => {
            assert!(!out.status.success());
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("this CPU cannot run"), "{err}");
        }
    }
    let out = bench(&["--pointwise-kernel", "avx1024"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no 1 x 1 convolution kernel is named \"avx1024\""),
        "{err}"
    );
}
