//! Tests of the mailer: recipients, links, idempotency keys, retries and
//! the `.eml` outbox.

use super::*;
use crate::engine::model::Vote;
use crate::engine::sim::Sim;

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
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("db"), &Default::default()).unwrap();
    let plan = crate::workflow::load_source("w.yaml", WORKFLOW.into())
        .result
        .unwrap();
    store.put_definition(&plan.hash, WORKFLOW).unwrap();
    let mut sim = Sim::new([plan], T0);
    let id = sim.start("w", json!({"at": "2026-01-01T00:00:00Z"}), "starter@k.se");
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
