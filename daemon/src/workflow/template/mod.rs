//! Templates and expressions, compiled once at load time.
//!
//! Both are MiniJinja, sandboxed: no file system, no includes, a fuel limit on
//! every evaluation. A template (`"Incident {{ input.title }}"`) renders to
//! text; an expression (`input.personal_data and not vars.reported`) evaluates
//! to a JSON value. Each plan owns one [`Templates`] set; plan nodes hold
//! [`Tpl`] and [`Expr`] handles into it, which serialize as their source so
//! that golden tests show what the author wrote.

mod scan;

use std::collections::BTreeSet;
use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use scan::{KNOWN_FILTERS, KNOWN_TESTS, NameKind, filter_and_test_names, locate};

/// The fuel one evaluation may burn: a generous bound that stops runaway loops.
const FUEL: u64 = 200_000;

/// Name of the variable an expression's value is captured in.
const RESULT: &str = "__vakt_result";

/// The variables every template may read. Others come from scope
/// (`item` in a `foreach`, `error` in a handler, `clock` in a clock handler).
pub const ROOT_VARIABLES: &[&str] = &[
    "input", "steps", "vars", "clocks", "instance", "workflow", "now",
];

/// Globals MiniJinja itself provides; they are not data references.
const BUILTIN_GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "loop",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
];

/// A compiled template, rendering to text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tpl {
    name: Arc<str>,
    source: Arc<str>,
}

/// A compiled expression, evaluating to a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    name: Arc<str>,
    source: Arc<str>,
}

impl Tpl {
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl Expr {
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl Serialize for Tpl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// A compile error in a template or expression.
#[derive(Debug, Clone)]
pub struct CompileError {
    pub message: String,
    /// 1-based line inside the template text, when MiniJinja knows it.
    pub line: Option<usize>,
    /// Byte range of the offending token in the text that was compiled.
    pub range: Option<std::ops::Range<usize>>,
}

/// An error while rendering or evaluating (at run time, over instance data).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
}

/// The compiled templates of one plan.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

/// Collects templates while a plan is being lowered.
pub struct TemplatesBuilder {
    env: Environment<'static>,
    count: usize,
}

impl Default for TemplatesBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TemplatesBuilder {
    pub fn new() -> Self {
        TemplatesBuilder {
            env: sandboxed_environment(),
            count: 0,
        }
    }

    fn next_name(&mut self, prefix: &str) -> Arc<str> {
        self.count += 1;
        Arc::from(format!("{prefix}{}", self.count))
    }

    /// Compiles a template.
    pub fn template(&mut self, source: &str) -> Result<Tpl, CompileError> {
        let name = self.next_name("t");
        self.env
            .add_template_owned(name.to_string(), source.to_owned())
            .map_err(|e| {
                let mut e = compile_error(e);
                e.range = locate(source, &e.message, |prefix| {
                    Environment::new()
                        .template_from_str(prefix)
                        .err()
                        .map(|e| compile_error(e).message)
                });
                e
            })?;
        Ok(Tpl {
            name,
            source: Arc::from(source),
        })
    }

    /// Compiles an expression. `{{ … }}` around the whole text is accepted
    /// and dropped, so authors who write braces out of habit are not punished.
    pub fn expression(&mut self, source: &str) -> Result<Expr, CompileError> {
        let inner = strip_braces(source).unwrap_or(source).trim();
        if inner.is_empty() {
            return Err(CompileError {
                message: "the expression is empty".into(),
                line: None,
                range: None,
            });
        }
        // Parse it as an expression first for a precise message, then store
        // it as a template that captures the value. Error ranges are made
        // relative to `source`, of which `inner` is a slice.
        let offset = inner.as_ptr() as usize - source.as_ptr() as usize;
        self.env.compile_expression(inner).map_err(|e| {
            let mut e = compile_error(e);
            e.range = locate(inner, &e.message, |prefix| {
                Environment::new()
                    .compile_expression(prefix)
                    .err()
                    .map(|e| compile_error(e).message)
            })
            .map(|r| r.start + offset..r.end + offset);
            e
        })?;
        let name = self.next_name("e");
        let wrapped = format!("{{% set {RESULT} = ({inner}\n) %}}");
        self.env
            .add_template_owned(name.to_string(), wrapped)
            .map_err(|e| CompileError {
                range: None,
                ..compile_error(e)
            })?;
        Ok(Expr {
            name,
            source: Arc::from(inner),
        })
    }

