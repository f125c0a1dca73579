//! Lowering: authored form → checked, immutable [`Plan`].
//!
//! Parsing stops at the first structural error (YAML syntax, a wrong type,
//! an unknown key): serde cannot go on past one. Everything after that is
//! collected: lowering visits every step, every template and every reference
//! and records each problem as a [`Diagnostic`] before it gives up.
//!
//! The phases: [`ids`] gives every step a [`NodeId`] up front (so jumps can
//! point forward), [`steps`] lowers each step in its flow, [`refs`] checks
//! what templates read, [`graph`] checks the shape of the whole (unreachable
//! steps, loops that never wait, jumps across flows).

mod graph;
mod ids;
mod refs;
mod steps;

use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};

use super::authored::{self, WorkflowFile};
use super::diag::Diagnostic;
use super::duration::Duration;
use super::plan::{self, Node, NodeId, Plan};
use super::span::{Loc, Sp};
use super::template::{CompileError, Expr, TemplatesBuilder, Tpl};

/// Largest workflow file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Parses and lowers one workflow file.
pub fn lower(source: &str) -> Result<Plan, Vec<Diagnostic>> {
    let file = parse(source).map_err(|d| vec![d])?;
    let mut lowerer = Lowerer::new(&file);
    let plan = lowerer.run(&file, source);
    match plan {
        Some(plan) if lowerer.diags.is_empty() => Ok(plan),
        _ => {
            let mut diags = lowerer.diags;
            diags.sort();
            diags.dedup();
            Err(diags)
        }
    }
}

/// Parses the YAML into the authored form.
pub fn parse(source: &str) -> Result<WorkflowFile, Diagnostic> {
    if source.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::new(
            Loc::new(1, 1),
            format!(
                "the file is {} bytes; a workflow file may be at most {MAX_FILE_BYTES} bytes: split it into sub-workflows",
                source.len()
            ),
        ));
    }
    if source.trim().is_empty() {
        return Err(Diagnostic::new(
            Loc::new(1, 1),
            "the file is empty: a workflow needs at least `id` and `steps`",
        ));
    }
    serde_saphyr::from_str::<WorkflowFile>(source).map_err(yaml_diagnostic)
}

fn yaml_diagnostic(err: serde_saphyr::Error) -> Diagnostic {
    let loc = err
        .location()
        .map(|l| Loc::from_saphyr(&l))
        .filter(Loc::is_known)
        .unwrap_or(Loc::new(1, 1));
    Diagnostic::new(loc, clean_yaml_message(&err))
}

