//! `ticketing.create`: an idempotent issue create.
//!
//! The call's idempotency key is kept with the issue, and looked for
//! before creating, so a repeated attempt returns the issue the first one
//! opened:
//! - in the issue custom field named by the setting `idempotency_field`
//!   (default `vakt-key`), found by name in `/custom_fields.json`, and
//!   searched with the filter `cf_<id>` = key. Only an administrator may
//!   list custom fields; for other API users the fields are read from an
//!   existing issue of the project;
//! - when that field does not exist, is not known to be usable as a filter
//!   (`is_filter`), or cannot be found, additionally as a line
//!   `vakt-key: <key>` at the end of the description, searched with the
//!   filter `description` contains the key.
//!
//! Every hit is checked exactly on the client side (Redmine ignores a filter
//! on an unknown field instead of refusing it), and the oldest match wins.

use serde_json::{Map, Value, json};
use vakt_plugin_sdk::ticketing::{NewTicket, Ticket};
use vakt_plugin_sdk::{CallContext, PluginError, settings};

use crate::api::Api;
use crate::model::{self, Issue, by_name, names};

/// The default of the setting `idempotency_field`.
pub const DEFAULT_FIELD: &str = "vakt-key";

/// A custom field the connector may set.
struct Field {
    id: u64,
    name: String,
    /// Known to work as a filter (from `/custom_fields.json`); `None` when
    /// only its name is known.
    filterable: Option<bool>,
}

/// The issue custom fields, by name.
struct Catalogue {
    fields: Vec<Field>,
    /// The full list (an administrator's view), so a missing name is an
    /// error in the workflow rather than a gap in what we could see.
    complete: bool,
}

impl Catalogue {
    fn load(api: &Api, project: &str) -> Result<Catalogue, PluginError> {
        Ok(match api.custom_fields()? {
            Some(defs) => Catalogue {
                fields: defs
                    .into_iter()
                    .map(|d| Field {
                        id: d.id,
                        name: d.name,
                        filterable: Some(d.is_filter),
                    })
                    .collect(),
                complete: true,
            },
            None => Catalogue {
                fields: api
                    .project_custom_fields(project)?
                    .into_iter()
                    .map(|c| Field {
                        id: c.id,
                        name: c.name,
                        filterable: None,
                    })
                    .collect(),
                complete: false,
            },
        })
    }

    fn find(&self, name: &str) -> Option<&Field> {
        let name = name.trim();
        self.fields
            .iter()
            .find(|f| f.name.trim().eq_ignore_ascii_case(name))
    }

    fn list(&self) -> String {
        let all: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        if all.is_empty() {
            "none".to_owned()
        } else {
            all.join(", ")
        }
    }
}

/// Where the idempotency key is kept and looked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keeping {
    /// In the custom field, searched by it.
    Field(u64),
    /// In the custom field (if any) and the description's marker line,
    /// searched by the marker.
    Marker(Option<u64>),
}

