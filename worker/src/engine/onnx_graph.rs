//! Loading an ONNX graph with tract into an optimised plan.
//!
//! tract optimises far better when every input shape is known, so most graphs
//! are planned for the exact shapes the engine will feed it (the image encoder
//! for one size, the text encoder once per length bucket). Every plan holds its
//! own packed copy of the weights, so a graph too large to plan many times (an
//! OFA encoder-decoder) is planned once with a symbolic dimension instead
//! ([`Graph::into_plan`]), which tract binds to the actual length at
//! each run. Before planning, the graph's inputs and output are checked
//! against what the manifest promises, so a pack holding the wrong graph fails
//! at start-up with the file's name. A graph with depthwise convolutions is
//! planned channel-last (`channel_last_convs`), where a depthwise
//! convolution's inner loop runs along the channels: on x86 with the
//! worker's own kernels (`depthwise_x86`). On CPUs with AVX2 and FMA or with
//! AVX-512, the 3 x 3 and 5 x 5 depthwise convolutions and their clips are
//! first rewritten into an op of the worker's own (`depthwise_conv`), and
//! after the move channel-last the decluttered graph's 1 x 1 convolutions and
//! its channel-first stem too (`pointwise_conv`, `patch_conv`); an
//! expansion whose output is large is then fused with the depthwise
//! convolution that reads it (`expand_depthwise`), before tract optimises
//! the graph.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tract_onnx::prelude::*;

use super::LoadError;
use super::pointwise_kernel::Kernel;
use super::{depthwise_conv, expand_depthwise, patch_conv, pointwise_conv};

/// What parsing a graph may map at once beyond its file's bytes (the
/// parser's own tables, the largest tensor's growth).
const PARSE_MARGIN_BYTES: u64 = 16 << 20;

/// Under a memory limit (`--worker-memory`), a graph is parsed only when the
/// limit leaves room for the file read whole and the tensors decoded from it:
/// tract's protobuf decoder keeps both in plain `Vec`s, and a `Vec` that
/// cannot grow aborts the process (`memory allocation of N bytes failed`).
/// This fails the load instead, saying so.
fn check_room_to_parse(path: &Path) -> Result<(), LoadError> {
    let Some(spare) = verdict_decode::memory_budget::spare_address_space() else {
        return Ok(());
    };
    // A file that cannot be read is the parser's to report.
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let needed = meta
        .len()
        .saturating_mul(2)
        .saturating_add(PARSE_MARGIN_BYTES);
    if spare < needed {
        let mb = verdict_decode::memory_budget::megabytes_needed;
        return Err(LoadError::invalid(
            path,
            format!(
                "the memory limit leaves {} MB, and parsing this graph ({} MB) needs about {} MB",
                spare >> 20,
                mb(meta.len()),
                mb(needed)
            ),
        ));
    }
    Ok(())
}

/// The name of the kernel tract runs for a channel-last depthwise
/// convolution on this machine: one of `depthwise_x86`'s on x86 with AVX2,
/// or "portable" where tract has only its portable loop. A binary that
/// failed to link the worker's kernels into tract's registry says so here
/// (the worker logs it at start; `verdict-worker bench` reports it).
pub fn depthwise_kernel() -> &'static str {
    let isa = tract_linalg::isa::native();
    tract_linalg::routines::best_for(
        tract_linalg::routines::Func::DepthwiseC,
        DatumType::F32,
        &isa,
    )
    .map_or("portable", |routine| routine.name())
}

/// A runnable, optimised plan.
pub type Plan = Arc<TypedRunnableModel>;

/// One input of a graph, with the shape it will be planned for.
#[derive(Debug, Clone)]
pub struct PlannedInput<'a> {
    pub name: &'a str,
    pub datum: DatumType,
    pub shape: Vec<usize>,
}

