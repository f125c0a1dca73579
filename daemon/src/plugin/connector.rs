//! [`PluginConnector`]: the runtime's `Connector`, served by plugins.
//!
//! A call names a role and an action; the plugin bound to the role gets a
//! fresh store from its `InstancePre`, the typed WIT function of the action
//! is called with the arguments converted from JSON, and the result is
//! converted back. Failures become `CallOutcome::Err`:
//! - the plugin's own `plugin-error` keeps its `retryable` and retry-after;
//! - a trap (CPU or memory limit, panic) is not retryable: the same input
//!   would do the same again;
//! - the wall-clock timeout is retryable (the remote may be faster later);
//! - arguments that do not fit are not retryable (the workflow is wrong).
//!
//! When the host refused something during the call (an origin not granted,
//! an address not allowed, an oversized response), the error says so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::bindings::{CallContext, WitError};
use super::convert::{self, flag, opt_text, text};
use super::host::PluginHost;
use super::invoke;
use super::load::{Exports, Plugin};
use crate::engine::CallOutcome;
use crate::runtime::{BoxFuture, ConnectorCall};

/// Pages of a listing fetched for one call, at most.
const MAX_PAGES: usize = 1000;

/// The plugin host as the runtime's connector.
#[derive(Clone)]
pub struct PluginConnector {
    host: Arc<PluginHost>,
}

impl PluginConnector {
    pub fn new(host: Arc<PluginHost>) -> Self {
        PluginConnector { host }
    }

    pub fn host(&self) -> &Arc<PluginHost> {
        &self.host
    }
}

impl crate::runtime::Connector for PluginConnector {
    fn call(&self, call: ConnectorCall) -> BoxFuture<CallOutcome> {
        let host = self.host.clone();
        Box::pin(async move { host.call(call).await })
    }
}

fn fail(message: String, retryable: bool) -> CallOutcome {
    CallOutcome::Err {
        message,
        retryable,
        retry_after: None,
    }
}

/// What the plugin's function returned, before the trap check.
type Answer = Result<Value, WitError>;

impl PluginHost {
    /// Calls the plugin bound to `call.role`.
    pub async fn call(&self, call: ConnectorCall) -> CallOutcome {
        let Some(plugin) = self.roles.get(&call.role).cloned() else {
            return fail(
                format!(
                    "no plugin is bound to role `{}`; add one to the daemon config",
                    call.role
                ),
                false,
            );
        };
        self.call_plugin(&plugin, call).await
    }

    /// Calls a plugin by name (tests and tools).
    pub async fn call_named(&self, name: &str, call: ConnectorCall) -> CallOutcome {
        match self.plugins.get(name).cloned() {
            Some(p) => self.call_plugin(&p, call).await,
            None => fail(format!("no plugin `{name}` is loaded"), false),
        }
    }

