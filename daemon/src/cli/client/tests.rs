//! Tests of the client verbs: rendering, arguments, and whole verbs against
//! a stub daemon on loopback that answers canned responses.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use clap::Parser;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::render::{self, Table};
use super::*;

#[derive(Parser)]
struct T {
    #[command(subcommand)]
    cmd: ClientCommand,
}

fn parse(args: &[&str]) -> Result<ClientCommand, clap::Error> {
    T::try_parse_from(std::iter::once("vakt").chain(args.iter().copied())).map(|t| t.cmd)
}

#[test]
fn tables_align_cut_and_clean() {
    let mut t = Table::new(&["ID", "TITLE", "NOTE"]);
    t.row(vec!["a".into(), "x".repeat(60), "short".into()]);
    t.row(vec!["bbbb".into(), "two\nlines\x1b[31m".into()]);
    let text = t.render();
    let lines: Vec<&str> = text.lines().collect();
    let cut = format!("{}…", "x".repeat(render::CELL - 1));
    assert_eq!(
        lines[0],
        format!("ID    TITLE{}  NOTE", " ".repeat(render::CELL - 5))
    );
    assert_eq!(lines[1], format!("a     {cut}  short"));
    assert_eq!(lines[2], "bbbb  two lines [31m");
    assert!(text.lines().all(|l| !l.ends_with(' ')), "{text}");
}

#[test]
fn times_are_utc_to_the_second() {
    let t = |v: Value| render::time(Some(&v));
    assert_eq!(
        t(json!("2025-03-01T10:15:30.123+01:00")),
        "2025-03-01T09:15:30Z"
    );
    assert_eq!(t(Value::Null), "-");
    assert_eq!(render::time(None), "-");
    assert_eq!(t(json!("soon")), "soon");
}

