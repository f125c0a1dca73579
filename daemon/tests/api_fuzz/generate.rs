//! The proptest strategies: a method and a path from the route templates
//! (or not) with hostile segments, a query, an `Authorization` header, an
//! idempotency key, a content type and a body.

use axum::http::Method;
use proptest::prelude::*;

use crate::judge::ROUTES;
use crate::model::{
    Auth, BodyGen, Ctype, HugeKind, Idem, LinkKind, Query, Req, Seg, TOKEN_STYLES, Tail, Tpl,
    VALID_BODIES, Who,
};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,16}",
        any::<String>().prop_map(|s| s.chars().take(24).collect()),
        "[a-z0-9:./%]{0,12}",
    ]
}

fn seg() -> impl Strategy<Value = Seg> {
    prop_oneof![
        4 => Just(Seg::Live),
        3 => Just(Seg::LiveTask),
        2 => prop::sample::select(vec![
            ":", ":0", ":1", ":-1", "::1", ":1:", ":99999999999", ":4294967296", "x:", ":a",
            "%3A1", "/1", ".1",
        ])
        .prop_map(Seg::LiveWith),
        1 => any::<bool>().prop_map(Seg::Finished),
        2 => prop::sample::select(vec!["fuzz", "other", "noapi", "broken", "missing", "FUZZ"])
            .prop_map(Seg::Workflow),
        4 => prop::sample::select(vec![
            "", ".", "..", "x:", ":1", "a:b:c", "id:99999999999", ":", "%", "%zz", "%FF",
            "%C3%28", "%2F", "a%2Fb", "%2e%2e", "%00", "%C3%A5", "%E2%80%AE", "{id}", "*",
            "go", "approve", "a.b", "-", "%20", "+", "%F0%9F%98%80",
        ])
        .prop_map(Seg::Raw),
        3 => text().prop_map(Seg::Encoded),
        1 => prop::sample::select(vec![100usize, 250, 4_000, 5_000, 20_000]).prop_map(Seg::Long),
        1 => prop::sample::select(vec![60usize, 1_500]).prop_map(Seg::LongUnicode),
        3 => link_kind().prop_map(Seg::Link),
    ]
}

fn link_kind() -> impl Strategy<Value = LinkKind> {
    prop_oneof![
        prop::sample::select(vec!["approve", "reject", "maybe"]).prop_map(LinkKind::Valid),
        Just(LinkKind::NotAssigned),
        Just(LinkKind::Expired),
        Just(LinkKind::NoInstance),
        Just(LinkKind::NoTask),
        Just(LinkKind::Forged),
        any::<usize>().prop_map(LinkKind::Truncated),
        Just(LinkKind::OtherKey),
    ]
}

fn tpl() -> impl Strategy<Value = Tpl> {
    prop_oneof![
        10 => (0..ROUTES.len()).prop_map(Tpl::Route),
        1 => prop::sample::select(vec![
            "/",
            "/api/v1",
            "/api/v1/",
            "/api/v1/{x}",
            "/api/v2/instances",
            "/api/v1/instances/{id}/{x}",
            "/api/v1/tasks/{id}",
            "/t",
            "/t/",
            "/T/{x}",
            "/t/{x}/{y}",
            "/api/v1/workflows/{w}",
        ])
        .prop_map(Tpl::Other),
    ]
}

fn query() -> impl Strategy<Value = Option<Query>> {
    let key = prop::sample::select(vec!["workflow", "status", "limit", "foo", ""]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "fuzz",
            "running",
            "waiting",
            "open",
            "all",
            "closed",
            "-1",
            "0",
            "1",
            "10000",
            "18446744073709551616",
            "abc",
            "",
            "1.5",
        ])
        .prop_map(str::to_owned),
        text(),
    ];
    prop_oneof![
        3 => Just(None),
        2 => prop::collection::vec((key, value), 0..4).prop_map(|p| Some(Query::Pairs(p))),
        1 => prop::sample::select(vec![
            "", "%", "%FF", "a=%FF", "&&", "=", "==", "status=open&status=all", "limit=1&limit=2",
            "limit=+5", "limit=%2B5", "limit=0x10", "status=%00", "workflow=fuzz&status=waiting",
        ])
        .prop_map(|r| Some(Query::Raw(r))),
    ]
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![8 => 0x20u8..0x7f, 2 => 0x80u8..=0xff, 1 => Just(b'\t')],
        0..64,
    )
}

fn who() -> impl Strategy<Value = Who> {
    prop::sample::select(vec![Who::Operator, Who::Admin, Who::Anna, Who::Eve])
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        2 => Just(Auth::Missing),
        1 => header_bytes().prop_map(Auth::Garbage),
        1 => "[ -~]{0,60}".prop_map(Auth::BearerRandom),
        8 => (who(), prop_oneof![6 => Just(0u8), 2 => 0..TOKEN_STYLES]).prop_map(|(w, s)| Auth::Token(w, s)),
        1 => Just(Auth::Revoked),
        1 => who().prop_map(Auth::WrongSecret),
    ]
}

