//! Diagnostics: what is wrong, where, and what to do.
//!
//! Every problem found in a workflow file is a [`Diagnostic`] with a
//! `file:line:column`. Rendering prints the location line first (so editors
//! and CI logs can jump to it) and then a short source snippet with a caret.

use std::fmt::Write as _;

use super::span::Loc;

/// One problem in a workflow file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Diagnostic {
    pub loc: Loc,
    pub message: String,
}

impl Diagnostic {
    pub fn new(loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic {
            loc,
            message: message.into(),
        }
    }
}

/// Renders diagnostics of one file as `path:line:column: message` lines,
/// each followed by a snippet of the source.
pub fn render(path: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = String::new();
    for d in diagnostics {
        let _ = writeln!(out, "{path}:{}:{}: {}", d.loc.line, d.loc.column, d.message);
        if !d.loc.is_known() {
            continue;
        }
        let idx = d.loc.line as usize - 1;
        let Some(text) = lines.get(idx) else { continue };
        let width = d.loc.line.to_string().len();
        let _ = writeln!(out, "{:width$} |", "");
        let _ = writeln!(out, "{} | {}", d.loc.line, text.trim_end());
        let caret_pad: String = text
            .chars()
            .take((d.loc.column as usize).saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(out, "{:width$} | {caret_pad}^", "");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_then_snippet() {
        let src = "id: x\nsteps:\n  - id: a\n";
        let out = render("w.yaml", src, &[Diagnostic::new(Loc::new(3, 9), "bad id")]);
        assert_eq!(
            out,
            "w.yaml:3:9: bad id\n  |\n3 |   - id: a\n  |         ^\n"
        );
    }
}
