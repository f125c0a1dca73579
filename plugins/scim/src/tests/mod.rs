//! The plugin's logic against an in-memory SCIM service (natively): paging
//! to the end whatever the server's page size or omissions, member and
//! manager resolution, `If-Match` and the 412 re-read, and error mapping.

mod fake;

use std::collections::HashSet;

use serde_json::{Value, json};
use vakt_plugin_sdk::PluginError;

use self::fake::{Fake, ok, version_of};
use crate::change::ATTEMPTS;
use crate::client::{Base, Reply};
use crate::directory::{Scim, page_of, parse_cursor, scan_is_cheaper};
use crate::model::{ENTERPRISE, ListResponse};
use crate::page_size;

fn scim(fake: Fake, page: u32) -> Scim<Fake> {
    Scim::new(
        fake,
        Base::parse("http://127.0.0.1:8700/t/v2").unwrap(),
        page,
    )
}

fn all_users(s: &mut Scim<Fake>, filter: Option<&str>) -> Vec<vakt_plugin_sdk::identity::User> {
    let (mut all, mut cursor) = (Vec::new(), None::<String>);
    for _ in 0..1000 {
        let page = s.list_users(filter, cursor.as_deref()).unwrap();
        all.extend(page.users);
        cursor = page.next;
        if cursor.is_none() {
            return all;
        }
    }
    panic!("paging did not end");
}

#[test]
fn listing_pages_to_the_end_however_the_server_pages() {
    for (max_count, omit_items, omit_total) in [
        (None, false, false),
        (Some(30), true, false),
        (Some(7), true, true),
        (None, false, true),
    ] {
        let mut fake = Fake::directory(250, 3);
        (fake.max_count, fake.omit_items_per_page, fake.omit_total) =
            (max_count, omit_items, omit_total);
        let mut s = scim(fake, 100);
        let users = all_users(&mut s, None);
        let ids: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(
            (users.len(), ids.len()),
            (250, 250),
            "{max_count:?} {omit_items} {omit_total}"
        );
        let u = users.iter().find(|u| u.id == "u57").unwrap();
        assert_eq!(u.manager.as_deref(), Some("user50@k.no"));
        assert_eq!(u.email.as_deref(), Some("user57@k.no"));
        assert_eq!(u.display_name.as_deref(), Some("Åse 57"));
        assert!(!users.iter().find(|u| u.id == "u6").unwrap().active);
        assert_eq!(users.iter().find(|u| u.id == "u0").unwrap().manager, None);
    }
}

#[test]
fn filters_pass_through_and_an_empty_result_ends_at_once() {
    let mut s = scim(Fake::directory(30, 2), 10);
    let users = all_users(&mut s, Some("userName eq \"user17\""));
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].manager.as_deref(), Some("user10@k.no"));
    assert!(
        s.transport.log[0].contains("filter=userName eq \"user17\""),
        "{:?}",
        s.transport.log
    );
    assert!(all_users(&mut s, Some("userName eq \"nobody\"")).is_empty());
}

#[test]
fn groups_come_with_resolved_members() {
    // Few members: one GET each; many: a probe, then the whole directory.
    for (n, scan) in [(12, false), (300, true)] {
        let mut s = scim(Fake::directory(n, 2), 100);
        let page = s
            .list_groups(Some("displayName sw \"tilgang-\""), true, None)
            .unwrap();
        assert_eq!(page.groups.len(), 2);
        assert_eq!(page.next, None);
        let g1 = &page.groups[1];
        assert_eq!(g1.name, "tilgang-1");
        assert_eq!(g1.members.len(), n / 2);
        let m = g1.members.iter().find(|m| m.id == "u11").unwrap();
        assert_eq!(
            (m.user_name.as_str(), m.manager.as_deref()),
            ("user11", Some("user10@k.no"))
        );
        let scanned = s.transport.log.iter().any(|l| l.contains("attributes=id"));
        assert_eq!(scanned, scan, "{:?}", &s.transport.log[..4]);
    }
    let mut s = scim(Fake::directory(12, 2), 100);
    let page = s.list_groups(None, false, None).unwrap();
    assert!(page.groups.iter().all(|g| g.members.is_empty()));
    assert!(s.transport.log[0].contains("excludedAttributes=members"));
    assert_eq!(s.transport.log.len(), 1);
}

