//! Finding the offending token in the source text.
//!
//! serde-saphyr gives the location of each value. Many problems are better
//! shown elsewhere: at the key that owns a block (`approval:` rather than its
//! first field), or at one token inside a string (`input.titel` inside a
//! template, the `13` of a cron line). These helpers map a value's location
//! and an offset in its text to a line and column; when unsure they return
//! the value's own location, never a wrong one.

use super::super::span::Loc;

/// The lines of a workflow file.
pub(super) struct Source {
    lines: Vec<String>,
}

impl Source {
    pub fn new(text: &str) -> Self {
        Source {
            lines: text.lines().map(str::to_owned).collect(),
        }
    }

    pub fn line(&self, n: u32) -> Option<&str> {
        self.lines
            .get((n as usize).checked_sub(1)?)
            .map(String::as_str)
    }

    /// The text before `loc` on its line.
    fn before(&self, loc: Loc) -> Option<String> {
        let line = self.line(loc.line)?;
        Some(
            line.chars()
                .take((loc.column as usize).saturating_sub(1))
                .collect(),
        )
    }

    /// The key a value belongs to: the key before it on the same line
    /// (`retry: {…}`), or, for a block that starts on a line of its own, the
    /// `key:` line just above it with less indentation. Returns `loc` itself
    /// for list items and whenever the layout is not that simple.
    pub fn owner_key(&self, loc: Loc) -> Loc {
        let Some(before) = self.before(loc) else {
            return loc;
        };
        let trimmed = before.trim_end();
        if let Some(key) = trimmed.strip_suffix(':') {
            // The separators are all one byte long.
            let start = key
                .rfind(|c: char| c.is_whitespace() || matches!(c, '{' | ',' | '['))
                .map_or(0, |i| i + 1);
            return Loc::new(loc.line, key[..start].chars().count() as u32 + 1);
        }
        if !trimmed.is_empty() {
            return loc;
        }
        let indent = before.chars().count();
        for n in (1..loc.line).rev() {
            let Some(text) = self.line(n) else { break };
            let content = strip_comment(text).trim_end();
            if content.trim().is_empty() {
                continue;
            }
            let ind = content.chars().take_while(|c| *c == ' ').count();
            if ind >= indent || !content.ends_with(':') {
                return loc;
            }
            let rest = content[ind..].trim_start_matches(['-', ' ']);
            let col = content.chars().count() - rest.chars().count() + 1;
            return Loc::new(n, col as u32);
        }
        loc
    }

    /// The first key of the block map that has a key at `loc` (serde reports
    /// a missing field where the map ends, a user looks where it starts).
    pub fn map_start(&self, loc: Loc) -> Loc {
        let col = loc.column as usize;
        let mut start = loc;
        for n in (1..=loc.line).rev() {
            let Some(line) = self.line(n) else { break };
            let content = strip_comment(line);
            if content.trim().is_empty() {
                continue;
            }
            let lead = content.chars().take_while(|c| *c == ' ').count();
            let item = content
                .chars()
                .take_while(|c| *c == ' ' || *c == '-')
                .count();
            if item + 1 == col && content.trim_start().starts_with('-') {
                // `- key: …`: the map begins on this list item.
                return Loc::new(n, col as u32);
            }
            match (lead + 1).cmp(&col) {
                std::cmp::Ordering::Equal => start = Loc::new(n, col as u32),
                std::cmp::Ordering::Greater => {}
                std::cmp::Ordering::Less => return start,
            }
        }
        start
    }

    /// The key that holds the list item or map written at `loc`: `steps`
    /// for a step, `options` for an option.
    pub fn parent_key(&self, loc: Loc) -> Option<String> {
        let line = self.line(loc.line)?;
        let before: String = line
            .chars()
            .take((loc.column as usize).saturating_sub(1))
            .collect();
        let is_item = before.trim_start().starts_with('-');
        let ind = if is_item {
            before.chars().take_while(|c| *c == ' ').count()
        } else {
            before.chars().count()
        };
        for n in (1..loc.line).rev() {
            let content = strip_comment(self.line(n)?).trim_end();
            if content.trim().is_empty() {
                continue;
            }
            let lead = content.chars().take_while(|c| *c == ' ').count();
            let is_parent =
                lead < ind || (is_item && lead == ind && !content.trim_start().starts_with('-'));
            if is_parent {
                let key = content.trim_start().trim_start_matches(['-', ' ']);
                return key.strip_suffix(':').map(|k| k.trim().to_owned());
            }
        }
        None
    }

