//! The plugin's settings, read once per call and checked before any request.
//!
//! | setting | default | meaning |
//! | --- | --- | --- |
//! | `base_url` | required | RT's web root (`https://rt.kommun.se`); REST2 is `{base_url}/REST/2.0` |
//! | `queue` | `General` | the queue of a new ticket when the step names none |
//! | `idempotency_field` | `vakt-key` | the ticket custom field that holds a create's idempotency key |
//! | `priority_map` | `low=0, normal=50, high=80, urgent=100` | names a workflow may give as `priority`, and their numbers; entries add to or replace the defaults |

use vakt_plugin_sdk::PluginError;

/// Setting names, as the manifest declares them.
pub const SETTINGS: &[&str] = &["base_url", "queue", "idempotency_field", "priority_map"];

/// Priority names and numbers when `priority_map` does not say otherwise.
/// RT stores a number; with RT's own default `%PriorityAsString` (Low 0,
/// Medium 50, High 100) 80 shows as Medium, so sites that label priorities
/// set `priority_map` to their labels' numbers.
pub const DEFAULT_PRIORITIES: &[(&str, u32)] =
    &[("low", 0), ("normal", 50), ("high", 80), ("urgent", 100)];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The web root without a trailing slash.
    pub base_url: String,
    pub queue: String,
    pub idempotency_field: String,
    /// Lower-case names and their numbers.
    pub priorities: Vec<(String, u32)>,
}

impl Config {
    /// Reads the settings through `get` (the host's `settings` interface, or
    /// a map in tests); empty values count as unset.
    pub fn from_settings(get: impl Fn(&str) -> Option<String>) -> Result<Config, PluginError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let bad = |name: &str, why: String| {
            PluginError::permanent(format_args!(
                "the setting `{name}` {why}: fix it in this plugin's settings in the daemon config"
            ))
        };

