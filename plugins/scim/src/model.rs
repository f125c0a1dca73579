//! SCIM resources as they come off the wire (RFC 7643 User and Group, the
//! enterprise extension's `manager`, RFC 7644 `ListResponse`), read
//! leniently: unknown attributes are ignored, ids may be strings or numbers,
//! `active` may be a boolean or the text `"true"`/`"false"` (servers differ).
//! Also the mapping of a User to the WIT `user` record.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use vakt_plugin_sdk::identity::User;

/// The enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The schema of a PATCH request body (RFC 7644 §3.5.2).
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A page of a query (RFC 7644 §3.4.2). `Resources` stays raw so one bad
/// resource can be reported by its position.
#[derive(Debug, Default, Deserialize)]
pub struct ListResponse {
    #[serde(rename = "totalResults", default, deserialize_with = "lenient_u64")]
    pub total_results: Option<u64>,
    #[serde(rename = "startIndex", default, deserialize_with = "lenient_u64")]
    pub start_index: Option<u64>,
    #[serde(rename = "itemsPerPage", default, deserialize_with = "lenient_u64")]
    pub items_per_page: Option<u64>,
    #[serde(rename = "Resources", default)]
    pub resources: Option<Vec<Value>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct Name {
    #[serde(default)]
    pub formatted: Option<String>,
    #[serde(rename = "givenName", default)]
    pub given_name: Option<String>,
    #[serde(rename = "familyName", default)]
    pub family_name: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct Email {
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub primary: Option<bool>,
}

/// `manager` of the enterprise extension: `{"value": id, "$ref": …,
/// "displayName": …}`; some servers send the id as a bare string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ManagerRef {
    Complex {
        #[serde(default, deserialize_with = "lenient_string")]
        value: Option<String>,
    },
    Bare(String),
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct Enterprise {
    #[serde(default)]
    pub manager: Option<ManagerRef>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ScimUser {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(rename = "userName", default)]
    pub user_name: Option<String>,
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default)]
    pub emails: Option<Vec<Email>>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub active: Option<bool>,
    #[serde(
        rename = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        default
    )]
    pub enterprise: Option<Enterprise>,
    #[serde(default)]
    pub meta: Option<Meta>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct Member {
    #[serde(default, deserialize_with = "lenient_string")]
    pub value: Option<String>,
    #[serde(default)]
    pub display: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ScimGroup {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub members: Option<Vec<Member>>,
    #[serde(default)]
    pub meta: Option<Meta>,
}

impl ScimUser {
    /// The manager's id from the enterprise extension, if any.
    pub fn manager_id(&self) -> Option<&str> {
        let manager = self.enterprise.as_ref()?.manager.as_ref()?;
        let id = match manager {
            ManagerRef::Complex { value } => value.as_deref()?,
            ManagerRef::Bare(id) => id.as_str(),
        };
        Some(id.trim()).filter(|id| !id.is_empty())
    }

    /// The primary e-mail address, else the first one.
    pub fn email(&self) -> Option<String> {
        let emails = self.emails.as_deref().unwrap_or_default();
        let usable = |e: &&Email| e.value.as_deref().is_some_and(|v| !v.trim().is_empty());
        emails
            .iter()
            .filter(usable)
            .find(|e| e.primary == Some(true))
            .or_else(|| emails.iter().find(usable))
            .and_then(|e| e.value.as_deref())
            .map(|v| v.trim().to_owned())
    }

    /// Where mail to this person goes: an e-mail address, else a userName
    /// that is one.
    pub fn mailbox(&self) -> Option<String> {
        self.email().or_else(|| {
            self.user_name
                .as_deref()
                .map(str::trim)
                .filter(|n| n.contains('@'))
                .map(str::to_owned)
        })
    }

    /// `displayName`, else `name.formatted`, else given and family name.
    pub fn display(&self) -> Option<String> {
        let nonempty = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        nonempty(&self.display_name).or_else(|| {
            let name = self.name.as_ref()?;
            nonempty(&name.formatted).or_else(|| {
                let parts: Vec<String> = [&name.given_name, &name.family_name]
                    .into_iter()
                    .filter_map(nonempty)
                    .collect();
                Some(parts.join(" ")).filter(|s| !s.is_empty())
            })
        })
    }

    /// The WIT record; `manager` is the manager's mailbox when the manager
    /// is among `known` (the WIT field is "the manager's e-mail address").
    pub fn to_wit(&self, known: &HashMap<String, ScimUser>) -> User {
        User {
            id: self.id.clone(),
            user_name: self.user_name.clone().unwrap_or_else(|| self.id.clone()),
            email: self.email(),
            display_name: self.display(),
            manager: self
                .manager_id()
                .and_then(|m| known.get(m))
                .and_then(ScimUser::mailbox),
            // RFC 7643 gives `active` no default; an account without it is
            // taken as usable (the cautious reading for a review of access).
            active: self.active.unwrap_or(true),
        }
    }

    pub fn version(&self) -> Option<&str> {
        self.meta.as_ref()?.version.as_deref()
    }
}

impl ScimGroup {
    pub fn members(&self) -> &[Member] {
        self.members.as_deref().unwrap_or_default()
    }

    pub fn has_member(&self, user: &str) -> bool {
        self.members()
            .iter()
            .any(|m| m.value.as_deref() == Some(user))
    }

    pub fn version(&self) -> Option<&str> {
        self.meta.as_ref()?.version.as_deref()
    }
}

impl Member {
    /// A member that is itself a group (nested groups).
    pub fn is_group(&self) -> bool {
        self.kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("group"))
    }

    /// The record of a member that is not found among the Users.
    pub fn placeholder(&self, id: &str) -> User {
        User {
            id: id.to_owned(),
            user_name: self.display.clone().unwrap_or_else(|| id.to_owned()),
            email: None,
            display_name: self.display.clone(),
            manager: None,
            active: true,
        }
    }
}

