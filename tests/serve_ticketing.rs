//! End to end: the real `workflows/incident-escalation.yaml` in a real
//! `vakt serve` with a real ticket system bound to the `ticketing` role,
//! once per binding: the Redmine plugin against Debian's Redmine, and the
//! Request Tracker plugin against Debian's RT 5 (both on loopback, started
//! by `scripts/servers/*.sh start`; `VAKT_SKIP_SERVERS=1` skips, saying so).
//! The mail plugin sends to the SMTP sink.
//!
//! The plugin reaches the server through a proxy (`support::proxy`) that can
//! lose answers. An operator starts an incident through the API and the
//! daemon is killed (`kill -9`) as soon as the start is acknowledged, then
//! restarted on the same data directory; the proxy holds back the answer to
//! the ticket's create, so the server opens the ticket but the daemon never
//! hears of it, and the daemon is killed again and restarted: the call,
//! re-issued with the same idempotency key, finds the ticket (the plugin
//! says so in the log; no create was ever answered), and the ticket exists
//! exactly once on the server. It is read back over the server's REST API: the
//! subject names the school, the idempotency key is on it (Redmine: the
//! `vakt-key` custom field; RT: the subject tag, since the queue `sakerhet`
//! has no `vakt-key` field), the priority is high. The instance's
//! `open_ticket` output holds the ticket's id and no `ticket_failed` mail
//! is sent. The security officer acknowledges and the DPO assesses
//! `no_personal_data` through the API; the instance completes, and at the
//! end the workflow comments on the ticket (a private summary) and closes
//! it, both read back from the server's journal / history. (The workflow
//! does not comment at escalations: those only mail.)
//!
//! The workflow's `open_ticket` step says `queue: sakerhet`, which both
//! plugins prefer to their `project`/`queue` setting: Redmine has the
//! project `sakerhet`; RT gets a queue of that name made here (REST2).

use std::time::Duration;

use serde_json::{Value, json};
use vakt_tests::support::proxy::Proxy;
use vakt_tests::support::servers::{self, Redmine, Rt, rt_key_tag};
use vakt_tests::support::{Daemon, DaemonBuilder, Smtp, now_ms, poll};

const OPS: &str = "ops@kommun.example";
const OFFICER: &str = "officer@kommun.example";
const DPO: &str = "dpo@kommun.example";
const SECURITY_MAILBOX: &str = "security@kommun.example";
const WORKFLOW: &str = "incident-escalation";
/// A task or the instance's end (plugin calls to a loaded ticket system).
const WAIT: Duration = Duration::from_secs(90);
/// The ticket: the restarted daemon reissues the call (a first attempt may
/// have failed and be retried after the step's 20 s backoff).
const TICKET_WAIT: Duration = Duration::from_secs(150);
const SUMMARY: &str = "Sammanfattning (underlag för revision)";
const CLOSING: &str = "Incidenten är hanterad enligt rutinen.";

/// One ticket system, as the test sees it.
trait TicketSystem {
    /// The server's address.
    fn url(&self) -> &str;
    /// The request that opens a ticket: `(method, path)`.
    fn create_request(&self) -> (&'static str, &'static str);
    /// What the plugin logs when a create finds the ticket by its key.
    fn found_by_key(&self, ticket: &str) -> String;
    /// Binds its plugin to `ticketing` in the prepared daemon's config,
    /// reaching the server at `base` (the proxy).
    fn bind(&self, d: &Daemon, base: &str);
    /// The tickets holding `key` or titled with `school`: `(by key, by
    /// subject)` ids.
    fn tickets(&self, key: &str, school: &str) -> (Vec<String>, Vec<String>);
    /// Asserts the new ticket: subject, key, priority, body.
    fn check_opened(&self, ticket: &str, key: &str, school: &str, instance: &str);
    /// Asserts the private summary comment and the close.
    fn check_closed(&self, ticket: &str);
}

