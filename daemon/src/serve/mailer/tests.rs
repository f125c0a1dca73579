//! Tests of the mailer: recipients, links, idempotency keys, retries, the
//! `.eml` outbox, and digests (several notices of one instance at once).

use super::*;
use crate::engine::model::Vote;
use crate::engine::sim::Sim;
use crate::runtime::Notice;

const T0: Ts = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const WORKFLOW: &str = r#"
id: w
title: Tjänstebedömning
input: {at: {type: datetime}}
clocks: {dpa: {title: Anmälan till IMY, anchor: input.at, duration: 72h}}
steps:
  - id: ok
    approval:
      title: "Godkänn <b>åtkomst</b>"
      description: "Rad ett\nRad två"
      assignees: [Asa@K.se, "role:dpo", "role:ciso", "role:nobody"]
      options: [approve, {id: reject, label: Avslå, require_comment: true}]
      deadline: 1d
"#;

/// Captures calls; answers OK, or an error (retryable or not).
#[derive(Default)]
struct Capture(Mutex<Vec<ConnectorCall>>, Mutex<Option<bool>>);

impl Connector for Capture {
    fn call(&self, call: ConnectorCall) -> BoxFuture<CallOutcome> {
        self.0.lock().unwrap().push(call);
        let outcome = match *self.1.lock().unwrap() {
            None => CallOutcome::Ok(json!({"message_id": "<m@k>", "response": "ok"})),
            Some(retryable) => CallOutcome::Err {
                message: "relay down".into(),
                retryable,
                retry_after: None,
            },
        };
        Box::pin(async move { outcome })
    }
}

struct Fixed;
impl Clock for Fixed {
    fn now(&self) -> Ts {
        T0
    }
}

type Setup = (
    Mailer,
    Arc<Capture>,
    Arc<Metrics>,
    Instance,
    u32,
    tempfile::TempDir,
);

fn setup() -> Setup {
    setup_with(WORKFLOW, json!({"at": "2026-01-01T00:00:00Z"}))
}

fn setup_with(source: &str, input: serde_json::Value) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("db"), &Default::default()).unwrap();
    let plan = crate::workflow::load_source("w.yaml", source.into())
        .result
        .unwrap();
    store.put_definition(&plan.hash, source).unwrap();
    let mut sim = Sim::new([plan.clone()], T0);
    let id = sim.start(&plan.id, input, "starter@k.se");
    let instance = sim.instance(&id.unwrap()).clone();
    let task = *instance.tasks.keys().next().unwrap();
    let mut config = Config::load_from(None, []).unwrap();
    let holders = |a: &[&str]| a.iter().map(|x| x.to_string()).collect();
    config
        .roles
        .insert("dpo".into(), holders(&["dpo@k.se", "ASA@k.se"]));
    config.roles.insert("ciso".into(), holders(&["ciso@k.se"]));
    let (capture, metrics) = (Arc::new(Capture::default()), Arc::new(Metrics::new()));
    let key = Arc::new(LinkKey::from_bytes([7; 32]));
    let base = "https://vakt.k.se/".to_owned();
    let mailer = Mailer::new(
        config.into(),
        store,
        capture.clone(),
        key,
        metrics.clone(),
        base,
    );
    let mailer = mailer.with_clock(Arc::new(Fixed));
    (mailer, capture, metrics, instance, task, dir)
}

fn links(body: &str) -> Vec<(String, String)> {
    let lines = body
        .lines()
        .filter_map(|l| l.trim().split_once(": https://vakt.k.se/t/"));
    lines
        .map(|(label, token)| (label.into(), token.into()))
        .collect()
}

fn keys(calls: &[ConnectorCall]) -> Vec<String> {
    calls.iter().map(|c| c.idempotency_key.clone()).collect()
}

fn rendered(m: &Metrics) -> String {
    let mut out = String::new();
    m.render(&mut out);
    out
}