    /// The data roots a template reads, as dotted paths (`input.title`).
    pub fn template_references(&self, tpl: &Tpl) -> BTreeSet<String> {
        match self.env.get_template(&tpl.name) {
            Ok(t) => filter_globals(t.undeclared_variables(true)),
            Err(_) => BTreeSet::new(),
        }
    }

    /// The data roots an expression reads, as dotted paths.
    pub fn expression_references(&self, expr: &Expr) -> BTreeSet<String> {
        // The stored wrapper reads exactly what the expression reads; asking
        // it only parses, where compiling the expression again would not.
        match self.env.get_template(&expr.name) {
            Ok(t) => filter_globals(t.undeclared_variables(true)),
            Err(_) => BTreeSet::new(),
        }
    }

    /// Filters (`| name`) and tests (`is name`) that do not exist, with the
    /// byte range of each name in `text`. MiniJinja looks them up only when
    /// it runs, so they are found here: each name is tried once in the
    /// sandboxed environment.
    pub fn unknown_filters_and_tests(
        &self,
        text: &str,
        is_expression: bool,
    ) -> Vec<(std::ops::Range<usize>, String)> {
        let mut out = Vec::new();
        for (range, kind) in filter_and_test_names(text, is_expression) {
            let name = &text[range.clone()];
            let probe = match kind {
                NameKind::Filter => format!("{{{{ none | {name} }}}}"),
                NameKind::Test => format!("{{{{ none is {name} }}}}"),
            };
            let unknown = match self.env.render_str(&probe, ()) {
                Err(e) => matches!(
                    e.kind(),
                    minijinja::ErrorKind::UnknownFilter | minijinja::ErrorKind::UnknownTest
                ),
                Ok(_) => false,
            };
            if unknown {
                let (what, known) = match kind {
                    NameKind::Filter => ("filter", KNOWN_FILTERS),
                    NameKind::Test => ("test", KNOWN_TESTS),
                };
                let hint = crate::workflow::lower::closest(name, known.iter())
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                out.push((range, format!("unknown {what} `{name}`{hint}")));
            }
        }
        out
    }

