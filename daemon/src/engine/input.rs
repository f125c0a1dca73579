//! Checking a start's input against the plan's `input` section: unknown
//! fields, missing required fields, types and allowed values; defaults are
//! filled in. Every problem is reported, not just the first.

use serde_json::{Map, Value};

use crate::workflow::lower::check_type;
use crate::workflow::plan::Plan;

/// Returns the input with defaults filled in, or every problem found.
pub fn check(plan: &Plan, input: &Value) -> Result<Value, Vec<String>> {
    let empty = Map::new();
    let given = match input {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => return Err(vec!["the input must be a JSON object of fields".to_owned()]),
    };
    let mut problems = Vec::new();
    for key in given.keys() {
        if !plan.input.iter().any(|f| f.name == *key) {
            let known: Vec<&str> = plan.input.iter().map(|f| f.name.as_str()).collect();
            problems.push(format!(
                "`{key}` is not an input field of `{}` (its fields: {})",
                plan.id,
                known.join(", ")
            ));
        }
    }
    let mut out = Map::new();
    for f in &plan.input {
        match given.get(&f.name) {
            Some(v) if !v.is_null() => {
                if let Err(why) = check_type(f.ty, v) {
                    problems.push(format!("`{}`: {why}", f.name));
                } else if let Some(allowed) = &f.allowed
                    && !allowed.contains(v)
                {
                    let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
                    problems.push(format!(
                        "`{}`: {v} is not one of {}",
                        f.name,
                        list.join(", ")
                    ));
                } else {
                    out.insert(f.name.clone(), v.clone());
                }
            }
            _ => match &f.default {
                Some(d) => {
                    out.insert(f.name.clone(), d.clone());
                }
                None if f.required => problems.push(format!("`{}` is required", f.name)),
                None => {
                    out.insert(f.name.clone(), Value::Null);
                }
            },
        }
    }
    if problems.is_empty() {
        Ok(Value::Object(out))
    } else {
        Err(problems)
    }
}
