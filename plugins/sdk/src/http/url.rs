//! A small URL type: what `wasi:http` needs (scheme, authority, path with
//! query), nothing more. Fragments are dropped; user info is refused
//! (credentials belong in the host's grant, not in a URL).

use crate::PluginError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: String,
    /// `host` or `host:port`, as written.
    pub authority: String,
    /// Starts with `/`; includes `?query` when there is one.
    pub path_and_query: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, PluginError> {
        let bad = |why: &str| {
            PluginError::permanent(format_args!("invalid URL `{}`: {why}", redact(text)))
        };
        let text = text.trim();
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("no scheme (http:// or https://)"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("only http and https are supported"));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains('@') {
            return Err(bad(
                "credentials in URLs are not allowed; the host injects them",
            ));
        }
        if authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad("whitespace in the host"));
        }
        let tail = tail.split('#').next().unwrap_or_default();
        if tail.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("unencoded whitespace in the path"));
        }
        let path_and_query = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        Ok(Url {
            scheme,
            authority: authority.to_ascii_lowercase(),
            path_and_query,
        })
    }

    /// `scheme://authority`, the unit the host grants.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// The URL without its query, for messages (a query may carry data that
    /// does not belong in a log).
    pub fn display_without_query(&self) -> String {
        let path = self.path_and_query.split('?').next().unwrap_or("/");
        format!("{}{path}", self.origin())
    }

    /// Resolves `reference` against this URL: an absolute URL stays as it is,
    /// `/x` replaces the path, `x` is appended to the path as a directory.
    pub fn join(&self, reference: &str) -> Result<Url, PluginError> {
        if reference.contains("://") {
            return Url::parse(reference);
        }
        let base_path = self.path_and_query.split('?').next().unwrap_or("/");
        let path_and_query = if reference.starts_with('/') {
            reference.to_owned()
        } else if reference.is_empty() {
            self.path_and_query.clone()
        } else {
            format!("{}/{}", base_path.trim_end_matches('/'), reference)
        };
        Url::parse(&format!("{}{}", self.origin(), path_and_query))
    }

    /// Appends `key=value` to the query, percent-encoded.
    pub fn append_query(&mut self, key: &str, value: &str) {
        let sep = if self.path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        self.path_and_query.push_str(&format!(
            "{sep}{}={}",
            encode_component(key),
            encode_component(value)
        ));
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The text up to the query and without user info, for an error about an
/// invalid URL.
fn redact(text: &str) -> String {
    let text = text.split(['?', '#']).next().unwrap_or_default();
    match text.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            match rest[..end].rfind('@') {
                Some(at) => format!("{scheme}://…@{}", &rest[at + 1..]),
                None => text.to_owned(),
            }
        }
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_wasi_http_needs() {
        let u = Url::parse("HTTPS://Redmine.Kommun.se:8443/issues.json?limit=5#x").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.authority, "redmine.kommun.se:8443");
        assert_eq!(u.path_and_query, "/issues.json?limit=5");
        assert_eq!(u.origin(), "https://redmine.kommun.se:8443");
        assert_eq!(
            u.display_without_query(),
            "https://redmine.kommun.se:8443/issues.json"
        );
        assert_eq!(Url::parse("http://h").unwrap().path_and_query, "/");
        assert_eq!(Url::parse("http://h?q=1").unwrap().path_and_query, "/?q=1");
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        for bad in [
            "ftp://h/",
            "h/x",
            "https:///x",
            "https://user:pw@h/",
            "https://h/a b",
        ] {
            let e = Url::parse(bad).unwrap_err();
            assert!(!e.retryable, "{bad}");
            assert!(!e.message.contains("pw"), "{}", e.message);
        }
    }

    #[test]
    fn joins_and_encodes() {
        let base = Url::parse("https://h/api/v2/").unwrap();
        assert_eq!(base.join("users").unwrap().path_and_query, "/api/v2/users");
        assert_eq!(base.join("/other").unwrap().path_and_query, "/other");
        assert_eq!(base.join("http://x/y").unwrap().authority, "x");
        let mut u = base.join("users").unwrap();
        u.append_query("filter", "userName eq \"åsa\"");
        u.append_query("count", "10");
        assert_eq!(
            u.path_and_query,
            "/api/v2/users?filter=userName%20eq%20%22%C3%A5sa%22&count=10"
        );
    }
}
