//! Loading a scenario file: parse it, check it against the workflow it
//! names, and resolve what the runner needs (times in milliseconds, merged
//! input, connector scripts, who holds which role).
//!
//! Like the workflow loader, parsing stops at the first structural error
//! (serde cannot go on past one) and everything after it is collected: an
//! unknown step id, an option the step does not offer, a role the workflow
//! never assigns, a connector action it never calls, events out of order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::check::{Checker, json_kind};
use super::format::{self, Answers, Expect, TestFile};
use crate::engine::model::{Ts, parse_instant};
use crate::workflow::diag::Diagnostic;
use crate::workflow::plan::Plan;
use crate::workflow::span::{Loc, Sp};

/// Who starts instances when a file does not say.
pub const DEFAULT_STARTED_BY: &str = "vakt-test@example.invalid";

/// A checked scenario file.
#[derive(Debug)]
pub struct Suite {
    /// The path as given on the command line, for messages.
    pub path: String,
    pub source: String,
    pub workflow: String,
    pub scenarios: Vec<Scenario>,
}

/// A checked scenario, ready to run.
#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub loc: Loc,
    pub start: Ts,
    pub started_by: String,
    pub input: Value,
    /// Role name → the addresses that hold it.
    pub roles: BTreeMap<String, Vec<String>>,
    /// `role.action` → its answers, tried in order.
    pub connectors: BTreeMap<String, Vec<Rule>>,
    pub events: Vec<super::events::Event>,
    /// When the run stops, in milliseconds after the start.
    pub run_for: Option<i64>,
    pub expect: Option<Sp<Expect>>,
}

/// One scripted answer of a connector action.
#[derive(Debug, Clone)]
pub struct Rule {
    pub when: Option<Value>,
    pub output: Value,
    pub fail: Option<Fail>,
}

#[derive(Debug, Clone)]
pub struct Fail {
    pub message: String,
    pub retryable: bool,
    pub times: Option<u32>,
    pub retry_after: Option<u64>,
}

/// Parses and checks one scenario file against the loaded workflows.
pub fn load(
    path: &str,
    source: &str,
    plans: &HashMap<String, Arc<Plan>>,
) -> Result<Suite, Vec<Diagnostic>> {
    let file = parse(source).map_err(|d| vec![d])?;
    let Some(plan) = plans.get(&file.workflow.value) else {
        let hint = crate::workflow::lower::closest(&file.workflow, plans.keys())
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        let known: BTreeSet<&str> = plans.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "none".to_owned()
        } else {
            known.into_iter().collect::<Vec<_>>().join(", ")
        };
        let msg = format!(
            "workflow `{}` is not among the workflow files loaded{hint} (loaded: {known}): \
             check the id, or give the directory that holds the workflow too, such as `vakt test workflows/`",
            file.workflow.value
        );
        return Err(vec![Diagnostic::new(file.workflow.loc, msg)]);
    };
    let mut ck = Checker::new(plan, plans);
    let workflow = file.workflow.value.clone();
    let scenarios = scenarios(&mut ck, file);
    if ck.diags.is_empty() {
        Ok(Suite {
            path: path.to_owned(),
            source: source.to_owned(),
            workflow,
            scenarios,
        })
    } else {
        let mut d = ck.diags;
        d.sort();
        d.dedup();
        Err(d)
    }
}

/// Parses the YAML into the file's authored form.
pub fn parse(source: &str) -> Result<TestFile, Diagnostic> {
    if source.trim().is_empty() {
        return Err(Diagnostic::new(
            Loc::new(1, 1),
            "the file is empty: a scenario file needs `workflow` and `scenarios`",
        ));
    }
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.with_snippet = false;
    serde_saphyr::from_str_with_options::<TestFile>(source, options).map_err(|e| parse_error(&e))
}

