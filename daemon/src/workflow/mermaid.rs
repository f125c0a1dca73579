//! A Mermaid flowchart of a plan (`vakt graph FILE`).
//!
//! One box per step, shaped by kind (decisions as rhombi, waits and
//! approvals as stadiums), edges labelled with branch values, options and
//! handlers. A `succeed` step leads to the `end` terminal and a `fail` step
//! to a separate `failed` terminal; each clock is a hexagon with dotted
//! edges to its warning and breach handlers and from the step that meets it.
//!
//! Every text an author wrote (titles, names, case values, expressions) is
//! quoted and escaped with Mermaid's entity codes, so no character of theirs
//! can break the diagram's syntax.

use std::fmt::Write as _;

use super::plan::{NodeId, NodeKind, Plan, Wait};

/// Renders the plan as a Mermaid `flowchart TD`.
pub fn render(plan: &Plan) -> String {
    let mut nodes = String::new();
    let mut edges = String::new();
    let mut failed_used = false;
    for (i, node) in plan.nodes.iter().enumerate() {
        let label = match &node.name {
            Some(n) => format!("{}<br/>{}", escape(&node.step), escape(n)),
            None => escape(&node.step),
        };
        let detail = match &node.kind {
            NodeKind::Call { role, action, .. } => format!("call {role}.{action}"),
            NodeKind::Wait(w) => match w {
                Wait::For(d) => format!("wait {d}"),
                Wait::Until(e) => format!("wait until {}", e.source()),
                Wait::Signal(s) => format!("wait for signal {s}"),
            },
            NodeKind::Foreach {
                items, concurrency, ..
            } => format!("foreach {} ×{concurrency}", items.source()),
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
        let _ = writeln!(nodes, "    n{i}{shape}");

        let from = format!("n{i}");
        let main_thread = plan.entry.is_some_and(|e| node.thread == e);
        let mut edge = |to: Option<NodeId>, label: Option<&str>, dotted: bool| {
            let target = match to {
                Some(t) => format!("n{}", t.0),
                // The end of the main flow ends the instance; the end of a
                // branch, a foreach body or a handler only ends that thread.
                None if main_thread => "done".to_owned(),
                None => return,
            };
            let arrow = if dotted { "-.->" } else { "-->" };
            let _ = match label {
                Some(l) => writeln!(edges, "    {from} {arrow}|\"{}\"| {target}", escape(l)),
                None => writeln!(edges, "    {from} {arrow} {target}"),
            };
        };
        match &node.kind {
            NodeKind::If {
                then, otherwise, ..
            } => {
                edge(*then, Some("yes"), false);
                edge(*otherwise, Some("no"), false);
            }
            NodeKind::Switch { cases, default, .. } => {
                for (v, t) in cases {
                    edge(*t, Some(v), false);
                }
                edge(*default, Some("default"), false);
            }
            NodeKind::Parallel { branches } => {
                for (name, t) in branches {
                    edge(*t, Some(name), false);
                }
                edge(node.next, Some("all done"), false);
            }
            NodeKind::Foreach { body, var, .. } => {
                edge(*body, Some(&format!("each {var}")), false);
                edge(node.next, Some("all done"), false);
            }
            NodeKind::Approval(a) => {
                for o in a.options.iter().filter(|o| o.goto.is_some()) {
                    edge(o.goto.and_then(|j| j.to), Some(&o.id), false);
                }
                let plain: Vec<&str> = a
                    .options
                    .iter()
                    .filter(|o| o.goto.is_none())
                    .map(|o| o.id.as_str())
                    .collect();
                if !plain.is_empty() {
                    edge(node.next, Some(&plain.join(" / ")), false);
                }
            }
            NodeKind::Succeed { .. } | NodeKind::Fail { .. } => {}
            _ => edge(node.next, None, false),
        }
        if let Some(j) = node.on_error {
            edge(j.to, Some("on error"), true);
        }
        if let Some(j) = node.on_timeout {
            edge(j.to, Some("on timeout"), true);
        }
        // `succeed` and `fail` end the whole instance, from any thread.
        match &node.kind {
            NodeKind::Succeed { .. } => {
                let _ = writeln!(edges, "    {from} --> done");
            }
            NodeKind::Fail { .. } => {
                failed_used = true;
                let _ = writeln!(edges, "    {from} --> failed");
            }
            _ => {}
        }
    }

    let mut out = String::new();
    let _ = writeln!(out, "flowchart TD");
    let _ = writeln!(out, "    start([\"start: {}\"])", escape(&plan.title));
    let _ = writeln!(out, "    done([\"end\"])");
    if failed_used {
        let _ = writeln!(out, "    failed([\"failed\"])");
    }
    out.push_str(&nodes);
    match plan.entry {
        Some(e) => {
            let _ = writeln!(out, "    start --> n{}", e.0);
        }
        None => {
            let _ = writeln!(out, "    start --> done");
        }
    }
    out.push_str(&edges);
    for c in &plan.clocks {
        let _ = writeln!(
            out,
            "    clock_{}{{{{\"⏱ {} ({})\"}}}}",
            c.name,
            escape(&c.title),
            c.duration
        );
        if let Some(w) = c.on_warning {
            let _ = writeln!(out, "    clock_{} -.->|\"warning\"| n{}", c.name, w.0);
        }
        if let Some(b) = c.on_breach {
            let _ = writeln!(out, "    clock_{} -.->|\"breach\"| n{}", c.name, b.0);
        }
        if let Some(s) = c.stopped_by {
            let _ = writeln!(out, "    n{} -.->|\"meets\"| clock_{}", s.0, c.name);
        }
    }
    out
}

/// Text for inside a quoted Mermaid label: `#` first (it starts every
/// entity code), then what would end the quote, the label or the line, or
/// be read as HTML or Markdown.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '|' => out.push_str("#124;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '`' => out.push_str("#96;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(yaml: &str) -> String {
        let plan = crate::workflow::lower::lower(yaml).expect("valid");
        render(&plan)
    }

    #[test]
    fn succeed_and_fail_lead_to_their_terminals() {
        let g = graph(
            "id: w\ninput:\n  ok: {type: boolean}\nsteps:\n  - id: check\n    if: input.ok\n    then:\n      - id: good\n        succeed: fine\n    else:\n      - id: bad\n        fail: not fine\n",
        );
        assert!(g.contains("    n1 --> done\n"), "{g}");
        assert!(g.contains("    n2 --> failed\n"), "{g}");
        assert!(g.contains("    failed([\"failed\"])\n"), "{g}");
    }

    #[test]
    fn author_text_cannot_break_the_syntax() {
        let g = graph(
            "id: w\ntitle: 'A \"quoted\" <b>title</b> | #1'\ninput:\n  level: {type: string}\nsteps:\n  - id: pick\n    switch: input.level\n    cases:\n      \"high (P1) [x] {y}\":\n        - id: a\n          wait: 1m\n    default:\n      - id: b\n        wait: 1m\n",
        );
        assert!(
            g.contains(
                "start([\"start: A #quot;quoted#quot; #lt;b#gt;title#lt;/b#gt; #124; #35;1\"])"
            ),
            "{g}"
        );
        assert!(g.contains("-->|\"high (P1) [x] {y}\"| n2"), "{g}");
        assert!(
            !g.contains("failed"),
            "no `failed` terminal without a fail step: {g}"
        );
    }
}
