//! Phase three: the shape of the whole plan.
//!
//! - every jump stays inside its thread (no `goto` into another parallel
//!   branch, foreach body or clock handler);
//! - every step can be reached from the start or a clock handler;
//! - every loop passes through an approval or a wait, so an instance never
//!   spins without pause.

use super::super::plan::{Clock, Node, NodeId, NodeKind};
use super::Lowerer;

/// The successors of a node, every kind of edge included.
pub fn successors(node: &Node) -> Vec<NodeId> {
    let mut out: Vec<Option<NodeId>> = vec![node.next];
    match &node.kind {
        NodeKind::If {
            then, otherwise, ..
        } => out.extend([*then, *otherwise]),
        NodeKind::Switch { cases, default, .. } => {
            out.extend(cases.iter().map(|(_, t)| *t));
            out.push(*default);
        }
        NodeKind::Parallel { branches } => out.extend(branches.iter().map(|(_, t)| *t)),
        NodeKind::Foreach { body, .. } => out.push(*body),
        NodeKind::Approval(a) => out.extend(a.options.iter().filter_map(|o| o.goto.map(|g| g.to))),
        _ => {}
    }
    out.extend(
        [node.on_error, node.on_timeout]
            .into_iter()
            .flatten()
            .map(|j| j.to),
    );
    let mut v: Vec<NodeId> = out.into_iter().flatten().collect();
    v.sort();
    v.dedup();
    v
}

pub(super) fn check(l: &mut Lowerer, nodes: &[Node], entry: Option<NodeId>, clocks: &[Clock]) {
    let jumps = std::mem::take(&mut l.pending);
    for j in &jumps {
        let from = &nodes[j.from.index()];
        let to = &nodes[j.target.index()];
        if from.thread != to.thread {
            l.error(j.loc, format!("step `{}`: `{}` to `{}` leaves its flow: a jump cannot enter or leave a parallel branch, a foreach body or a clock handler", from.step, j.what, to.step));
        }
    }

    // Reachability.
    let mut seen = vec![false; nodes.len()];
    let mut stack: Vec<NodeId> = entry.into_iter().collect();
    for c in clocks {
        stack.extend(c.on_warning);
        stack.extend(c.on_breach);
    }
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n.index()], true) {
            continue;
        }
        stack.extend(successors(&nodes[n.index()]));
    }
    for (i, node) in nodes.iter().enumerate() {
        if !seen[i] {
            l.error(node.loc, format!("step `{}` can never run: the step before it always ends or jumps elsewhere, and nothing jumps to it; remove it, or `goto` it from somewhere", node.step));
        }
    }

    // Loops that never pause: strongly connected components without a wait.
    for comp in tarjan(nodes) {
        let cyclic = comp.len() > 1 || successors(&nodes[comp[0].index()]).contains(&comp[0]);
        if !cyclic || comp.iter().any(|n| nodes[n.index()].kind.pauses()) {
            continue;
        }
        let mut names: Vec<(crate::workflow::span::Loc, &str)> = comp
            .iter()
            .map(|n| (nodes[n.index()].loc, nodes[n.index()].step.as_str()))
            .collect();
        names.sort();
        let path: Vec<&str> = names.iter().map(|(_, s)| *s).collect();
        let advice =
            "an instance would spin without pause; add a `wait` or an approval to the loop";
        // Point at the jump that closes the loop: that is what the author wrote.
        let closing = jumps
            .iter()
            .filter(|j| comp.contains(&j.from) && comp.contains(&j.target))
            .min_by_key(|j| j.loc);
        match closing {
            Some(j) => {
                let (from, to) = (&nodes[j.from.index()].step, &nodes[j.target.index()].step);
                l.error(j.loc, format!("step `{from}`: `{}: {to}` closes a loop ({}) with no approval or wait in it: {advice}", j.what, path.join(" → ")));
            }
            None => l.error(
                names[0].0,
                format!(
                    "the steps {} form a loop with no approval or wait in it: {advice}",
                    path.join(" → ")
                ),
            ),
        }
    }
}

/// Tarjan's strongly connected components, iterative.
fn tarjan(nodes: &[Node]) -> Vec<Vec<NodeId>> {
    let n = nodes.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut counter = 0;
    let succ: Vec<Vec<NodeId>> = nodes.iter().map(successors).collect();
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some((v, i)) = work.pop() {
            if i == 0 {
                index[v] = counter;
                low[v] = counter;
                counter += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(w) = succ[v].get(i).map(|w| w.index()) {
                work.push((v, i + 1));
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(NodeId(w as u32));
                    if w == v {
                        break;
                    }
                }
                out.push(comp);
            }
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
        }
    }
    out
}