#[test]
fn views_of_answers() {
    let v = json!({"instances": [{
        "id": "i1", "workflow": "offboarding", "status": "waiting",
        "started_at": "2025-03-01T09:00:00Z", "started_by": "ops@kommun.se", "updated_at": null
    }]});
    assert_eq!(
        render::instances(&v),
        "ID  WORKFLOW     STATUS   STARTED               UPDATED  STARTED BY\n\
         i1  offboarding  waiting  2025-03-01T09:00:00Z  -        ops@kommun.se\n"
    );
    assert_eq!(
        render::instances(&json!({"instances": []})),
        "no instances match\n"
    );
    let w = json!({"workflows": [{"id": "recert", "title": "Recertification", "file": "w/r.yaml",
        "status": "invalid", "hash": "ab", "errors": ["w/r.yaml:3:1: bad"], "loaded_at": null,
        "triggers": {"api": true, "cron": [
            {"name": "cron[0]", "schedule": "0 7 15 1 *", "timezone": "Europe/Oslo"},
            {"name": "weekly", "schedule": "0 6 * * 1", "timezone": "UTC"}]}}]});
    assert_eq!(
        render::workflows(&w),
        "ID      STATUS   TITLE            LOADED  FILE      TRIGGERS\n\
         recert  invalid  Recertification  -       w/r.yaml  api, cron `0 7 15 1 *` Europe/Oslo, cron weekly `0 6 * * 1` UTC\n\
         recert: w/r.yaml:3:1: bad\n"
    );
    let task = json!({"id": "i1:3", "instance": "i1", "workflow": "offboarding",
        "title": "Approve", "assignees": ["a@k.se", "role:dpo"], "due": "2000-01-01T00:00:00Z",
        "status": "open", "outcome": null,
        "options": [{"id": "approve", "label": "Approve"}, {"id": "reject", "label": "Reject"}]});
    let text = render::tasks(std::slice::from_ref(&task), false);
    assert!(
        text.contains("i1:3  offboarding  Approve  a@k.se, role:dpo  2000-01-01T00:00:00Z overdue  open    approve/reject"),
        "{text}"
    );
    let inst = json!({"id": "i1", "workflow": "offboarding", "hash": "abcdef0123456789",
        "status": "waiting", "input": {"user": "x"}, "started_at": "2025-03-01T09:00:00Z",
        "started_by": "ops@kommun.se", "updated_at": "2025-03-01T09:00:01Z", "output": null,
        "error": null, "tasks": [task], "waiting": ["task i1:3"],
        "clocks": {"gdpr": {"anchor": "2025-03-01T09:00:00Z", "due": "2025-03-31T09:00:00Z",
            "breached": false, "met_at": null}}});
    let history = json!({"verified": true, "history": [{"seq": 0, "at": "2025-03-01T09:00:00Z",
        "type": "started", "record": {"type": "started", "input": {"user": "x"}}, "hash": "ff"}]});
    let text = render::show(&inst, &history);
    for want in [
        "workflow  offboarding (definition abcdef012345)",
        "waiting   task i1:3",
        "input     {\"user\":\"x\"}",
        "gdpr   2025-03-01T09:00:00Z  2025-03-31T09:00:00Z  false     -",
        "history: 1 record(s), chain verified",
        "0    2025-03-01T09:00:00Z  started  {\"input\":{\"user\":\"x\"}}",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    assert!(!text.contains("output"), "{text}");
}

#[test]
fn json_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.json");
    std::fs::write(&file, r#"{"user": "x"}"#).unwrap();
    let mut stdin = Cursor::new(b"[1, 2]".to_vec());
    let at = format!("@{}", file.display());
    assert_eq!(
        json_arg("--input", &at, &mut stdin).unwrap(),
        json!({"user": "x"})
    );
    assert_eq!(json_arg("--input", "-", &mut stdin).unwrap(), json!([1, 2]));
    assert_eq!(json_arg("--data", "3", &mut stdin).unwrap(), json!(3));
    let e = json_arg("--input", "{user: x}", &mut stdin).unwrap_err();
    assert_eq!(e.code, 2);
    assert!(
        e.message
            .starts_with("--input: the argument is not valid JSON"),
        "{}",
        e.message
    );
    let e = json_arg("--data", "@/nonexistent/x.json", &mut stdin).unwrap_err();
    assert!(
        e.message
            .starts_with("--data: cannot read /nonexistent/x.json"),
        "{}",
        e.message
    );
    std::fs::write(&file, "{").unwrap();
    let e = json_arg("--input", &at, &mut stdin).unwrap_err();
    assert!(
        e.message.contains("in.json is not valid JSON"),
        "{}",
        e.message
    );
}

#[test]
fn arguments() {
    let ClientCommand::Decide {
        task,
        option,
        comment,
        conn,
    } = parse(&[
        "decide",
        "i1:3",
        "approve",
        "--comment",
        "ok",
        "--url",
        "http://h:1",
    ])
    .unwrap()
    else {
        panic!("not decide");
    };
    assert_eq!(
        (task.as_str(), option.as_str(), comment.as_deref()),
        ("i1:3", "approve", Some("ok"))
    );
    assert_eq!(conn.url, "http://h:1");
    let e = parse(&["instances", "--status", "asleep"]).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
    let conn = Conn {
        url: "u".into(),
        token: Some("vakt_secret".into()),
        json: false,
    };
    assert!(!format!("{conn:?}").contains("secret"));
    assert_eq!(Api::new("ftp://x", None).err().unwrap().code, 2);
}

/// One request as the stub saw it.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: String,
}

/// A daemon stand-in: answers every request with `status` and `body`.
async fn stub(status: u16, answer: &'static str) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len || n == 0 {
                        break (head.to_owned(), body.to_owned());
                    }
                }
                if n == 0 {
                    break (text, String::new());
                }
            };
            log.lock().unwrap().push(Seen { head, body });
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
        }
    });
    (url, seen)
}

async fn run_verb(args: &[&str]) -> (Result<u8, Failure>, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let r = execute(
        parse(args).unwrap(),
        &mut Cursor::new(Vec::new()),
        &mut out,
        &mut err,
    )
    .await;
    (
        r,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[tokio::test]
async fn start_sends_input_key_and_token() {
    let (url, seen) = stub(
        201,
        r#"{"id":"i42","workflow":"offboarding","status":"running"}"#,
    )
    .await;
    let token = "vakt_0123abcd_secretsecret";
    let (r, out, err) = run_verb(&[
        "start",
        "offboarding",
        "--input",
        r#"{"user":"x"}"#,
        "--idempotency-key",
        "k1",
        "--url",
        &url,
        "--token",
        token,
    ])
    .await;
    assert_eq!(r, Ok(0));
    assert_eq!(out, "i42\n");
    assert_eq!(err, "started an instance of offboarding (running)\n");
    let req = seen.lock().unwrap()[0].clone();
    assert!(
        req.head
            .starts_with("POST /api/v1/workflows/offboarding/instances HTTP/1.1"),
        "{}",
        req.head
    );
    let head = req.head.to_ascii_lowercase();
    assert!(
        head.contains(&format!("authorization: bearer {token}")),
        "{head}"
    );
    assert!(
        head.contains("idempotency-key: k1") && head.contains("content-type: application/json")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&req.body).unwrap(),
        json!({"user": "x"})
    );

    let (r, out, _) = run_verb(&[
        "start",
        "offboarding",
        "--url",
        &url,
        "--json",
        "--token",
        "",
    ])
    .await;
    assert_eq!(r, Ok(0));
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["id"], "i42");
    assert!(out.contains("\n  \"id\""), "not pretty: {out}");
    let req = seen.lock().unwrap()[1].clone();
    assert!(!req.head.to_ascii_lowercase().contains("authorization"));
    assert_eq!(req.body, "{}");
}