        let base_url = get("base_url").ok_or_else(|| {
            PluginError::permanent(
                "the setting `base_url` is not set: add RT's web address (such as \
                 `https://rt.kommun.se`) to this plugin's settings in the daemon config",
            )
        })?;
        let lower = base_url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(bad(
                "base_url",
                format!("is `{base_url}`, not an http:// or https:// address"),
            ));
        }
        if base_url.contains(['?', '#']) {
            return Err(bad(
                "base_url",
                format!("is `{base_url}`: give RT's web root without a query"),
            ));
        }
        let mut base_url = base_url.trim_end_matches('/').to_owned();
        // Someone may give the REST2 root itself; accept it.
        for suffix in ["/REST/2.0", "/rest/2.0"] {
            if let Some(stripped) = base_url.strip_suffix(suffix) {
                base_url = stripped.to_owned();
            }
        }

        let queue = get("queue").unwrap_or_else(|| "General".to_owned());

        let idempotency_field = get("idempotency_field").unwrap_or_else(|| "vakt-key".to_owned());
        if idempotency_field.contains(['{', '}', '\'', '"', '\\']) {
            return Err(bad(
                "idempotency_field",
                format!(
                    "is `{idempotency_field}`: a custom field name for it may not contain \
                     braces, quotes or backslashes"
                ),
            ));
        }

        let mut priorities: Vec<(String, u32)> = DEFAULT_PRIORITIES
            .iter()
            .map(|(n, v)| ((*n).to_owned(), *v))
            .collect();
        if let Some(map) = get("priority_map") {
            for entry in map
                .split([',', ';'])
                .map(str::trim)
                .filter(|e| !e.is_empty())
            {
                let (name, number) = entry.split_once('=').ok_or_else(|| {
                    bad(
                        "priority_map",
                        format!(
                            "has `{entry}`, expected `name=number` entries separated by commas"
                        ),
                    )
                })?;
                let name = name.trim().to_lowercase();
                let number: u32 = number.trim().parse().map_err(|_| {
                    bad(
                        "priority_map",
                        format!("has `{entry}`: the priority must be a whole number"),
                    )
                })?;
                if name.is_empty() {
                    return Err(bad("priority_map", format!("has `{entry}` without a name")));
                }
                match priorities.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = number,
                    None => priorities.push((name, number)),
                }
            }
        }

        Ok(Config {
            base_url,
            queue,
            idempotency_field,
            priorities,
        })
    }

    /// REST2's root, with a trailing slash for the SDK client's joins.
    pub fn rest_root(&self) -> String {
        format!("{}/REST/2.0/", self.base_url)
    }

    /// The ticket's page in RT's web interface.
    pub fn ticket_url(&self, id: &str) -> String {
        format!("{}/Ticket/Display.html?id={id}", self.base_url)
    }

    /// RT's number for a workflow's `priority`: a whole number as it is, a
    /// name from the map (any case), nothing for none.
    pub fn priority(&self, priority: Option<&str>) -> Result<Option<u32>, PluginError> {
        let Some(p) = priority.map(str::trim).filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        if let Ok(n) = p.parse::<u32>() {
            return Ok(Some(n));
        }
        let wanted = p.to_lowercase();
        match self.priorities.iter().find(|(n, _)| *n == wanted) {
            Some((_, n)) => Ok(Some(*n)),
            None => {
                let names: Vec<&str> = self.priorities.iter().map(|(n, _)| n.as_str()).collect();
                Err(PluginError::permanent(format_args!(
                    "priority `{p}` is not one this plugin knows ({}); give a number, or add \
                     the name to the `priority_map` setting in the daemon config",
                    names.join(", ")
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, PluginError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_settings(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_and_normalised_base_url() {
        let c = config(&[("base_url", "https://rt.kommun.se/")]).unwrap();
        assert_eq!(c.base_url, "https://rt.kommun.se");
        assert_eq!(c.rest_root(), "https://rt.kommun.se/REST/2.0/");
        assert_eq!(c.queue, "General");
        assert_eq!(c.idempotency_field, "vakt-key");
        assert_eq!(
            c.ticket_url("7"),
            "https://rt.kommun.se/Ticket/Display.html?id=7"
        );
        let c = config(&[("base_url", "http://h:8080/rt/REST/2.0/")]).unwrap();
        assert_eq!(c.base_url, "http://h:8080/rt");
    }

    #[test]
    fn a_missing_or_bad_base_url_says_what_to_fix() {
        let e = config(&[]).unwrap_err();
        assert!(!e.retryable);
        assert!(e.message.contains("`base_url` is not set"), "{}", e.message);
        let e = config(&[("base_url", "  ")]).unwrap_err();
        assert!(e.message.contains("not set"), "{}", e.message);
        let e = config(&[("base_url", "rt.kommun.se")]).unwrap_err();
        assert!(e.message.contains("not an http"), "{}", e.message);
        let e = config(&[("base_url", "https://rt/?x=1")]).unwrap_err();
        assert!(e.message.contains("without a query"), "{}", e.message);
    }

    #[test]
    fn the_idempotency_field_must_fit_in_ticketsql() {
        let e = config(&[("base_url", "https://h"), ("idempotency_field", "a}b")]).unwrap_err();
        assert!(e.message.contains("idempotency_field"), "{}", e.message);
        let c = config(&[("base_url", "https://h"), ("idempotency_field", "Vakt key")]).unwrap();
        assert_eq!(c.idempotency_field, "Vakt key");
    }

    #[test]
    fn priorities_map_names_to_numbers() {
        let c = config(&[("base_url", "https://h")]).unwrap();
        assert_eq!(c.priority(None).unwrap(), None);
        assert_eq!(c.priority(Some(" ")).unwrap(), None);
        assert_eq!(c.priority(Some("low")).unwrap(), Some(0));
        assert_eq!(c.priority(Some("Normal")).unwrap(), Some(50));
        assert_eq!(c.priority(Some("HIGH")).unwrap(), Some(80));
        assert_eq!(c.priority(Some("urgent")).unwrap(), Some(100));
        assert_eq!(c.priority(Some("42")).unwrap(), Some(42));
        let e = c.priority(Some("asap")).unwrap_err();
        assert!(!e.retryable);
        assert!(
            e.message.contains("low, normal, high, urgent"),
            "{}",
            e.message
        );

        let c = config(&[
            ("base_url", "https://h"),
            ("priority_map", "high=100; On Fire = 120,"),
        ])
        .unwrap();
        assert_eq!(c.priority(Some("high")).unwrap(), Some(100));
        assert_eq!(c.priority(Some("on fire")).unwrap(), Some(120));
        assert_eq!(c.priority(Some("low")).unwrap(), Some(0));
        for bad in ["high", "high=x", "=3"] {
            let e = config(&[("base_url", "https://h"), ("priority_map", bad)]).unwrap_err();
            assert!(e.message.contains("priority_map"), "{bad}: {}", e.message);
        }
    }
}