/// One dimension of an input planned by [`Graph::into_plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim<'a> {
    /// Always this many.
    Fixed(usize),
    /// A tract symbol of this name, bound at each run to the length of the
    /// tensor given (the same name in two places means the same length).
    Symbol(&'a str),
}

/// One input of a graph with the (possibly symbolic) shape it is planned for.
#[derive(Debug, Clone)]
pub struct SymbolicInput<'a> {
    pub name: &'a str,
    pub datum: DatumType,
    pub shape: Vec<Dim<'a>>,
}

/// A parsed ONNX graph whose inputs and output have been checked.
#[derive(Debug, Clone)]
pub struct Graph {
    model: InferenceModel,
    path: std::path::PathBuf,
}

impl Graph {
    /// Parses `path` and checks that its inputs are exactly `inputs` (in any
    /// order) and that it has an output named `output`.
    pub fn load(path: &Path, inputs: &[&str], output: &str) -> Result<Graph, LoadError> {
        Graph::load_outputs(path, inputs, &[output])
    }

    /// As [`Graph::load`], for a graph whose plans output each of `outputs`,
    /// in that order (any other output of the graph, and what only it needs,
    /// is left out of the plans).
    pub fn load_outputs(path: &Path, inputs: &[&str], wanted: &[&str]) -> Result<Graph, LoadError> {
        // The graph's own shape annotations name symbolic dimensions ("batch",
        // "sequence") that would clash with the fixed shapes we plan for; the
        // shapes are inferred from the inputs instead.
        let started = Instant::now();
        check_room_to_parse(path)?;
        let model = tract_onnx::onnx()
            .with_ignore_output_shapes(true)
            .with_ignore_value_info(true)
            .model_for_path(path)
            .map_err(|e| {
                LoadError::invalid(path, format!("not an ONNX graph tract can read: {e:#}"))
            })?;
        let mut actual: Vec<String> = model
            .input_outlets()
            .map_err(|e| LoadError::invalid(path, e))?
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect();
        actual.sort();
        let mut expected: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        expected.sort();
        if actual != expected {
            return Err(LoadError::invalid(
                path,
                format!("the graph's inputs are {actual:?}, the manifest expects {expected:?}"),
            ));
        }
        let outputs: Vec<String> = model
            .output_outlets()
            .map_err(|e| LoadError::invalid(path, e))?
            .iter()
            .map(|o| {
                model
                    .outlet_label(*o)
                    .map(str::to_string)
                    .unwrap_or_else(|| model.node(o.node).name.clone())
            })
            .collect();
        for output in wanted {
            if !outputs.iter().any(|name| name == output) {
                return Err(LoadError::invalid(
                    path,
                    format!("the graph has no output {output:?} (its outputs are {outputs:?})"),
                ));
            }
        }
        tracing::debug!(
            graph = %path.display(),
            parsed_s = started.elapsed().as_secs_f64(),
            rss_mb = resident_mb(),
            "graph parsed"
        );
        let model = model
            .with_input_names(inputs)
            .and_then(|m| m.with_outputs_by_name(wanted.iter().copied()))
            .map_err(|e| LoadError::invalid(path, e))?;
        Ok(Graph {
            model,
            path: path.to_path_buf(),
        })
    }

