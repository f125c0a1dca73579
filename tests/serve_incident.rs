//! End to end: the real `workflows/incident-escalation.yaml` in a real
//! `vakt serve`, with the real mail plugin sending to a real SMTP server on
//! loopback.
//!
//! An operator starts an incident through the API. No plugin is bound to
//! `ticketing`, so the ticket step fails at once and for good (a permanent
//! error is not retried) and its `on_error` mails the security mailbox; the
//! flow goes on and the acknowledge task mails the security officer one
//! signed link per option. The link is followed as a person would: GET shows
//! a confirmation page and decides nothing (the task is still open, the
//! history unchanged); POST decides, and the instance moves on to the GDPR
//! assessment, which mails its assignees. The same link again gets 410 and
//! changes nothing; a tampered link gets 400. SIGTERM stops the daemon with
//! exit code 0; a restart on the same data directory serves the same state,
//! and the GDPR assessment is then decided through its mailed link, which
//! needs a comment, and the instance completes.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use vakt_tests::support::{Daemon, DaemonBuilder, Link, Smtp, http, poll};

const OPS: &str = "ops@kommun.example";
const OFFICER: &str = "officer@kommun.example";
const DPO: &str = "dpo@kommun.example";
const SECURITY_MAILBOX: &str = "security@kommun.example";
const WORKFLOW: &str = "incident-escalation";
const WAIT: Duration = Duration::from_secs(30);

/// The task of `instance` with id `task` (`<instance>:<n>`).
fn task(instance: &Value, task: &str) -> Value {
    instance["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == task))
        .cloned()
        .unwrap_or_else(|| panic!("no task {task} in {instance:#}"))
}

/// The records of `history` of type `kind`.
fn records<'h>(history: &'h [Value], kind: &str) -> Vec<&'h Value> {
    history.iter().filter(|e| e["type"] == kind).collect()
}

/// `(seq, hash)` of each record: equal lists mean nothing was added or changed.
fn chain(d: &Daemon, token: &str, id: &str) -> Vec<(u64, String)> {
    d.history(token, id)
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["hash"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A token with one character of its MAC changed, and one whose payload
/// claims another option under the original MAC.
fn tampered(link: &Link) -> Vec<String> {
    let (payload, mac) = link.token.split_once('.').unwrap();
    let mut flipped: Vec<char> = mac.chars().collect();
    flipped[0] = if flipped[0] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    let mut claim = link.claim();
    claim.option = "not_security".into();
    let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claim).unwrap());
    vec![
        format!("{payload}.{flipped}"),
        format!("{forged}.{mac}"),
        format!("{payload}{mac}"),
    ]
}