    /// Where `key` is written, given the location of its value; falls back
    /// to the value's location.
    pub fn key_of(&self, value: Loc, key: &str) -> Loc {
        let at = self.owner_key(value);
        let text: String = self
            .line(at.line)
            .map(|l| l.chars().skip(at.column as usize - 1).collect())
            .unwrap_or_default();
        let text = text.trim_start_matches(['"', '\'']);
        if at != value && text.starts_with(key) {
            at
        } else {
            value
        }
    }

    /// The location of `value[start..end]`, for a value written at `loc`.
    ///
    /// The token is searched for in the source lines the value spans, and
    /// the same occurrence is picked (the third `x` in the value is the
    /// third `x` in the source). An empty range (an error at the end of the
    /// text) points just after the last token before it.
    pub fn point_in(&self, loc: Loc, value: &str, start: usize, end: usize) -> Loc {
        let start = floor_char(value, start.min(value.len()));
        let end = floor_char(value, end.clamp(start, value.len()));
        let token = value[start..end]
            .split('\n')
            .next()
            .unwrap_or("")
            .trim_end();
        if !token.is_empty() {
            let nth = value[..start].matches(token).count();
            return self.find_nth(loc, value, token, nth).unwrap_or(loc);
        }
        // End of the text: point after the last word.
        let head = value[..start].trim_end();
        let last: String = head
            .chars()
            .rev()
            .take_while(|c| !c.is_whitespace())
            .collect();
        let last: String = last.chars().rev().collect();
        if last.is_empty() {
            return loc;
        }
        let nth = head.matches(last.as_str()).count() - 1;
        match self.find_nth(loc, value, &last, nth) {
            Some(at) => Loc::new(at.line, at.column + last.chars().count() as u32 + 1),
            None => loc,
        }
    }

    /// The `nth` (0-based) occurrence of `token` from `loc` on, within the
    /// lines the value can span.
    fn find_nth(&self, loc: Loc, value: &str, token: &str, nth: usize) -> Option<Loc> {
        let span = value.matches('\n').count() as u32 + 2;
        let mut seen = 0;
        for n in loc.line..=loc.line + span {
            let line = self.line(n)?;
            let skip = if n == loc.line {
                loc.column as usize - 1
            } else {
                0
            };
            let from = line
                .char_indices()
                .nth(skip)
                .map(|(i, _)| i)
                .unwrap_or(line.len());
            for (i, _) in line[from..].match_indices(token) {
                if seen == nth {
                    let col = line[..from + i].chars().count() + 1;
                    return Some(Loc::new(n, col as u32));
                }
                seen += 1;
            }
        }
        None
    }

    /// The first tab in the indentation of a line, if any.
    pub fn tab_in_indentation(&self) -> Option<Loc> {
        self.lines.iter().enumerate().find_map(|(i, l)| {
            let lead: String = l.chars().take_while(|c| *c == ' ' || *c == '\t').collect();
            lead.find('\t')
                .map(|c| Loc::new(i as u32 + 1, c as u32 + 1))
        })
    }

    /// The line where `key` was first given in the map that holds the key
    /// written at `dup`.
    pub fn first_key_line(&self, dup: Loc, key: &str) -> Option<u32> {
        let col = dup.column as usize - 1;
        for n in (1..dup.line).rev() {
            let line = self.line(n)?;
            let content = strip_comment(line);
            if content.trim().is_empty() {
                continue;
            }
            let ind = content
                .chars()
                .take_while(|c| *c == ' ' || *c == '-')
                .count();
            let rest: String = content.chars().skip(col).collect();
            if ind == col
                && let Some(after) = rest.strip_prefix(key)
                && after.trim_start().starts_with(':')
            {
                return Some(n);
            }
            if content.chars().take_while(|c| *c == ' ').count() < col {
                return None;
            }
        }
        None
    }