fn idem() -> impl Strategy<Value = Idem> {
    prop_oneof![
        4 => Just(Idem::None),
        2 => "[!-~]{1,200}".prop_map(Idem::Valid),
        1 => Just(Idem::Empty),
        1 => Just(Idem::WithSpace),
        1 => header_bytes()
            .prop_map(|mut b| {
                b.push(0xE5);
                b
            })
            .prop_map(Idem::NonAscii),
        1 => prop::sample::select(vec![201usize, 10_240]).prop_map(Idem::Long),
    ]
}

fn ctype() -> impl Strategy<Value = Ctype> {
    prop_oneof![
        3 => Just(Ctype::None),
        3 => Just(Ctype::Json),
        2 => Just(Ctype::Form),
        1 => prop::sample::select(vec![
            "text/plain",
            "application/json; charset=utf-16",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded; charset=koi8-r",
            "*/*",
        ])
        .prop_map(Ctype::Other),
    ]
}

fn body() -> impl Strategy<Value = BodyGen> {
    // Around the API's limit (nesting `n + 1` deep, see `BodyGen::nesting`),
    // the depths whose stored records the store could once not read back
    // (110-126), serde_json's recursion limit (128), and far beyond.
    let arrays = vec![
        1usize, 62, 63, 64, 65, 100, 110, 120, 122, 124, 125, 126, 127, 128, 129, 10_000,
    ];
    let objects = vec![63usize, 64, 100, 110, 124, 125, 126, 127, 128, 10_000];
    prop_oneof![
        2 => Just(BodyGen::Empty),
        1 => Just(BodyGen::Whitespace),
        2 => prop::collection::vec(any::<u8>(), 0..256).prop_map(BodyGen::Bytes),
        8 => prop::sample::select(VALID_BODIES.to_vec()).prop_map(BodyGen::Valid),
        2 => (prop::sample::select(VALID_BODIES.to_vec()), any::<usize>())
            .prop_map(|(s, n)| BodyGen::Truncated(s, n)),
        3 => prop::sample::select(arrays).prop_map(BodyGen::NestedArrays),
        2 => prop::sample::select(objects).prop_map(BodyGen::NestedObjects),
        2 => (
            prop::sample::select(vec![
                HugeKind::Reason,
                HugeKind::Comment,
                HugeKind::JsonString,
                HugeKind::FormComment,
                HugeKind::Junk,
            ]),
            prop::sample::select(vec![-64i64, -1, 0, 1, 4096, 1 << 20]),
        )
            .prop_map(|(k, d)| BodyGen::Huge(k, d)),
        2 => text().prop_map(BodyGen::Form),
    ]
}

/// A segment for the parameter `param` of `template`: mostly what the
/// route expects (so requests get past the first checks), else anything.
fn seg_for(template: &str, param: &str) -> BoxedStrategy<Seg> {
    let targeted: BoxedStrategy<Seg> = match param {
        "{workflow}" => prop::sample::select(vec!["fuzz", "other", "noapi", "broken", "missing"])
            .prop_map(Seg::Workflow)
            .boxed(),
        "{id}" if template.starts_with("/api/v1/tasks/") => prop_oneof![
            6 => Just(Seg::LiveTask),
            2 => prop::sample::select(vec![
                ":", ":0", ":1", ":-1", "::1", ":1:", ":99999999999", ":4294967296", "x:",
                ":a", "%3A1", "/1", ".1",
            ])
            .prop_map(Seg::LiveWith),
            1 => Just(Seg::Finished(true)),
        ]
        .boxed(),
        "{id}" => prop_oneof![6 => Just(Seg::Live), 1 => Just(Seg::Finished(false))].boxed(),
        "{name}" => prop_oneof![
            3 => Just(Seg::Raw("go")),
            1 => "[a-z0-9_.-]{1,12}".prop_map(Seg::Encoded),
        ]
        .boxed(),
        "{token}" => link_kind().prop_map(Seg::Link).boxed(),
        _ => seg().boxed(),
    };
    prop_oneof![3 => targeted, 2 => seg()].boxed()
}

pub(crate) fn request() -> impl Strategy<Value = Req> {
    let methods =
        prop::sample::select(vec![Method::GET, Method::POST, Method::PUT, Method::DELETE]);
    tpl()
        .prop_flat_map(|tpl| {
            let template = tpl.template();
            let segs: Vec<BoxedStrategy<Seg>> = template
                .split('/')
                .filter(|p| p.starts_with('{'))
                .map(|p| seg_for(template, p))
                .collect();
            (Just(tpl), segs)
        })
        .prop_flat_map(move |(tpl, segs)| {
            (
                Just(tpl),
                Just(segs),
                prop_oneof![4 => Just(None), 1 => methods.clone().prop_map(Some)],
                prop_oneof![
                    18 => Just(Tail::None),
                    1 => Just(Tail::Slash),
                    1 => seg().prop_map(Tail::Extra),
                ],
                query(),
                auth(),
                idem(),
                ctype(),
                body(),
            )
        })
        .prop_map(
            |(tpl, segs, method, tail, query, auth, idem, ctype, body)| Req {
                method: method.unwrap_or_else(|| tpl.method()),
                tpl,
                segs,
                tail,
                query,
                auth,
                idem,
                ctype,
                body,
            },
        )
}