    async fn call_plugin(&self, plugin: &Arc<Plugin>, call: ConnectorCall) -> CallOutcome {
        let args = match &call.args {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            _ => return fail("connector arguments must be a map".into(), false),
        };
        let Ok(_slot) = self.slots.acquire().await else {
            return fail("the plugin host is shutting down".into(), true);
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut wall = plugin.caps.wall;
        if let Some(d) = call.deadline {
            wall = wall.min(Duration::from_millis(d.saturating_sub(now_ms).max(0) as u64));
        }
        let deadline = Instant::now() + wall;
        let ctx = CallContext {
            instance_id: call.instance.clone(),
            step_id: call
                .idempotency_key
                .split('/')
                .nth(1)
                .unwrap_or("")
                .to_string(),
            idempotency_key: call.idempotency_key.clone(),
            attempt: call.attempt,
            deadline_ms: call.deadline.map(|d| d.max(0) as u64).unwrap_or(0),
        };
        let mut store = invoke::store(
            &self.engine,
            plugin.caps.clone(),
            self.egress.clone(),
            &call.instance,
            deadline,
        );
        let run = dispatch(plugin, &mut store, &ctx, &call.action, &args);
        let result = tokio::time::timeout(wall, run).await;
        let name = &plugin.name;
        let violations = store.data().violations.lock().unwrap().clone();
        let refused = if violations.is_empty() {
            String::new()
        } else {
            format!(" (the host refused: {})", violations.join("; "))
        };
        // Error text may carry what a plugin wrote (its message, a panic,
        // stderr): no secret granted to it may pass into the history or a log.
        let redact = |text: String| store.data().redact(&text);
        match result {
            Err(_) => fail(
                redact(format!(
                    "plugin `{name}` did not answer within {}s (wall clock){refused}",
                    wall.as_secs_f32()
                )),
                true,
            ),
            Ok(Err(Failure::Args(m))) => {
                fail(redact(format!("{}.{}: {m}", call.role, call.action)), false)
            }
            Ok(Err(Failure::Trap(e))) => fail(
                redact(format!(
                    "{}{refused}",
                    invoke::describe_trap(name, &e, &store)
                )),
                false,
            ),
            Ok(Ok(Ok(value))) => CallOutcome::Ok(value),
            Ok(Ok(Err(e))) => CallOutcome::Err {
                message: redact(format!("plugin `{name}`: {}{refused}", e.message)),
                retryable: e.retryable && violations.is_empty(),
                retry_after: e.retry_after_secs.map(u64::from),
            },
        }
    }
}

enum Failure {
    Args(String),
    Trap(wasmtime::Error),
}

impl From<wasmtime::Error> for Failure {
    fn from(e: wasmtime::Error) -> Self {
        Failure::Trap(e)
    }
}

async fn dispatch(
    plugin: &Plugin,
    store: &mut wasmtime::Store<super::state::State>,
    ctx: &CallContext,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Answer, Failure> {
    let unknown = || Failure::Args(format!("plugin `{}` has no action `{action}`", plugin.name));
    match &plugin.exports {
        Exports::Mail(pre) => {
            let m = match action {
                "send" => convert::message(args).map_err(Failure::Args)?,
                _ => return Err(unknown()),
            };
            let i = pre.instantiate_async(&mut *store).await?;
            let r = i.vakt_plugin_mail().call_send(&mut *store, ctx, &m).await?;
            Ok(r.map(convert::sent))
        }
        Exports::Ticketing(pre) => {
            let a = |r: Result<String, String>| r.map_err(Failure::Args);
            let o = |r: Result<Option<String>, String>| r.map_err(Failure::Args);
            // Arguments first, so a bad call never instantiates.
            enum Op {
                Create(super::bindings::ticketing::exports::vakt::plugin::ticketing::NewTicket),
                Comment(String, String, bool),
                Status(String, String, Option<String>),
                Get(String),
                Close(String, Option<String>, Option<String>),
            }
            let op = match action {
                "create" => Op::Create(convert::new_ticket(args).map_err(Failure::Args)?),
                "comment" => Op::Comment(
                    a(text(args, "ticket"))?,
                    a(text(args, "body"))?,
                    flag(args, "private", false).map_err(Failure::Args)?,
                ),
                "update_status" => Op::Status(
                    a(text(args, "ticket"))?,
                    a(text(args, "status"))?,
                    o(opt_text(args, "comment"))?,
                ),
                "get" => Op::Get(a(text(args, "ticket"))?),
                "close" => Op::Close(
                    a(text(args, "ticket"))?,
                    o(opt_text(args, "comment"))?,
                    o(opt_text(args, "resolution"))?,
                ),
                _ => return Err(unknown()),
            };
            let i = pre.instantiate_async(&mut *store).await?;
            let t = i.vakt_plugin_ticketing();
            let r = match &op {
                Op::Create(n) => t.call_create(&mut *store, ctx, n).await?,
                Op::Comment(id, body, private) => {
                    t.call_comment(&mut *store, ctx, id, body, *private).await?
                }
                Op::Status(id, s, c) => {
                    t.call_update_status(&mut *store, ctx, id, s, c.as_deref())
                        .await?
                }
                Op::Get(id) => t.call_get(&mut *store, ctx, id).await?,
                Op::Close(id, c, r) => {
                    t.call_close(&mut *store, ctx, id, c.as_deref(), r.as_deref())
                        .await?
                }
            };
            Ok(r.map(convert::ticket))
        }
        Exports::Identity(pre) => identity(pre, store, ctx, action, args).await,
        Exports::Generic(pre) => {
            let input = Value::Object(args.clone()).to_string();
            let i = pre.instantiate_async(&mut *store).await?;
            let r = i
                .vakt_plugin_generic()
                .call_invoke(&mut *store, ctx, action, &input)
                .await?;
            Ok(match r {
                Ok(out) => serde_json::from_str(&out).map_err(|e| WitError {
                    message: format!("answered with invalid JSON: {e}"),
                    retryable: false,
                    retry_after_secs: None,
                }),
                Err(e) => Err(e),
            })
        }
    }
}

async fn identity(
    pre: &super::bindings::identity::IdentityPluginPre<super::state::State>,
    store: &mut wasmtime::Store<super::state::State>,
    ctx: &CallContext,
    action: &str,
    args: &Map<String, Value>,
) -> Result<Answer, Failure> {
    let a = |r: Result<String, String>| r.map_err(Failure::Args);
    let filter = opt_text(args, "filter").map_err(Failure::Args)?;
    let (user, group) = match action {
        "list_users" | "list_groups" => (String::new(), String::new()),
        "get_manager" | "disable_user" => (a(text(args, "user"))?, String::new()),
        "remove_member" => (a(text(args, "user"))?, a(text(args, "group"))?),
        _ => return Err(Failure::Args(format!("identity has no action `{action}`"))),
    };
    let members = flag(args, "include_members", true).map_err(Failure::Args)?;
    let i = pre.instantiate_async(&mut *store).await?;
    let id = i.vakt_plugin_identity();
    let paged = |n: usize| {
        Err(WitError {
            message: format!("listing did not end after {n} pages"),
            retryable: false,
            retry_after_secs: None,
        })
    };
    Ok(match action {
        "list_users" => {
            let (mut all, mut cursor) = (Vec::new(), None::<String>);
            for _ in 0..MAX_PAGES {
                match id
                    .call_list_users(&mut *store, ctx, filter.as_deref(), cursor.as_deref())
                    .await?
                {
                    Ok(page) => {
                        all.extend(page.users.iter().map(convert::user));
                        cursor = page.next;
                        if cursor.is_none() {
                            return Ok(Ok(json!({ "users": all })));
                        }
                    }
                    Err(e) => return Ok(Err(e)),
                }
            }
            paged(MAX_PAGES)
        }
        "list_groups" => {
            let (mut all, mut cursor) = (Vec::new(), None::<String>);
            for _ in 0..MAX_PAGES {
                match id
                    .call_list_groups(
                        &mut *store,
                        ctx,
                        filter.as_deref(),
                        members,
                        cursor.as_deref(),
                    )
                    .await?
                {
                    Ok(page) => {
                        all.extend(page.groups.iter().map(convert::group));
                        cursor = page.next;
                        if cursor.is_none() {
                            return Ok(Ok(json!({ "groups": all })));
                        }
                    }
                    Err(e) => return Ok(Err(e)),
                }
            }
            paged(MAX_PAGES)
        }
        "get_manager" => id
            .call_get_manager(&mut *store, ctx, &user)
            .await?
            .map(|m| json!({ "manager": m.as_ref().map(convert::user) })),
        "remove_member" => id
            .call_remove_member(&mut *store, ctx, &group, &user)
            .await?
            .map(|removed| json!({ "removed": removed })),
        _ => id
            .call_disable_user(&mut *store, ctx, &user)
            .await?
            .map(|disabled| json!({ "disabled": disabled })),
    })
}