#[test]
fn unknown_and_nested_members_do_not_break_a_listing() {
    let mut fake = Fake::directory(3, 1);
    fake.groups[0]["members"] = json!([{"value": "u1"}, {"value": "gone", "display": "Old Account"},
        {"value": "g9", "type": "Group"}]);
    let page = scim(fake, 100).list_groups(None, true, None).unwrap();
    let members = &page.groups[0].members;
    assert_eq!(members.len(), 2);
    assert_eq!(
        (members[1].id.as_str(), members[1].user_name.as_str()),
        ("gone", "Old Account")
    );
}

#[test]
fn managers() {
    let mut s = scim(Fake::directory(30, 1), 100);
    let m = s.get_manager("u23").unwrap().unwrap();
    assert_eq!(
        (m.id.as_str(), m.email.as_deref(), m.manager.as_deref()),
        ("u20", Some("user20@k.no"), Some("user0@k.no"))
    );
    assert_eq!(
        s.get_manager("user23").unwrap().unwrap().id,
        "u20",
        "by userName"
    );
    assert_eq!(s.get_manager("u0").unwrap(), None);
    let e = s.get_manager("nobody").unwrap_err();
    assert!(
        !e.retryable && e.message.contains("`nobody` was not found"),
        "{}",
        e.message
    );
    s.transport.users[5][ENTERPRISE] = json!({"manager": {"value": "deleted"}});
    assert_eq!(
        s.get_manager("u5").unwrap(),
        None,
        "a dangling manager reference"
    );
}

#[test]
fn removing_a_member_is_conditional_and_idempotent() {
    let mut s = scim(Fake::directory(10, 1), 100);
    assert!(s.remove_member("g0", "u3").unwrap());
    let patch = s
        .transport
        .log
        .iter()
        .filter(|l| l.starts_with("PATCH"))
        .count();
    assert_eq!(patch, 1);
    assert!(
        !s.transport.groups[0]["members"]
            .to_string()
            .contains("\"u3\"")
    );
    assert!(!s.remove_member("g0", "u3").unwrap(), "no longer a member");
    assert!(!s.remove_member("g0", "nobody").unwrap());
    let e = s.remove_member("g404", "u1").unwrap_err();
    assert!(
        !e.retryable && e.message.contains("the SCIM group `g404` was not found"),
        "{}",
        e.message
    );

    // Changed by someone else between the read and the PATCH: read again.
    s.transport.interfere = 2;
    assert!(s.remove_member("g0", "u4").unwrap());
    let patches = s
        .transport
        .log
        .iter()
        .filter(|l| l.starts_with("PATCH Groups/g0"))
        .count();
    assert_eq!(patches, 1 + 3);
    // Changed every time: retryable, after a bounded number of attempts.
    s.transport.interfere = 100;
    let e = s.remove_member("g0", "u5").unwrap_err();
    assert!(e.retryable && e.message.contains("412"), "{}", e.message);
    assert_eq!(s.transport.interfere, 100 - ATTEMPTS);
}

#[test]
fn the_if_match_header_carries_the_version_read() {
    let mut s = scim(Fake::directory(4, 1), 100);
    let version = version_of(&s.transport.groups[0]);
    s.transport
        .script
        .push_back(Ok(ok(200, s.transport.groups[0].clone(), None)));
    s.transport.script.push_back(Ok(Reply {
        status: 204,
        ..Reply::default()
    }));
    assert!(s.remove_member("g0", "u1").unwrap());
    // Without a version anywhere, no If-Match.
    let mut unversioned = s.transport.groups[0].clone();
    unversioned.as_object_mut().unwrap().remove("meta");
    s.transport.script.push_back(Ok(ok(200, unversioned, None)));
    s.transport.script.push_back(Ok(Reply {
        status: 204,
        ..Reply::default()
    }));
    assert!(s.remove_member("g0", "u2").unwrap());
    let patches: Vec<&String> = s
        .transport
        .log
        .iter()
        .filter(|l| l.starts_with("PATCH"))
        .collect();
    assert!(
        patches[0].ends_with(&format!("if-match={}", version.unwrap())),
        "{patches:?}"
    );
    assert!(patches[1].ends_with("if-match=-"), "{patches:?}");
}

