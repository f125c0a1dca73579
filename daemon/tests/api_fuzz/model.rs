//! Requests as data, small to print and shrink, and how one is materialized
//! into an HTTP request against a fixture.

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, header};
use vakt::serve::links::{LinkClaim, LinkKey};

use crate::judge::ROUTES;
use crate::setup::{ANNA, EVE, Fixture, short};

/// A route template to build the path from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tpl {
    Route(usize),
    Other(&'static str),
}

impl Tpl {
    pub(crate) fn template(self) -> &'static str {
        match self {
            Tpl::Route(i) => ROUTES[i].0,
            Tpl::Other(t) => t,
        }
    }

    pub(crate) fn method(self) -> Method {
        match self {
            Tpl::Route(i) => ROUTES[i].1.parse().unwrap(),
            Tpl::Other(_) => Method::GET,
        }
    }
}

/// How a link token in `/t/{token}` is made.
#[derive(Debug, Clone)]
pub(crate) enum LinkKind {
    /// Signed for the live instance's task, for Anna, with this option.
    Valid(&'static str),
    /// For Eve, who is not assigned.
    NotAssigned,
    Expired,
    /// Signed, for an instance that does not exist.
    NoInstance,
    /// Signed, for a task number the instance does not have.
    NoTask,
    /// A valid token with one character of its MAC changed.
    Forged,
    /// A valid token cut short.
    Truncated(usize),
    /// Signed with another key.
    OtherKey,
}

impl LinkKind {
    pub(crate) fn valid(&self) -> bool {
        matches!(self, LinkKind::Valid(_))
    }
}

/// One path segment.
#[derive(Debug, Clone)]
pub(crate) enum Seg {
    /// A fresh instance waiting on Anna's task.
    Live,
    /// That instance's task id, `<id>:<n>`.
    LiveTask,
    /// The instance id with a suffix: `x:`, `:99999999999`, …
    LiveWith(&'static str),
    /// A cancelled instance (or its task).
    Finished(bool),
    /// A workflow id.
    Workflow(&'static str),
    /// Written into the path as is.
    Raw(&'static str),
    /// Any text, percent-encoded.
    Encoded(String),
    /// `n` times `a`.
    Long(usize),
    /// `n` times `å`, percent-encoded.
    LongUnicode(usize),
    Link(LinkKind),
}

impl Seg {
    pub(crate) fn needs_live(&self) -> bool {
        matches!(
            self,
            Seg::Live | Seg::LiveTask | Seg::LiveWith(_) | Seg::Link(_)
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Tail {
    None,
    Slash,
    Extra(Seg),
}

#[derive(Debug, Clone)]
pub(crate) enum Query {
    Pairs(Vec<(&'static str, String)>),
    Raw(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Who {
    Operator,
    Admin,
    Anna,
    Eve,
}

#[derive(Debug, Clone)]
pub(crate) enum Auth {
    Missing,
    /// Any header value.
    Garbage(Vec<u8>),
    /// `Bearer ` + any text.
    BearerRandom(String),
    /// A real token, spelt in the given style (see [`Auth::value`]).
    Token(Who, u8),
    Revoked,
    /// A real token's id with another secret.
    WrongSecret(Who),
}

pub(crate) const TOKEN_STYLES: u8 = 8;

impl Auth {
    /// The header value, and whether it authenticates.
    pub(crate) fn value(&self, fx: &Fixture) -> (Option<Vec<u8>>, bool) {
        let token = |w: Who| match w {
            Who::Operator => fx.operator.clone(),
            Who::Admin => fx.admin.clone(),
            Who::Anna => fx.anna.clone(),
            Who::Eve => fx.eve.clone(),
        };
        match self {
            Auth::Missing => (None, false),
            Auth::Garbage(b) => (Some(b.clone()), false),
            Auth::BearerRandom(s) => (Some(format!("Bearer {s}").into_bytes()), false),
            Auth::Revoked => (Some(format!("Bearer {}", fx.revoked).into_bytes()), false),
            Auth::WrongSecret(w) => {
                let t = token(*w);
                let cut = t.len() - 43;
                let other = format!("Bearer {}{}", &t[..cut], "A".repeat(43));
                (Some(other.into_bytes()), false)
            }
            Auth::Token(w, style) => {
                let t = token(*w);
                let (v, ok) = match style {
                    0 => (format!("Bearer {t}"), true),
                    1 => (format!("bearer {t}"), true),
                    2 => (format!("Bearer   {t}  "), true),
                    3 => (format!("BEARER {t}"), false),
                    4 => (t, false),
                    5 => (format!("Bearer {t}x"), false),
                    6 => (format!("Basic {t}"), false),
                    _ => (format!("Bearer\t{t}"), false),
                };
                (Some(v.into_bytes()), ok)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Idem {
    None,
    Valid(String),
    Empty,
    WithSpace,
    /// Bytes above ASCII (obs-text), which a header may carry.
    NonAscii(Vec<u8>),
    /// `n` visible ASCII characters.
    Long(usize),
}

#[derive(Debug, Clone)]
pub(crate) enum Ctype {
    None,
    Json,
    Form,
    Other(&'static str),
}

/// What the body's bytes are, relative to `max_body_bytes` where it says so.
#[derive(Debug, Clone)]
pub(crate) enum BodyGen {
    Empty,
    Whitespace,
    Bytes(Vec<u8>),
    Valid(&'static str),
    /// A valid body cut after this many bytes (modulo its length).
    Truncated(&'static str, usize),
    /// `{"a": [[…]]}` with this many arrays.
    NestedArrays(usize),
    /// `{"a": {"a": …}}` with this many objects.
    NestedObjects(usize),
    /// A body of exactly `max_body_bytes + delta` bytes.
    Huge(HugeKind, i64),
    /// `comment=…`, form-encoded.
    Form(String),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum HugeKind {
    /// `{"reason": "xxxx…"}`
    Reason,
    /// `{"decision": "approve", "comment": "xxxx…"}`
    Comment,
    /// `"xxxx…"`
    JsonString,
    /// `comment=xxxx…`
    FormComment,
    /// `xxxx…`, not JSON.
    Junk,
}

pub(crate) const VALID_BODIES: &[&str] = &[
    "{}",
    "null",
    "[]",
    "\"text\"",
    "0",
    "{\"decision\": \"approve\"}",
    "{\"decision\": \"reject\", \"comment\": \"nej\"}",
    "{\"decision\": \"maybe\"}",
    "{\"decision\": \"approve\", \"extra\": 1}",
    "{\"decision\": 5}",
    "{\"reason\": \"r\"}",
    "{\"reason\": 5}",
    "{\"a\": [1, [2, [3]]]}",
    "{\"note\": \"åäö \\u0000 \\ud83d\\ude00\"}",
    "{\"note\": 1}",
    "{\"nope\": true}",
    "{\"a\": 1e999}",
    "{\"a\": [18446744073709551616]}",
];

/// How deep a request body may nest (`json_body`'s `MAX_DEPTH`).
pub(crate) const MAX_DEPTH: usize = 64;

impl BodyGen {
    /// How deep the nested bodies nest (`{"a": …}` around `n` levels); the
    /// others stay shallow.
    pub(crate) fn nesting(&self) -> Option<usize> {
        match self {
            BodyGen::NestedArrays(n) | BodyGen::NestedObjects(n) => Some(n + 1),
            _ => None,
        }
    }

    pub(crate) fn bytes(&self, limit: usize) -> Vec<u8> {
        match self {
            BodyGen::Empty => Vec::new(),
            BodyGen::Whitespace => b" \n\t \r\n".to_vec(),
            BodyGen::Bytes(b) => b.clone(),
            BodyGen::Valid(s) => s.as_bytes().to_vec(),
            BodyGen::Truncated(s, n) => s.as_bytes()[..n % s.len()].to_vec(),
            BodyGen::NestedArrays(n) => nested("[", "]", *n),
            BodyGen::NestedObjects(n) => nested("{\"a\":", "}", *n),
            BodyGen::Huge(kind, delta) => {
                let len = (limit as i64 + delta).max(0) as usize;
                let (head, tail) = match kind {
                    HugeKind::Reason => ("{\"reason\":\"", "\"}"),
                    HugeKind::Comment => ("{\"decision\":\"approve\",\"comment\":\"", "\"}"),
                    HugeKind::JsonString => ("\"", "\""),
                    HugeKind::FormComment => ("comment=", ""),
                    HugeKind::Junk => ("", ""),
                };
                let fill = len.saturating_sub(head.len() + tail.len());
                let mut out = Vec::with_capacity(len);
                out.extend_from_slice(head.as_bytes());
                out.resize(head.len() + fill, b'x');
                out.extend_from_slice(tail.as_bytes());
                out
            }
            BodyGen::Form(c) => format!("comment={}", encode(c)).into_bytes(),
        }
    }
}

/// `{"a": OPEN OPEN … 1 CLOSE CLOSE …}` with `depth` pairs.
pub(crate) fn nested(open: &str, close: &str, depth: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + depth * (open.len() + close.len()));
    out.extend_from_slice(b"{\"a\": ");
    for _ in 0..depth {
        out.extend_from_slice(open.as_bytes());
    }
    out.push(b'1');
    for _ in 0..depth {
        out.extend_from_slice(close.as_bytes());
    }
    out.push(b'}');
    out
}

/// Percent-encodes everything but the unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One request.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) tpl: Tpl,
    pub(crate) segs: Vec<Seg>,
    pub(crate) tail: Tail,
    pub(crate) query: Option<Query>,
    pub(crate) auth: Auth,
    pub(crate) idem: Idem,
    pub(crate) ctype: Ctype,
    pub(crate) body: BodyGen,
}

impl Req {
    pub(crate) fn needs_live(&self) -> bool {
        self.segs.iter().any(Seg::needs_live)
            || matches!(&self.tail, Tail::Extra(s) if s.needs_live())
    }

    pub(crate) fn link_valid(&self) -> bool {
        self.segs
            .iter()
            .any(|s| matches!(s, Seg::Link(k) if k.valid()))
    }
}

/// The instances a request may name.
pub(crate) struct Targets {
    pub(crate) live: Option<(String, u32)>,
    pub(crate) finished: (String, u32),
}

fn segment(seg: &Seg, fx: &Fixture, t: &Targets) -> String {
    let live = || t.live.as_ref().expect("a live instance");
    let now = fx.runtime().now();
    match seg {
        Seg::Live => live().0.clone(),
        Seg::LiveTask => format!("{}:{}", live().0, live().1),
        Seg::LiveWith(suffix) => format!("{}{suffix}", live().0),
        Seg::Finished(false) => t.finished.0.clone(),
        Seg::Finished(true) => format!("{}:{}", t.finished.0, t.finished.1),
        Seg::Workflow(w) => (*w).to_owned(),
        Seg::Raw(s) => (*s).to_owned(),
        Seg::Encoded(s) => encode(s),
        Seg::Long(n) => "a".repeat(*n),
        Seg::LongUnicode(n) => "%C3%A5".repeat(*n),
        Seg::Link(kind) => {
            let (id, n) = live();
            let day = 86_400_000;
            match kind {
                LinkKind::Valid(option) => fx.link(id, *n, ANNA, option, now + day),
                LinkKind::NotAssigned => fx.link(id, *n, EVE, "approve", now + day),
                LinkKind::Expired => fx.link(id, *n, ANNA, "approve", now - 1),
                LinkKind::NoInstance => fx.link("nosuchinstance", 1, ANNA, "approve", now + day),
                LinkKind::NoTask => fx.link(id, n + 1000, ANNA, "approve", now + day),
                LinkKind::Forged => {
                    let mut t = fx.link(id, *n, ANNA, "approve", now + day).into_bytes();
                    let last = t.len() - 2;
                    t[last] = if t[last] == b'A' { b'B' } else { b'A' };
                    String::from_utf8(t).unwrap()
                }
                LinkKind::Truncated(k) => {
                    let t = fx.link(id, *n, ANNA, "approve", now + day);
                    t[..k % t.len()].to_owned()
                }
                LinkKind::OtherKey => LinkKey::from_bytes([7; 32]).sign(&LinkClaim {
                    instance: id.clone(),
                    task: *n,
                    assignee: ANNA.into(),
                    option: "approve".into(),
                    expires: now + day,
                    nonce: LinkClaim::nonce(),
                }),
            }
        }
    }
}

/// The request's path (without query), headers and body.
pub(crate) fn materialize(
    req: &Req,
    fx: &Fixture,
    t: &Targets,
) -> (String, Option<String>, Request<Body>) {
    let mut segs = req.segs.iter();
    let mut path = String::new();
    for part in req.tpl.template().split('/').skip(1) {
        path.push('/');
        if part.starts_with('{') {
            path.push_str(&segment(segs.next().expect("a segment"), fx, t));
        } else {
            path.push_str(part);
        }
    }
    match &req.tail {
        Tail::None => {}
        Tail::Slash => path.push('/'),
        Tail::Extra(s) => {
            path.push('/');
            path.push_str(&segment(s, fx, t));
        }
    }
    let query = req.query.as_ref().map(|q| match q {
        Query::Raw(r) => (*r).to_owned(),
        Query::Pairs(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    });
    let uri = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let mut builder = Request::builder().method(req.method.clone()).uri(&uri);
    let (auth, _) = req.auth.value(fx);
    if let Some(a) = auth {
        builder = builder.header(header::AUTHORIZATION, HeaderValue::from_bytes(&a).unwrap());
    }
    let idem: Option<Vec<u8>> = match &req.idem {
        Idem::None => None,
        Idem::Valid(s) => Some(s.clone().into_bytes()),
        Idem::Empty => Some(Vec::new()),
        Idem::WithSpace => Some(b"a b".to_vec()),
        Idem::NonAscii(b) => Some(b.clone()),
        Idem::Long(n) => Some(vec![b'k'; *n]),
    };
    if let Some(k) = idem {
        builder = builder.header("idempotency-key", HeaderValue::from_bytes(&k).unwrap());
    }
    let ctype = match &req.ctype {
        Ctype::None => None,
        Ctype::Json => Some("application/json"),
        Ctype::Form => Some("application/x-www-form-urlencoded"),
        Ctype::Other(s) => Some(*s),
    };
    if let Some(c) = ctype {
        builder = builder.header(header::CONTENT_TYPE, c);
    }
    let body = req.body.bytes(fx.shared.config.max_body_bytes);
    (
        path,
        query,
        builder
            .body(Body::from(body))
            .unwrap_or_else(|e| panic!("cannot build {}: {e}", short(&uri))),
    )
}