    pub fn finish(self) -> Templates {
        Templates {
            env: Arc::new(self.env),
        }
    }
}

/// Returns the inside of `{{ … }}` when the whole text is one such block.
pub fn strip_braces(text: &str) -> Option<&str> {
    let t = text.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

fn filter_globals(names: std::collections::HashSet<String>) -> BTreeSet<String> {
    names
        .into_iter()
        .filter(|n| {
            let root = n.split('.').next().unwrap_or(n);
            !BUILTIN_GLOBALS.contains(&root)
        })
        .collect()
}

fn compile_error(err: minijinja::Error) -> CompileError {
    let mut message = err
        .detail()
        .map(str::to_owned)
        .unwrap_or_else(|| err.kind().to_string());
    if let Some(detail) = err.detail()
        && !detail.is_empty()
    {
        message = format!("{}: {detail}", err.kind());
    }
    CompileError {
        message,
        line: err.line(),
        range: None,
    }
}

impl Templates {
    /// Renders a template over a context.
    pub fn render(&self, tpl: &Tpl, ctx: &Value) -> Result<String, EvalError> {
        let t = self.env.get_template(&tpl.name).map_err(eval_error)?;
        t.render(ctx).map_err(eval_error)
    }

    /// Evaluates an expression over a context.
    pub fn eval(&self, expr: &Expr, ctx: &Value) -> Result<Value, EvalError> {
        let t = self.env.get_template(&expr.name).map_err(eval_error)?;
        let captured = t.render_captured(ctx).map_err(eval_error)?;
        Ok(captured.state().lookup(RESULT).unwrap_or(Value::UNDEFINED))
    }
}

fn eval_error(err: minijinja::Error) -> EvalError {
    EvalError {
        message: match err.detail() {
            Some(d) => format!("{}: {d}", err.kind()),
            None => err.kind().to_string(),
        },
    }
}

/// The environment every workflow's templates compile in: no loader, no
/// auto-escaping, a fuel limit, undefined values allowed in tests and
/// conditions but not printed.
fn sandboxed_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_filter("local_time", local_time);
    env
}

/// `{{ clocks.dpa.due | local_time("Europe/Stockholm") }}` → `2026-03-05 14:15 CET`.
fn local_time(value: String, tz: Option<String>) -> Result<String, minijinja::Error> {
    let instant = chrono::DateTime::parse_from_rfc3339(&value).map_err(|e| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("local_time: `{value}` is not an RFC 3339 instant ({e})"),
        )
    })?;
    let tz_name = tz.unwrap_or_else(|| "Europe/Stockholm".to_owned());
    let zone: chrono_tz::Tz = tz_name.parse().map_err(|_| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("local_time: `{tz_name}` is not a time zone"),
        )
    })?;
    Ok(instant
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_keep_their_type() {
        let mut b = TemplatesBuilder::new();
        let e = b
            .expression("input.items | length > 1 and input.flag")
            .unwrap();
        let l = b.expression("{{ input.items }}").unwrap();
        let t = b.template("Hej {{ input.name }}!").unwrap();
        let set = b.finish();
        let ctx = Value::from(minijinja::value::Serde(serde_json::json!({
            "input": {"items": [1, 2], "flag": true, "name": "Åsa"}
        })));
        assert_eq!(set.eval(&e, &ctx).unwrap(), Value::from(true));
        assert_eq!(set.eval(&l, &ctx).unwrap().len(), Some(2));
        assert_eq!(set.render(&t, &ctx).unwrap(), "Hej Åsa!");
    }

    #[test]
    fn compile_errors_are_reported() {
        let mut b = TemplatesBuilder::new();
        assert!(b.template("{{ input.name ").is_err());
        assert!(b.expression("input.a ==").is_err());
        assert!(b.expression("").is_err());
    }

    #[test]
    fn references_are_dotted_paths() {
        let mut b = TemplatesBuilder::new();
        let t = b.template("{{ input.title }} {{ steps.ticket.output.id }} {% for x in range(3) %}{{ x }}{% endfor %}").unwrap();
        let refs = b.template_references(&t);
        assert!(refs.contains("input.title"), "{refs:?}");
        assert!(
            refs.iter().any(|r| r.starts_with("steps.ticket")),
            "{refs:?}"
        );
        assert!(!refs.iter().any(|r| r.starts_with("range")), "{refs:?}");
    }

    #[test]
    fn unknown_filters_and_tests_are_found() {
        let b = TemplatesBuilder::new();
        let found = |t: &str, e: bool| -> Vec<String> {
            b.unknown_filters_and_tests(t, e)
                .into_iter()
                .map(|(_, m)| m)
                .collect()
        };
        assert!(
            found(
                "{{ x | upper | trim }} {{ y is defined }} {{ '|nope' }}",
                false
            )
            .is_empty()
        );
        assert!(found("a | b {{ x | local_time('Europe/Oslo') }}", false).is_empty());
        assert_eq!(
            found("{{ x | uper }}", false),
            ["unknown filter `uper` (did you mean `upper`?)"]
        );
        assert_eq!(
            found("x is not definde", true),
            ["unknown test `definde` (did you mean `defined`?)"]
        );
        let text = "{{ a | length }}{{ b | nosuch }}";
        let (range, _) = &b.unknown_filters_and_tests(text, false)[0];
        assert_eq!(&text[range.clone()], "nosuch");
    }

    #[test]
    fn fuel_stops_runaway_templates() {
        let mut b = TemplatesBuilder::new();
        let t = b
            .template(
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            )
            .unwrap();
        let set = b.finish();
        assert!(set.render(&t, &Value::from(())).is_err());
    }

    #[test]
    fn local_time_formats_in_a_zone() {
        assert_eq!(
            local_time(
                "2026-03-05T13:15:00Z".into(),
                Some("Europe/Stockholm".into())
            )
            .unwrap(),
            "2026-03-05 14:15 CET"
        );
    }
}