#[test]
fn disabling_is_idempotent() {
    let mut s = scim(Fake::directory(10, 1), 100);
    assert!(s.disable_user("u2").unwrap());
    assert_eq!(s.transport.users[2]["active"], json!(false));
    assert!(!s.disable_user("u2").unwrap());
    assert!(!s.disable_user("u6").unwrap(), "inactive from the start");
}

#[test]
fn errors_say_whether_to_retry() {
    let mut s = scim(Fake::directory(3, 1), 100);
    let mut reply = |status: u16, body: &str| {
        s.transport.script.push_back(Ok(Reply {
            status,
            body: body.into(),
            retry_after: Some("12".into()),
            ..Reply::default()
        }));
        s.list_users(None, None).unwrap_err()
    };
    let e = reply(401, r#"{"detail":"Authorization failure"}"#);
    assert!(
        !e.retryable && e.message.contains("[[plugins.NAME.http]]"),
        "{}",
        e.message
    );
    let e = reply(429, "");
    assert!(e.retryable);
    assert_eq!(e.retry_after_secs, Some(12));
    assert!(reply(503, "").retryable);
    let e = reply(404, "");
    assert!(
        !e.retryable
            && e.message
                .contains("the SCIM endpoint `Users` was not found"),
        "{}",
        e.message
    );
    let e = reply(200, "{\"totalResults\": 5}");
    assert!(
        !e.retryable && e.message.contains("`Resources`"),
        "{}",
        e.message
    );
    let e = reply(
        200,
        "{\"Resources\": [{\"userName\": \"no id\"}], \"totalResults\": 1}",
    );
    assert!(
        !e.retryable && e.message.contains("resource 1 of the page"),
        "{}",
        e.message
    );
    let e = reply(200, "not json");
    assert!(
        !e.retryable && e.message.contains("not valid JSON"),
        "{}",
        e.message
    );
    s.transport
        .script
        .push_back(Err(PluginError::retryable("connection refused")));
    assert!(s.list_users(None, None).unwrap_err().retryable);
}

#[test]
fn pages_and_cursors() {
    let list = |v: Value| serde_json::from_value::<ListResponse>(v).unwrap();
    let p = page_of(list(json!({"totalResults": 0})), 1).unwrap();
    assert!(p.resources.is_empty() && p.next.is_none());
    let p = page_of(
        list(json!({"totalResults": 25, "Resources": [1, 2, 3]})),
        21,
    )
    .unwrap();
    assert_eq!(p.next, Some(24));
    let p = page_of(
        list(json!({"totalResults": 23, "Resources": [1, 2, 3]})),
        21,
    )
    .unwrap();
    assert_eq!(p.next, None);
    let p = page_of(list(json!({"Resources": [1, 2, 3]})), 21).unwrap();
    assert_eq!(
        p.next,
        Some(24),
        "without totalResults, until an empty page"
    );
    let p = page_of(list(json!({"Resources": []})), 24).unwrap();
    assert_eq!(p.next, None);
    let e = page_of(
        list(json!({"totalResults": 30, "startIndex": 1, "Resources": [1]})),
        11,
    );
    assert!(e.unwrap_err().contains("does not page"));
    assert!(page_of(list(json!({"totalResults": 30})), 1).is_err());
    assert_eq!(parse_cursor(None).unwrap(), 1);
    assert_eq!(parse_cursor(Some("101")).unwrap(), 101);
    assert!(parse_cursor(Some("0")).is_err() && parse_cursor(Some("abc")).is_err());
    assert!(scan_is_cheaper(1000, 2000, 100));
    assert!(!scan_is_cheaper(30, 100_000, 100));
    assert_eq!(page_size(None).unwrap(), 100);
    assert_eq!(page_size(Some(" 250 ")).unwrap(), 250);
    assert!(page_size(Some("0")).is_err() && page_size(Some("5000")).is_err());
}