struct RedmineBinding(Redmine);

impl TicketSystem for RedmineBinding {
    fn url(&self) -> &str {
        &self.0.url
    }

    fn create_request(&self) -> (&'static str, &'static str) {
        ("POST", "/issues.json")
    }

    fn found_by_key(&self, ticket: &str) -> String {
        format!("issue #{ticket} already holds the idempotency key")
    }

    fn bind(&self, d: &Daemon, base: &str) {
        let r = &self.0;
        servers::bind_ticketing(
            d,
            "redmine",
            "vakt_plugin_redmine.wasm",
            &[("base_url", base), ("project", "sakerhet")],
            base,
            "{ kind = \"api_key\", header = \"X-Redmine-API-Key\", value = SECRET }",
            &r.key,
        );
    }

    fn tickets(&self, key: &str, school: &str) -> (Vec<String>, Vec<String>) {
        let ids = |v: Vec<Value>| v.iter().map(|i| i["id"].to_string()).collect();
        (
            ids(self.0.issues_with("vakt-key", key)),
            ids(self.0.issues_titled("sakerhet", school)),
        )
    }

    fn check_opened(&self, ticket: &str, key: &str, school: &str, instance: &str) {
        let issue = self.0.issue(ticket);
        assert_eq!(
            issue["subject"],
            format!("Personuppgiftsincident: {school}"),
            "{issue:#}"
        );
        assert_eq!(issue["project"]["name"], "Säkerhet", "{issue:#}");
        assert_eq!(issue["priority"]["name"], "High", "{issue:#}");
        let field = issue["custom_fields"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["name"] == "vakt-key"))
            .map(|f| f["value"].clone());
        assert_eq!(field, Some(json!(key)), "{issue:#}");
        let description = issue["description"].as_str().unwrap_or_default();
        assert!(
            description.contains(&format!("vakt-instans: {instance}"))
                && description.contains("Requester: larare@kommun.example"),
            "{description}"
        );
    }

    fn check_closed(&self, ticket: &str) {
        let issue = self.0.issue(ticket);
        assert_eq!(issue["status"]["name"], "Closed", "{issue:#}");
        assert_eq!(issue["status"]["is_closed"], true, "{issue:#}");
        let notes: Vec<(String, bool)> = issue["journals"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["notes"].as_str().is_some_and(|n| !n.is_empty()))
            .map(|j| {
                (
                    j["notes"].as_str().unwrap().to_owned(),
                    j["private_notes"] == true,
                )
            })
            .collect();
        assert_eq!(notes.len(), 2, "the summary and the close: {notes:#?}");
        let (summary, private) = &notes[0];
        assert!(*private, "the summary is a private note: {notes:#?}");
        assert!(
            summary.contains(SUMMARY)
                && summary.contains("GDPR (no_personal_data): Datorn var krypterad.")
                && summary.contains(&format!("kvitterad av {OFFICER}")),
            "{summary}"
        );
        let (closing, _) = &notes[1];
        assert!(
            closing.contains(CLOSING) && closing.contains("Resolution: Hanterad"),
            "{closing}"
        );
        let closed_at = issue["journals"].as_array().unwrap().iter().find(|j| {
            j["details"].as_array().is_some_and(|ds| {
                ds.iter()
                    .any(|x| x["name"] == "status_id" && x["property"] == "attr")
            })
        });
        assert!(
            closed_at.is_some_and(|j| j["notes"].as_str().is_some_and(|n| n.contains(CLOSING))),
            "the close's note and the status change are one journal: {issue:#}"
        );
    }
}

struct RtBinding(Rt);

impl TicketSystem for RtBinding {
    fn url(&self) -> &str {
        &self.0.url
    }

    fn create_request(&self) -> (&'static str, &'static str) {
        ("POST", "/REST/2.0/ticket")
    }

