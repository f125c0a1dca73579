//! Redmine's REST API over the SDK's HTTP client: one method per request
//! the connector makes, each checking the status ([`crate::errors`]) and
//! parsing the JSON ([`crate::model`]).
//!
//! The API key never passes through here: the daemon adds
//! `X-Redmine-API-Key` to every request to the granted origin.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::Value;
use vakt_plugin_sdk::http::{Client, Method, Response, Url};
use vakt_plugin_sdk::{CallContext, PluginError, settings};

use crate::errors::{self, Request};
use crate::model::{
    CustomFieldDef, CustomFieldDefs, CustomValue, Issue, IssueEnvelope, IssueList, Named,
    Priorities, Statuses, Trackers, Users,
};

/// Per request; the call's deadline bounds it further.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Redmine at the setting `base_url`.
pub struct Api {
    client: Client,
    /// `base_url` without a trailing slash.
    pub base: String,
    origin: String,
    /// The path part of `base_url` (`/redmine` for a sub-URI install).
    prefix: String,
}

/// One request: method, path relative to `base_url`, query pairs, body.
pub struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<&'a Value>,
    /// The issue the request is about (named by a 404).
    pub issue: Option<u64>,
}

impl<'a> Call<'a> {
    pub fn new(path: impl Into<String>) -> Self {
        Call {
            method: Method::Get,
            path: path.into(),
            query: Vec::new(),
            body: None,
            issue: None,
        }
    }

    pub fn with(mut self, method: Method, body: &'a Value) -> Self {
        self.method = method;
        self.body = Some(body);
        self
    }

    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.query.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn about(mut self, issue: u64) -> Self {
        self.issue = Some(issue);
        self
    }
}

impl Api {
    pub fn new(ctx: &CallContext) -> Result<Api, PluginError> {
        let base = settings::require("base_url")?
            .trim()
            .trim_end_matches('/')
            .to_owned();
        let url =
            Url::parse(&base).map_err(|e| e.context("the setting `base_url` is not a URL"))?;
        let prefix = url
            .path_and_query
            .split('?')
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        let client = Client::new()
            .base_url(&format!("{base}/"))?
            .timeout(TIMEOUT)
            .deadline(ctx);
        Ok(Api {
            client,
            origin: url.origin(),
            base,
            prefix,
        })
    }

    /// Sends a request; `Ok` whatever the status (see [`Api::check`]).
    pub fn send(&self, call: &Call<'_>) -> Result<Response, PluginError> {
        let mut req = self.client.request(call.method, &call.path);
        for (k, v) in &call.query {
            req = req.query(k, v);
        }
        if let Some(body) = call.body {
            req = req.json(body)?;
        }
        req.send()
    }

    /// The error for a status of 400 or more, in Redmine's terms.
    pub fn check(&self, call: &Call<'_>, resp: Response) -> Result<Response, PluginError> {
        let at = format!("{} {}/{}", call.method.as_str(), self.prefix, call.path);
        let issue = call.issue.map(|n| n.to_string());
        let req = Request {
            at: &at,
            origin: &self.origin,
            issue: issue.as_deref(),
        };
        match errors::status_error(
            req,
            resp.status(),
            resp.header("retry-after"),
            now_secs(),
            resp.body(),
        ) {
            Some(e) => Err(e),
            None => Ok(resp),
        }
    }

    /// Sends, checks the status and parses the JSON answer.
    pub fn json<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, PluginError> {
        let resp = self.send(call)?;
        self.check(call, resp)?
            .json()
            .map_err(|e| e.context(format_args!("Redmine at {}", self.origin)))
    }

    /// Sends and checks the status; the body is not read.
    pub fn ok(&self, call: &Call<'_>) -> Result<(), PluginError> {
        let resp = self.send(call)?;
        self.check(call, resp).map(drop)
    }

    pub fn issue(&self, n: u64) -> Result<Issue, PluginError> {
        let call = Call::new(format!("issues/{n}.json"))
            .query("include", "journals")
            .about(n);
        Ok(self.json::<IssueEnvelope>(&call)?.issue)
    }