#[test]
fn incident_through_the_api_the_mail_and_its_signed_links() {
    let smtp = Smtp::start();
    let mut d = DaemonBuilder::new("incident")
        .mail_through(&smtp)
        .role("security_officer", &[OFFICER])
        .role("security_deputy", &["deputy@kommun.example"])
        .role("ciso", &["ciso@kommun.example"])
        .role("dpo", &[DPO])
        .role("management", &["director@kommun.example"])
        .repo_workflow("workflows/incident-escalation.yaml")
        .prepare();
    let ops = d.token(OPS, "operator");
    d.start();

    // ---- Started through the API by an operator.
    let discovered = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id = d.start_instance(
        &ops,
        WORKFLOW,
        &json!({
            "discovered_at": discovered,
            "kind": "personal_data",
            "description": "En lärares bärbara dator med elevlistor är stulen.",
            "school": "Norra skolan",
            "reporter": "larare@kommun.example",
            "security_mailbox": SECURITY_MAILBOX,
        }),
    );

    // ---- The ticket step: no ticketing plugin, so it fails at once; its
    // on_error mails the security mailbox and the flow goes on.
    let ticket_mail = smtp.wait_one("the ticket_failed mail", WAIT, |m| {
        m.is_for(SECURITY_MAILBOX)
    });
    assert!(
        ticket_mail
            .subject
            .starts_with("Ärendesystemet svarar inte – Personuppgiftsincident på Norra skolan"),
        "subject: {}",
        ticket_mail.subject
    );
    assert!(
        ticket_mail.text.contains(&id) && ticket_mail.text.contains("`ticketing`"),
        "the mail names the instance and the missing role:\n{}",
        ticket_mail.text
    );

    // ---- The acknowledge task mails the security officer.
    let ack_mail = smtp.wait_one("the acknowledge task's mail", WAIT, |m| {
        m.is_for(OFFICER) && m.subject.starts_with("Decision needed")
    });
    assert_eq!(
        ack_mail.subject,
        "Decision needed: Kvittera: Personuppgiftsincident på Norra skolan"
    );
    assert!(ack_mail.text.contains(&id), "{}", ack_mail.text);
    let links = ack_mail.links();
    assert_eq!(links.len(), 2, "one link per option: {links:#?}");
    let ack = ack_mail.link_for("acknowledge");
    let not_security = ack_mail.link_for("not_security");
    let claim = ack.claim();
    assert_eq!(
        (claim.instance.as_str(), claim.assignee.as_str()),
        (id.as_str(), OFFICER)
    );
    assert!(
        ack.url.starts_with(&format!("{}/t/", d.base())),
        "the link points at the daemon: {}",
        ack.url
    );
    let html = ack_mail.html.clone().expect("an HTML part");
    for l in &links {
        assert!(html.contains(&l.url), "the HTML part has {}", l.url);
    }
    let ack_task = format!("{id}:{}", claim.task);

    let inst = d.wait_status(&ops, &id, "waiting", WAIT);
    let t = task(&inst, &ack_task);
    assert_eq!(t["status"], "open");
    assert_eq!(t["assignees"], json!(["role:security_officer"]));
    let options: Vec<&str> = t["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(options, ["acknowledge", "not_security"]);

    // The history shows the failed ticket call: requested once (a permanent
    // error is not retried), answered with the error, the handler mailed.
    let history = d.history(&ops, &id);
    let ticket_calls: Vec<_> = records(&history, "call_requested")
        .into_iter()
        .filter(|r| {
            r["record"]["idempotency_key"]
                .as_str()
                .is_some_and(|k| k.contains("/open_ticket/"))
        })
        .collect();
    assert_eq!(ticket_calls.len(), 1, "one attempt: {ticket_calls:#?}");
    let failed = records(&history, "step_failed");
    let failed = failed
        .iter()
        .find(|r| r["record"]["step"] == "open_ticket")
        .unwrap_or_else(|| panic!("open_ticket did not fail: {history:#?}"));
    assert_eq!(failed["record"]["error"]["kind"], "connector");
    assert!(
        failed["record"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no plugin is bound to the `ticketing` role"),
        "{failed:#}"
    );
    assert!(
        records(&history, "step_completed")
            .iter()
            .any(|r| r["record"]["step"] == "ticket_failed"),
        "the on_error mail step completed"
    );

    // ---- GET shows a confirmation page and decides nothing.
    let before = chain(&d, &ops, &id);
    let page = http::get(&ack.url).send().expect(200);
    assert!(
        page.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{page:?}"
    );
    assert!(
        page.text.contains("Confirm your decision")
            && page.text.contains("Kvittera – jag hanterar incidenten")
            && page.text.to_lowercase().contains("method=\"post\""),
        "{page:?}"
    );
    // Twice, as a mail scanner and then the person would.
    http::get(&ack.url).send().expect(200);
    assert_eq!(chain(&d, &ops, &id), before, "GET changed the history");
    assert_eq!(
        task(&d.instance(&ops, &id), &ack_task)["status"],
        "open",
        "GET decided the task"
    );

    // ---- POST decides; the instance proceeds to the GDPR assessment.
    let done = http::post(&ack.url)
        .form(&[("comment", "Jag tar hand om incidenten.")])
        .send()
        .expect(200);
    assert!(done.text.contains("Decision recorded"), "{done:?}");
    let (inst, gdpr_task) = poll(
        "the acknowledge task closed and the next task open",
        WAIT,
        || {
            let inst = d.instance(&ops, &id);
            let t = task(&inst, &ack_task);
            let next = inst["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["id"] != ack_task.as_str() && t["status"] == "open")
                .cloned();
            match next {
                Some(n) if t["status"] == "closed" => Ok((inst, n)),
                _ => Err(format!("{:#}", inst["tasks"])),
            }
        },
    );
    let t = task(&inst, &ack_task);
    assert_eq!(t["outcome"], "acknowledge");
    assert_eq!(t["votes"][0]["by"], OFFICER);
    assert_eq!(t["votes"][0]["comment"], "Jag tar hand om incidenten.");
    assert!(
        gdpr_task["title"]
            .as_str()
            .unwrap()
            .starts_with("Bedöm incidenten på Norra skolan"),
        "{gdpr_task:#}"
    );
    assert_eq!(
        gdpr_task["assignees"],
        json!(["role:dpo", "role:security_officer"])
    );
    let history = d.history(&ops, &id);
    let voted = records(&history, "task_voted");
    assert_eq!(voted.len(), 1, "{voted:#?}");
    assert_eq!(voted[0]["record"]["vote"]["by"], OFFICER);
    assert_eq!(voted[0]["record"]["vote"]["option"], "acknowledge");
    assert!(
        records(&history, "step_entered")
            .iter()
            .any(|r| r["record"]["step"] == "gdpr_assessment"),
        "the flow reached the GDPR assessment"
    );
    // Its assignees are mailed: the DPO and the security officer.
    let gdpr_subject = "Decision needed: Bedöm incidenten på Norra skolan";
    let dpo_mail = smtp.wait_one("the GDPR task's mail to the DPO", WAIT, |m| {
        m.is_for(DPO) && m.subject.starts_with(gdpr_subject)
    });
    let officer_gdpr_mail = smtp.wait_one("the GDPR task's mail to the officer", WAIT, |m| {
        m.is_for(OFFICER) && m.subject.starts_with(gdpr_subject)
    });
    assert_eq!(dpo_mail.links().len(), 4, "four options: {}", dpo_mail.text);

    // ---- The same link again: 410, and nothing changes.
    let before = chain(&d, &ops, &id);
    let again = http::post(&ack.url)
        .form(&[("comment", "En gång till.")])
        .send()
        .expect(410);
    assert!(again.text.contains("already used"), "{again:?}");
    let again = http::get(&ack.url).send().expect(410);
    assert!(again.text.contains("already used"), "{again:?}");
    // The other option's link of the closed task: refused, nothing changes.
    let closed = http::post(&not_security.url)
        .form(&[("comment", "Ingen risk.")])
        .send();
    assert_eq!(closed.status, 409, "{closed:?}");
    // ---- Tampered links: 400, nothing changes.
    for token in tampered(&ack) {
        let url = format!("{}/t/{token}", d.base());
        let r = http::get(&url).send();
        assert_eq!(r.status, 400, "GET of a tampered link: {r:?}");
        assert!(r.text.contains("not valid"), "{r:?}");
        let r = http::post(&url).form(&[("comment", "x")]).send();
        assert_eq!(r.status, 400, "POST of a tampered link: {r:?}");
    }
    assert_eq!(
        chain(&d, &ops, &id),
        before,
        "a refused link changed the history"
    );
    let t = task(&d.instance(&ops, &id), &ack_task);
    assert_eq!(t["votes"].as_array().unwrap().len(), 1, "{t:#}");

    // ---- SIGTERM: exit 0; a restart serves the same state.
    let before_instance = d.instance(&ops, &id);
    let status = d.sigterm();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exit: {status}\n{}",
        d.log_tail(20)
    );
    assert!(
        d.log().contains("vakt stopped cleanly"),
        "{}",
        d.log_tail(20)
    );
    d.restart();
    let after_instance = d.instance(&ops, &id);
    for field in ["status", "tasks", "clocks", "hash", "input", "started_by"] {
        assert_eq!(
            after_instance[field], before_instance[field],
            "`{field}` differs after the restart"
        );
    }
    assert_eq!(
        chain(&d, &ops, &id),
        before,
        "the restart changed the history"
    );
    // The used link stays used across the restart.
    http::post(ack.on(&d.base()))
        .form(&[("comment", "Efter omstart.")])
        .send()
        .expect(410);

    // ---- The GDPR assessment through the DPO's link: it needs a comment.
    let no_data = dpo_mail.link_for("no_personal_data");
    let url = no_data.on(&d.base());
    let page = http::get(&url).send().expect(200);
    assert!(
        page.text.contains("Inga personuppgifter berörs"),
        "{page:?}"
    );
    let missing = http::post(&url).form(&[("comment", "  ")]).send();
    assert_eq!(missing.status, 422, "no comment: {missing:?}");
    assert!(
        missing.text.contains("<form"),
        "the form again: {missing:?}"
    );
    assert_eq!(
        task(&d.instance(&ops, &id), gdpr_task["id"].as_str().unwrap())["status"],
        "open"
    );
    http::post(&url)
        .form(&[(
            "comment",
            "Datorn var krypterad; inga personuppgifter röjda.",
        )])
        .send()
        .expect(200);
    let done = d.wait_status(&ops, &id, "completed", WAIT);
    assert_eq!(done["output"]["classification"], "Personuppgiftsincident");
    assert_eq!(done["output"]["ticket"], "");
    assert_eq!(
        done["output"]["outcome"]["gdpr_assessment"]["decision"],
        "no_personal_data"
    );
    assert_eq!(
        done["output"]["outcome"]["acknowledged_by"], OFFICER,
        "{:#}",
        done["output"]
    );
    // Not reported to IMY: the internal report is mailed.
    let report = smtp.wait_one("the internal report", WAIT, |m| {
        m.is_for(SECURITY_MAILBOX) && m.subject.starts_with("Intern rapport")
    });
    assert!(report.text.contains("no_personal_data"), "{}", report.text);
    // The officer's link to the same (now closed) task decides nothing.
    let late = officer_gdpr_mail.link_for("report").on(&d.base());
    let r = http::post(&late).form(&[("comment", "Sent.")]).send();
    assert_eq!(r.status, 409, "{r:?}");
    let final_history = d.history(&ops, &id);
    assert_eq!(final_history.last().unwrap()["type"], "completed");
    assert_eq!(records(&final_history, "task_voted").len(), 2);

    assert_eq!(d.sigterm().code(), Some(0));
}
