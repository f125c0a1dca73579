//! The data templates and expressions see, built from the instance.
//!
//! `input`, `vars`, `steps.<id>.{status,output}` (the instance's outputs with
//! the current foreach iteration's layered over them), `clocks.<name>.{due,
//! anchor,title,met,breached}`, `instance`, `workflow`, `now`, and the
//! thread's locals (the foreach item, `error` in a handler, `clock`).

use minijinja::Value as MValue;
use serde_json::{Map, Value, json};

use super::Cx;
use super::model::rfc3339;
use crate::workflow::plan::ValueTpl;
use crate::workflow::template::{Expr, Tpl};

/// Builds the context for a thread (`None`: the instance level).
pub fn build(cx: &Cx, thread: Option<u32>) -> MValue {
    if let Some((t, seq, v)) = &*cx.context.borrow()
        && *t == thread
        && *seq == cx.st.seq
    {
        return v.clone();
    }
    let v = assemble(cx, thread);
    *cx.context.borrow_mut() = Some((thread, cx.st.seq, v.clone()));
    v
}

fn assemble(cx: &Cx, thread: Option<u32>) -> MValue {
    let st = &*cx.st;
    let mut steps = Map::new();
    let mut layers = vec![0u32];
    if let Some(t) = thread.and_then(|t| st.threads.get(&t)) {
        let mut l = t.layer;
        let mut chain = Vec::new();
        while l != 0 {
            chain.push(l);
            l = st.layer_parent.get(&l).copied().unwrap_or(0);
        }
        layers.extend(chain.into_iter().rev());
    }
    for l in layers {
        if let Some(outs) = st.outputs.get(&l) {
            for (k, r) in outs {
                steps.insert(k.clone(), json!({"status": r.status, "output": r.output}));
            }
        }
    }
    let mut clocks = Map::new();
    for c in &cx.plan.clocks {
        if let Some(s) = st.clocks.get(&c.name) {
            clocks.insert(
                c.name.clone(),
                json!({
                    "title": c.title,
                    "anchor": rfc3339(s.anchor),
                    "due": rfc3339(s.due),
                    "met": s.met_at.is_some(),
                    "breached": s.breached,
                }),
            );
        }
    }
    let mut root = Map::new();
    root.insert("input".into(), st.input.clone());
    root.insert("vars".into(), Value::Object(st.vars.clone()));
    root.insert("steps".into(), Value::Object(steps));
    root.insert("clocks".into(), Value::Object(clocks));
    root.insert(
        "instance".into(),
        json!({"id": st.id, "started_at": rfc3339(st.started_at), "started_by": st.started_by}),
    );
    root.insert(
        "workflow".into(),
        json!({"id": cx.plan.id, "title": cx.plan.title}),
    );
    root.insert("now".into(), Value::String(rfc3339(cx.now)));
    if let Some(t) = thread.and_then(|t| st.threads.get(&t)) {
        for (k, v) in &t.locals {
            root.insert(k.clone(), v.clone());
        }
    }
    MValue::from(minijinja::value::Serde(Value::Object(root)))
}

pub fn render(cx: &Cx, thread: Option<u32>, tpl: &Tpl) -> Result<String, String> {
    let ctx = build(cx, thread);
    cx.plan.templates.render(tpl, &ctx).map_err(|e| e.message)
}

pub fn eval(cx: &Cx, thread: Option<u32>, expr: &Expr) -> Result<Value, String> {
    let ctx = build(cx, thread);
    let v = cx.plan.templates.eval(expr, &ctx).map_err(|e| e.message)?;
    to_json(&v)
}

/// Whether a value counts as true in a condition (Jinja truthiness).
pub fn truthy(cx: &Cx, thread: Option<u32>, expr: &Expr) -> Result<bool, String> {
    let ctx = build(cx, thread);
    let v = cx.plan.templates.eval(expr, &ctx).map_err(|e| e.message)?;
    Ok(v.is_true())
}

/// Renders a value template into JSON.
pub fn value(cx: &Cx, thread: Option<u32>, v: &ValueTpl) -> Result<Value, String> {
    let ctx = build(cx, thread);
    value_in(cx, &ctx, v)
}

fn value_in(cx: &Cx, ctx: &MValue, v: &ValueTpl) -> Result<Value, String> {
    Ok(match v {
        ValueTpl::Literal(l) => l.clone(),
        ValueTpl::Text(t) => {
            Value::String(cx.plan.templates.render(t, ctx).map_err(|e| e.message)?)
        }
        ValueTpl::Value(e) => to_json(&cx.plan.templates.eval(&e.0, ctx).map_err(|e| e.message)?)?,
        ValueTpl::List(items) => Value::Array(
            items
                .iter()
                .map(|i| value_in(cx, ctx, i))
                .collect::<Result<_, _>>()?,
        ),
        ValueTpl::Map(entries) => {
            let mut m = Map::new();
            for (k, i) in entries {
                m.insert(k.clone(), value_in(cx, ctx, i)?);
            }
            Value::Object(m)
        }
    })
}

fn to_json(v: &MValue) -> Result<Value, String> {
    if v.is_undefined() {
        return Ok(Value::Null);
    }
    serde_json::to_value(v).map_err(|e| format!("the value cannot be stored: {e}"))
}
