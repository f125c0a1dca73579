//! Structural errors from the YAML parser, made readable.
//!
//! serde-saphyr stops at the first problem of shape (YAML syntax, a wrong
//! type, an unknown or missing key) and words it for Rust programmers
//! (`invalid u32`, `expected sequence start`). Each kind is reworded here
//! for the administrator who wrote the file: what is wrong, where (at the key
//! that owns a missing field, at the second of two duplicate keys), and
//! what to do.

use serde_saphyr::Error as E;

use super::super::diag::Diagnostic;
use super::super::span::Loc;
use super::source::Source;
use super::steps::closest;

/// Turns a parse error into one diagnostic.
pub(super) fn diagnostic(err: &serde_saphyr::Error, text: &str) -> Diagnostic {
    let src = Source::new(text);
    let loc = err
        .location()
        .map(|l| Loc::from_saphyr(&l))
        .filter(Loc::is_known)
        .unwrap_or(Loc::new(1, 1));
    let mut inner = err.without_snippet();
    while let E::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    match inner {
        E::SerdeMissingField { field, .. } => missing_field(&src, loc, field),
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            let hint = closest(field, expected.iter())
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            Diagnostic::new(
                loc,
                format!(
                    "unknown field `{field}`{hint}: the fields here are {}",
                    ticked(expected)
                ),
            )
        }
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let hint = closest(variant, expected.iter())
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            Diagnostic::new(
                loc,
                format!(
                    "`{variant}` is not allowed here{hint}: use one of {}",
                    ticked(expected)
                ),
            )
        }
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => Diagnostic::new(
            loc,
            format!(
                "wrong type: expected {}, found {}",
                expected_words(expected),
                found_words(unexpected)
            ),
        ),
        E::InvalidScalar { ty, .. } => {
            let token = src.token_at(loc);
            let want = expected_words(ty);
            let example = if want.contains("number") {
                ", such as `3`"
            } else {
                ""
            };
            Diagnostic::new(
                loc,
                format!("wrong type: expected {want}{example}, found `{token}`"),
            )
        }
        E::InvalidBooleanStrict { .. } => Diagnostic::new(
            loc,
            format!(
                "wrong type: expected `true` or `false`, found `{}`",
                src.token_at(loc)
            ),
        ),
        E::Unexpected { expected, .. } => unexpected(&src, loc, expected),
        E::DuplicateMappingKey { key, .. } => {
            let key = key
                .clone()
                .unwrap_or_else(|| src.token_at(loc).trim_end_matches(':').to_owned());
            let first = src
                .first_key_line(loc, &key)
                .map(|l| format!(" (first at line {l})"))
                .unwrap_or_default();
            Diagnostic::new(
                loc,
                format!("`{key}` is given twice in the same map{first}: keep one of them"),
            )
        }
        E::UnknownAnchor { .. } => Diagnostic::new(
            loc,
            format!(
                "`{}` refers to an anchor that is not defined above it: define it with `&name` first",
                src.token_at(loc)
            ),
        ),
        other => syntax(&src, loc, other),
    }
}

