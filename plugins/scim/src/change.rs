//! Changing the directory: removing a group member and disabling a user,
//! each a read followed by a `PATCH` (RFC 7644 §3.5.2) made conditional
//! with `If-Match` on the version read (`meta.version` or the `ETag`,
//! RFC 7644 §3.14) when the server versions its resources.
//!
//! A `412 Precondition Failed` means someone changed the resource between
//! the read and the change: it is read again and the change decided anew,
//! a few times. The read also answers the idempotent cases without a
//! change: a user who is not a member (`false`), an account already
//! disabled (`false`).

use serde_json::{Value, json};
use vakt_plugin_sdk::PluginError;

use crate::client::{Reply, Request, Transport};
use crate::directory::{Scim, segment};
use crate::model::{PATCH_OP, ScimGroup, quote};

/// Reads and conditional changes of one call, at most.
pub const ATTEMPTS: u32 = 4;

impl<T: Transport> Scim<T> {
    /// True if `user` (an id) was a member of `group` and is no longer.
    pub fn remove_member(&mut self, group: &str, user: &str) -> Result<bool, PluginError> {
        let (group, user) = (group.trim(), user.trim());
        if group.is_empty() || user.is_empty() {
            return Err(PluginError::permanent(
                "the group id and the user id must not be empty",
            ));
        }
        let path = format!("Groups/{}", segment(group));
        let what = format!("the SCIM group `{group}`");
        for attempt in 1..=ATTEMPTS {
            let read = Request::get(&path);
            let (current, reply) = self.get::<ScimGroup>(&read, &what)?;
            if !current.has_member(user) {
                return Ok(false);
            }
            let version = current.version().map(str::to_owned).or(reply.etag);
            let patch = Request::patch(&path, version.as_deref(), remove_member_body(user));
            let reply = self.transport.send(&patch)?;
            match reply.status {
                200..=299 => return Ok(true),
                412 => self.precondition_failed(&what, attempt),
                // A server that cannot remove by a value filter (RFC 7644
                // §3.5.2.2) may take the member as a value to remove.
                400 => {
                    let fallback =
                        Request::patch(&path, version.as_deref(), remove_member_value_body(user));
                    let second = self.transport.send(&fallback)?;
                    match second.status {
                        200..=299 => return Ok(true),
                        412 => self.precondition_failed(&what, attempt),
                        _ => return Err(self.refused(&patch, &reply, &what)),
                    }
                }
                _ => return Err(self.refused(&patch, &reply, &what)),
            }
        }
        Err(changed_too_often(&what))
    }

    /// True if the account was active and is now disabled.
    pub fn disable_user(&mut self, user: &str) -> Result<bool, PluginError> {
        for attempt in 1..=ATTEMPTS {
            let (current, etag) = self.find_user(user)?;
            if current.active == Some(false) {
                return Ok(false);
            }
            let what = format!("the SCIM user `{}`", current.id);
            let version = current.version().map(str::to_owned).or(etag);
            let patch = Request::patch(
                format!("Users/{}", segment(&current.id)),
                version.as_deref(),
                json!({
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "path": "active", "value": false}],
                }),
            );
            let reply = self.transport.send(&patch)?;
            match reply.status {
                200..=299 => return Ok(true),
                412 => self.precondition_failed(&what, attempt),
                _ => return Err(self.refused(&patch, &reply, &what)),
            }
        }
        Err(changed_too_often(&format!(
            "the SCIM user `{}`",
            user.trim()
        )))
    }

    fn precondition_failed(&mut self, what: &str, attempt: u32) {
        self.transport.warn(&format!(
            "{what} changed on the server since it was read (412 Precondition Failed, \
             attempt {attempt} of {ATTEMPTS}): reading it again"
        ));
    }

    fn refused(&self, request: &Request, reply: &Reply, what: &str) -> PluginError {
        match self.base.check(request, reply, what) {
            Err(e) => e,
            Ok(()) => PluginError::permanent(format_args!(
                "{} {} answered {}, not a success",
                request.method.as_str(),
                self.base.display(request),
                reply.status
            )),
        }
    }
}

/// `remove` of one member by a value filter (RFC 7644 §3.5.2.2).
pub fn remove_member_body(user: &str) -> Value {
    json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "remove", "path": format!("members[value eq {}]", quote(user))}],
    })
}

/// `remove` with the member as the value, as some servers want it.
pub fn remove_member_value_body(user: &str) -> Value {
    json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "remove", "path": "members", "value": [{"value": user}]}],
    })
}

fn changed_too_often(what: &str) -> PluginError {
    PluginError::retryable(format_args!(
        "{what} changed on the server between every read and change \
         ({ATTEMPTS} times 412 Precondition Failed); trying again later"
    ))
}