/// A SCIM filter string literal (RFC 7644 §3.4.2.2: JSON string syntax).
pub fn quote(value: &str) -> String {
    Value::String(value.to_owned()).to_string()
}

fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    lenient_string(d)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| serde::de::Error::custom("the resource has no `id`"))
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    })
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(v: Value) -> ScimUser {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn users_map_to_the_wit_record() {
        let boss = user(json!({"id": "b", "userName": "boss", "emails": [
            {"value": "other@k.no"}, {"value": "boss@k.no", "primary": true}]}));
        let u = user(json!({
            "id": "u1", "userName": "asa", "active": "false",
            "name": {"givenName": "Åsa", "familyName": "Öberg"},
            ENTERPRISE: {"manager": {"value": "b", "displayName": "Boss"}},
            "meta": {"version": "W/\"3\""}
        }));
        let known = HashMap::from([("b".to_owned(), boss.clone())]);
        let w = u.to_wit(&known);
        assert_eq!(w.id, "u1");
        assert_eq!(w.user_name, "asa");
        assert_eq!(w.email, None);
        assert_eq!(w.display_name.as_deref(), Some("Åsa Öberg"));
        assert_eq!(w.manager.as_deref(), Some("boss@k.no"));
        assert!(!w.active);
        assert_eq!(u.version(), Some("W/\"3\""));
        // Unknown manager: no address to give.
        assert_eq!(u.to_wit(&HashMap::new()).manager, None);
        // Without `active`: usable; without userName: the id.
        let bare = user(json!({"id": 7}));
        let w = bare.to_wit(&known);
        assert_eq!(
            (w.id.as_str(), w.user_name.as_str(), w.active),
            ("7", "7", true)
        );
    }

    #[test]
    fn manager_forms_and_mailboxes() {
        let bare = user(json!({"id": "x", ENTERPRISE: {"manager": "m1"}}));
        assert_eq!(bare.manager_id(), Some("m1"));
        let empty = user(json!({"id": "x", ENTERPRISE: {"manager": {"value": " "}}}));
        assert_eq!(empty.manager_id(), None);
        let named = user(json!({"id": "x", "userName": "kari@k.no", "emails": []}));
        assert_eq!(named.mailbox().as_deref(), Some("kari@k.no"));
        let nothing = user(json!({"id": "x", "userName": "kari"}));
        assert_eq!(nothing.mailbox(), None);
    }

    #[test]
    fn groups_and_members() {
        let g: ScimGroup = serde_json::from_value(json!({
            "id": "g", "displayName": "tilgang-1",
            "members": [{"value": "u1"}, {"value": "g2", "type": "Group"}, {"display": "no value"}]
        }))
        .unwrap();
        assert!(g.has_member("u1"));
        assert!(!g.has_member("u2"));
        assert!(g.members()[1].is_group());
        let p = g.members()[0].placeholder("u1");
        assert_eq!((p.user_name.as_str(), p.active), ("u1", true));
        assert!(serde_json::from_value::<ScimGroup>(json!({"displayName": "x"})).is_err());
    }

    #[test]
    fn list_responses_are_read_leniently() {
        let l: ListResponse =
            serde_json::from_value(json!({"totalResults": "12", "startIndex": 1})).unwrap();
        assert_eq!(
            (l.total_results, l.start_index, l.items_per_page),
            (Some(12), Some(1), None)
        );
        assert!(l.resources.is_none());
    }

    #[test]
    fn filter_literals_are_json_strings() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("åsa"), "\"åsa\"");
    }
}