/// YAML syntax errors and our own messages from custom deserializers.
fn syntax(src: &Source, loc: Loc, err: &E) -> Diagnostic {
    let full = err.to_string();
    let first = full.lines().next().unwrap_or("").trim();
    let first = match first.find(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    let msg = strip_position_prefix(first.trim_start_matches("error: ")).trim();
    if msg.contains("found a tab") || msg.contains("tabs") {
        let at = src.tab_in_indentation().unwrap_or(loc);
        return Diagnostic::new(
            at,
            "a tab is used for indentation: YAML indents with spaces only; replace the tab with spaces",
        );
    }
    let msg = match msg {
        "" => "the file is not valid YAML".to_owned(),
        "unclosed quote" => "this quoted text has no closing quote: add it at the end of the value".to_owned(),
        "mapping values are not allowed in this context" => {
            "a `key: value` is not allowed here: check this line's indentation against the line above, or quote a value that contains `: `".to_owned()
        }
        m if m.starts_with("unclosed bracket") => {
            let (open, close) = if m.contains('{') { ('{', '}') } else { ('[', ']') };
            format!("`{open}` is never closed: add the matching `{close}`")
        }
        m if m.starts_with("did not find expected") => format!("{m}: check the indentation of this line and the lines above"),
        m => m.to_owned(),
    };
    Diagnostic::new(loc, msg)
}

/// `expected sequence start` and friends: a block of the wrong shape.
fn unexpected(src: &Source, loc: Loc, expected: &str) -> Diagnostic {
    let token = src.token_at(loc);
    let msg = match expected {
        "sequence start" => {
            let scalar = !token.is_empty() && !token.starts_with(['{', '[', '|', '>']);
            let example = if scalar && !token.contains(':') {
                format!(", such as `[{token}]` for a list of one")
            } else {
                String::new()
            };
            format!(
                "wrong type: expected a list here (`[a, b]`, or lines starting with `- `){example}"
            )
        }
        "mapping start" => "wrong type: expected a map here (`key: value` lines)".to_owned(),
        "string scalar" => {
            "wrong type: expected a single value here (text), not a list or a map".to_owned()
        }
        other => format!("expected {other}"),
    };
    Diagnostic::new(loc, msg)
}

/// A required field is absent: say whose, at the key that owns the map.
fn missing_field(src: &Source, loc: Loc, field: &str) -> Diagnostic {
    let start = src.map_start(loc);
    let at = src.owner_key(start);
    let owner = if at != start {
        src.token_at(at).trim_end_matches(':').to_owned()
    } else {
        String::new()
    };
    let top = start.column == 1 && !src.line(start.line).unwrap_or("").starts_with('-');
    let what = match src.parent_key(start).as_deref() {
        Some("options") => "this option",
        _ => "this step",
    };
    let msg = match field {
        "id" if top => "the workflow has no `id`: add one at the top, such as `id: incident-escalation`".to_owned(),
        "steps" if top => "the workflow has no `steps`: add a `steps:` list with at least one step".to_owned(),
        "id" if what == "this option" => "this option has no `id`: add the decision's value, such as `id: approve`".to_owned(),
        "id" => format!("{what} has no `id`: every step needs one, such as `id: notify_dpo` (its output is read as `steps.notify_dpo.output`)"),
        "anchor" => format!("clock `{owner}` has no `anchor`: add the instant it runs from, such as `anchor: input.discovered_at`"),
        "duration" => format!("clock `{owner}` has no `duration`: add how long after the anchor the deadline falls, such as `duration: 72h`"),
        "type" => format!("input field `{owner}` has no `type`: add one of string, text, number, integer, boolean, datetime, date, email, list, object"),
        "title" => "the approval has no `title`: add the task's title, shown in the inbox and the mail subject".to_owned(),
        "schedule" => "the cron trigger has no `schedule`: add one such as `schedule: \"0 7 15 1 *\"` or `schedule: \"@yearly\"`".to_owned(),
        "timezone" => "the cron trigger has no `timezone`: add one such as `timezone: Europe/Stockholm`".to_owned(),
        "after" => "the escalation rung has no `after`: add how long after the task opens it applies, such as `after: 4h`".to_owned(),
        "to" => "the escalation rung has no `to`: add whom to escalate to, such as `to: [ciso@kommun.se]`".to_owned(),
        other => format!("`{other}` is missing here: add it"),
    };
    Diagnostic::new(at, msg)
}

/// serde's name of an expected shape, in words.
fn expected_words(expected: &str) -> String {
    let e = expected.trim();
    match e {
        "a sequence" | "sequence" => "a list".to_owned(),
        "a string" | "string" | "a borrowed string" => "text".to_owned(),
        "a map" | "map" => "a map (`key: value` lines)".to_owned(),
        "a boolean" | "bool" | "boolean" => "`true` or `false`".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize"
        | "an integer" => "a whole number".to_owned(),
        "f32" | "f64" | "a number" => "a number".to_owned(),
        "a span-aware newtype wrapper" | "any valid JSON value" => "a value".to_owned(),
        s if s.starts_with("struct ") => "a map (`key: value` lines)".to_owned(),
        s => s.to_owned(),
    }
}

/// serde's description of what was found, in words.
fn found_words(unexpected: &str) -> String {
    let u = unexpected.trim();
    if let Some(s) = u.strip_prefix("string ") {
        return format!("the text {}", s.replace('"', "`"));
    }
    for (prefix, word) in [
        ("integer ", "the number "),
        ("floating point ", "the number "),
        ("boolean ", ""),
    ] {
        if let Some(s) = u.strip_prefix(prefix) {
            return format!("{word}{s}");
        }
    }
    match u {
        "sequence" => "a list".to_owned(),
        "map" => "a map".to_owned(),
        "unit value" | "null" | "unit" => "an empty value".to_owned(),
        other => other.to_owned(),
    }
}

fn ticked(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Drops a leading `line N column M: ` that serde-saphyr puts in messages.
fn strip_position_prefix(msg: &str) -> &str {
    let Some(rest) = msg.strip_prefix("line ") else {
        return msg;
    };
    match rest.find(": ") {
        Some(i)
            if rest[..i]
                .split(' ')
                .all(|w| w == "column" || w.chars().all(|c| c.is_ascii_digit())) =>
        {
            &rest[i + 2..]
        }
        _ => msg,
    }
}
