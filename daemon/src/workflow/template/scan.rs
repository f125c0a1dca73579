//! Scanning template text for what MiniJinja tells only at run time or
//! only with its `debug` feature: where a syntax error is, and which filter
//! and test names a template uses.

use std::ops::Range;

/// The byte range of the token a syntax error is about.
///
/// MiniJinja gives the position only with its `debug` feature, so it is
/// found here: the shortest prefix of the text that fails with the same
/// message ends with the offending token. Errors at the end of the input
/// point just after the text.
pub(super) fn locate(
    text: &str,
    message: &str,
    fails: impl Fn(&str) -> Option<String>,
) -> Option<Range<usize>> {
    if message.contains("end of input") || message.contains("end of template") {
        return Some(text.len()..text.len());
    }
    let end = text
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .find(|&end| fails(&text[..end]).as_deref() == Some(message))?;
    let head = &text[..end];
    let unexpected = message.split_once("unexpected ").map_or("", |(_, r)| r);
    let token = if let Some(quoted) = unexpected.strip_prefix('`') {
        quoted.split_once('`').map_or("", |(t, _)| t).to_owned()
    } else if unexpected.starts_with("end of variable block") {
        "}}".to_owned()
    } else if unexpected.starts_with("end of block") {
        "%}".to_owned()
    } else {
        // An identifier, number or string: the word the prefix ends with.
        head.chars()
            .rev()
            .take_while(|c| !c.is_whitespace() && !"{}()[],".contains(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    };
    let start = if !token.is_empty() && head.ends_with(&token) {
        end - token.len()
    } else {
        end.saturating_sub(1)
    };
    Some(start..end)
}

/// Filter names, for suggestions (the sandboxed environment decides what exists).
pub(super) const KNOWN_FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "local_time",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "zip",
];

/// Test names, for suggestions.
pub(super) const KNOWN_TESTS: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "escaped",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "gt",
    "in",
    "int",
    "integer",
    "iterable",
    "le",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

#[derive(Clone, Copy)]
pub(super) enum NameKind {
    Filter,
    Test,
}

/// The names after `|` (filters) and after `is` / `is not` (tests) in the
/// code of a template (inside `{{ }}` and `{% %}`) or of an expression
/// (all of it), skipping string literals.
pub(super) fn filter_and_test_names(
    text: &str,
    is_expression: bool,
) -> Vec<(Range<usize>, NameKind)> {
    let bytes = text.as_bytes();
    let ident_at = |i: usize| {
        let end = bytes[i..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .map_or(bytes.len(), |n| i + n);
        (end > i && !bytes[i].is_ascii_digit()).then_some(end)
    };
    let skip_space = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut in_code = is_expression;
    let mut i = 0;
    while i < bytes.len() {
        let pair = &bytes[i..(i + 2).min(bytes.len())];
        if !in_code {
            in_code = pair == b"{{" || pair == b"{%";
            i += if in_code { 2 } else { 1 };
            continue;
        }
        match bytes[i] {
            b'}' | b'%' if !is_expression && (pair == b"}}" || pair == b"%}") => {
                in_code = false;
                i += 2;
            }
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'|' => {
                let start = skip_space(i + 1);
                match ident_at(start.min(bytes.len())) {
                    Some(end) => {
                        out.push((start..end, NameKind::Filter));
                        i = end;
                    }
                    None => i += 1,
                }
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let end = ident_at(i).unwrap_or(i + 1);
                let word_start = i == 0
                    || !(bytes[i - 1].is_ascii_alphanumeric()
                        || bytes[i - 1] == b'_'
                        || bytes[i - 1] == b'.');
                if word_start && &text[i..end] == "is" {
                    let mut start = skip_space(end);
                    if text[start..].starts_with("not") && ident_at(start) == Some(start + 3) {
                        start = skip_space(start + 3);
                    }
                    if let Some(name_end) = ident_at(start.min(bytes.len())) {
                        out.push((start..name_end, NameKind::Test));
                        i = name_end;
                        continue;
                    }
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}
