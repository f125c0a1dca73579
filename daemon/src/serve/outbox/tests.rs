//! Tests of the `.eml` outbox: the files, the messages, refusals and the
//! encodings.

use super::*;

const NORDIC: &str = "Åsa Öberg, Ærø, Bjørn Ødegård: åäöæøå ÅÄÖÆØÅ – \"quoted\" = sign";

fn call(key: &str, args: Value) -> ConnectorCall {
    ConnectorCall {
        instance: "i1".into(),
        role: "mail".into(),
        action: "send".into(),
        args,
        idempotency_key: key.into(),
        attempt: 1,
        deadline: None,
    }
}

fn args() -> Value {
    json!({
        "to": ["Åsa Öberg <asa@skola.kommun.se>", "bjorn@kommune.no"],
        "cc": "chef@kommun.se",
        "bcc": ["arkiv@kommun.se"],
        "subject": format!("Godkänn: {NORDIC}"),
        "body": format!("Hej!\n\n{NORDIC}\n{}\nslut ", "x".repeat(200)),
        "from_name": "Kommunens IT",
    })
}

/// Headers (unfolded, words decoded) and the decoded text parts.
fn parse(bytes: &[u8]) -> (Vec<(String, String)>, Vec<String>) {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "only CRLF line breaks"
    );
    assert!(text.split("\r\n").all(|l| l.len() <= 998));
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.is_ascii(), "headers are ASCII (encoded words)");
    let headers = head
        .replace("\r\n ", " ")
        .split("\r\n")
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap();
            (k.to_owned(), decode_words(v))
        })
        .collect();
    let decode = |cte: &str, p: &str| match cte {
        "8bit" => p.replace("\r\n", "\n"),
        _ => unqp(p),
    };
    let parts = if head.contains("multipart/alternative") {
        body.split("Content-Transfer-Encoding: ")
            .skip(1)
            .map(|p| {
                let (cte, rest) = p.split_once("\r\n\r\n").unwrap();
                decode(cte, rest.split("\r\n--vakt-").next().unwrap())
            })
            .collect()
    } else {
        let cte = head
            .split("Content-Transfer-Encoding: ")
            .nth(1)
            .and_then(|r| r.split("\r\n").next())
            .unwrap();
        vec![decode(cte, body.strip_suffix("\r\n").unwrap_or(body))]
    };
    (headers, parts)
}

fn decode_words(v: &str) -> String {
    let mut out = String::new();
    let mut was_word = false;
    for (i, w) in v.split(' ').enumerate() {
        let word = w
            .strip_prefix("=?utf-8?B?")
            .and_then(|w| w.strip_suffix("?="));
        if i > 0 && !(was_word && word.is_some()) {
            out.push(' ');
        }
        match word {
            Some(b) => out.push_str(&String::from_utf8(B64.decode(b).unwrap()).unwrap()),
            None => out.push_str(w),
        }
        was_word = word.is_some();
    }
    out
}

fn unqp(qp: &str) -> String {
    let joined = qp.replace("=\r\n", "").replace("\r\n", "\n");
    let mut out = Vec::new();
    let b = joined.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            out.push(u8::from_str_radix(&joined[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn get<'a>(h: &'a [(String, String)], k: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut f: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    f.sort();
    f
}

#[tokio::test]
async fn writes_one_parseable_file_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let o = EmlOutbox::new(dir.path().join("out"), "vakt@kommun.se".into());
    let key = "notify/i1/3/opened/0/asa@skola.kommun.se";
    let first = o.call(call(key, args())).await;
    let CallOutcome::Ok(v) = &first else {
        panic!("{first:?}")
    };
    let mid = v["message_id"].as_str().unwrap();
    assert!(
        mid.starts_with("<vakt.") && mid.ends_with("@kommun.se>"),
        "{mid}"
    );
    assert_eq!(
        o.call(call(key, args())).await,
        first,
        "the same answer, no second file"
    );
    let written = files(o.dir());
    assert_eq!(written.len(), 1, "{written:?}");
    let name = written[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        name.len(),
        "20250101T000000-0123456789abcdef.eml".len(),
        "{name}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(o.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    let bytes = std::fs::read(&written[0]).unwrap();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("arkiv"),
        "no bcc anywhere"
    );
    let (h, parts) = parse(&bytes);
    let want = [
        ("From", "\"Kommunens IT\" <vakt@kommun.se>"),
        ("To", "Åsa Öberg <asa@skola.kommun.se>, bjorn@kommune.no"),
        ("Cc", "chef@kommun.se"),
        ("Message-ID", mid),
        ("X-Vakt-Idempotency-Key", key),
    ];
    for (k, v) in want {
        assert_eq!(get(&h, k), Some(v), "{k}");
    }
    assert_eq!(get(&h, "Subject").unwrap(), format!("Godkänn: {NORDIC}"));
    assert!(get(&h, "Date").unwrap().ends_with("+0000"));
    assert_eq!(
        parts,
        [format!("Hej!\n\n{NORDIC}\n{}\nslut ", "x".repeat(200))]
    );

    let mut a = args();
    a["html"] = json!(format!("<p>{NORDIC}</p>"));
    assert!(matches!(o.send(&call("other", a)), CallOutcome::Ok(_)));
    let eml = files(o.dir())
        .into_iter()
        .find(|p| *p != written[0])
        .unwrap();
    let (h, parts) = parse(&std::fs::read(eml).unwrap());
    assert!(
        get(&h, "Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    assert_eq!(parts[1], format!("<p>{NORDIC}</p>"));
}

#[test]
fn refuses_what_cannot_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let o = EmlOutbox::new(dir.path().to_path_buf(), "vakt@kommun.se".into());
    let refused = |c: ConnectorCall| match o.send(&c) {
        CallOutcome::Err {
            message,
            retryable: false,
            ..
        } => message,
        other => panic!("{other:?}"),
    };
    let with = |k: &str, v: Value| {
        let mut a = args();
        a[k] = v;
        call("k", a)
    };
    let c = ConnectorCall {
        role: "ticketing".into(),
        ..call("k", args())
    };
    assert!(refused(c).contains("`ticketing`"));
    let c = ConnectorCall {
        action: "fax".into(),
        ..call("k", args())
    };
    assert!(refused(c).contains("no action `fax`"));
    let c = with("subject", json!("Hi\r\nBcc: victim@evil.example"));
    assert!(refused(c).contains("line break"));
    assert!(refused(with("to", json!(["a@b.se\nX-Evil: 1"]))).contains("line break"));
    assert!(refused(with("cc", json!(["nobody"]))).contains("cc: `nobody`"));
    assert!(refused(with("body", Value::Null)).contains("`body` is required"));
    assert!(files(dir.path()).is_empty());

    // An IO failure is retryable and names the path.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let o = EmlOutbox::new(file.join("sub"), "vakt@kommun.se".into());
    match o.send(&call("k", args())) {
        CallOutcome::Err {
            message,
            retryable: true,
            ..
        } => {
            assert!(message.contains("not-a-dir"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn encodings_stay_within_line_limits() {
    let long = "ö".repeat(100);
    let w = encode_words(&long);
    assert!(w.split("\r\n ").all(|l| l.len() <= 75), "{w}");
    let qp = quoted_printable(&format!("{long} \n= end\t"));
    assert!(qp.split("\r\n").all(|l| l.len() <= 76), "{qp}");
    assert_eq!(unqp(&qp), format!("{long} \n= end\t"));
    assert!(qp.ends_with("end=09"));
}