#[tokio::test]
async fn one_mail_per_address_with_links_that_verify() {
    let (mailer, capture, metrics, instance, task, _dir) = setup();
    let to = instance.tasks[&task].assignees.clone();
    mailer
        .notify(&instance, task, &to, NotifyReason::Opened)
        .await
        .unwrap();
    let calls = capture.0.lock().unwrap().clone();
    let tos: Vec<_> = calls
        .iter()
        .map(|c| c.args["to"][0].as_str().unwrap())
        .collect();
    // Resolved, deduplicated; a role nobody holds is skipped.
    assert_eq!(tos, ["asa@k.se", "dpo@k.se", "ciso@k.se"]);
    let key = LinkKey::from_bytes([7; 32]);
    for (c, address) in calls.iter().zip(tos) {
        assert_eq!((c.role.as_str(), c.action.as_str()), ("mail", "send"));
        let want = format!("notify/{}/{task}/opened/0/{address}", instance.id);
        assert_eq!(c.idempotency_key, want);
        assert_eq!(c.args["subject"], "Decision needed: Godkänn <b>åtkomst</b>");
        let body = c.args["body"].as_str().unwrap();
        for want in [
            "Rad ett\nRad två",
            "Tjänstebedömning (w)",
            &instance.id,
            "starter@k.se",
            "Due:        2026-01-02T00:00:00Z (UTC)",
            "Anmälan till IMY: due 2026-01-04T00:00:00Z (UTC)",
            "decides nothing",
        ] {
            assert!(body.contains(want), "{want} in {body}");
        }
        let found = links(body);
        assert_eq!(found.len(), 2, "{body}");
        assert_eq!(found[1].0, "Avslå (needs a comment)");
        for ((_, token), option) in found.iter().zip(["approve", "reject"]) {
            let claim = key.verify(token, T0).unwrap();
            assert_eq!(
                (claim.instance.as_str(), claim.task),
                (instance.id.as_str(), task)
            );
            assert_eq!(
                (claim.assignee.as_str(), claim.option.as_str()),
                (address, option)
            );
            assert_eq!(claim.expires, T0 + 14 * 86_400_000);
        }
        let html = c.args["html"].as_str().unwrap();
        assert!(html.contains("Godkänn &lt;b&gt;åtkomst") && !html.contains("<b>"));
    }
    assert!(rendered(&metrics).contains("vakt_mail_sent_total{reason=\"opened\"} 3"));
}

#[tokio::test]
async fn retries_reuse_the_keys_and_skip_what_was_sent() {
    let (mailer, capture, metrics, instance, task, _dir) = setup();
    let to = ["a@k.se".to_owned(), "b@k.se".to_owned()];
    let first = mailer
        .calls(&instance, task, &to, NotifyReason::Reminder)
        .unwrap();
    let again = mailer
        .calls(&instance, task, &to, NotifyReason::Reminder)
        .unwrap();
    assert_eq!(keys(&first), keys(&again));
    assert!(first[0].idempotency_key.ends_with("/reminder/0/a@k.se"));

    *capture.1.lock().unwrap() = Some(true);
    let e = mailer
        .notify(&instance, task, &to, NotifyReason::Reminder)
        .await;
    assert!(e.unwrap_err().contains("relay down"));
    *capture.1.lock().unwrap() = None;
    for _ in 0..2 {
        mailer
            .notify(&instance, task, &to, NotifyReason::Reminder)
            .await
            .unwrap();
    }
    let calls = capture.0.lock().unwrap().clone();
    assert_eq!(
        keys(&calls[2..]),
        keys(&first),
        "the retry uses the first keys"
    );
    assert_eq!(calls.len(), 4, "what was sent is not sent again");

    // A permanent refusal is counted and not retried.
    *capture.1.lock().unwrap() = Some(false);
    let to = ["c@k.se".to_owned()];
    mailer
        .notify(&instance, task, &to, NotifyReason::Opened)
        .await
        .unwrap();
    assert!(rendered(&metrics).contains("vakt_mail_failed_total{reason=\"opened\"} 1"));
}