fn parse_error(err: &serde_saphyr::Error) -> Diagnostic {
    use serde_saphyr::Error as E;
    let loc = err
        .location()
        .map(|l| Loc::from_saphyr(&l))
        .filter(Loc::is_known)
        .unwrap_or(Loc::new(1, 1));
    let mut inner = err.without_snippet();
    while let E::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    let ticked = |v: &[&str]| {
        v.iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let msg = match inner {
        E::SerdeUnknownField { field, expected, .. } => {
            let hint = crate::workflow::lower::closest(field, expected.iter()).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
            format!("unknown field `{field}`{hint}: the fields here are {}", ticked(expected))
        }
        E::SerdeMissingField { field, .. } => match *field {
            "workflow" => "the file has no `workflow`: name the workflow under test, such as `workflow: incident-escalation`".to_owned(),
            "scenarios" => "the file has no `scenarios`: add a list of scenarios".to_owned(),
            "at" => "this event has no `at`: add when it happens, such as `at: 30m` (after the start)".to_owned(),
            f => format!("`{f}` is missing here: add it"),
        },
        E::SerdeInvalidType { unexpected, expected, .. } => format!("wrong type: expected {expected}, found {unexpected}"),
        E::InvalidScalar { ty, .. } => {
            let want = match *ty {
                t if t.starts_with('u') || t.starts_with('i') => "a whole number (0 or more), such as `1`",
                "bool" => "`true` or `false`",
                t => t,
            };
            format!("wrong type: expected {want}")
        }
        E::Unexpected { expected, .. } => match *expected {
            "sequence start" => "wrong type: expected a list here (`[a, b]`, or lines starting with `- `)".to_owned(),
            "mapping start" => "wrong type: expected a map here (`key: value` lines, or `{key: value}`)".to_owned(),
            "string scalar" => "wrong type: expected a single value here (text), not a list or a map".to_owned(),
            other => format!("expected {other}"),
        },
        E::InvalidBooleanStrict { .. } => "wrong type: expected `true` or `false`".to_owned(),
        E::DuplicateMappingKey { key, .. } => format!("`{}` is given twice in the same map: keep one of them", key.as_deref().unwrap_or("a key")),
        other => {
            let text = other.to_string();
            let first = text.lines().next().unwrap_or("the file is not valid YAML").trim();
            first.split(" at line ").next().unwrap_or(first).to_owned()
        }
    };
    Diagnostic::new(loc, msg)
}

fn scenarios(ck: &mut Checker, file: TestFile) -> Vec<Scenario> {
    let file_start = file.start_at.as_ref().and_then(|s| instant(ck, s));
    let file_roles = roles(ck, &file.roles);
    let file_connectors = connectors(ck, &file.connectors);
    if file.scenarios.value.is_empty() {
        ck.error(
            file.scenarios.loc,
            "`scenarios` is empty: add at least one scenario with a `name`",
        );
    }
    let mut names: HashMap<String, Loc> = HashMap::new();
    let mut out = Vec::new();
    for sc in file.scenarios.value {
        let loc = sc.loc;
        let sc = sc.value;
        let name = sc.name.value.trim().to_owned();
        if name.is_empty() {
            ck.error(sc.name.loc, "the scenario's `name` is empty: say what it shows, such as `nobody acknowledges for 5 hours`");
        } else if let Some(prev) = names.insert(name.clone(), sc.name.loc) {
            ck.error(sc.name.loc, format!("scenario `{name}` is already defined at line {}: names must be unique in a file", prev.line));
        }
        let start = match &sc.start_at {
            Some(s) => instant(ck, s),
            None if file.start_at.is_some() => file_start,
            None => {
                ck.error(sc.name.loc, "no `start_at`: give the instant the virtual clock starts at, in the file or the scenario, such as `start_at: 2026-03-02T08:00:00+01:00`");
                None
            }
        };
        let started_by = sc
            .started_by
            .as_ref()
            .or(file.started_by.as_ref())
            .map(|s| s.value.clone())
            .unwrap_or_else(|| DEFAULT_STARTED_BY.to_owned());
        let mut roles_map = file_roles.clone();
        roles_map.extend(roles(ck, &sc.roles));
        let mut scripts = file_connectors.clone();
        scripts.extend(connectors(ck, &sc.connectors));
        let input = input(ck, file.input.as_ref(), sc.input.as_ref(), sc.name.loc);
        let start_ts = start.unwrap_or(0);
        let events = super::events::check(ck, sc.events, start_ts, start.is_some());
        if let Some(e) = &sc.expect {
            ck.expect(e);
        }
        if let (Some(rf), Some(last)) = (&sc.run_for, events.last())
            && last.at > start_ts + rf.value.as_millis() as i64
        {
            let msg = format!(
                "`run_for: {}` stops the clock before the last event (line {}): make it longer, or leave it out",
                rf.value, last.loc.line
            );
            ck.error(rf.loc, msg);
        }
        out.push(Scenario {
            name,
            loc,
            start: start_ts,
            started_by,
            input,
            roles: roles_map,
            connectors: scripts,
            events,
            run_for: sc.run_for.map(|d| d.value.as_millis() as i64),
            expect: sc.expect,
        });
    }
    out
}

fn instant(ck: &mut Checker, s: &Sp<String>) -> Option<Ts> {
    let t = parse_instant(&s.value);
    if t.is_none() {
        ck.error(s.loc, format!("`{}` is not an instant: write it in RFC 3339 with an offset, such as `2026-03-02T08:00:00+01:00`", s.value));
    }
    t
}

fn roles(ck: &mut Checker, roles: &format::Roles) -> BTreeMap<String, Vec<String>> {
    let (known, templated) = ck.assigned_roles();
    let mut out = BTreeMap::new();
    for (name, holders) in roles {
        if !known.contains(name) && !templated {
            let hint = crate::workflow::lower::closest(name, known.iter())
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            let list = if known.is_empty() {
                "none".to_owned()
            } else {
                known.iter().cloned().collect::<Vec<_>>().join(", ")
            };
            ck.error(holders.loc, format!("role `{name}` is not assigned any task in workflow `{}`{hint} (its roles: {list})", ck.plan.id));
        }
        for h in &holders.value {
            if !h.value.contains('@') || h.value.contains(char::is_whitespace) {
                ck.error(h.loc, format!("`{}` is not an address: list who holds role `{name}`, such as `anna@kommun.se`", h.value));
            }
        }
        out.insert(
            name.clone(),
            holders
                .value
                .iter()
                .map(|h| h.value.trim().to_lowercase())
                .collect(),
        );
    }
    out
}

fn connectors(
    ck: &mut Checker,
    map: &indexmap::IndexMap<String, Sp<Answers>>,
) -> BTreeMap<String, Vec<Rule>> {
    let mut out = BTreeMap::new();
    for (key, answers) in map {
        ck.call_key(key, answers.loc);
        let list: Vec<Sp<&format::Answer>> = match &answers.value {
            Answers::One(a) => vec![Sp::new(&**a, answers.loc)],
            Answers::Many(v) => v.iter().map(|a| a.as_ref()).collect(),
        };
        if list.is_empty() {
            ck.error(
                answers.loc,
                format!("`{key}` has no answers: give one, such as `{{output: {{}}}}`"),
            );
        }
        let rules = list.into_iter().map(|a| rule(ck, a)).collect();
        out.insert(key.clone(), rules);
    }
    out
}

fn rule(ck: &mut Checker, a: Sp<&format::Answer>) -> Rule {
    if let Some(w) = &a.value.when
        && !w.value.is_object()
    {
        ck.error(w.loc, format!("`when` must be a map of argument values, such as `{{to: [dpo@kommun.se]}}`; found {}", json_kind(&w.value)));
    }
    let fail = a.value.fail.as_ref().map(|f| {
        if let Some(t) = &f.value.times
            && t.value == 0
        {
            ck.error(
                t.loc,
                "`times: 0` never fails: leave `fail` out, or give 1 or more",
            );
        }
        Fail {
            message: f
                .value
                .message
                .clone()
                .unwrap_or_else(|| "scripted failure".to_owned()),
            retryable: f.value.retryable.unwrap_or(true),
            times: f.value.times.as_ref().map(|t| t.value),
            retry_after: f.value.retry_after.map(|d| d.as_secs()),
        }
    });
    Rule {
        when: a.value.when.as_ref().map(|w| w.value.clone()),
        output: a
            .value
            .output
            .as_ref()
            .map(|o| o.value.clone())
            .unwrap_or_else(|| Value::Object(Default::default())),
        fail,
    }
}

fn input(
    ck: &mut Checker,
    shared: Option<&format::Fields>,
    own: Option<&format::Fields>,
    fallback: Loc,
) -> Value {
    let mut map = serde_json::Map::new();
    for fields in [shared, own].into_iter().flatten() {
        for (k, v) in &fields.value {
            map.insert(k.clone(), v.value.clone());
        }
    }
    let value = Value::Object(map);
    let loc = own.or(shared).map(|f| f.loc).unwrap_or(fallback);
    match crate::engine::input::check(ck.plan, &value) {
        Ok(v) => v,
        Err(problems) => {
            for p in problems {
                ck.error(loc, format!("input: {p}"));
            }
            value
        }
    }
}