#[tokio::test]
async fn queries_and_paths_are_encoded() {
    let (url, seen) = stub(200, r#"{"tasks": []}"#).await;
    let (r, _, _) = run_verb(&["tasks", "--all", "--url", &format!("{url}/")]).await;
    assert_eq!(r, Ok(0));
    let (r, _, _) = run_verb(&[
        "instances",
        "--workflow",
        "a b",
        "--status",
        "failed",
        "--url",
        &url,
    ])
    .await;
    assert_eq!(r, Ok(0));
    let (r, _, _) = run_verb(&["signal", "i/1", "go", "--url", &url]).await;
    assert_eq!(r, Ok(0));
    let seen = seen.lock().unwrap();
    let lines: Vec<&str> = seen
        .iter()
        .map(|s| s.head.lines().next().unwrap())
        .collect();
    assert_eq!(lines[0], "GET /api/v1/tasks?status=all HTTP/1.1");
    assert_eq!(
        lines[1],
        "GET /api/v1/instances?workflow=a+b&status=failed HTTP/1.1"
    );
    assert_eq!(lines[2], "POST /api/v1/instances/i%2F1/signals/go HTTP/1.1");
    assert_eq!(seen[2].body, "null");
}

#[tokio::test]
async fn the_api_error_body_is_printed() {
    let (url, _) = stub(
        404,
        r#"{"error":{"code":"not_found","message":"no instance i9"}}"#,
    )
    .await;
    let (r, out, _) = run_verb(&["cancel", "i9", "--reason", "dup", "--url", &url]).await;
    let f = r.unwrap_err();
    assert_eq!(f.render(), "error: no instance i9 (not_found, HTTP 404)\n");
    assert_eq!(f.code, 1);
    assert!(out.is_empty());

    let (url, _) = stub(
        401,
        r#"{"error":{"code":"unauthorized","message":"a bearer token is required"}}"#,
    )
    .await;
    // An empty --token is no token (and overrides a VAKT_TOKEN of the test's environment).
    let f = run_verb(&["tasks", "--url", &url, "--token", ""])
        .await
        .0
        .unwrap_err();
    let text = f.render();
    assert!(
        text.starts_with("error: a bearer token is required (unauthorized, HTTP 401)\nhint: "),
        "{text}"
    );
    assert!(
        text.contains("VAKT_TOKEN") && text.contains("vakt token create"),
        "{text}"
    );
    let f = run_verb(&["tasks", "--url", &url, "--token", "vakt_hidden"])
        .await
        .0
        .unwrap_err();
    assert!(f.render().contains("refused") && !f.render().contains("vakt_hidden"));

    let (url, _) = stub(502, "Bad Gateway").await;
    let f = run_verb(&["workflows", "--url", &url]).await.0.unwrap_err();
    assert_eq!(
        f.message,
        format!("{url} answered HTTP 502 Bad Gateway: Bad Gateway")
    );
}

#[tokio::test]
async fn an_unreachable_daemon_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let f = run_verb(&["instances", "--url", &url, "--token", "vakt_hidden"])
        .await
        .0
        .unwrap_err();
    let text = f.render();
    assert_eq!(f.code, 1);
    assert!(
        text.starts_with(&format!("error: cannot reach vakt at {url}: ")),
        "{text}"
    );
    assert!(
        text.trim_end()
            .ends_with("(is vakt serve running? set VAKT_URL)"),
        "{text}"
    );
    assert!(
        text.to_lowercase().contains("refused") && !text.contains("vakt_hidden"),
        "{text}"
    );
    let https = url.replace("http:", "https:");
    let f = run_verb(&["tasks", "--url", &https]).await.0.unwrap_err();
    assert!(
        f.message
            .starts_with(&format!("cannot reach vakt at {https}: ")),
        "{f:?}"
    );
}
