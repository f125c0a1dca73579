//! vakt's `identity` connector for SCIM 2.0 services (RFC 7643/7644):
//! paged, filtered listings of Users and Groups with their members and
//! managers (the enterprise extension's `manager`), removal of a group
//! member and disabling of an account by conditional `PATCH`.
//!
//! Settings:
//! - `base_url` (required): the SCIM base URL, such as
//!   `https://idp.kommune.no/scim/v2` or `http://127.0.0.1:8700/tenant/v2`;
//! - `page_size` (default 100, 1 to 1000): `count` of a listing page.
//!
//! The credential is the host's to inject: grant the origin of `base_url`
//! with a credential in the daemon config, for instance
//!
//! ```toml
//! [[plugins.scim.http]]
//! origin = "https://idp.kommune.no"
//! credential = { kind = "bearer", token = "env:SCIM_TOKEN" }
//! ```
//!
//! Arguments: `filter` is a SCIM filter passed through as it is
//! (`displayName sw "tilgang-"`); `user` and `group` are SCIM ids (for
//! `get_manager` and `disable_user` a `userName` is accepted too). A user's
//! `manager` is the manager's e-mail address (primary, else first, else a
//! userName that is one), as the WIT `user` record says, not the SCIM id.
//!
//! Modules: [`model`] (the SCIM JSON), [`client`] (requests, replies and
//! status mapping), [`directory`] (listings and resolving ids), [`change`]
//! (the PATCHes with `If-Match`).

pub mod change;
pub mod client;
pub mod directory;
pub mod model;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use vakt_plugin_sdk::http::Client;
use vakt_plugin_sdk::identity::{GroupPage, User, UserPage};
use vakt_plugin_sdk::prelude::*;
use vakt_plugin_sdk::settings;

use crate::client::{Base, Reply, Request, Transport};
use crate::directory::Scim;
use crate::model::ScimUser;

/// `count` of a page when `page_size` is not set.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The largest `page_size` accepted.
pub const MAX_PAGE_SIZE: u32 = 1000;

pub struct ScimPlugin;

impl Plugin for ScimPlugin {
    fn new() -> Self {
        ScimPlugin
    }

    fn manifest() -> Manifest {
        Manifest::builder("scim", env!("CARGO_PKG_VERSION"))
            .http()
            .setting("base_url")
            .setting("page_size")
            .build()
    }
}

impl IdentityPlugin for ScimPlugin {
    fn list_users(
        &mut self,
        ctx: &CallContext,
        filter: Option<String>,
        cursor: Option<String>,
    ) -> Result<UserPage, PluginError> {
        listing(ctx, |scim| {
            scim.list_users(filter.as_deref(), cursor.as_deref())
        })
    }

    fn list_groups(
        &mut self,
        ctx: &CallContext,
        filter: Option<String>,
        include_members: bool,
        cursor: Option<String>,
    ) -> Result<GroupPage, PluginError> {
        listing(ctx, |scim| {
            scim.list_groups(filter.as_deref(), include_members, cursor.as_deref())
        })
    }

    fn get_manager(
        &mut self,
        ctx: &CallContext,
        user: String,
    ) -> Result<Option<User>, PluginError> {
        connect(ctx)?.get_manager(&user)
    }

    fn remove_member(
        &mut self,
        ctx: &CallContext,
        group: String,
        user: String,
    ) -> Result<bool, PluginError> {
        connect(ctx)?.remove_member(&group, &user)
    }

    fn disable_user(&mut self, ctx: &CallContext, user: String) -> Result<bool, PluginError> {
        connect(ctx)?.disable_user(&user)
    }
}

vakt_plugin_sdk::export_identity!(ScimPlugin);

/// Users read by the previous pages of this listing. The host calls every
/// page of one listing on the same instance and makes a fresh instance for
/// every call, so this lives for one listing: the managers and members read
/// for page 1 are not read again for page 2. (Were the host to instantiate
/// per page, it would only start empty each time.)
static KNOWN: Mutex<Option<HashMap<String, ScimUser>>> = Mutex::new(None);

/// Runs a page of a listing with the users read for the previous pages.
fn listing<R>(
    ctx: &CallContext,
    page: impl FnOnce(&mut Scim<Wasi>) -> Result<R, PluginError>,
) -> Result<R, PluginError> {
    let mut scim = connect(ctx)?;
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    scim.known = known.take().unwrap_or_default();
    let result = page(&mut scim);
    *known = Some(std::mem::take(&mut scim.known));
    result
}

/// The service from the settings, over the host's `wasi:http`.
fn connect(ctx: &CallContext) -> Result<Scim<Wasi>, PluginError> {
    let base = Base::parse(&settings::require("base_url")?)?;
    let page_size = page_size(settings::get("page_size").as_deref())?;
    let client = Client::new()
        .base_url(&base.as_str())?
        .header("accept", "application/scim+json, application/json")
        .timeout(Duration::from_secs(30))
        .deadline(ctx);
    Ok(Scim::new(Wasi { client }, base, page_size))
}

/// The `page_size` setting.
pub fn page_size(setting: Option<&str>) -> Result<u32, PluginError> {
    let Some(text) = setting.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT_PAGE_SIZE);
    };
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
        .ok_or_else(|| {
            PluginError::permanent(format_args!(
                "the setting `page_size` is `{text}`: give a number from 1 to {MAX_PAGE_SIZE}"
            ))
        })
}

/// The host's `wasi:http`, through the SDK's client.
struct Wasi {
    client: Client,
}

impl Transport for Wasi {
    fn send(&mut self, request: &Request) -> Result<Reply, PluginError> {
        let mut builder = self.client.request(request.method, &request.path);
        for (k, v) in &request.query {
            builder = builder.query(k, v);
        }
        if let Some(tag) = &request.if_match {
            builder = builder.header("if-match", tag);
        }
        if let Some(body) = &request.body {
            let bytes = serde_json::to_vec(body).map_err(|e| {
                PluginError::permanent(format_args!("cannot encode the request body: {e}"))
            })?;
            builder = builder.body("application/scim+json", bytes);
        }
        let response = builder.send()?;
        Ok(Reply {
            status: response.status(),
            etag: response.header("etag").map(str::to_owned),
            retry_after: response.header("retry-after").map(str::to_owned),
            body: response.into_body(),
        })
    }

    fn warn(&mut self, message: &str) {
        vakt_plugin_sdk::log::warn(message);
    }
}

#[cfg(test)]
mod tests;
