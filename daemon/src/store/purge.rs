//! Retention: purging a finished instance's payloads.
//!
//! Inputs, outputs, variables, connector arguments and answers, task texts,
//! comments, notes, signal data and error messages are personal data; after
//! the retention period they are emptied, in the snapshot and in every
//! history record. What stays is the audit skeleton: who (starters,
//! deciders, assignees), what (record types, steps, decisions), when, and
//! the hash chain, which still verifies: a purged entry keeps the sha256 of
//! its record as it was (`Entry::purged`).

use serde_json::Value;

/// Object keys whose values are payload, wherever they appear.
const PAYLOAD: &[&str] = &[
    "input",
    "vars",
    "outputs",
    "output",
    "locals",
    "last",
    "signals",
    "args",
    "ok",
    "title",
    "description",
    "comment",
    "note",
    "data",
    "items",
    "reason",
    "message",
    "results",
    "branches",
];

/// Empties every payload value in `v`, keeping each value's JSON type so
/// the result still deserializes. Returns whether anything changed.
pub fn redact(v: &mut Value) -> bool {
    let mut changed = false;
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if PAYLOAD.contains(&k.as_str()) {
                    let empty = empty_like(val);
                    if *val != empty {
                        *val = empty;
                        changed = true;
                    }
                } else {
                    changed |= redact(val);
                }
            }
        }
        Value::Array(items) => {
            for i in items {
                changed |= redact(i);
            }
        }
        _ => {}
    }
    changed
}

fn empty_like(v: &Value) -> Value {
    match v {
        Value::Object(_) => Value::Object(Default::default()),
        Value::Array(_) => Value::Array(Vec::new()),
        Value::String(_) => Value::String(String::new()),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_goes_and_the_skeleton_stays() {
        let mut v = json!({
            "type": "task_voted",
            "task": 3,
            "vote": {"by": "dpo@kommun.se", "option": "approve", "comment": "Elevens namn …", "at": 5},
            "input": {"student": "Anna"},
            "error": {"kind": "connector", "message": "user anna@x not found", "retryable": false},
            "outcome": {"ok": {"id": 7}}
        });
        assert!(redact(&mut v));
        assert_eq!(v["vote"]["by"], "dpo@kommun.se");
        assert_eq!(v["vote"]["option"], "approve");
        assert_eq!(v["vote"]["comment"], "");
        assert_eq!(v["input"], json!({}));
        assert_eq!(v["error"]["kind"], "connector");
        assert_eq!(v["error"]["message"], "");
        assert_eq!(v["outcome"], json!({"ok": {}}));
        assert!(!redact(&mut v), "redaction is idempotent");
    }
}