/// serde-saphyr's message without its own location suffix or snippet, and
/// with serde's Rust-flavoured wording made readable.
fn clean_yaml_message(err: &serde_saphyr::Error) -> String {
    let full = err.to_string();
    let first = full.lines().next().unwrap_or("").trim();
    let first = match first.find(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let first = strip_position_prefix(first.trim_start_matches("error: "));
    let msg = first
        .replace("invalid type: ", "wrong type: ")
        .replace("unknown variant", "unknown value")
        .replace("a span-aware newtype wrapper", "a value")
        .replace("expected sequence start", "wrong type: expected a list here (lines starting with `- `)")
        .replace("invalid u32", "wrong type: expected a whole number")
        .replace("invalid u64", "wrong type: expected a whole number")
        .replace(", set DuplicateKeyPolicy in Options if acceptable", ": a key may appear only once in a map")
        .replace("expected mapping start", "wrong type: expected a map here (`key: value` lines)");
    if msg.is_empty() {
        "the file is not valid YAML".to_owned()
    } else {
        suggest_field(msg)
    }
}

/// Drops a leading `line N column M: ` that serde-saphyr puts in messages.
fn strip_position_prefix(msg: &str) -> &str {
    let Some(rest) = msg.strip_prefix("line ") else { return msg };
    match rest.find(": ") {
        Some(i) if rest[..i].split(' ').all(|w| w == "column" || w.chars().all(|c| c.is_ascii_digit())) => &rest[i + 2..],
        _ => msg,
    }
}

/// Adds "did you mean" to serde's unknown-field message.
fn suggest_field(msg: String) -> String {
    let Some(rest) = msg.strip_prefix("unknown field `") else { return msg };
    let Some((field, tail)) = rest.split_once('`') else { return msg };
    let Some(list) = tail.strip_prefix(", expected one of ").or_else(|| tail.strip_prefix(", expected ")) else {
        return msg;
    };
    let candidates: Vec<String> = list.split(", ").map(|c| c.trim_matches('`').to_owned()).collect();
    match steps::closest(field, candidates.iter()) {
        Some(c) => format!("unknown field `{field}` (did you mean `{c}`?); expected one of {}", candidates.join(", ")),
        None => format!("unknown field `{field}`; expected one of {}", candidates.join(", ")),
    }
}

/// A jump to check once every node knows its thread.
struct PendingJump {
    from: NodeId,
    target: NodeId,
    loc: Loc,
    what: &'static str,
}

/// Names visible to templates in a flow.
#[derive(Clone, Default)]
struct Scope {
    /// Extra roots: foreach item names, `error`, `clock`.
    locals: Vec<String>,
}

impl Scope {
    fn with(&self, name: &str) -> Scope {
        let mut s = self.clone();
        s.locals.push(name.to_owned());
        s
    }
}

/// Lowering state for one file.
struct Lowerer {
    diags: Vec<Diagnostic>,
    tb: TemplatesBuilder,
    /// Filled in by `steps`; `None` only while lowering or after an error.
    nodes: Vec<Option<Node>>,
    /// First node with each step id.
    by_id: HashMap<String, NodeId>,
    /// The next node id `ids::assign` hands out.
    next_alloc: u32,
    /// The node id of each authored step, by address.
    ptrs: HashMap<*const authored::StepDef, NodeId>,
    input_fields: HashMap<String, authored::FieldType>,
    clock_names: BTreeSet<String>,
    var_names: BTreeSet<String>,
    pending: Vec<PendingJump>,
    roles: BTreeSet<String>,
    sub_workflows: BTreeSet<String>,
}

impl Lowerer {
    fn new(file: &WorkflowFile) -> Self {
        Lowerer {
            diags: Vec::new(),
            tb: TemplatesBuilder::new(),
            nodes: Vec::new(),
            by_id: HashMap::new(),
            next_alloc: 0,
            ptrs: HashMap::new(),
            input_fields: file
                .input
                .iter()
                .map(|(k, v)| (k.clone(), v.ty.value))
                .collect(),
            clock_names: file.clocks.keys().cloned().collect(),
            var_names: BTreeSet::new(),
            pending: Vec::new(),
            roles: BTreeSet::new(),
            sub_workflows: BTreeSet::new(),
        }
    }

    fn error(&mut self, loc: Loc, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(loc, message));
    }

    fn run(&mut self, file: &WorkflowFile, source: &str) -> Option<Plan> {
        check_workflow_id(self, &file.id);
        let input = self.lower_input(file);
        let triggers = self.lower_triggers(file);

        ids::assign(self, file);

        // Lower the main flow, then the clock handlers, in the same order as
        // `ids::assign` handed out node ids.
        let root = Scope::default();
        let entry = self.lower_block(&file.steps.value, None, &root, file.steps.loc, "steps");
        let clocks = self.lower_clocks(file);

        let output = file.output.as_ref().map(|o| {
            let map = o
                .value
                .iter()
                .map(|(k, v)| (k.clone(), self.value_tpl(v, &root, &format!("output `{k}`"))))
                .collect();
            plan::ValueTpl::Map(map)
        });

        if !self.diags.is_empty() {
            return None;
        }
        let nodes: Vec<Node> = std::mem::take(&mut self.nodes)
            .into_iter()
            .collect::<Option<Vec<_>>>()?;
        graph::check(self, &nodes, entry, &clocks);
        if !self.diags.is_empty() {
            return None;
        }

        let templates = std::mem::take(&mut self.tb).finish();
        Some(Plan {
            id: file.id.value.clone(),
            title: file
                .title
                .as_ref()
                .map(|t| t.value.clone())
                .unwrap_or_else(|| file.id.value.clone()),
            description: file.description.as_ref().map(|d| d.value.clone()),
            hash: hex::encode(Sha256::digest(source.as_bytes())),
            input,
            triggers,
            clocks,
            entry,
            nodes,
            output,
            retention: file.retention.as_ref().map(|r| r.value),
            roles: self.roles.iter().cloned().collect(),
            sub_workflows: self.sub_workflows.iter().cloned().collect(),
            templates,
        })
    }

    // ----- templates -----

    fn template(&mut self, text: &Sp<String>, scope: &Scope, what: &str) -> Option<Tpl> {
        match self.tb.template(&text.value) {
            Ok(t) => {
                let refs = self.tb.template_references(&t);
                self.check_refs(&refs, scope, text.loc, what);
                Some(t)
            }
            Err(e) => {
                self.compile_error(text.loc, what, "template", e);
                None
            }
        }
    }

    fn expression(&mut self, text: &Sp<String>, scope: &Scope, what: &str) -> Option<Expr> {
        match self.tb.expression(&text.value) {
            Ok(e) => {
                let refs = self.tb.expression_references(&e);
                self.check_refs(&refs, scope, text.loc, what);
                Some(e)
            }
            Err(e) => {
                self.compile_error(text.loc, what, "expression", e);
                None
            }
        }
    }

    fn compile_error(&mut self, loc: Loc, what: &str, kind: &str, e: CompileError) {
        let at = match e.line {
            Some(l) if l > 1 => Loc::new(loc.line + l as u32 - 1, loc.column),
            _ => loc,
        };
        self.error(at, format!("{what}: {kind} does not compile: {}", e.message));
    }

    /// Lowers a JSON value whose strings are templates.
    fn value_tpl(&mut self, v: &Sp<serde_json::Value>, scope: &Scope, what: &str) -> plan::ValueTpl {
        self.value_tpl_at(&v.value, v.loc, scope, what)
    }

    fn value_tpl_at(&mut self, v: &serde_json::Value, loc: Loc, scope: &Scope, what: &str) -> plan::ValueTpl {
        use serde_json::Value as J;
        match v {
            J::String(s) if s.contains("{{") || s.contains("{%") => {
                let text = Sp::new(s.clone(), loc);
                if let Some(inner) = super::template::strip_braces(s) {
                    let inner = Sp::new(inner.to_owned(), loc);
                    match self.expression(&inner, scope, what) {
                        Some(e) => plan::ValueTpl::Value(plan::ExprValue(e)),
                        None => plan::ValueTpl::Literal(J::Null),
                    }
                } else {
                    match self.template(&text, scope, what) {
                        Some(t) => plan::ValueTpl::Text(t),
                        None => plan::ValueTpl::Literal(J::Null),
                    }
                }
            }
            J::Array(items) if items.iter().any(has_template) => plan::ValueTpl::List(
                items.iter().map(|i| self.value_tpl_at(i, loc, scope, what)).collect(),
            ),
            J::Object(map) if map.values().any(has_template) => plan::ValueTpl::Map(
                map.iter()
                    .map(|(k, i)| (k.clone(), self.value_tpl_at(i, loc, scope, &format!("{what}.{k}"))))
                    .collect(),
            ),
            other => plan::ValueTpl::Literal(other.clone()),
        }
    }

    fn value_map(
        &mut self,
        map: &Sp<indexmap::IndexMap<String, Sp<serde_json::Value>>>,
        scope: &Scope,
        what: &str,
    ) -> plan::ValueTpl {
        plan::ValueTpl::Map(
            map.value
                .iter()
                .map(|(k, v)| (k.clone(), self.value_tpl(v, scope, &format!("{what} `{k}`"))))
                .collect(),
        )
    }

    // ----- header sections -----

    fn lower_input(&mut self, file: &WorkflowFile) -> Vec<plan::InputField> {
        let mut out = Vec::new();
        for (name, field) in &file.input {
            if !is_identifier(name) {
                self.error(
                    field.loc,
                    format!("input field `{name}` is not a valid name: use lower-case letters, digits and `_`, starting with a letter (it is read as `input.{name}`)"),
                );
            }
            let f = &field.value;
            let ty = f.ty.value;
            if let Some(items) = &f.items
                && ty != authored::FieldType::List
            {
                self.error(items.loc, format!("input field `{name}`: `items` applies only to `type: list`"));
            }
            if let Some(default) = &f.default
                && let Err(why) = check_type(ty, &default.value)
            {
                self.error(default.loc, format!("input field `{name}`: the default {why}"));
            }
            if let Some(allowed) = &f.allowed {
                for v in &allowed.value {
                    if let Err(why) = check_type(ty, v) {
                        self.error(allowed.loc, format!("input field `{name}`: `enum` value {why}"));
                    }
                }
                if let Some(default) = &f.default
                    && !allowed.value.contains(&default.value)
                {
                    self.error(default.loc, format!("input field `{name}`: the default {} is not one of the `enum` values", default.value));
                }
            }
            out.push(plan::InputField {
                name: name.clone(),
                ty,
                required: f
                    .required
                    .as_ref()
                    .map(|r| r.value)
                    .unwrap_or(f.default.is_none()),
                default: f.default.as_ref().map(|d| d.value.clone()),
                allowed: f.allowed.as_ref().map(|a| a.value.clone()),
                items: f.items.as_ref().map(|i| i.value),
                description: f.description.clone(),
            });
        }
        out
    }

    fn lower_triggers(&mut self, file: &WorkflowFile) -> plan::Triggers {
        let Some(t) = &file.triggers else {
            return plan::Triggers {
                api: true,
                cron: Vec::new(),
            };
        };
        let api = t.api.as_ref().map(|a| a.value).unwrap_or(true);
        let mut cron = Vec::new();
        for (i, c) in t.value.cron.iter().enumerate() {
            let parser = croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Disallowed)
                .build();
            let schedule = c.schedule.value.trim();
            let parsed = match parser.parse(schedule) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.error(c.schedule.loc, format!("`{schedule}` is not a cron schedule ({e}): write 5 fields `minute hour day-of-month month day-of-week`, such as `0 7 15 1 *`, or a macro such as `@yearly`"));
                    None
                }
            };
            let tz = match c.timezone.value.parse::<chrono_tz::Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    self.error(c.timezone.loc, format!("`{}` is not a known time zone: use an IANA name such as `Europe/Oslo` or `Europe/Stockholm`", c.timezone.value));
                    None
                }
            };
            let input = c
                .input
                .as_ref()
                .map(|i| i.value.clone())
                .unwrap_or(serde_json::Value::Object(Default::default()));
            self.check_trigger_input(&input, c.input.as_ref().map(|i| i.loc).unwrap_or(c.loc), file);
            if let (Some(cron_), Some(timezone)) = (parsed, tz) {
                cron.push(plan::CronTrigger {
                    name: format!("cron[{i}]"),
                    schedule: schedule.to_owned(),
                    timezone,
                    cron: cron_,
                    catch_up: c.catch_up.as_ref().map(|c| c.value).unwrap_or(authored::CatchUp::Latest),
                    input,
                });
            }
        }
        if !api && t.value.cron.is_empty() {
            self.error(t.loc, "no way to start this workflow: `api: false` and no `cron` trigger");
        }
        plan::Triggers { api, cron }
    }

    /// A scheduled start has nobody to supply missing input: check it now.
    fn check_trigger_input(&mut self, input: &serde_json::Value, loc: Loc, file: &WorkflowFile) {
        let Some(map) = input.as_object() else {
            self.error(loc, "a trigger's `input` must be a map of input fields");
            return;
        };
        for key in map.keys() {
            if !file.input.contains_key(key) {
                self.error(loc, format!("trigger input `{key}` is not a field of this workflow's `input`"));
            }
        }
        for (name, field) in &file.input {
            let required = field.value.required.as_ref().map(|r| r.value).unwrap_or(field.value.default.is_none());
            if required && !map.contains_key(name) {
                self.error(loc, format!("the cron trigger does not give the required input field `{name}`: add it to the trigger's `input` or give the field a `default`"));
            } else if let Some(v) = map.get(name)
                && let Err(why) = check_type(field.value.ty.value, v)
            {
                self.error(loc, format!("trigger input `{name}` {why}"));
            }
        }
    }

    fn lower_clocks(&mut self, file: &WorkflowFile) -> Vec<plan::Clock> {
        let mut out = Vec::new();
        for (name, def) in &file.clocks {
            if !is_identifier(name) {
                self.error(def.loc, format!("clock name `{name}` is not valid: use lower-case letters, digits and `_` (it is read as `clocks.{name}`)"));
            }
            let root = Scope::default();
            let c = &def.value;
            let anchor = if self.check_anchor(name, &c.anchor) {
                self.expression(&c.anchor, &root, &format!("clock `{name}` anchor"))
            } else {
                None
            };
            let when = c.when.as_ref().and_then(|w| self.expression(w, &root, &format!("clock `{name}` when")));
            let mut warn_before: Vec<Duration> = Vec::new();
            for w in &c.warn_before {
                if w.value >= c.duration.value {
                    self.error(w.loc, format!("clock `{name}` warns {} before a deadline only {} after the anchor: the warning would come before the clock starts", w.value, c.duration.value));
                }
                warn_before.push(w.value);
            }
            warn_before.sort_by(|a, b| b.cmp(a));
            warn_before.dedup();
            let stopped_by = c.stopped_by.as_ref().and_then(|s| match self.by_id.get(&s.value) {
                Some(id) => Some(*id),
                None => {
                    self.error(s.loc, format!("clock `{name}` is stopped by step `{}`, which does not exist", s.value));
                    None
                }
            });
            let handler_scope = root.with("clock");
            let on_warning = if c.on_warning.is_empty() {
                None
            } else {
                if c.warn_before.is_empty() {
                    self.error(def.loc, format!("clock `{name}` has `on_warning` steps but no `warn_before` times"));
                }
                self.lower_block(&c.on_warning, None, &handler_scope, def.loc, "on_warning")
            };
            let on_breach = if c.on_breach.is_empty() {
                None
            } else {
                self.lower_block(&c.on_breach, None, &handler_scope, def.loc, "on_breach")
            };
            if let Some(anchor) = anchor {
                out.push(plan::Clock {
                    name: name.clone(),
                    title: c.title.as_ref().map(|t| t.value.clone()).unwrap_or_else(|| name.clone()),
                    anchor,
                    duration: c.duration.value,
                    when,
                    warn_before,
                    stopped_by,
                    on_warning,
                    on_breach,
                });
            }
        }
        out
    }

    /// A clock anchored on an input field needs that field, as a datetime.
    /// Returns false when it reported a problem.
    fn check_anchor(&mut self, clock: &str, anchor: &Sp<String>) -> bool {
        let text = super::template::strip_braces(&anchor.value).unwrap_or(&anchor.value).trim();
        let Some(field) = text.strip_prefix("input.") else { return true };
        if !is_identifier(field) {
            return true;
        }
        match self.input_fields.get(field) {
            None => {
                let hint = steps::closest(field, self.input_fields.keys())
                    .map(|c| format!(" (did you mean `input.{c}`?)"))
                    .unwrap_or_default();
                self.error(anchor.loc, format!("clock `{clock}` is anchored on `input.{field}`, which is not declared in `input`{hint}: the anchor must be a `type: datetime` input field"));
                false
            }
            Some(authored::FieldType::Datetime) => true,
            Some(other) => {
                self.error(anchor.loc, format!("clock `{clock}` is anchored on `input.{field}` of type {}: an anchor must be `type: datetime`", type_name(*other)));
                false
            }
        }
    }
}