    fn found_by_key(&self, ticket: &str) -> String {
        format!("ticket {ticket} was opened by an earlier attempt")
    }

    fn bind(&self, d: &Daemon, base: &str) {
        let rt = &self.0;
        servers::bind_ticketing(
            d,
            "request-tracker",
            "vakt_plugin_request_tracker.wasm",
            &[("base_url", base), ("queue", "vakt")],
            base,
            "{ kind = \"bearer\", scheme = \"token\", token = SECRET }",
            &rt.token,
        );
    }

    fn tickets(&self, key: &str, school: &str) -> (Vec<String>, Vec<String>) {
        let ids = |v: Vec<(String, String)>| v.into_iter().map(|(id, _)| id).collect();
        (
            ids(self
                .0
                .search(&format!("Subject LIKE '{}'", rt_key_tag(key)))),
            ids(self
                .0
                .search(&format!("Queue = 'sakerhet' AND Subject LIKE '{school}'"))),
        )
    }

    fn check_opened(&self, ticket: &str, key: &str, school: &str, instance: &str) {
        let t = self.0.get(&format!("ticket/{ticket}"), &[]);
        let subject = t["Subject"].as_str().unwrap_or_default();
        assert!(
            subject.starts_with(&format!("Personuppgiftsincident: {school}"))
                && subject.contains(&rt_key_tag(key)),
            "the subject names the school and carries the key's tag: {t:#}"
        );
        assert_eq!(t["Priority"], "80", "`high` is 80 by default: {t:#}");
        let history = self.0.history(ticket);
        let created = history
            .iter()
            .find(|(kind, _)| kind == "Create")
            .unwrap_or_else(|| panic!("no Create transaction: {history:#?}"));
        assert!(
            created.1.contains(&format!("vakt-instans: {instance}")),
            "{history:#?}"
        );
    }

    fn check_closed(&self, ticket: &str) {
        let t = self.0.get(&format!("ticket/{ticket}"), &[]);
        assert_eq!(t["Status"], "resolved", "{t:#}");
        let history = self.0.history(ticket);
        let comments: Vec<&String> = history
            .iter()
            .filter(|(kind, _)| kind == "Comment")
            .map(|(_, text)| text)
            .collect();
        assert_eq!(comments.len(), 2, "the summary and the close: {history:#?}");
        assert!(
            comments[0].contains(SUMMARY)
                && comments[0].contains("GDPR (no_personal_data): Datorn var krypterad.")
                && comments[0].contains(&format!("kvitterad av {OFFICER}")),
            "{history:#?}"
        );
        assert!(
            comments[1].contains(CLOSING) && comments[1].contains("Resolution: Hanterad"),
            "{history:#?}"
        );
        assert!(
            history.iter().any(|(kind, _)| kind == "Status"),
            "the status change is in the history: {history:#?}"
        );
        assert!(
            !history.iter().any(|(kind, _)| kind == "Correspond"),
            "nothing was said to the requester: {history:#?}"
        );
    }
}

/// The records of `history` of type `kind` for step `step`.
fn step_records<'h>(history: &'h [Value], kind: &str, step: &str) -> Vec<&'h Value> {
    history
        .iter()
        .filter(|e| e["type"] == kind && e["record"]["step"] == step)
        .collect()
}

/// Waits for the open task offering `option`; returns its id.
fn open_task(d: &Daemon, ops: &str, id: &str, option: &str) -> String {
    poll(format!("an open task offering `{option}`"), WAIT, || {
        let inst = d.instance(ops, id);
        inst["tasks"]
            .as_array()
            .and_then(|ts| {
                ts.iter().find(|t| {
                    t["status"] == "open"
                        && t["options"]
                            .as_array()
                            .is_some_and(|os| os.iter().any(|o| o["id"] == option))
                })
            })
            .and_then(|t| t["id"].as_str().map(str::to_owned))
            .ok_or_else(|| format!("status {}, tasks {:#}", inst["status"], inst["tasks"]))
    })
}