#[tokio::test]
async fn closed_tasks_and_decided_people_get_no_links() {
    let (mailer, _, _, instance, task, _dir) = setup();
    let mut voted = instance.clone();
    let vote = Vote {
        by: "asa@k.se".into(),
        option: "approve".into(),
        comment: None,
        at: T0,
    };
    voted.tasks.get_mut(&task).unwrap().votes.push(vote);
    let to = ["ASA@k.se".to_owned()];
    let calls = mailer
        .calls(&voted, task, &to, NotifyReason::Escalation)
        .unwrap();
    let body = calls[0].args["body"].as_str().unwrap();
    assert!(body.contains("already decided: approve") && links(body).is_empty());
    let mut closed = instance.clone();
    closed.tasks.get_mut(&task).unwrap().open = false;
    assert!(
        mailer
            .calls(&closed, task, &to, NotifyReason::Opened)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn through_the_eml_outbox_once_per_address() {
    let (mut mailer, _, _, instance, task, dir) = setup();
    let outbox = super::super::outbox::EmlOutbox::new(dir.path().join("out"), "v@k.se".into());
    mailer.connector = Arc::new(outbox.clone());
    let to = instance.tasks[&task].assignees.clone();
    for _ in 0..2 {
        mailer.sent.lock().unwrap().clear();
        mailer
            .notify(&instance, task, &to, NotifyReason::Opened)
            .await
            .unwrap();
    }
    let files: Vec<_> = std::fs::read_dir(outbox.dir()).unwrap().collect();
    assert_eq!(files.len(), 3, "one file per address, written once");
}

/// One approval per entry of `people`, all opened in one transition.
const CAMPAIGN: &str = r#"
id: campaign
title: Gjennomgang av tilganger
input: {people: {type: list, items: object}}
steps:
  - id: review
    foreach: input.people
    as: p
    concurrency: 1000
    steps:
      - id: decide
        approval:
          title: "Tilgang: {{ p.user }}"
          description: "{{ p.user }} er medlem av {{ p.group }}. Har personen fortsatt behov for tilgangen?"
          assignees: ["{{ p.manager }}"]
          options: [confirm, {id: revoke, require_comment: true}]
          deadline: 14d
"#;

/// A campaign over `managers` (one membership each), and its notices.
fn campaign(managers: &[&str]) -> (Setup, Vec<Notice>) {
    let people: Vec<_> = managers
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"user": format!("u{i}"), "group": "g", "manager": m}))
        .collect();
    let setup = setup_with(CAMPAIGN, json!({ "people": people }));
    let instance = &setup.3;
    let notices = instance
        .tasks
        .iter()
        .map(|(t, task)| (*t, task.assignees.clone(), NotifyReason::Opened))
        .collect();
    (setup, notices)
}

/// Every link of a mail, verified: (task, option) for `address`.
fn verified(call: &ConnectorCall, address: &str) -> Vec<(u32, String)> {
    let key = LinkKey::from_bytes([7; 32]);
    let body = call.args["body"].as_str().unwrap();
    let claims = links(body).into_iter().map(|(_, token)| {
        let claim = key.verify(&token, T0).unwrap();
        assert_eq!(claim.assignee, address);
        assert_eq!(claim.expires, T0 + 14 * 86_400_000);
        (claim.task, claim.option)
    });
    claims.collect()
}

#[tokio::test]
async fn forty_notices_for_one_manager_make_one_mail() {
    let ((mailer, capture, metrics, instance, _, _dir), notices) = campaign(&["Boss@k.se"; 40]);
    assert_eq!(notices.len(), 40);
    mailer.notify_many(&instance, &notices).await.unwrap();
    let calls = capture.0.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "one digest");
    let c = &calls[0];
    assert_eq!(c.args["to"], json!(["boss@k.se"]));
    let prefix = format!("digest/{}/", instance.id);
    assert!(c.idempotency_key.starts_with(&prefix) && c.idempotency_key.ends_with("/boss@k.se"));
    let subject = "40 decisions needed: Gjennomgang av tilganger";
    assert_eq!(c.args["subject"], subject);
    let body = c.args["body"].as_str().unwrap();
    for want in [
        "Tilgang: u0",
        "40. Tilgang: u",
        "u39 er medlem av g",
        "Due:",
        "decides nothing",
    ] {
        assert!(body.contains(want), "{want} in {body}");
    }
    let mut seen = verified(c, "boss@k.se");
    seen.sort();
    let mut want: Vec<_> = instance
        .tasks
        .keys()
        .flat_map(|t| ["confirm", "revoke"].map(|o| (*t, o.to_owned())))
        .collect();
    want.sort();
    assert_eq!(seen, want, "two links per task, for every task");
    let html = c.args["html"].as_str().unwrap();
    assert_eq!(html.matches("/t/").count(), 80);
    assert!(rendered(&metrics).contains("vakt_mail_sent_total{reason=\"opened\"} 1"));

    // Reminders say so; someone who already voted gets no links for that task.
    let mut voted = instance.clone();
    let first = *voted.tasks.keys().next().unwrap();
    let vote = Vote {
        by: "boss@k.se".into(),
        option: "confirm".into(),
        comment: None,
        at: T0,
    };
    voted.tasks.get_mut(&first).unwrap().votes.push(vote);
    let reminders: Vec<_> = notices
        .iter()
        .map(|(t, to, _)| (*t, to.clone(), NotifyReason::Reminder))
        .collect();
    let calls = mailer.digest_calls(&voted, &reminders).unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1, "reminder");
    assert_eq!(calls[0].0.args["subject"], format!("Reminder: {subject}"));
    assert!(
        calls[0].0.args["body"]
            .as_str()
            .unwrap()
            .contains("already decided: confirm")
    );
    let seen = verified(&calls[0].0, "boss@k.se");
    assert_eq!(seen.len(), 78);
    assert!(seen.iter().all(|(t, _)| *t != first));
}

