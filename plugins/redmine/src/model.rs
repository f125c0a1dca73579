//! Redmine's JSON, as far as the connector reads it, and the pure helpers
//! around it: an issue to a [`Ticket`], the idempotency marker, names to ids,
//! the description's footer. Everything here is unit-tested natively.
//!
//! Fields are lenient (`default`) where Redmine may leave them out; what the
//! connector cannot work without (`id`, a status) is required, so an
//! unexpected answer is a clear error rather than a wrong ticket.

use serde::Deserialize;
use serde_json::Value;
use vakt_plugin_sdk::PluginError;
use vakt_plugin_sdk::ticketing::Ticket;

/// The label of the idempotency line written into a description when no
/// usable custom field holds the key.
pub const MARKER: &str = "vakt-key:";

#[derive(Clone, Debug, Deserialize)]
pub struct Named {
    pub id: u64,
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct IssueEnvelope {
    pub issue: Issue,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Issue {
    pub id: u64,
    #[serde(default)]
    pub subject: String,
    pub status: Named,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub custom_fields: Vec<CustomValue>,
    #[serde(default)]
    pub journals: Vec<Journal>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CustomValue {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    /// A string, or a list for fields with multiple values; null when unset.
    #[serde(default)]
    pub value: Value,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Journal {
    pub id: u64,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct IssueList {
    pub issues: Vec<Issue>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CustomFieldDefs {
    pub custom_fields: Vec<CustomFieldDef>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CustomFieldDef {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub customized_type: String,
    #[serde(default)]
    pub is_filter: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Statuses {
    pub issue_statuses: Vec<Named>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Priorities {
    pub issue_priorities: Vec<Named>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Trackers {
    pub trackers: Vec<Named>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Users {
    pub users: Vec<User>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub id: u64,
    #[serde(default)]
    pub login: String,
    #[serde(default)]
    pub mail: Option<String>,
}

/// The ticket vakt sees: id, `{base_url}/issues/{id}`, subject, status name
/// and the journal's notes (comments), oldest first; journal entries that
/// only changed fields are left out.
pub fn to_ticket(issue: &Issue, base_url: &str) -> Ticket {
    let mut journals: Vec<&Journal> = issue.journals.iter().collect();
    journals.sort_by_key(|j| j.id);
    Ticket {
        id: issue.id.to_string(),
        url: Some(format!(
            "{}/issues/{}",
            base_url.trim_end_matches('/'),
            issue.id
        )),
        subject: issue.subject.clone(),
        status: issue.status.name.clone(),
        comments: journals
            .into_iter()
            .filter_map(|j| j.notes.as_deref())
            .filter(|n| !n.trim().is_empty())
            .map(|n| n.replace("\r\n", "\n"))
            .collect(),
    }
}

/// A ticket id as Redmine's issue number: `42` or `#42`.
pub fn issue_number(id: &str) -> Result<u64, PluginError> {
    let trimmed = id.trim().trim_start_matches('#');
    trimmed
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            PluginError::permanent(format_args!(
                "`{id}` is not a Redmine issue number (expected digits, such as 42)"
            ))
        })
}

/// The idempotency line: `vakt-key: <key>`.
pub fn marker_line(key: &str) -> String {
    format!("{MARKER} {key}")
}

/// Whether a description carries the idempotency line for `key`, exactly.
pub fn has_marker(description: Option<&str>, key: &str) -> bool {
    let line = marker_line(key);
    description.is_some_and(|d| d.lines().any(|l| l.trim() == line))
}

/// Whether the issue's custom field `field` holds exactly `key`.
pub fn has_value(issue: &Issue, field: u64, key: &str) -> bool {
    issue.custom_fields.iter().any(|c| {
        c.id == field
            && match &c.value {
                Value::String(s) => s == key,
                Value::Array(a) => a.iter().any(|v| v.as_str() == Some(key)),
                _ => false,
            }
    })
}

/// The first item whose name matches `name`, ignoring case and surrounding
/// space.
pub fn by_name<'a>(items: &'a [Named], name: &str) -> Option<&'a Named> {
    let name = name.trim();
    items
        .iter()
        .find(|i| i.name.trim().eq_ignore_ascii_case(name))
}

/// `New, In Progress, Closed`: the names, for an error.
pub fn names(items: &[Named]) -> String {
    items
        .iter()
        .map(|i| i.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The setting `priorities`: `low=Låg, normal=2, urgent=Akut` maps vakt's
/// priority words to Redmine priority names or ids.
pub fn parse_priorities(text: &str) -> Result<Vec<(String, String)>, PluginError> {
    text.split([',', ';', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (from, to) = pair.split_once('=').ok_or_else(|| {
                PluginError::permanent(format_args!(
                    "the setting `priorities`: `{pair}` is not `word=Redmine priority` \
                     (such as `urgent=Immediate` or `urgent=5`)"
                ))
            })?;
            Ok((from.trim().to_lowercase(), to.trim().to_owned()))
        })
        .collect()
}

/// What Redmine priority `wanted` means: the mapped name or id from the
/// setting `priorities`, else `wanted` itself.
pub fn priority_target(map: &[(String, String)], wanted: &str) -> String {
    let key = wanted.trim().to_lowercase();
    map.iter()
        .find(|(from, _)| *from == key)
        .map_or_else(|| wanted.trim().to_owned(), |(_, to)| to.clone())
}

/// The body with a footer of `lines` (requester, an assignee that could not
/// be set, the idempotency marker) under a rule, if there are any.
pub fn description(body: &str, lines: &[String]) -> String {
    if lines.is_empty() {
        return body.to_owned();
    }
    let mut out = body.trim_end().to_owned();
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str("---\n");
    out.push_str(&lines.join("\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE: &str = r#"{"issue":{"id":1,"project":{"id":1,"name":"Säkerhet"},
        "status":{"id":2,"name":"In Progress","is_closed":false},
        "subject":"probe","description":"hej\r\n\r\nvakt-key: a/b/0/1",
        "custom_fields":[{"id":1,"name":"vakt-key","value":"a/b/0/1"},
                         {"id":2,"name":"Område","value":null},
                         {"id":3,"name":"Taggar","multiple":true,"value":["x","y"]}],
        "journals":[
          {"id":2,"user":{"id":1,"name":"Admin"},"notes":"moving","private_notes":false,
           "details":[{"property":"attr","name":"status_id","old_value":"1","new_value":"2"}]},
          {"id":1,"user":{"id":1,"name":"Admin"},"notes":"first\r\nnote","private_notes":true,"details":[]},
          {"id":3,"notes":"","details":[{"property":"attr"}]},
          {"id":4,"notes":null}
        ]}}"#;

    fn issue() -> Issue {
        serde_json::from_str::<IssueEnvelope>(ISSUE).unwrap().issue
    }

    #[test]
    fn an_issue_becomes_a_ticket_with_its_notes_oldest_first() {
        let t = to_ticket(&issue(), "http://127.0.0.1:3300/");
        assert_eq!(t.id, "1");
        assert_eq!(t.url.as_deref(), Some("http://127.0.0.1:3300/issues/1"));
        assert_eq!(t.subject, "probe");
        assert_eq!(t.status, "In Progress");
        assert_eq!(t.comments, vec!["first\nnote", "moving"]);
    }

    #[test]
    fn unexpected_json_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<IssueEnvelope>(r#"{"issue":{"id":"x"}}"#).is_err());
        assert!(serde_json::from_str::<IssueEnvelope>(r#"{"issue":{"id":1}}"#).is_err());
        assert!(serde_json::from_str::<IssueList>(r#"{"issues":null}"#).is_err());
        assert!(serde_json::from_str::<IssueEnvelope>("<html>").is_err());
        let minimal: IssueEnvelope =
            serde_json::from_str(r#"{"issue":{"id":9,"status":{"id":1}}}"#).unwrap();
        let t = to_ticket(&minimal.issue, "https://h/redmine");
        assert_eq!(t.url.as_deref(), Some("https://h/redmine/issues/9"));
        assert!(t.comments.is_empty());
    }

    #[test]
    fn idempotency_key_checks_are_exact() {
        let i = issue();
        assert!(has_value(&i, 1, "a/b/0/1"));
        assert!(!has_value(&i, 1, "a/b/0"));
        assert!(!has_value(&i, 2, "a/b/0/1"));
        assert!(has_value(&i, 3, "y"));
        assert!(has_marker(i.description.as_deref(), "a/b/0/1"));
        assert!(!has_marker(i.description.as_deref(), "a/b/0"));
        assert!(!has_marker(Some("vakt-key: a/b/0/12"), "a/b/0/1"));
        assert!(!has_marker(None, "a/b/0/1"));
    }

    #[test]
    fn issue_numbers() {
        assert_eq!(issue_number("42").unwrap(), 42);
        assert_eq!(issue_number(" #7 ").unwrap(), 7);
        for bad in ["", "0", "abc", "1/2", "-3"] {
            let e = issue_number(bad).unwrap_err();
            assert!(!e.retryable, "{bad}");
        }
    }

    #[test]
    fn names_match_ignoring_case() {
        let s: Statuses = serde_json::from_str(
            r#"{"issue_statuses":[{"id":1,"name":"New"},{"id":5,"name":"Closed","is_closed":true}]}"#,
        )
        .unwrap();
        assert_eq!(by_name(&s.issue_statuses, " closed ").unwrap().id, 5);
        assert!(by_name(&s.issue_statuses, "Stängd").is_none());
        assert_eq!(names(&s.issue_statuses), "New, Closed");
    }

    #[test]
    fn priorities_setting() {
        let map = parse_priorities("low=Låg, Urgent = 5;\nhigh=Hög").unwrap();
        assert_eq!(priority_target(&map, "URGENT"), "5");
        assert_eq!(priority_target(&map, "low"), "Låg");
        assert_eq!(priority_target(&map, "Normal"), "Normal");
        assert!(parse_priorities("urgent").is_err());
        assert!(parse_priorities("").unwrap().is_empty());
    }

    #[test]
    fn descriptions_get_a_footer_only_when_needed() {
        assert_eq!(description("Hej\n", &[]), "Hej\n");
        assert_eq!(
            description("Hej\n\n", &["Requester: asa".into(), marker_line("k/1")]),
            "Hej\n\n---\nRequester: asa\nvakt-key: k/1"
        );
        assert_eq!(description("", &[marker_line("k")]), "---\nvakt-key: k");
        assert!(has_marker(
            Some(&description("x", &[marker_line("k/1")]).replace('\n', "\r\n")),
            "k/1"
        ));
    }
}