    /// An optimised plan for these input shapes (given in the order of `load`'s
    /// `inputs`). The graph is kept, to plan other shapes later.
    pub fn plan(&self, inputs: &[PlannedInput<'_>]) -> Result<Plan, LoadError> {
        let facts: Vec<(&str, InferenceFact)> = inputs
            .iter()
            .map(|input| {
                (
                    input.name,
                    InferenceFact::dt_shape(input.datum, input.shape.clone()),
                )
            })
            .collect();
        plan_model(self.model.clone(), &self.path, facts)
    }

    /// One optimised plan for inputs whose shapes may name symbols (given in
    /// the order of `load`'s `inputs`), under `assertions` on those symbols
    /// (tract's syntax: `S >= 3`, `S <= 258`) that let it simplify the
    /// arithmetic of shapes. The graph is consumed: the parsed model and its
    /// copy of the weights are freed once the plan holds its own.
    pub fn into_plan(
        self,
        inputs: &[SymbolicInput<'_>],
        assertions: &[String],
    ) -> Result<Plan, LoadError> {
        let Graph { model, path } = self;
        for assertion in assertions {
            model.symbols.add_assertion(assertion).map_err(|e| {
                LoadError::invalid(&path, format!("assertion {assertion:?}: {e:#}"))
            })?;
        }
        let facts: Vec<(&str, InferenceFact)> = inputs
            .iter()
            .map(|input| {
                let shape: TVec<TDim> = input
                    .shape
                    .iter()
                    .map(|dim| match dim {
                        Dim::Fixed(n) => n.to_dim(),
                        Dim::Symbol(name) => model.symbols.sym(name).to_dim(),
                    })
                    .collect();
                (input.name, InferenceFact::dt_shape(input.datum, shape))
            })
            .collect();
        plan_model(model, &path, facts)
    }
}

/// Declares each input's fact, then types, optimises and plans `model`.
fn plan_model(
    mut model: InferenceModel,
    path: &Path,
    facts: Vec<(&str, InferenceFact)>,
) -> Result<Plan, LoadError> {
    for (ix, (name, fact)) in facts.into_iter().enumerate() {
        model = model
            .with_input_fact(ix, fact)
            .map_err(|e| LoadError::invalid(path, format!("input {name:?}: {e:#}")))?;
    }
    let cannot = |e: TractError| LoadError::invalid(path, format!("cannot plan the graph: {e:#}"));
    let started = Instant::now();
    let mut typed = model.into_typed().map_err(cannot)?;
    let typed_in = started.elapsed();
    tracing::debug!(graph = %path.display(), rss_mb = resident_mb(), "graph typed");
    typed.declutter().map_err(cannot)?;
    let channel_last = !CHANNEL_FIRST.load(Ordering::Relaxed) && has_depthwise_conv(&typed);
    let depthwise = match (channel_last, pointwise_choice()) {
        (true, Some(kernel)) => {
            depthwise_conv::fuse_depthwise_convs(&mut typed, kernel).map_err(cannot)?
        }
        _ => 0,
    };
    if channel_last {
        channel_last_convs(&mut typed).map_err(cannot)?;
    }
    let decluttered_in = started.elapsed();
    let (pointwise, patch) = match pointwise_choice() {
        None => (0, 0),
        Some(kernel) => (
            pointwise_conv::fuse_pointwise_convs(&mut typed, kernel).map_err(cannot)?,
            patch_conv::fuse_patch_convs(&mut typed, kernel).map_err(cannot)?,
        ),
    };
    let expanded = match depthwise {
        0 => 0,
        _ => expand_depthwise::fuse_expand_depthwise(&mut typed).map_err(cannot)?,
    };
    typed.optimize().map_err(cannot)?;
    let optimized_in = started.elapsed();
    let plan = typed.into_runnable().map_err(cannot)?;
    tracing::debug!(
        graph = %path.display(),
        channel_last,
        depthwise,
        pointwise,
        patch,
        expanded,
        typed_s = typed_in.as_secs_f64(),
        decluttered_s = (decluttered_in - typed_in).as_secs_f64(),
        optimized_s = (optimized_in - decluttered_in).as_secs_f64(),
        planned_s = (started.elapsed() - optimized_in).as_secs_f64(),
        rss_mb = resident_mb(),
        "graph planned"
    );
    Ok(plan)
}

/// Set by [`plan_channel_first`].
static CHANNEL_FIRST: AtomicBool = AtomicBool::new(false);

/// From now on, plans every graph of this process channel-first, as its
/// ONNX file lays it out (no `channel_last_convs`): for `verdict-worker
/// bench --channel-first`, which measures what the rewrite gains on the CPU
/// at hand. The worker itself never calls it.
pub fn plan_channel_first() {
    CHANNEL_FIRST.store(true, Ordering::Relaxed);
}

/// The kernel of this process's 1 x 1 convolutions (None: tract's matrix
/// product), chosen once: by [`plan_pointwise_kernel`], else
/// `pointwise_conv::best_kernel_here`.
static POINTWISE: OnceLock<Option<Kernel>> = OnceLock::new();

fn pointwise_choice() -> Option<Kernel> {
    *POINTWISE.get_or_init(pointwise_conv::best_kernel_here)
}

/// Plans every 1 x 1 convolution of this process on the kernel `name`d
/// (`tract`: tract's matrix product, no `pointwise_conv` rewrite; `avx2`,
/// `avx512`: the worker's), before any graph is planned: for
/// `verdict-worker bench --pointwise-kernel`, which measures what each gains
/// on the CPU at hand. Refused for a kernel this CPU cannot run, or once a
/// graph has been planned. The worker itself never calls it.
pub fn plan_pointwise_kernel(name: &str) -> Result<(), String> {
    let kernel = match name {
        "tract" => None,
        _ => Some(Kernel::named(name).ok_or_else(|| {
            format!("no 1 x 1 convolution kernel is named {name:?} (tract, avx2, avx512)")
        })?),
    };
    if let Some(k) = kernel.filter(|k| !k.runs_here()) {
        return Err(format!("this CPU cannot run {}", k.name()));
    }
    POINTWISE
        .set(kernel)
        .map_err(|_| "the 1 x 1 convolutions' kernel is chosen already".to_string())
}

/// The name of the kernel that runs this process's 1 x 1 convolutions:
/// the worker's (`pointwise_kernel`) or tract's matrix product.
pub fn pointwise_kernel() -> &'static str {
    pointwise_choice().map_or("tract", Kernel::name)
}

/// Whether `model` has a depthwise convolution (as many groups as input and
/// output channels), which tract runs far faster channel-last on x86.
fn has_depthwise_conv(model: &TypedModel) -> bool {
    model.nodes().iter().any(|node| {
        node.op_as::<tract_onnx::tract_core::ops::cnn::Conv>()
            .is_some_and(|conv| {
                conv.group > 1
                    && conv.group == conv.input_channels()
                    && conv.group == conv.output_channels()
            })
    })
}

/// Rewrites every convolution of `model` to run on channel-last data (tract's
/// own `conv_nhwc` transform: the data is moved channel-last around each
/// convolution, and the moves between two convolutions cancel out when the
/// graph is decluttered again).
///
/// Why: ONNX convolutions are channel-first (NCHW), and tract 0.23 has SIMD
/// depthwise kernels for that layout on ARM and WebAssembly only. On x86 a
/// channel-first depthwise convolution of more than four taps (the default
/// pack's 3x3 and 5x5) runs a scalar loop per channel; channel-last, its
/// inner loop runs along the channels, which the compiler vectorises. The
/// default pack's image encoder took 31.6 ms a run channel-first and 21.3 ms
/// channel-last on one core of an AMD EPYC family 23 model 49 (AVX2; release
/// build, `scripts/bench-model`, docs/benchmarks.md). The multiply-adds are
/// the same, so the outputs match onnxruntime as before
/// (`worker/tests/parity.rs`).
fn channel_last_convs(model: &mut TypedModel) -> TractResult<()> {
    let transform = tract_onnx::tract_core::transform::get_transform("conv_nhwc")?
        .ok_or_else(|| TractError::msg("tract has no conv_nhwc transform"))?;
    transform.transform(model)?;
    model.declutter()
}

/// This process's resident memory now (`VmRSS`), in MB, for the debug logs
/// of loading (what each step of planning costs); None off Linux.
pub fn resident_mb() -> Option<u64> {
    verdict_decode::memory_budget::self_status_kib("VmRSS:").map(|kib| kib / 1024)
}