#[tokio::test]
async fn notices_are_grouped_per_recipient() {
    let ((mailer, capture, _, instance, _, _dir), notices) =
        campaign(&["a@k.se", "b@k.se", "a@k.se"]);
    mailer.notify_many(&instance, &notices).await.unwrap();
    let calls = capture.0.lock().unwrap().clone();
    let tos: Vec<_> = calls
        .iter()
        .map(|c| c.args["to"][0].as_str().unwrap())
        .collect();
    assert_eq!(tos, ["a@k.se", "b@k.se"]);
    assert_eq!(
        calls[0].args["subject"],
        "2 decisions needed: Gjennomgang av tilganger"
    );
    let tasks = |c| {
        let mut t: Vec<_> = verified(c, "a@k.se").into_iter().map(|(t, _)| t).collect();
        t.dedup();
        t
    };
    assert_eq!(tasks(&calls[0]), [notices[0].0, notices[2].0]);
    // b has one task: the single mail, with its usual key.
    let single = mailer
        .calls(&instance, notices[1].0, &notices[1].1, NotifyReason::Opened)
        .unwrap();
    assert_eq!(calls[1].idempotency_key, single[0].idempotency_key);
    assert_eq!(calls[1].args["subject"], "Decision needed: Tilgang: u1");
    assert_eq!(verified(&calls[1], "b@k.se").len(), 2);
}

#[tokio::test]
async fn one_notice_gives_the_single_mail_unchanged() {
    let (mailer, capture, _, instance, task, _dir) = setup();
    let to = instance.tasks[&task].assignees.clone();
    let notice = (task, to.clone(), NotifyReason::Opened);
    mailer.notify_many(&instance, &[notice]).await.unwrap();
    let many = capture.0.lock().unwrap().clone();
    let one = mailer
        .calls(&instance, task, &to, NotifyReason::Opened)
        .unwrap();
    assert_eq!(keys(&many), keys(&one));
    // The same mail but for the links' random nonces.
    let strip = |c: &ConnectorCall| {
        let body = c.args["body"].as_str().unwrap();
        body.lines()
            .filter(|l| !l.contains("/t/"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (a, b) in many.iter().zip(&one) {
        assert_eq!(
            (&a.args["to"], &a.args["subject"]),
            (&b.args["to"], &b.args["subject"])
        );
        assert_eq!(strip(a), strip(b));
    }
}

#[tokio::test]
async fn a_retried_digest_reuses_its_keys_and_sends_nothing_twice() {
    let ((mailer, capture, _, instance, _, _dir), notices) =
        campaign(&["a@k.se", "a@k.se", "b@k.se", "b@k.se"]);
    *capture.1.lock().unwrap() = Some(true);
    let e = mailer.notify_many(&instance, &notices).await;
    assert!(e.unwrap_err().contains("relay down"));
    *capture.1.lock().unwrap() = None;
    for _ in 0..2 {
        mailer.notify_many(&instance, &notices).await.unwrap();
    }
    let calls = capture.0.lock().unwrap().clone();
    assert_eq!(calls.len(), 4, "two failed, two sent, nothing sent again");
    assert_eq!(
        keys(&calls[..2]),
        keys(&calls[2..]),
        "the retry uses the first keys"
    );
    // The key is the set's: the order of the notices does not change it.
    let reversed: Vec<_> = notices.iter().rev().cloned().collect();
    let again = mailer.digest_calls(&instance, &reversed).unwrap();
    let mut want = keys(&calls[2..]);
    want.sort();
    let mut got: Vec<_> = again
        .iter()
        .map(|(c, _)| c.idempotency_key.clone())
        .collect();
    got.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_large_digest_is_split_into_complete_mails() {
    let ((mailer, _, _, instance, _, _dir), notices) = campaign(&["boss@k.se"; 450]);
    let calls = mailer.digest_calls(&instance, &notices).unwrap();
    let subjects: Vec<_> = calls
        .iter()
        .map(|(c, _)| c.args["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            "200 decisions needed (part 1 of 3): Gjennomgang av tilganger",
            "200 decisions needed (part 2 of 3): Gjennomgang av tilganger",
            "50 decisions needed (part 3 of 3): Gjennomgang av tilganger",
        ]
    );
    let mut tasks = Vec::new();
    for (c, _) in &calls {
        assert!(c.args["body"].as_str().unwrap().contains("decides nothing"));
        tasks.extend(verified(c, "boss@k.se").into_iter().map(|(t, _)| t));
    }
    tasks.dedup();
    assert_eq!(tasks.len(), 450, "every task once");
}
