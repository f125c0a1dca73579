//! Unit tests of `rt.rs`: ids, TicketSQL quoting, the idempotency tag, the
//! create body, and reading RT's JSON leniently.

use super::*;

fn config() -> Config {
    Config::from_settings(|name| (name == "base_url").then(|| "http://rt".to_owned())).unwrap()
}

fn new_ticket(fields: &[(&str, &str)]) -> NewTicket {
    NewTicket {
        subject: "Disk full".into(),
        body: "The disk is full.\nÅtgärda.".into(),
        queue: None,
        priority: Some("high".into()),
        requester: Some("asa@kommun.se".into()),
        assignee: None,
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

#[test]
fn ticket_ids() {
    assert_eq!(ticket_id("42").unwrap(), "42");
    assert_eq!(ticket_id(" #42 ").unwrap(), "42");
    assert_eq!(ticket_id("RT-0042").unwrap(), "42");
    assert_eq!(ticket_id("0").unwrap(), "0");
    for bad in [
        "",
        "abc",
        "4 2",
        "42/comment",
        "../1",
        "-1",
        "1234567890123456789",
    ] {
        let e = ticket_id(bad).unwrap_err();
        assert!(!e.retryable);
        assert!(e.message.contains("not a Request Tracker ticket number"));
    }
}

#[test]
fn ticketsql_quoting() {
    assert_eq!(tsql_quote("inst/step/0/1"), "'inst/step/0/1'");
    assert_eq!(tsql_quote(r"it's a \ key"), r"'it\'s a \\ key'");
}

#[test]
fn key_tags_are_short_and_stable() {
    let tag = key_tag("inst-1/notify/0/1");
    assert_eq!(tag, key_tag("inst-1/notify/0/1"));
    assert_ne!(tag, key_tag("inst-1/notify/0/2"));
    assert!(tag.starts_with("[vakt:") && tag.ends_with(']'));
    assert_eq!(tag.len(), "[vakt:]".len() + 12);
    let q = find_by_key_query("vakt-key", "k'1");
    assert_eq!(
        q,
        format!(
            "CF.{{vakt-key}} = 'k\\'1' OR Subject LIKE '{}'",
            key_tag("k'1")
        )
    );
}

#[test]
fn create_body_with_the_custom_field() {
    let fields = vec!["vakt-key".to_owned(), "Severity".to_owned()];
    let t = new_ticket(&[("Severity", "Low"), ("vakt-key", "spoofed")]);
    let body = create_body(&config(), &t, "IT", "inst/s/0/1", true, &fields).unwrap();
    assert_eq!(
        body,
        json!({
            "Queue": "IT",
            "Subject": "Disk full",
            "Content": "The disk is full.\nÅtgärda.",
            "ContentType": "text/plain",
            "Priority": 80,
            "Requestor": "asa@kommun.se",
            "CustomFields": {"Severity": "Low", "vakt-key": "inst/s/0/1"},
        })
    );
}

#[test]
fn create_body_without_the_custom_field_tags_the_subject() {
    let mut t = new_ticket(&[]);
    t.priority = None;
    t.requester = Some(" ".into());
    t.assignee = Some("helpdesk".into());
    let body = create_body(&config(), &t, "General", "k", false, &[]).unwrap();
    assert_eq!(body["Subject"], format!("Disk full {}", key_tag("k")));
    assert_eq!(body["Owner"], "helpdesk");
    assert!(body.get("Priority").is_none());
    assert!(body.get("Requestor").is_none());
    assert!(body.get("CustomFields").is_none());
}

#[test]
fn create_body_refuses_fields_the_queue_lacks() {
    let t = new_ticket(&[("Severity", "Low"), ("Dept", "IT")]);
    let e = create_body(&config(), &t, "IT", "k", true, &["vakt-key".into()]).unwrap_err();
    assert!(!e.retryable);
    assert!(e.message.contains("`Severity`, `Dept`"), "{}", e.message);
    assert!(e.message.contains("queue `IT`"), "{}", e.message);
    assert!(e.message.contains("it has: vakt-key"), "{}", e.message);
    let mut t = new_ticket(&[]);
    t.priority = Some("whenever".into());
    assert!(create_body(&config(), &t, "IT", "k", true, &[]).is_err());
}

#[test]
fn reads_rt_json_leniently() {
    let t: RawTicket =
        serde_json::from_str(r#"{"id": 7, "Subject": "S", "Status": "new", "Extra": [1]}"#)
            .unwrap();
    assert_eq!(id_text(&t.id).as_deref(), Some("7"));
    assert_eq!(t.owner(), None);
    let t: RawTicket = serde_json::from_str(r#"{"id": "8", "Owner": {"id": "root"}}"#).unwrap();
    assert_eq!(t.owner(), Some("root"));
    let q: RawQueue = serde_json::from_str(
        r#"{"id": 3, "Name": "vakt", "TicketCustomFields": [{"id": "2", "name": "vakt-key", "type": "customfield"}]}"#,
    )
    .unwrap();
    assert_eq!(q.ticket_custom_fields[0].name.as_deref(), Some("vakt-key"));
    let p: Page<RawRef> = serde_json::from_str(
        r#"{"total": 0, "pages": 0.0, "items": [], "page": 1, "per_page": 20}"#,
    )
    .unwrap();
    assert!(p.items.is_empty() && p.next_page.is_none());
    assert_eq!(id_text(&json!(null)), None);
    assert_eq!(id_text(&json!("")), None);
}

#[test]
fn comments_come_from_comment_and_correspond_transactions() {
    let history: Vec<RawTransaction> = serde_json::from_value(json!([
        {"id": "42", "Type": "Create"},
        {"id": "53", "Type": "Comment"},
        {"id": "54", "Type": "Correspond"},
        {"id": "55", "Type": "Status"},
        {"id": "56", "Type": "Comment"},
        {"id": "57", "Type": "Comment"},
    ]))
    .unwrap();
    let attachments: Vec<RawAttachment> = serde_json::from_value(json!([
        {"TransactionId": "42", "ContentType": "text/plain", "Content": "the body"},
        {"TransactionId": "53", "ContentType": "text/plain", "Content": "private note\n"},
        {"TransactionId": "54", "ContentType": "multipart/alternative", "Content": ""},
        {"TransactionId": "54", "ContentType": "text/html", "Content": "<p>svar</p>"},
        {"TransactionId": "54", "ContentType": "text/plain; charset=UTF-8", "Content": "svar åäö"},
        {"TransactionId": "56", "ContentType": "text/html", "Content": "<b>only html</b>"},
        {"TransactionId": "57", "ContentType": "image/png", "Content": null},
    ]))
    .unwrap();
    assert_eq!(
        comments(&history, &attachments),
        ["private note", "svar åäö", "<b>only html</b>"]
    );
}

#[test]
fn messages_of_an_update() {
    assert_eq!(
        messages(&json!([
            "Ticket 1: Status 'x' isn't a valid status for this ticket."
        ])),
        ["Ticket 1: Status 'x' isn't a valid status for this ticket."]
    );
    assert_eq!(messages(&json!({"message": "Not Found"})), ["Not Found"]);
    assert!(messages(&json!([])).is_empty());
    assert!(messages(&json!(3)).is_empty());
}
