//! Digest mail end to end: the runtime over a real sled store, the real
//! `Mailer` as its notifier, writing through the real `.eml` outbox.
//!
//! A campaign whose `foreach` opens 30 approval tasks in one step, 25 for
//! manager A and 5 for manager B (interleaved), must leave exactly two
//! `.eml` files, one per manager, each listing that manager's tasks with
//! two signed links per task that verify and name that manager. One of the
//! links then decides its task through `Runtime::event`, as the link page
//! does; the same decision again is refused, and no further mail is made.
//!
//! The outbox's grouping on its own, with a recording notifier: 300 notices
//! of one transition (more than one outbox read) reach `notify_many` as one
//! group; a failed group is retried whole and removed only when it succeeds;
//! the trait's default `notify_many` calls `notify` once per notice.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use vakt::engine::model::NotifyReason;
use vakt::engine::{CallOutcome, Event, Instance};
use vakt::runtime::{
    BoxFuture, Connector, ConnectorCall, Notice, Notifier, Plans, Runtime, RuntimeConfig,
    SystemClock,
};
use vakt::serve::Config;
use vakt::serve::links::LinkKey;
use vakt::serve::mailer::Mailer;
use vakt::serve::metrics::Metrics;
use vakt::serve::outbox::EmlOutbox;
use vakt::store::{SledStore, StoreConfig, Tasks};
use vakt::workflow;

const CAMPAIGN: &str = r#"
id: campaign
title: Access review
input: {people: {type: list, items: object}}
steps:
  - id: review
    foreach: input.people
    as: p
    concurrency: 1000
    steps:
      - id: decide
        approval:
          title: "Access: {{ p.user }} in {{ p.group }}"
          description: "{{ p.user }} is a member of {{ p.group }}. Is it still needed?"
          assignees: ["{{ p.manager }}"]
          options: [confirm, {id: revoke, require_comment: true}]
          deadline: 14d
"#;

const BASE: &str = "http://127.0.0.1:7700";
const A: &str = "anna.manager@kommune.example.no";
const B: &str = "bjorn.manager@kommune.example.no";

/// The workflow makes no connector calls; the mailer has its own connector.
struct NoCalls;

impl Connector for NoCalls {
    fn call(&self, _: ConnectorCall) -> BoxFuture<CallOutcome> {
        Box::pin(async {
            CallOutcome::Err {
                message: "no connector in this test".into(),
                retryable: false,
                retry_after: None,
            }
        })
    }
}

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
}

/// A message's `To` and `Subject`, and the signed tokens of its text part.
fn read_eml(path: &Path) -> (String, String, Vec<String>) {
    let message = std::fs::read_to_string(path).unwrap();
    let header = |name: &str| {
        let line = message.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..].trim().to_owned()
    };
    let text = message.split("Content-Type: text/html").next().unwrap();
    assert!(text.contains("Content-Transfer-Encoding: 8bit"), "{text}");
    let tokens = text
        .lines()
        .filter_map(|l| l.split_once(&format!(": {BASE}/t/")))
        .map(|(_, token)| token.trim().to_owned())
        .collect();
    (header("To:"), header("Subject:"), tokens)
}

/// `n` memberships, every sixth reviewed by B, the others by A.
fn people(n: usize) -> serde_json::Value {
    let people: Vec<_> = (0..n)
        .map(|i| {
            let manager = if i % 6 == 5 { B } else { A };
            json!({"user": format!("user{i:02}"), "group": format!("group-{}", i % 4), "manager": manager})
        })
        .collect();
    json!({ "people": people })
}

