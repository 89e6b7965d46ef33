//! Where one run of a planned graph spends its time, node by node, for
//! `verdict-worker bench --profile`: the per-kind totals say which kind of
//! tract op to look at, the per-node list says which node of the exported
//! graph it is (the names are the ONNX node names).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{SimpleState, eval};

use super::JudgeError;
use super::onnx_graph::Plan;

/// The clock readings of one run of a plan.
#[derive(Debug)]
pub struct Profile {
    /// Per kind of tract op: its name, the time in all its nodes, how many
    /// nodes; the slowest kind first.
    pub by_op: Vec<(String, Duration, usize)>,
    /// Per node: its name, its op's name and its time; the slowest first.
    pub by_node: Vec<(String, String, Duration)>,
}

impl Profile {
    /// Runs `plan` once on `inputs` with a clock on every node.
    pub fn of(plan: &Plan, inputs: TVec<TValue>) -> Result<Profile, JudgeError> {
        let mut state =
            SimpleState::new(plan).map_err(|e| JudgeError::Model(format!("profile: {e:#}")))?;
        let mut by_node: Vec<(String, String, Duration)> = Vec::new();
        state
            .run_plan_with_eval(inputs, |session, op_state, node, inputs| {
                let started = Instant::now();
                let outputs = eval(session, op_state, node, inputs);
                by_node.push((
                    node.name.clone(),
                    node.op().name().to_string(),
                    started.elapsed(),
                ));
                outputs
            })
            .map_err(|e| JudgeError::Model(format!("profile: {e:#}")))?;
        let mut totals: HashMap<&str, (Duration, usize)> = HashMap::new();
        for (_, op, time) in &by_node {
            let entry = totals.entry(op.as_str()).or_default();
            entry.0 += *time;
            entry.1 += 1;
        }
        let mut by_op: Vec<(String, Duration, usize)> = totals
            .into_iter()
            .map(|(op, (time, n))| (op.to_string(), time, n))
            .collect();
        by_op.sort_by_key(|t| std::cmp::Reverse(t.1));
        by_node.sort_by_key(|t| std::cmp::Reverse(t.2));
        Ok(Profile { by_op, by_node })
    }

    /// The time in all the nodes.
    pub fn total(&self) -> Duration {
        self.by_op.iter().map(|(_, t, _)| *t).sum()
    }

    /// Prints the twelve slowest kinds of op and the `nodes` slowest nodes on
    /// stderr, under `graph`'s name.
    pub fn print(&self, graph: &str, nodes: usize) {
        let total = self.total();
        let share = |t: &Duration| 100.0 * t.as_secs_f64() / total.as_secs_f64();
        let ms = |t: &Duration| t.as_secs_f64() * 1e3;
        eprintln!("{graph}, one run: {:.3} ms in its ops", ms(&total));
        for (op, time, count) in self.by_op.iter().take(12) {
            eprintln!(
                "{:>10.3} ms {:>5.1} % {count:>5} x {op}",
                ms(time),
                share(time)
            );
        }
        eprintln!("{graph}, the slowest nodes:");
        for (node, op, time) in self.by_node.iter().take(nodes) {
            eprintln!("{:>10.3} ms {:>5.1} % {op} {node}", ms(time), share(time));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::math::{add, mul};

    /// `y = (x + a) * b` over 64 values, planned without optimisation so
    /// both arithmetic nodes stay nodes of their own.
    fn plan() -> Plan {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([64])).unwrap();
        let a = model.add_const("a", tensor1(&[1f32; 64])).unwrap();
        let b = model.add_const("b", tensor1(&[2f32; 64])).unwrap();
        let sum = model.wire_node("sum", add(), &[x, a]).unwrap();
        let product = model.wire_node("product", mul(), &[sum[0], b]).unwrap();
        model.select_output_outlets(&product).unwrap();
        model.into_runnable().unwrap()
    }

    #[test]
    fn a_profile_lists_every_node_once_and_its_totals_add_up() {
        let plan = plan();
        let x = tensor1(&[0.5f32; 64]);
        let profile = Profile::of(&plan, tvec![x.into_tvalue()]).unwrap();

        let mut names: Vec<&str> = profile.by_node.iter().map(|n| n.0.as_str()).collect();
        names.sort();
        // The constants are values of the plan, not nodes it runs.
        assert_eq!(names, ["product", "sum", "x"]);
        let counted: usize = profile.by_op.iter().map(|o| o.2).sum();
        assert_eq!(counted, profile.by_node.len());
        let by_node: Duration = profile.by_node.iter().map(|n| n.2).sum();
        assert_eq!(profile.total(), by_node);
        assert!(
            profile.by_node.windows(2).all(|w| w[0].2 >= w[1].2),
            "the slowest node comes first"
        );
        assert!(profile.by_op.windows(2).all(|w| w[0].1 >= w[1].1));
    }
}