    pub fn create_issue(&self, body: &Value) -> Result<Issue, PluginError> {
        let call = Call::new("issues.json").with(Method::Post, body);
        Ok(self.json::<IssueEnvelope>(&call)?.issue)
    }

    pub fn update_issue(&self, n: u64, body: &Value) -> Result<(), PluginError> {
        self.ok(&Call::new(format!("issues/{n}.json"))
            .with(Method::Put, body)
            .about(n))
    }

    /// Issues of any status in any project the API user sees, matching
    /// `filter` (`field`, `operator`, `value`), oldest first. The explicit
    /// `f[]`/`op[]`/`v[]` form keeps Redmine from reading an operator or a
    /// `|` into the value.
    pub fn search(&self, field: &str, op: &str, value: &str) -> Result<Vec<Issue>, PluginError> {
        let call = Call::new("issues.json")
            .query("set_filter", "1")
            .query("f[]", "status_id")
            .query("op[status_id]", "*")
            .query("f[]", field)
            .query(&format!("op[{field}]"), op)
            .query(&format!("v[{field}][]"), value)
            .query("sort", "id")
            .query("limit", "100");
        Ok(self.json::<IssueList>(&call)?.issues)
    }

    /// Every issue custom field, or `None` when the API user may not list
    /// them (only administrators may).
    pub fn custom_fields(&self) -> Result<Option<Vec<CustomFieldDef>>, PluginError> {
        let call = Call::new("custom_fields.json");
        let resp = self.send(&call)?;
        if resp.status() == 403 {
            return Ok(None);
        }
        let defs: CustomFieldDefs = self
            .check(&call, resp)?
            .json()
            .map_err(|e| e.context(format_args!("Redmine at {}", self.origin)))?;
        Ok(Some(
            defs.custom_fields
                .into_iter()
                .filter(|f| f.customized_type.is_empty() || f.customized_type == "issue")
                .collect(),
        ))
    }

    /// The custom fields an issue of `project` has (their ids and names),
    /// read from one of its issues: what a non-administrator can learn.
    pub fn project_custom_fields(&self, project: &str) -> Result<Vec<CustomValue>, PluginError> {
        let call = Call::new("issues.json")
            .query("project_id", project)
            .query("status_id", "*")
            .query("limit", "1");
        let resp = self.send(&call)?;
        if resp.status() == 404 || resp.status() == 403 {
            return Ok(Vec::new());
        }
        let list: IssueList = self
            .check(&call, resp)?
            .json()
            .map_err(|e| e.context(format_args!("Redmine at {}", self.origin)))?;
        Ok(list
            .issues
            .into_iter()
            .next()
            .map(|i| i.custom_fields)
            .unwrap_or_default())
    }

    pub fn statuses(&self) -> Result<Vec<Named>, PluginError> {
        Ok(self
            .json::<Statuses>(&Call::new("issue_statuses.json"))?
            .issue_statuses)
    }

    pub fn priorities(&self) -> Result<Vec<Named>, PluginError> {
        Ok(self
            .json::<Priorities>(&Call::new("enumerations/issue_priorities.json"))?
            .issue_priorities)
    }

    pub fn trackers(&self) -> Result<Vec<Named>, PluginError> {
        Ok(self.json::<Trackers>(&Call::new("trackers.json"))?.trackers)
    }

    /// The id of the user whose login or e-mail address is `who`; `None`
    /// when there is none or the API user may not list users (only
    /// administrators may). Errors only for failures worth retrying.
    pub fn user_id(&self, who: &str) -> Result<Option<u64>, PluginError> {
        let who = who.trim();
        let call = Call::new("users.json").query("name", who);
        let resp = self.send(&call)?;
        let users: Users = match self.check(&call, resp) {
            Ok(resp) => match resp.json() {
                Ok(u) => u,
                Err(_) => return Ok(None),
            },
            Err(e) if e.retryable => return Err(e),
            Err(_) => return Ok(None),
        };
        Ok(users
            .users
            .iter()
            .find(|u| {
                u.login.eq_ignore_ascii_case(who)
                    || u.mail
                        .as_deref()
                        .is_some_and(|m| m.eq_ignore_ascii_case(who))
            })
            .map(|u| u.id))
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
