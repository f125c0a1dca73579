//! An in-memory SCIM service for the unit tests, with knobs for the ways
//! servers misbehave: a cap on `count`, no `itemsPerPage` or
//! `totalResults`, changes by someone else between a read and a PATCH, and
//! scripted replies.

use std::collections::VecDeque;

use serde_json::{Value, json};
use vakt_plugin_sdk::PluginError;
use vakt_plugin_sdk::http::Method;

use crate::client::{Reply, Request, Transport};
use crate::model::ENTERPRISE;

/// An in-memory SCIM service with knobs for misbehaving.
#[derive(Default)]
pub struct Fake {
    pub users: Vec<Value>,
    pub groups: Vec<Value>,
    pub version: u64,
    /// The server's own limit on `count`.
    pub max_count: Option<usize>,
    pub omit_items_per_page: bool,
    pub omit_total: bool,
    /// Changes made by "someone else" right before the next PATCHes.
    pub interfere: u32,
    /// Replies given before anything else.
    pub script: VecDeque<Result<Reply, PluginError>>,
    pub log: Vec<String>,
}

pub fn ok(status: u16, body: Value, etag: Option<String>) -> Reply {
    Reply {
        status,
        etag,
        retry_after: None,
        body: body.to_string().into_bytes(),
    }
}

pub fn version_of(v: &Value) -> Option<String> {
    v["meta"]["version"].as_str().map(str::to_owned)
}

impl Fake {
    fn bump(&mut self, resource: &mut Value) {
        self.version += 1;
        resource["meta"] = json!({"version": format!("W/\"{}\"", self.version)});
    }

    /// `n` users: user 0 is the boss, every 10th a manager of the next 9.
    pub fn directory(n: usize, groups: usize) -> Fake {
        let mut f = Fake::default();
        for i in 0..n {
            let mut u = json!({
                "id": format!("u{i}"), "userName": format!("user{i}"),
                "emails": [{"value": format!("user{i}@k.no"), "primary": true}],
                "displayName": format!("Åse {i}"), "active": i % 7 != 6,
            });
            let manager = if i == 0 {
                None
            } else if i % 10 == 0 {
                Some(0)
            } else {
                Some(i / 10 * 10)
            };
            if let Some(m) = manager {
                u[ENTERPRISE] = json!({"manager": {"value": format!("u{m}")}});
            }
            f.bump(&mut u);
            f.users.push(u);
        }
        for g in 0..groups {
            let members: Vec<Value> = (0..n)
                .filter(|i| i % groups == g)
                .map(|i| json!({"value": format!("u{i}")}))
                .collect();
            let mut group = json!({"id": format!("g{g}"), "displayName": format!("tilgang-{g}"), "members": members});
            f.bump(&mut group);
            f.groups.push(group);
        }
        f
    }

    fn list(&self, all: &[Value], request: &Request) -> Reply {
        let q = |k: &str| {
            request
                .query
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        let filter = q("filter");
        let matches = |r: &&Value| match filter.as_deref() {
            None => true,
            Some(f) => {
                let (attr, rest) = f.split_once(' ').unwrap();
                let (op, lit) = rest.split_once(' ').unwrap();
                let lit: String = serde_json::from_str(lit).unwrap();
                let have = r[attr].as_str().unwrap_or_default();
                if op == "sw" {
                    have.starts_with(&lit)
                } else {
                    have == lit
                }
            }
        };
        let found: Vec<&Value> = all.iter().filter(matches).collect();
        let start: usize = q("startIndex").map_or(1, |s| s.parse().unwrap());
        let mut count: usize = q("count").map_or(100, |s| s.parse().unwrap());
        if let Some(max) = self.max_count {
            count = count.min(max);
        }
        let page: Vec<Value> = found
            .iter()
            .skip(start - 1)
            .take(count)
            .map(|v| (*v).clone())
            .collect();
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "startIndex": start, "Resources": page,
        });
        if !self.omit_total {
            body["totalResults"] = json!(found.len());
        }
        if !self.omit_items_per_page {
            body["itemsPerPage"] = json!(page.len());
        }
        ok(200, body, None)
    }
}

impl Transport for Fake {
    fn send(&mut self, request: &Request) -> Result<Reply, PluginError> {
        let query: Vec<String> = request
            .query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let tag = request.if_match.as_deref().unwrap_or("-");
        self.log.push(format!(
            "{} {}?{} if-match={tag}",
            request.method.as_str(),
            request.path,
            query.join("&")
        ));
        if let Some(reply) = self.script.pop_front() {
            return reply;
        }
        let not_found = || ok(404, json!({"status": "404", "detail": "not found"}), None);
        let (kind, id) = request.path.split_once('/').unwrap_or((&request.path, ""));
        match (request.method, kind, id) {
            (Method::Get, "Users", "") => Ok(self.list(&self.users, request)),
            (Method::Get, "Groups", "") => Ok(self.list(&self.groups, request)),
            (Method::Get, "Users" | "Groups", id) => {
                let all = if kind == "Users" {
                    &self.users
                } else {
                    &self.groups
                };
                Ok(match all.iter().find(|r| r["id"] == id) {
                    Some(r) => ok(200, r.clone(), version_of(r)),
                    None => not_found(),
                })
            }
            (Method::Patch, "Users" | "Groups", id) => {
                let mut all = std::mem::take(if kind == "Users" {
                    &mut self.users
                } else {
                    &mut self.groups
                });
                let Some(pos) = all.iter().position(|r| r["id"] == id) else {
                    return Ok(not_found());
                };
                if self.interfere > 0 {
                    self.interfere -= 1;
                    self.bump(&mut all[pos]);
                }
                let reply = if request.if_match.is_some()
                    && request.if_match != version_of(&all[pos])
                {
                    ok(412, json!({"status": "412", "detail": "changed"}), None)
                } else {
                    let op = &request.body.as_ref().unwrap()["Operations"][0];
                    if let Some(path) = op["path"]
                        .as_str()
                        .and_then(|p| p.strip_prefix("members[value eq "))
                    {
                        let who: String = serde_json::from_str(path.trim_end_matches(']')).unwrap();
                        all[pos]["members"]
                            .as_array_mut()
                            .unwrap()
                            .retain(|m| m["value"] != who.as_str());
                    } else {
                        all[pos]["active"] = op["value"].clone();
                    }
                    self.bump(&mut all[pos]);
                    Reply {
                        status: 204,
                        etag: version_of(&all[pos]),
                        ..Reply::default()
                    }
                };
                *(if kind == "Users" {
                    &mut self.users
                } else {
                    &mut self.groups
                }) = all;
                Ok(reply)
            }
            _ => Ok(not_found()),
        }
    }
}