pub fn create(ctx: &CallContext, t: NewTicket) -> Result<Ticket, PluginError> {
    let api = Api::new(ctx)?;
    let project = t
        .queue
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_owned)
        .or_else(|| settings::get("project"))
        .ok_or_else(|| {
            PluginError::permanent(
                "no Redmine project for the issue: give the ticket a `queue` (a project \
                 identifier) or set the setting `project`",
            )
        })?;
    let catalogue = Catalogue::load(&api, &project)?;
    let key = ctx.idempotency_key.trim();
    let field_name = settings::get("idempotency_field").unwrap_or_else(|| DEFAULT_FIELD.into());
    let keeping = match catalogue.find(&field_name) {
        Some(f) if f.filterable == Some(true) => Keeping::Field(f.id),
        Some(f) => Keeping::Marker(Some(f.id)),
        None => Keeping::Marker(None),
    };
    if !key.is_empty()
        && let Some(found) = existing(&api, keeping, key)?
    {
        vakt_plugin_sdk::info!(
            "issue #{} already holds the idempotency key: not creating another",
            found.id
        );
        return Ok(model::to_ticket(&found, &api.base));
    }

    let mut issue = Map::new();
    issue.insert("project_id".into(), json!(project));
    issue.insert("subject".into(), json!(t.subject));
    let mut footer = Vec::new();
    let mut custom = Vec::new();
    for (name, value) in &t.fields {
        match catalogue.find(name) {
            Some(f) => custom.push(json!({"id": f.id, "value": value})),
            None if catalogue.complete => {
                return Err(PluginError::permanent(format_args!(
                    "Redmine has no issue custom field `{name}` (it has: {})",
                    catalogue.list()
                )));
            }
            None => {
                vakt_plugin_sdk::warn!(
                    "custom field `{name}` is unknown to this API user: written into the description"
                );
                footer.push(format!("{name}: {value}"));
            }
        }
    }
    if let Some(who) = t.requester.as_deref().filter(|r| !r.trim().is_empty()) {
        let field = settings::get("requester_field").and_then(|n| catalogue.find(&n).map(|f| f.id));
        match field {
            Some(id) => custom.push(json!({"id": id, "value": who})),
            None => footer.push(format!("Requester: {who}")),
        }
    }
    let mut assignee = None;
    if let Some(who) = t.assignee.as_deref().filter(|a| !a.trim().is_empty()) {
        match api.user_id(who)? {
            Some(id) => assignee = Some((id, who.to_owned())),
            None => footer.push(format!("Assignee: {who} (no such Redmine user)")),
        }
    }
    if let Some(p) = t.priority.as_deref().filter(|p| !p.trim().is_empty()) {
        issue.insert("priority_id".into(), json!(priority_id(&api, p)?));
    }
    if let Some(name) = settings::get("tracker") {
        let trackers = api.trackers()?;
        let tracker = by_name(&trackers, &name).ok_or_else(|| {
            PluginError::permanent(format_args!(
                "the setting `tracker`: Redmine has no tracker `{name}` (it has: {})",
                names(&trackers)
            ))
        })?;
        issue.insert("tracker_id".into(), json!(tracker.id));
    }
    match keeping {
        Keeping::Field(id) | Keeping::Marker(Some(id)) if !key.is_empty() => {
            custom.push(json!({"id": id, "value": key}));
        }
        _ => {}
    }
    if matches!(keeping, Keeping::Marker(_)) && !key.is_empty() {
        vakt_plugin_sdk::debug!(
            "no filterable custom field `{field_name}`: keeping the idempotency key in the description"
        );
    }
    if !custom.is_empty() {
        issue.insert("custom_fields".into(), Value::Array(custom));
    }

    let post = |issue: &Map<String, Value>, footer: &[String]| {
        let mut footer = footer.to_vec();
        if matches!(keeping, Keeping::Marker(_)) && !key.is_empty() {
            footer.push(model::marker_line(key));
        }
        let mut issue = issue.clone();
        issue.insert(
            "description".into(),
            json!(model::description(&t.body, &footer)),
        );
        api.create_issue(&json!({ "issue": issue }))
    };
    let created = match assignee {
        None => post(&issue, &footer)?,
        Some((id, who)) => {
            let mut with = issue.clone();
            with.insert("assigned_to_id".into(), json!(id));
            match post(&with, &footer) {
                // Not assignable in this project (not a member, or the
                // role may not be assigned to): open it unassigned.
                Err(e) if !e.retryable && e.message.contains("422") => {
                    vakt_plugin_sdk::warn!("could not assign the issue to {who}: {}", e.message);
                    footer.push(format!(
                        "Assignee: {who} (could not be assigned in Redmine)"
                    ));
                    post(&issue, &footer)?
                }
                other => other?,
            }
        }
    };
    vakt_plugin_sdk::info!("opened issue #{} in project {project}", created.id);
    Ok(model::to_ticket(&created, &api.base))
}

/// The oldest issue that holds `key`, if any.
fn existing(api: &Api, keeping: Keeping, key: &str) -> Result<Option<Issue>, PluginError> {
    let hits = match keeping {
        Keeping::Field(id) => api
            .search(&format!("cf_{id}"), "=", key)?
            .into_iter()
            .filter(|i| model::has_value(i, id, key))
            .collect::<Vec<_>>(),
        Keeping::Marker(id) => api
            .search("description", "~", key)?
            .into_iter()
            .filter(|i| {
                model::has_marker(i.description.as_deref(), key)
                    || id.is_some_and(|id| model::has_value(i, id, key))
            })
            .collect(),
    };
    Ok(hits.into_iter().min_by_key(|i| i.id))
}

/// The Redmine priority id for vakt's `wanted` (`low`, `normal`, `high`,
/// `urgent`, or any Redmine priority name), through the setting
/// `priorities` when it maps the word.
fn priority_id(api: &Api, wanted: &str) -> Result<u64, PluginError> {
    let map = model::parse_priorities(&settings::get("priorities").unwrap_or_default())?;
    let target = model::priority_target(&map, wanted);
    if let Ok(id) = target.parse::<u64>() {
        return Ok(id);
    }
    let all = api.priorities()?;
    by_name(&all, &target).map(|p| p.id).ok_or_else(|| {
        PluginError::permanent(format_args!(
            "Redmine has no issue priority `{target}` (it has: {}); map vakt's priority \
             words with the setting `priorities`, such as `urgent=Immediate`",
            names(&all)
        ))
    })
}
