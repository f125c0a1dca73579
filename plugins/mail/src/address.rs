//! Mailboxes: `addr@domain` or `Display Name <addr@domain>`.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct InvalidAddress(String);

impl fmt::Display for InvalidAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Mailbox {
    pub fn parse(text: &str) -> Result<Mailbox, InvalidAddress> {
        let text = text.trim();
        let (name, address) = match (text.rfind('<'), text.ends_with('>')) {
            (Some(open), true) => {
                let name = text[..open].trim().trim_matches('"').trim();
                (
                    Some(name).filter(|n| !n.is_empty()),
                    &text[open + 1..text.len() - 1],
                )
            }
            _ => (None, text),
        };
        let address = address.trim();
        check_address(address).map_err(|why| {
            InvalidAddress(format!(
                "`{}` is not an e-mail address: {why}",
                printable(text)
            ))
        })?;
        Ok(Mailbox {
            name: name.map(clean_name),
            address: address.to_owned(),
        })
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map_or("localhost", |(_, d)| d)
    }
}

/// A pragmatic check: one `@`, a local part and a dotted-or-not domain, no
/// whitespace, control characters or characters that would break a header.
fn check_address(address: &str) -> Result<(), &'static str> {
    if address.is_empty() {
        return Err("it is empty");
    }
    if address.len() > 254 {
        return Err("it is longer than 254 characters");
    }
    if address.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(
                c,
                '<' | '>' | ',' | ';' | '"' | '(' | ')' | '\\' | '[' | ']'
            )
    }) {
        return Err("it contains whitespace or a character not allowed in an address");
    }
    let (local, domain) = address.rsplit_once('@').ok_or("it has no @")?;
    if local.is_empty() || local.contains('@') {
        return Err("the part before the @ is empty or contains another @");
    }
    if domain.is_empty()
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err("misplaced dots or an empty domain");
    }
    Ok(())
}

/// A display name on one line.
fn clean_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bare_and_named_addresses() {
        assert_eq!(
            Mailbox::parse(" it@kommun.se ").unwrap(),
            Mailbox {
                name: None,
                address: "it@kommun.se".into()
            }
        );
        assert_eq!(
            Mailbox::parse("\"Åsa Öberg\" <asa.oberg@skola.kommun.se>").unwrap(),
            Mailbox {
                name: Some("Åsa Öberg".into()),
                address: "asa.oberg@skola.kommun.se".into()
            }
        );
        assert_eq!(Mailbox::parse("<x@y>").unwrap().name, None);
        assert_eq!(
            Mailbox::parse("x@kommune.no").unwrap().domain(),
            "kommune.no"
        );
    }

    #[test]
    fn refuses_what_would_break_a_header() {
        for bad in [
            "",
            "nobody",
            "a@b@c",
            "a b@c.se",
            "x@y.se\r\nBcc: evil@x.se",
            "@kommun.se",
            "it@",
            "it@.se",
            "a,b@c.se",
        ] {
            assert!(Mailbox::parse(bad).is_err(), "{bad:?}");
        }
        let e = Mailbox::parse("x@y.se\r\nBcc: evil@x.se")
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n'), "{e}");
    }
}