fn has_template(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains("{{") || s.contains("{%"),
        serde_json::Value::Array(a) => a.iter().any(has_template),
        serde_json::Value::Object(m) => m.values().any(has_template),
        _ => false,
    }
}

fn check_workflow_id(l: &mut Lowerer, id: &Sp<String>) {
    let ok = !id.value.is_empty()
        && id.value.len() <= 64
        && id.value.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        l.error(id.loc, format!("workflow id `{}` is not valid: use lower-case letters, digits, `-` and `_`, starting with a letter, at most 64 characters", id.value));
    }
}

/// `[a-z][a-z0-9_]*`: names that templates read as `steps.<name>`.
pub fn is_identifier(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn type_name(t: authored::FieldType) -> &'static str {
    use authored::FieldType as F;
    match t {
        F::String => "string",
        F::Text => "text",
        F::Number => "number",
        F::Integer => "integer",
        F::Boolean => "boolean",
        F::Datetime => "datetime",
        F::Date => "date",
        F::Email => "email",
        F::List => "list",
        F::Object => "object",
    }
}

/// Checks a JSON value against an input field type (shared with the engine's
/// input validation at start).
pub fn check_type(t: authored::FieldType, v: &serde_json::Value) -> Result<(), String> {
    use authored::FieldType as F;
    use serde_json::Value as J;
    let ok = match (t, v) {
        (F::String | F::Text, J::String(_)) => true,
        (F::Email, J::String(s)) => {
            let mut parts = s.splitn(2, '@');
            let (local, domain) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            !local.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace)
        }
        (F::Number, J::Number(_)) => true,
        (F::Integer, J::Number(n)) => n.is_i64() || n.is_u64(),
        (F::Boolean, J::Bool(_)) => true,
        (F::Datetime, J::String(s)) => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        (F::Date, J::String(s)) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        (F::List, J::Array(_)) => true,
        (F::Object, J::Object(_)) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        let hint = match t {
            F::Datetime => " (an RFC 3339 instant such as `2026-03-02T08:15:00+01:00`)",
            F::Date => " (such as `2026-03-02`)",
            F::Email => " (an address such as `name@kommun.se`)",
            _ => "",
        };
        Err(format!("{v} is not a {}{hint}", type_name(t)))
    }
}
