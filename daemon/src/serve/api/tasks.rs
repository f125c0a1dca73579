//! Tasks: the caller's open tasks, and decisions.
//!
//! A task's id is `<instance>:<n>`. An approver sees and decides only the
//! tasks assigned to them, directly or through a workflow role they hold in
//! the config (`[roles]`); operators and admins see every task but, like
//! anyone, decide only tasks assigned to them. Every decision records the
//! token's principal.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Caller, json_body, time};
use crate::engine::state::Task;
use crate::engine::{Event, Instance};
use crate::serve::Shared;
use crate::store::Tasks;
use crate::workflow::Plan;
use crate::workflow::plan::NodeKind;

/// A task as the API shows it.
pub fn task_view(plan: Option<&Plan>, i: &Instance, n: u32, t: &Task) -> Value {
    let options: Vec<Value> = plan
        .and_then(|p| match &p.node(t.node).kind {
            NodeKind::Approval(a) => Some(
                a.options
                    .iter()
                    .map(|o| json!({"id": o.id, "label": o.label, "require_comment": o.require_comment}))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default();
    let votes: Vec<Value> = t
        .votes
        .iter()
        .map(|v| json!({"by": v.by, "decision": v.option, "comment": v.comment, "at": time(Some(v.at))}))
        .collect();
    json!({
        "id": format!("{}:{n}", i.id),
        "instance": i.id,
        "workflow": i.workflow,
        "title": t.title,
        "description": t.description,
        "assignees": t.assignees,
        "opened_at": time(Some(t.opened_at)),
        "due": time(t.due),
        "status": if t.open { "open" } else { "closed" },
        "outcome": t.outcome,
        "options": options,
        "votes": votes,
    })
}

/// Whether `address` (holding workflow `roles`) is among a task's assignees.
fn assigned(t: &Task, address: &str, roles: &[String]) -> bool {
    crate::engine::is_assignee(&t.assignees, address, roles)
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/tasks?status=open|all`
pub async fn list(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let all = match q.status.as_deref() {
        None | Some("open") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "status `{other}` is not `open` or `all`"
            )));
        }
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let store = s.runtime.store();
    let address = caller.0.address.clone();
    let roles = s.config.roles_of(&address);
    // Which instances (and which of their tasks: `None`, all) to look at:
    // from the open-task index, or (for `all`) the instance index.
    let mut ids: BTreeMap<String, Option<BTreeSet<u32>>> = BTreeMap::new();
    let mut wanted = |id: String, n: Option<u32>| {
        let tasks = ids.entry(id).or_insert_with(|| n.map(|_| BTreeSet::new()));
        if let (Some(set), Some(n)) = (tasks, n) {
            set.insert(n);
        }
    };
    if all {
        for (_, _, id) in store.list_instances(None, None, limit)? {
            wanted(id, None);
        }
    } else if caller.sees_all() {
        for (_, id, n) in store.all_open_tasks(limit * 4)? {
            wanted(id, Some(n));
        }
    } else {
        let mut names = vec![address.clone(), address.to_lowercase()];
        names.extend(roles.iter().map(|r| format!("role:{r}")));
        names.sort();
        names.dedup();
        for name in names {
            for (id, n) in store.open_tasks_of(&name)? {
                wanted(id, Some(n));
            }
        }
    }
    let mut out = Vec::new();
    for (id, only) in ids {
        let Some(inst) = super::readable(&s, &id) else {
            continue;
        };
        let plan = s.runtime.plan_for(&inst.hash).ok();
        for (tn, t) in &inst.tasks {
            if only.as_ref().is_some_and(|o| !o.contains(tn)) || (!all && !t.open) {
                continue;
            }
            if !caller.sees_all() && !assigned(t, &address, &roles) {
                continue;
            }
            out.push(task_view(plan.as_deref(), &inst, *tn, t));
        }
        if out.len() >= limit {
            break;
        }
    }
    Ok(Json(json!({ "tasks": out })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: String,
    #[serde(default)]
    comment: Option<String>,
}

/// `POST /api/v1/tasks/{id}/decision`: `{"decision": OPTION, "comment": …}`.
pub async fn decide(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body: DecisionBody =
        serde_json::from_value(json_body(body, Value::Null)?).map_err(|e| {
            ApiError::bad_request(format!(
                "a decision is {{\"decision\": OPTION, \"comment\": TEXT}}: {e}"
            ))
        })?;
    let (instance, n) = id
        .rsplit_once(':')
        .and_then(|(i, n)| Some((i.to_owned(), n.parse::<u32>().ok()?)))
        .ok_or_else(|| {
            ApiError::bad_request(format!("`{id}` is not a task id (`<instance>:<n>`)"))
        })?;
    let inst = s
        .runtime
        .instance(&instance)?
        .ok_or_else(|| ApiError::not_found(format!("no task `{id}`")))?;
    let Some(task) = inst.tasks.get(&n) else {
        return Err(ApiError::not_found(format!("no task `{id}`")));
    };
    let address = caller.0.address.clone();
    let roles = s.config.roles_of(&address);
    if !assigned(task, &address, &roles) {
        return Err(ApiError::forbidden(format!(
            "task `{id}` is not assigned to {address}"
        )));
    }
    s.runtime
        .event(
            &instance,
            Event::Decide {
                task: n,
                by: address.clone(),
                roles,
                option: body.decision.clone(),
                comment: body.comment.filter(|c| !c.trim().is_empty()),
            },
        )
        .await?;
    tracing::info!(instance = %instance, task = n, "decision recorded through the API");
    Ok(Json(
        json!({"id": id, "instance": instance, "decision": body.decision}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_by_address_or_role() {
        let t = Task {
            thread: 0,
            node: crate::workflow::plan::NodeId(0),
            title: String::new(),
            description: String::new(),
            assignees: vec!["Anna@Kommun.se".into(), "role:dpo".into()],
            due: None,
            opened_at: 0,
            votes: vec![],
            reminders_sent: 0,
            periodic_reminders: 0,
            last_notice_at: None,
            open: true,
            outcome: None,
        };
        assert!(assigned(&t, "anna@kommun.se", &[]));
        assert!(assigned(&t, "x@kommun.se", &["dpo".into()]));
        assert!(!assigned(&t, "x@kommun.se", &["ciso".into()]));
    }
}