/// `POST /api/v1/tasks/{task}/decision`; asserts 200.
fn decide(d: &Daemon, token: &str, task: &str, decision: &str, comment: &str) {
    d.post(&format!("/api/v1/tasks/{task}/decision"))
        .bearer(token)
        .json(&json!({"decision": decision, "comment": comment}))
        .send()
        .expect(200);
}

fn incident_with_ticket(name: &str, system: &dyn TicketSystem) {
    let smtp = Smtp::start();
    let mut d = DaemonBuilder::new(&format!("ticketing-{name}"))
        .mail_through(&smtp)
        .role("security_officer", &[OFFICER])
        .role("security_deputy", &["deputy@kommun.example"])
        .role("ciso", &["ciso@kommun.example"])
        .role("dpo", &[DPO])
        .role("management", &["director@kommun.example"])
        .repo_workflow("workflows/incident-escalation.yaml")
        .prepare();
    let proxy = Proxy::start(system.url());
    system.bind(&d, &proxy.url);
    let ops = d.token(OPS, "operator");
    let officer = d.token(OFFICER, "approver");
    let dpo = d.token(DPO, "approver");
    d.start();

    // ---- Started through the API; killed as soon as that is acknowledged.
    // The proxy holds back the answer to the create until released.
    let (method, path) = system.create_request();
    proxy.hold(method, path);
    let school = format!("Norra skolan {name}-{:x}", now_ms());
    let discovered = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id = d.start_instance(
        &ops,
        WORKFLOW,
        &json!({
            "discovered_at": discovered,
            "kind": "personal_data",
            "description": "En lärares bärbara dator med elevlistor är stulen.",
            "school": school,
            "reporter": "larare@kommun.example",
            "security_mailbox": SECURITY_MAILBOX,
        }),
    );
    // Crash 1: the ticket call is recorded, in flight or not yet made.
    d.kill9();
    d.restart();
    // Crash 2: the server opens the ticket, its answer is lost (held back
    // by the proxy), the daemon is killed; the call is re-issued with the
    // same key and must find that ticket, not open another.
    poll("the create to reach the server", TICKET_WAIT, || {
        if proxy.held() > 0 {
            Ok(())
        } else {
            Err(format!("{method} {path} not seen yet"))
        }
    });
    d.kill9();
    proxy.release();
    d.restart();

    // ---- The ticket: opened once, its id the step's output.
    let ticket = poll("open_ticket to complete", TICKET_WAIT, || {
        let history = d.history(&ops, &id);
        if let Some(failed) = step_records(&history, "step_failed", "open_ticket").first() {
            panic!("open_ticket failed: {failed:#}");
        }
        step_records(&history, "step_completed", "open_ticket")
            .first()
            .map(|r| r["record"]["output"].clone())
            .ok_or_else(|| {
                let calls: Vec<_> = history
                    .iter()
                    .filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("call_")))
                    .collect();
                format!("calls so far: {calls:#?}")
            })
    });
    let ticket_id = ticket["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the ticket has no id: {ticket:#}"))
        .to_owned();
    assert!(
        ticket["subject"]
            .as_str()
            .is_some_and(|s| s.contains(&school)),
        "{ticket:#}"
    );
    let history = d.history(&ops, &id);
    let keys: Vec<&str> = history
        .iter()
        .filter(|e| e["type"] == "call_requested")
        .filter_map(|e| e["record"]["idempotency_key"].as_str())
        .filter(|k| k.contains("/open_ticket/"))
        .collect();
    assert!(!keys.is_empty(), "{history:#?}");
    assert!(
        keys.iter().all(|k| *k == keys[0]) && keys[0].starts_with(&id),
        "every attempt of the one visit has the same key: {keys:?}"
    );
    let key = keys[0].to_owned();
    eprintln!(
        "{name}: ticket {ticket_id} after {} call attempt(s), key {key}",
        keys.len()
    );
    // The daemon's side: the plugin never saw its create answered (no
    // `opened issue #N` / `opened ticket N`); the last process found the
    // ticket by its key.
    let log = d.log();
    let opened: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&id) && l.contains(": opened "))
        .collect();
    assert!(opened.is_empty(), "a create was answered: {opened:#?}");
    let last_start = log.rsplit("vakt serve, start ").next().unwrap_or_default();
    assert!(
        last_start.contains(&system.found_by_key(&ticket_id)),
        "the re-issued create found the ticket:\n{}",
        d.log_tail(30)
    );
    let (by_key, by_subject) = system.tickets(&key, &school);
    assert_eq!(by_key, [ticket_id.as_str()], "tickets holding the key");
    assert_eq!(
        by_subject,
        [ticket_id.as_str()],
        "tickets naming the school"
    );
    system.check_opened(&ticket_id, &key, &school, &id);

    // ---- Acknowledged by the security officer, assessed by the DPO.
    let ack = open_task(&d, &ops, &id, "acknowledge");
    decide(
        &d,
        &officer,
        &ack,
        "acknowledge",
        "Jag tar hand om incidenten.",
    );
    let gdpr = open_task(&d, &ops, &id, "no_personal_data");
    decide(&d, &dpo, &gdpr, "no_personal_data", "Datorn var krypterad.");
    let done = d.wait_status(&ops, &id, "completed", WAIT);
    assert_eq!(done["output"]["ticket"], ticket_id.as_str(), "{done:#}");
    assert_eq!(
        done["output"]["outcome"]["gdpr_assessment"]["decision"],
        "no_personal_data"
    );
    assert_eq!(done["output"]["outcome"]["acknowledged_by"], OFFICER);

    // ---- At the end: a private summary comment, then the close.
    let history = d.history(&ops, &id);
    for step in ["summary", "close_ticket"] {
        let completed = step_records(&history, "step_completed", step);
        assert_eq!(completed.len(), 1, "{step} completed once: {history:#?}");
        assert_eq!(
            completed[0]["record"]["output"]["id"],
            ticket_id.as_str(),
            "{step}: {:#}",
            completed[0]
        );
    }
    assert!(
        step_records(&history, "step_entered", "ticket_failed").is_empty()
            && step_records(&history, "step_failed", "open_ticket").is_empty(),
        "the ticket step never failed: {history:#?}"
    );
    system.check_closed(&ticket_id);

    // ---- Mail: the internal report, and never a `ticket_failed` mail.
    smtp.wait_one("the internal report", WAIT, |m| {
        m.is_for(SECURITY_MAILBOX) && m.subject.starts_with("Intern rapport")
    });
    let failed: Vec<String> = smtp
        .mails()
        .iter()
        .filter(|m| m.subject.starts_with("Ärendesystemet svarar inte"))
        .map(|m| format!("{}: {}", m.subject, m.text))
        .collect();
    assert!(failed.is_empty(), "ticket_failed mailed: {failed:#?}");

    // ---- Still exactly one ticket for the incident.
    let (by_key, by_subject) = system.tickets(&key, &school);
    assert_eq!((by_key.len(), by_subject.len()), (1, 1));
    assert_eq!(d.sigterm().code(), Some(0));
}

#[test]
fn incident_opens_comments_and_closes_a_redmine_issue() {
    let Some(redmine) = Redmine::start() else {
        return;
    };
    incident_with_ticket("redmine", &RedmineBinding(redmine));
}

#[test]
fn incident_opens_comments_and_closes_a_request_tracker_ticket() {
    let Some(rt) = Rt::start() else { return };
    // The workflow's `queue: sakerhet` wins over the plugin's `queue`
    // setting, and the script makes no such queue.
    rt.ensure_queue("sakerhet");
    incident_with_ticket("rt", &RtBinding(rt));
}
