//! A Mermaid flowchart of a plan (`vakt graph FILE`).
//!
//! One box per step, shaped by kind (decisions as rhombi, waits and
//! approvals as stadiums), edges labelled with branch values, options and
//! handlers; clock handlers drawn as separate subgraphs.

use std::fmt::Write as _;

use super::plan::{NodeId, NodeKind, Plan};

/// Renders the plan as a Mermaid `flowchart TD`.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "flowchart TD");
    let _ = writeln!(out, "    start([\"start: {}\"])", escape(&plan.title));
    let _ = writeln!(out, "    done([\"end\"])");
    for (i, node) in plan.nodes.iter().enumerate() {
        let label = match &node.name {
            Some(n) => format!("{}<br/>{}", node.step, escape(n)),
            None => node.step.clone(),
        };
        let detail = match &node.kind {
            NodeKind::Call { role, action, .. } => format!("call {role}.{action}"),
            NodeKind::Wait(w) => format!("wait {}", match w {
                super::plan::Wait::For(d) => d.to_string(),
                super::plan::Wait::Until(e) => format!("until {}", e.source()),
                super::plan::Wait::Signal(s) => format!("signal {s}"),
            }),
            NodeKind::Foreach { items, concurrency, .. } => format!("foreach {} ×{concurrency}", items.source()),
            NodeKind::Workflow { id, .. } => format!("workflow {id}"),
            other => other.name().to_owned(),
        };
        let text = format!("\"{label}<br/><i>{}</i>\"", escape(&detail));
        let shape = match &node.kind {
            NodeKind::If { .. } | NodeKind::Switch { .. } => format!("{{{text}}}"),
            NodeKind::Approval(_) | NodeKind::Wait(_) => format!("([{text}])"),
            NodeKind::Fail { .. } | NodeKind::Succeed { .. } => format!("[/{text}/]"),
            NodeKind::Parallel { .. } | NodeKind::Foreach { .. } => format!("[[{text}]]"),
            _ => format!("[{text}]"),
        };
        let _ = writeln!(out, "    n{i}{shape}");
    }
    if let Some(e) = plan.entry {
        let _ = writeln!(out, "    start --> n{}", e.0);
    } else {
        let _ = writeln!(out, "    start --> done");
    }
    for (i, node) in plan.nodes.iter().enumerate() {
        let from = format!("n{i}");
        let mut edge = |to: Option<NodeId>, label: Option<String>, dotted: bool| {
            let target = match to {
                Some(t) => format!("n{}", t.0),
                None if node.thread == plan.entry.unwrap_or(NodeId(u32::MAX)) => "done".to_owned(),
                None => return,
            };
            let arrow = if dotted { "-.->" } else { "-->" };
            match label {
                Some(l) => {
                    let _ = writeln!(out, "    {from} {arrow}|{}| {target}", escape(&l));
                }
                None => {
                    let _ = writeln!(out, "    {from} {arrow} {target}");
                }
            }
        };
        match &node.kind {
            NodeKind::If { then, otherwise, .. } => {
                edge(*then, Some("yes".into()), false);
                edge(*otherwise, Some("no".into()), false);
            }
            NodeKind::Switch { cases, default, .. } => {
                for (v, t) in cases {
                    edge(*t, Some(v.clone()), false);
                }
                edge(*default, Some("default".into()), false);
            }
            NodeKind::Parallel { branches } => {
                for (name, t) in branches {
                    edge(*t, Some(name.clone()), false);
                }
                edge(node.next, Some("all done".into()), false);
            }
            NodeKind::Foreach { body, var, .. } => {
                edge(*body, Some(format!("each {var}")), false);
                edge(node.next, Some("all done".into()), false);
            }
            NodeKind::Approval(a) => {
                let mut default_used = false;
                for o in &a.options {
                    match o.goto {
                        Some(j) => edge(j.to, Some(o.id.clone()), false),
                        None => default_used = true,
                    }
                }
                if default_used {
                    let plain: Vec<&str> = a.options.iter().filter(|o| o.goto.is_none()).map(|o| o.id.as_str()).collect();
                    edge(node.next, Some(plain.join(" / ")), false);
                }
            }
            NodeKind::Fail { .. } | NodeKind::Succeed { .. } => {}
            _ => edge(node.next, None, false),
        }
        if let Some(j) = node.on_error {
            edge(j.to, Some("on error".into()), true);
        }
        if let Some(j) = node.on_timeout {
            edge(j.to, Some("on timeout".into()), true);
        }
    }
    for c in &plan.clocks {
        let _ = writeln!(out, "    clock_{}{{{{\"⏱ {} ({})\"}}}}", c.name, escape(&c.title), c.duration);
        if let Some(w) = c.on_warning {
            let _ = writeln!(out, "    clock_{} -.->|warning| n{}", c.name, w.0);
        }
        if let Some(b) = c.on_breach {
            let _ = writeln!(out, "    clock_{} -.->|breach| n{}", c.name, b.0);
        }
        if let Some(s) = c.stopped_by {
            let _ = writeln!(out, "    n{} -.->|meets| clock_{}", s.0, c.name);
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('"', "#quot;").replace('|', "#124;").replace('\n', " ")
}
