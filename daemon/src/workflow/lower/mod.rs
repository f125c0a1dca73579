//! Lowering: authored form → checked, immutable [`Plan`].
//!
//! Parsing stops at the first structural error (YAML syntax, a wrong type,
//! an unknown key): serde cannot go on past one. Everything after that is
//! collected: lowering visits every step, every template and every reference
//! and records each problem as a [`Diagnostic`] before it gives up.
//!
//! The phases: [`ids`] gives every step a [`NodeId`] up front (so jumps can
//! point forward), [`header`] lowers `input`, `triggers` and `clocks`,
//! [`steps`] lowers each step in its flow ([`kinds`] and [`approval`] by kind), [`refs`]
//! checks what templates read, [`graph`] checks the shape of the whole
//! (unreachable steps, loops that never wait, jumps across flows).
//! [`yaml`] rewords parse errors; [`source`] finds the offending token.

mod approval;
mod graph;
mod header;
mod ids;
mod kinds;
mod refs;
mod source;
mod steps;
mod yaml;

use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};

use super::authored::{self, WorkflowFile};
use super::diag::Diagnostic;
use super::plan::{self, Node, NodeId, Plan};
use super::span::{Loc, Sp};
use super::template::{CompileError, Expr, TemplatesBuilder, Tpl};

/// Largest workflow file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Parses and lowers one workflow file.
pub fn lower(source: &str) -> Result<Plan, Vec<Diagnostic>> {
    let file = parse(source).map_err(|d| vec![d])?;
    let mut lowerer = Lowerer::new(&file, source);
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

/// How workflow YAML is read. YAML 1.2 booleans: only `true` and `false`;
/// with YAML 1.1's `yes`, `no`, `y`, `n`, `on` and `off`, `enum: [y, n]` or a
/// country code `NO` would silently become booleans.
pub fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.with_snippet = false;
    options
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
    serde_saphyr::from_str_with_options::<WorkflowFile>(source, yaml_options())
        .map_err(|e| yaml::diagnostic(&e, source))
}

/// Where each step that runs a sub-workflow names it: step id → the
/// location of its `workflow:` value (for the cross-file checks).
pub fn sub_workflow_locs(source: &str) -> HashMap<String, Loc> {
    fn walk(steps: &[Sp<authored::StepDef>], out: &mut HashMap<String, Loc>) {
        for step in steps {
            let s = &step.value;
            if let Some(w) = &s.workflow {
                out.entry(s.id.value.clone()).or_insert(w.loc);
            }
            for block in [&s.then, &s.else_, &s.default, &s.steps]
                .into_iter()
                .flatten()
            {
                walk(&block.value, out);
            }
            for blocks in [&s.cases, &s.parallel].into_iter().flatten() {
                for block in blocks.value.values() {
                    walk(&block.value, out);
                }
            }
            for handler in [&s.on_error, &s.on_timeout].into_iter().flatten() {
                if let authored::Handler::Steps(steps) = &handler.value {
                    walk(steps, out);
                }
            }
        }
    }
    let mut out = HashMap::new();
    if let Ok(file) = parse(source) {
        walk(&file.steps.value, &mut out);
        for clock in file.clocks.values() {
            walk(&clock.value.on_warning, &mut out);
            walk(&clock.value.on_breach, &mut out);
        }
    }
    out
}

pub(crate) use steps::closest;

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
    src: source::Source,
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
    fn new(file: &WorkflowFile, text: &str) -> Self {
        Lowerer {
            diags: Vec::new(),
            src: source::Source::new(text),
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
                .map(|(k, v)| {
                    (
                        k.clone(),
                        self.value_tpl(v, &root, &format!("output `{k}`")),
                    )
                })
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
                self.check_refs(&refs, scope, text, false, what);
                self.check_filters(text, false, what);
                Some(t)
            }
            Err(e) => {
                self.compile_error(text, what, "template", e);
                None
            }
        }
    }

    fn expression(&mut self, text: &Sp<String>, scope: &Scope, what: &str) -> Option<Expr> {
        match self.tb.expression(&text.value) {
            Ok(e) => {
                let refs = self.tb.expression_references(&e);
                self.check_refs(&refs, scope, text, true, what);
                self.check_filters(text, true, what);
                Some(e)
            }
            Err(e) => {
                self.compile_error(text, what, "expression", e);
                None
            }
        }
    }

    /// Filters and tests must exist (MiniJinja would find out only at run time).
    fn check_filters(&mut self, text: &Sp<String>, is_expression: bool, what: &str) {
        for (range, message) in self
            .tb
            .unknown_filters_and_tests(&text.value, is_expression)
        {
            let at = self
                .src
                .point_in(text.loc, &text.value, range.start, range.end);
            self.error(at, format!("{what}: {message}"));
        }
    }

    fn compile_error(&mut self, text: &Sp<String>, what: &str, kind: &str, e: CompileError) {
        let loc = text.loc;
        let at = match (&e.range, e.line) {
            (Some(r), _) => self.src.point_in(loc, &text.value, r.start, r.end),
            (None, Some(l)) if l > 1 => Loc::new(loc.line + l as u32 - 1, loc.column),
            _ => loc,
        };
        let hint = if e.message.contains("end of input") && text.value.contains("{%") {
            " (is an `{% endif %}` or `{% endfor %}` missing?)"
        } else {
            ""
        };
        self.error(
            at,
            format!("{what}: {kind} does not compile: {}{hint}", e.message),
        );
    }

    /// Lowers a JSON value whose strings are templates.
    fn value_tpl(
        &mut self,
        v: &Sp<serde_json::Value>,
        scope: &Scope,
        what: &str,
    ) -> plan::ValueTpl {
        self.value_tpl_at(&v.value, v.loc, scope, what)
    }

    fn value_tpl_at(
        &mut self,
        v: &serde_json::Value,
        loc: Loc,
        scope: &Scope,
        what: &str,
    ) -> plan::ValueTpl {
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
                items
                    .iter()
                    .map(|i| self.value_tpl_at(i, loc, scope, what))
                    .collect(),
            ),
            J::Object(map) if map.values().any(has_template) => plan::ValueTpl::Map(
                map.iter()
                    .map(|(k, i)| {
                        (
                            k.clone(),
                            self.value_tpl_at(i, loc, scope, &format!("{what}.{k}")),
                        )
                    })
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
                .map(|(k, v)| {
                    (
                        k.clone(),
                        self.value_tpl(v, scope, &format!("{what} `{k}`")),
                    )
                })
                .collect(),
        )
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
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
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
            F::Integer => " (a whole number such as `3`)",
            F::Boolean => " (`true` or `false`)",
            _ => "",
        };
        let article = if matches!(t, F::Integer | F::Email | F::Object) {
            "an"
        } else {
            "a"
        };
        Err(format!("{v} is not {article} {}{hint}", type_name(t)))
    }
}