fn campaign_plans() -> (Arc<workflow::Plan>, Plans) {
    let plan = workflow::load_source("campaign.yaml", CAMPAIGN.to_owned())
        .result
        .unwrap();
    let mut plans = Plans::default();
    plans.insert(plan.clone());
    (plan, plans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_mails_each_manager_one_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("db"), &StoreConfig::default()).unwrap();
    let (plan, plans) = campaign_plans();
    let outbox = EmlOutbox::new(dir.path().join("out"), "vakt@kommune.example.no".into());
    let key = [9u8; 32];
    let mailer = Mailer::new(
        Arc::new(Config::load_from(None, []).unwrap()),
        store.clone(),
        Arc::new(outbox.clone()),
        Arc::new(LinkKey::from_bytes(key)),
        Arc::new(Metrics::new()),
        BASE.to_owned(),
    );
    let rt = Runtime::open(
        store,
        plans,
        Arc::new(NoCalls),
        Arc::new(mailer),
        Arc::new(SystemClock),
        RuntimeConfig {
            shards: 2,
            max_calls: 8,
        },
    )
    .unwrap();
    rt.install(plan, CAMPAIGN).unwrap();

    // 25 memberships reviewed by A and 5 by B, interleaved.
    let input = people(30);
    let id = rt
        .start("campaign", input, "it@kommune.example.no", None)
        .await
        .unwrap();
    let instance = rt.instance(&id).unwrap().unwrap();
    assert_eq!(
        instance.tasks.len(),
        30,
        "every task opened in the first step"
    );
    let tasks_of = |manager: &str| {
        let mut t: Vec<u32> = instance
            .tasks
            .iter()
            .filter(|(_, t)| t.assignees == [manager])
            .map(|(n, _)| *n)
            .collect();
        t.sort();
        t
    };
    assert_eq!((tasks_of(A).len(), tasks_of(B).len()), (25, 5));

    // The outbox performs the 30 notices; wait for the mail, then a little
    // longer, to see that nothing more comes.
    for _ in 0..1000 {
        if eml_files(outbox.dir()).len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let files = eml_files(outbox.dir());
    assert_eq!(files.len(), 2, "one mail per manager: {files:?}");

    let links = LinkKey::from_bytes(key);
    let now = rt.now();
    let mut first_link_of_a = None;
    let mut managers = Vec::new();
    for file in &files {
        let (to, subject, tokens) = read_eml(file);
        let tasks = tasks_of(&to);
        assert_eq!(
            subject,
            format!("{} decisions needed: Access review", tasks.len())
        );
        assert_eq!(tokens.len(), 2 * tasks.len(), "two links per task");
        let text = std::fs::read_to_string(file).unwrap();
        for n in 1..=tasks.len() {
            assert!(
                text.contains(&format!("    {n}. Access: user")),
                "task {n} listed"
            );
        }
        let mut seen = Vec::new();
        for token in &tokens {
            let claim = links.verify(token, now).unwrap();
            assert_eq!(
                (claim.instance.as_str(), claim.assignee.as_str()),
                (id.as_str(), to.as_str())
            );
            seen.push((claim.task, claim.option.clone()));
            if to == A && claim.option == "confirm" && first_link_of_a.is_none() {
                first_link_of_a = Some(claim);
            }
        }
        seen.sort();
        seen.dedup();
        let want: Vec<_> = tasks
            .iter()
            .flat_map(|t| ["confirm", "revoke"].map(|o| (*t, o.to_owned())))
            .collect();
        assert_eq!(seen, want, "every task of {to}, each option once");
        managers.push(to);
    }
    managers.sort();
    assert_eq!(managers, [A, B]);

    // A link from the digest decides its task, as the link page would.
    let claim = first_link_of_a.unwrap();
    let decide = Event::Decide {
        task: claim.task,
        by: claim.assignee.clone(),
        roles: Vec::new(),
        option: claim.option.clone(),
        comment: None,
    };
    rt.event(&id, decide.clone()).await.unwrap();
    let task = &rt.instance(&id).unwrap().unwrap().tasks[&claim.task];
    assert!(!task.open, "the task is decided");
    assert_eq!(task.outcome.as_deref(), Some("confirm"));
    assert!(
        rt.event(&id, decide).await.is_err(),
        "a decision counts once"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(eml_files(outbox.dir()).len(), 2, "a decision mails no one");
    rt.shutdown().await;
}

/// Records every `notify_many`; fails the first one.
#[derive(Default)]
struct Recorder {
    groups: Mutex<Vec<Vec<Notice>>>,
    single: Mutex<Vec<u32>>,
}

impl Notifier for Recorder {
    fn notify(
        &self,
        _: &Instance,
        task: u32,
        _: &[String],
        _: NotifyReason,
    ) -> BoxFuture<Result<(), String>> {
        self.single.lock().unwrap().push(task);
        Box::pin(async { Ok(()) })
    }

    fn notify_many(&self, _: &Instance, notices: &[Notice]) -> BoxFuture<Result<(), String>> {
        let mut groups = self.groups.lock().unwrap();
        groups.push(notices.to_vec());
        let result = if groups.len() == 1 {
            Err("relay down".to_owned())
        } else {
            Ok(())
        };
        Box::pin(async move { result })
    }
}

/// Only `notify`: the trait's default `notify_many`.
struct OnlyNotify(Arc<Recorder>);

impl Notifier for OnlyNotify {
    fn notify(
        &self,
        i: &Instance,
        task: u32,
        to: &[String],
        r: NotifyReason,
    ) -> BoxFuture<Result<(), String>> {
        self.0.notify(i, task, to, r)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_hands_over_one_transitions_notices_as_one_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("db"), &StoreConfig::default()).unwrap();
    let (plan, plans) = campaign_plans();
    let recorder = Arc::new(Recorder::default());
    let config = RuntimeConfig {
        shards: 2,
        max_calls: 8,
    };
    let rt = Runtime::open(
        store,
        plans,
        Arc::new(NoCalls),
        recorder.clone(),
        Arc::new(SystemClock),
        config,
    )
    .unwrap();
    rt.install(plan, CAMPAIGN).unwrap();
    let id = rt
        .start("campaign", people(300), "it@kommune.example.no", None)
        .await
        .unwrap();
    let tasks = rt.instance(&id).unwrap().unwrap().tasks.len();
    assert_eq!(tasks, 300);
    // The first attempt fails; the outbox retries the group after 5 s.
    for _ in 0..1500 {
        if recorder.groups.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let groups = recorder.groups.lock().unwrap().clone();
    assert_eq!(groups.len(), 2, "one failed group, retried once");
    assert_eq!(
        groups[0].len(),
        300,
        "one group, though more than one outbox read"
    );
    assert_eq!(groups[0], groups[1], "the retry is the same group");
    assert!(
        groups[0]
            .iter()
            .all(|(_, to, r)| to.len() == 1 && *r == NotifyReason::Opened)
    );
    assert!(
        rt.store().outbox(10).unwrap().is_empty(),
        "removed once performed"
    );
    rt.shutdown().await;

    // The default `notify_many`: `notify` for each, in order.
    let only = OnlyNotify(recorder.clone());
    let instance = rt.instance(&id).unwrap().unwrap();
    only.notify_many(&instance, &groups[0]).await.unwrap();
    let want: Vec<u32> = groups[0].iter().map(|(t, ..)| *t).collect();
    assert_eq!(*recorder.single.lock().unwrap(), want);
}