    /// The plain token written at `loc` (up to the end of the line or a comment).
    pub fn token_at(&self, loc: Loc) -> String {
        let Some(line) = self.line(loc.line) else {
            return String::new();
        };
        let rest: String = line.chars().skip(loc.column as usize - 1).collect();
        strip_comment(&rest).trim().to_owned()
    }
}

/// The offset of `token` in a template or expression as a reference to data:
/// not part of a longer name, and (in a template) inside `{{ }}` or `{% %}`.
pub(super) fn find_reference(text: &str, token: &str, is_expression: bool) -> Option<usize> {
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    text.match_indices(token).map(|(i, _)| i).find(|&i| {
        let before = text[..i].chars().next_back();
        let after = text[i + token.len()..].chars().next();
        let bounded =
            !before.is_some_and(ident) && !after.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let in_code = is_expression || {
            let open = text[..i].rfind("{{").max(text[..i].rfind("{%"));
            let close = text[..i].rfind("}}").max(text[..i].rfind("%}"));
            open.is_some() && open > close
        };
        bounded && in_code
    })
}

fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "steps:\n  - id: a\n    retry: {attempts: 0}\n    approval:\n      title: T\n    with: {to: x}\n";

    #[test]
    fn owner_key_finds_the_key_of_a_block_or_a_value() {
        let s = Source::new(SRC);
        assert_eq!(s.owner_key(Loc::new(5, 7)), Loc::new(4, 5));
        assert_eq!(s.owner_key(Loc::new(3, 12)), Loc::new(3, 5));
        assert_eq!(s.owner_key(Loc::new(6, 16)), Loc::new(6, 12));
        assert_eq!(s.owner_key(Loc::new(6, 11)), Loc::new(6, 5));
        assert_eq!(s.key_of(Loc::new(6, 11), "with"), Loc::new(6, 5));
        assert_eq!(s.key_of(Loc::new(6, 11), "other"), Loc::new(6, 11));
        // A list item stays where it is.
        assert_eq!(s.owner_key(Loc::new(2, 5)), Loc::new(2, 5));
    }

    #[test]
    fn map_start_and_parent_key() {
        let s =
            Source::new("steps:\n  - name: x\n    call: y\n    with:\n      to: z\n  - id: b\n");
        assert_eq!(s.map_start(Loc::new(4, 5)), Loc::new(2, 5));
        assert_eq!(s.map_start(Loc::new(6, 5)), Loc::new(6, 5));
        assert_eq!(s.parent_key(Loc::new(2, 5)).as_deref(), Some("steps"));
        let s = Source::new("clocks:\n  dpa:\n    duration: 72h\n    title: t\n");
        assert_eq!(s.map_start(Loc::new(4, 5)), Loc::new(3, 5));
        assert_eq!(s.owner_key(Loc::new(3, 5)), Loc::new(2, 3));
    }

    #[test]
    fn point_in_finds_the_same_occurrence() {
        let s = Source::new("    subject: \"{{ a }} and {{ a }}\"\n");
        let value = "{{ a }} and {{ a }}";
        assert_eq!(s.point_in(Loc::new(1, 14), value, 15, 16), Loc::new(1, 30));
        assert_eq!(s.point_in(Loc::new(1, 14), value, 3, 4), Loc::new(1, 18));
        let s = Source::new("    if: a >=\n");
        assert_eq!(s.point_in(Loc::new(1, 9), "a >=", 4, 4), Loc::new(1, 14));
    }

    #[test]
    fn references_are_found_in_code_only() {
        assert_eq!(
            find_reference("user {{ user.name }}", "user", false),
            Some(8)
        );
        assert_eq!(
            find_reference("input.ab and input.a", "input.a", true),
            Some(13)
        );
    }
}
