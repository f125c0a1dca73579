//! The few SCIM filters (RFC 7644 §3.4.2.2) a file directory answers:
//! one attribute, `eq` or `sw`, one quoted string. `and`, `or`, `not`,
//! other operators and unquoted values are refused with a message that says
//! what is supported.

/// The comparison of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `eq`: equal.
    Eq,
    /// `sw`: starts with.
    Sw,
}

/// `attribute op "value"`, the attribute name as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub attribute: String,
    pub op: Op,
    pub value: String,
}

impl Filter {
    /// Parses `text`; empty or blank is no filter. The error says why.
    pub fn parse(text: &str) -> Result<Option<Filter>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let (attribute, rest) = text
            .split_once(char::is_whitespace)
            .ok_or("expected `attribute op \"value\"`")?;
        let rest = rest.trim_start();
        let (op, rest) = rest
            .split_once(char::is_whitespace)
            .ok_or("expected `attribute op \"value\"`")?;
        let op = match op.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "sw" => Op::Sw,
            other => return Err(format!("the operator `{other}` is not supported")),
        };
        let (value, rest) = quoted(rest.trim_start())?;
        if !rest.trim().is_empty() {
            return Err(format!(
                "`{}` after the value: `and`, `or` and `not` are not supported",
                rest.trim()
            ));
        }
        Ok(Some(Filter {
            attribute: attribute.to_owned(),
            op,
            value,
        }))
    }

    /// Whether this filter is on `attribute` (case-insensitive, as SCIM
    /// attribute names are).
    pub fn is_on(&self, attribute: &str) -> bool {
        self.attribute.eq_ignore_ascii_case(attribute)
    }

    /// Whether `candidate` matches; `exact` compares case-sensitively.
    pub fn matches(&self, candidate: &str, exact: bool) -> bool {
        let fold = |s: &str| {
            if exact {
                s.to_owned()
            } else {
                s.to_lowercase()
            }
        };
        let (candidate, value) = (fold(candidate), fold(&self.value));
        match self.op {
            Op::Eq => candidate == value,
            Op::Sw => candidate.starts_with(&value),
        }
    }
}

/// A JSON-style string at the start of `text` (`\"` and `\\` escaped), and
/// what follows it.
fn quoted(text: &str) -> Result<(String, &str), String> {
    let Some(body) = text.strip_prefix('"') else {
        return Err(format!(
            "the value `{text}` is not a quoted string (write it as \"…\")"
        ));
    };
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\' | '/'))) => value.push(e),
                Some((_, e)) => return Err(format!("the escape `\\{e}` is not supported")),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err("the value's closing quote is missing".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_supported_forms() {
        assert_eq!(Filter::parse("  ").unwrap(), None);
        let f = Filter::parse(r#"userName eq "ada@skole.no""#)
            .unwrap()
            .unwrap();
        assert!(f.is_on("username") && f.op == Op::Eq && f.value == "ada@skole.no");
        assert!(f.matches("Ada@Skole.no", false));
        assert!(!f.matches("Ada@Skole.no", true));
        let f = Filter::parse(r#"displayName SW "tilgang-""#)
            .unwrap()
            .unwrap();
        assert_eq!(f.op, Op::Sw);
        assert!(f.matches("Tilgang-lønn", false));
        assert!(!f.matches("elev-tilgang", false));
        let f = Filter::parse(r#"id eq "a \"b\" \\ c""#).unwrap().unwrap();
        assert_eq!(f.value, r#"a "b" \ c"#);
    }

    #[test]
    fn the_refused_forms_say_why() {
        let e = Filter::parse(r#"userName co "ada""#).unwrap_err();
        assert!(e.contains("`co`"), "{e}");
        let e = Filter::parse(r#"userName eq "a" and id eq "b""#).unwrap_err();
        assert!(e.contains("`and`"), "{e}");
        let e = Filter::parse("userName eq ada").unwrap_err();
        assert!(e.contains("quoted"), "{e}");
        let e = Filter::parse(r#"userName eq "ada"#).unwrap_err();
        assert!(e.contains("closing quote"), "{e}");
        assert!(Filter::parse("userName").is_err());
        assert!(Filter::parse("userName pr").is_err());
        assert!(Filter::parse(r#"id eq "\"#).is_err());
    }
}
