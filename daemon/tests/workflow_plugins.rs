//! The whole path, end to end: a workflow file (YAML, below) lowered to a
//! plan, a real sled store in a temp dir, the runtime, and the real plugin
//! host with `vakt_plugin_mail.wasm` bound to the `mail` role and granted a
//! relay on loopback (aiosmtpd, see `plugin_support/smtp_sink.py`).
//!
//! - Relay up: `mail.send` with a Swedish subject and body rendered from the
//!   input, a `wait` for a signal delivered through `Runtime::event`, a
//!   second `mail.send` rendered from the signal's data. Both messages are
//!   parsed by Python's `email` package and their decoded headers and bodies
//!   asserted; the step outputs hold the Message-IDs; the chain verifies.
//! - Relay down, no handler: three attempts (`retry: {attempts: 3, backoff:
//!   1s}`), then the instance fails with an error naming the relay.
//! - Relay down, `on_error` handlers: the instance completes through them.

#[path = "plugin_support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vakt::engine::model::{Record, TimerPurpose};
use vakt::engine::state::{StepResult, Waiting};
use vakt::engine::{Event, Instance, Status, Ts};
use vakt::plugin::{PluginConfig, PluginConnector, PluginHost, SmtpGrant, SmtpTls};
use vakt::runtime::{LogNotifier, Plans, Runtime, RuntimeConfig, SystemClock};
use vakt::store::{Entry, Instances, SledStore, StoreConfig, chain};
use vakt::workflow;

const SIGNAL: &str = "svar-mottaget";

/// The workflow of every test. `# handler: <step> <var>` lines become an
/// `on_error` list (setting `vars.<var>` from the error) in the handler
/// variant and vanish otherwise; so does the output.
const NOTIFY_OWNER: &str = r#"id: notify_owner
title: Behörighet löper ut
input:
  name: {type: string}
  email: {type: email}
  service: {type: string}
steps:
  - id: first_notice
    call: mail.send
    with:
      to: ["{{ input.name }} <{{ input.email }}>"]
      from_name: "Kommunens IT – Växjö"
      subject: "Åtgärd krävs: {{ input.service }} för {{ input.name }}"
      body: |
        Hej {{ input.name }}!

        Behörigheten för {{ input.service }} löper ut. Svara för att förlänga.
    retry: {attempts: 3, backoff: 1s}
# handler: first_notice first_error
  - id: answer
    wait: {signal: svar-mottaget}
  - id: confirmation
    call: mail.send
    with:
      to: ["{{ input.email }}"]
      subject: "Bekräftat: {{ input.service }} förlängd till {{ steps.answer.output.until }}"
      body: |
        Tack {{ input.name }}! Ärende {{ steps.answer.output.ref }} är avslutat.
        Hälsningar, Växjö kommun (åäö ÅÄÖ)
    retry: {attempts: 3, backoff: 1s}
# handler: confirmation second_error
"#;

/// [`NOTIFY_OWNER`] with or without its `on_error` handlers.
fn workflow_source(handlers: bool) -> String {
    let mut out = String::new();
    for line in NOTIFY_OWNER.lines() {
        match line.strip_prefix("# handler: ") {
            None => out.extend([line, "\n"]),
            Some(_) if !handlers => {}
            Some(rest) => {
                let (step, var) = rest.split_once(' ').unwrap();
                out += &format!(
                    "    on_error:\n      \
                     - id: {step}_failed\n        \
                     set: {{{var}: \"{{{{ error.step }}}}: {{{{ error.message }}}}\"}}\n"
                );
            }
        }
    }
    out += if handlers {
        "output:\n  \
         first_error: \"{{ vars.first_error }}\"\n  \
         second_error: \"{{ vars.second_error }}\"\n"
    } else {
        "output:\n  \
         first: \"{{ steps.first_notice.output.message_id }}\"\n  \
         second: \"{{ steps.confirmation.output.message_id }}\"\n"
    };
    out
}

fn input() -> Value {
    json!({
        "name": "Åsa Öberg",
        "email": "asa.oberg@kommun.example",
        "service": "Blåbär-tjänsten",
    })
}

/// A store, the plugin host with the mail plugin granted `127.0.0.1:port`
/// and the runtime over both, the workflow installed.
async fn open(dir: &Path, smtp_port: u16, handlers: bool) -> Runtime {
    vakt::plugin::init();
    let mut mail = PluginConfig::new("mail", support::wasm("mail")).bound_to("mail");
    mail.smtp = Some(SmtpGrant {
        host: "127.0.0.1".into(),
        port: Some(smtp_port),
        tls: SmtpTls::None,
        username: None,
        password: None,
        ca_file: None,
    });
    mail.settings
        .insert("from".into(), "vakt@kommun.example".into());
    let host = Arc::new(
        PluginHost::start(support::host_config(dir), vec![mail])
            .await
            .unwrap(),
    );

    let source = workflow_source(handlers);
    let plan = match workflow::load_source("notify_owner.yaml", source.clone()).result {
        Ok(p) => p,
        Err(d) => panic!("the test workflow does not load: {d:?}\n{source}"),
    };
    let mut plans = Plans::default();
    plans.insert(plan.clone());
    let store = SledStore::open(&dir.join("store"), &StoreConfig::default()).unwrap();
    let rt = Runtime::open(
        store,
        plans,
        Arc::new(PluginConnector::new(host)),
        Arc::new(LogNotifier),
        Arc::new(SystemClock),
        RuntimeConfig::default(),
    )
    .unwrap();
    rt.install(plan, &source).unwrap();
    rt
}

/// Polls the stored instance until `ready` holds (at most 30 s).
async fn wait_until(rt: &Runtime, id: &str, what: &str, ready: impl Fn(&Instance) -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let i = rt.instance(id).unwrap().unwrap();
        if ready(&i) {
            return;
        }
        assert!(
            Instant::now() < until,
            "{id} never got {what}: status {:?}, error {:?}",
            i.status,
            i.error
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn waits_for_signal(i: &Instance) -> bool {
    i.status == Status::Waiting
        && i.threads.values().any(|t| {
            t.waiting
                == Waiting::Signal {
                    name: SIGNAL.into(),
                }
        })
}

async fn final_status(rt: &Runtime, id: &str) -> Status {
    tokio::time::timeout(Duration::from_secs(30), rt.wait_final(id))
        .await
        .expect("the instance did not finish within 30 s")
        .unwrap()
}

/// The step's recorded result in the instance's own layer.
fn step<'a>(i: &'a Instance, id: &str) -> &'a StepResult {
    i.outputs[&0]
        .get(id)
        .unwrap_or_else(|| panic!("step `{id}` has no result: {:?}", i.outputs[&0]))
}

/// Verifies the history chain; returns its entries.
fn verified_history(rt: &Runtime, i: &Instance) -> Vec<Entry> {
    let h = rt.store().history(&i.id).unwrap();
    let (n, _) = chain::verify(&h).unwrap();
    assert_eq!(n, i.seq, "the chain covers every applied record");
    h
}

fn last_record(history: &[Entry]) -> Option<&Record> {
    history.last().map(|e| &e.record)
}

/// `(step, attempt)` of every connector call requested, in order.
fn calls(history: &[Entry]) -> Vec<(String, u32)> {
    call_times(history)
        .into_iter()
        .map(|(step, attempt, _)| (step, attempt))
        .collect()
}

/// `(step, attempt, at)` of every connector call requested, in order.
fn call_times(history: &[Entry]) -> Vec<(String, u32, Ts)> {
    history
        .iter()
        .filter_map(|e| match &e.record {
            Record::CallRequested {
                idempotency_key,
                attempt,
                role,
                action,
                ..
            } => {
                assert_eq!((role.as_str(), action.as_str()), ("mail", "send"));
                let step = idempotency_key.split('/').nth(1).unwrap().to_string();
                Some((step, *attempt, e.at))
            }
            _ => None,
        })
        .collect()
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap()
        .replace("\r\n", "\n")
        .trim_end()
        .to_string()
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    let port = support::free_port();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something listens on {port}"
    );
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_mails_through_the_plugin_waits_for_a_signal_and_mails_again() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let smtp = support::SmtpSink::start(&inbox);
    let rt = open(dir.path(), smtp.port, false).await;

    let id = rt
        .start("notify_owner", input(), "ops@kommun.example", None)
        .await
        .unwrap();
    wait_until(&rt, &id, "to the signal wait", waits_for_signal).await;

    // The first mail went out before the signal; the second has not.
    let first = smtp.parsed(1);
    assert!(!inbox.join("0002.eml").exists(), "mailed before the signal");
    let i = rt.instance(&id).unwrap().unwrap();
    assert_eq!(step(&i, "first_notice").status, "completed");
    assert!(!i.outputs[&0].contains_key("confirmation"));

    rt.event(
        &id,
        Event::Signal {
            name: SIGNAL.into(),
            data: json!({"ref": "IT-2026-0042", "until": "2027-06-30"}),
        },
    )
    .await
    .unwrap();
    assert_eq!(final_status(&rt, &id).await, Status::Completed);
    let second = smtp.parsed(2);

    // What the relay received, decoded by Python's `email` package.
    let h = &first["headers"];
    assert_eq!(h["Subject"], "Åtgärd krävs: Blåbär-tjänsten för Åsa Öberg");
    assert_eq!(h["To"], "Åsa Öberg <asa.oberg@kommun.example>");
    assert_eq!(h["From"], "Kommunens IT – Växjö <vakt@kommun.example>");
    assert_eq!(first["defects"], json!([]));
    assert_eq!(first["parts"].as_array().unwrap().len(), 1, "{first}");
    let part = &first["parts"][0];
    assert_eq!(part["content_type"], "text/plain");
    assert_eq!(part["charset"], "utf-8");
    assert_eq!(
        text(&part["content"]),
        "Hej Åsa Öberg!\n\nBehörigheten för Blåbär-tjänsten löper ut. Svara för att förlänga."
    );

    let h2 = &second["headers"];
    assert_eq!(
        h2["Subject"],
        "Bekräftat: Blåbär-tjänsten förlängd till 2027-06-30"
    );
    assert_eq!(h2["To"], "asa.oberg@kommun.example");
    assert_eq!(h2["From"], "vakt@kommun.example");
    assert_eq!(second["defects"], json!([]));
    assert_eq!(
        text(&second["parts"][0]["content"]),
        "Tack Åsa Öberg! Ärende IT-2026-0042 är avslutat.\nHälsningar, Växjö kommun (åäö ÅÄÖ)"
    );
    for n in [1, 2] {
        let envelope = smtp.envelope(n);
        assert_eq!(envelope["mail_from"], "vakt@kommun.example");
        assert_eq!(envelope["rcpt_tos"], json!(["asa.oberg@kommun.example"]));
    }

    // The step outputs hold the Message-IDs the relay saw.
    let i = rt.instance(&id).unwrap().unwrap();
    let bare = |v: &Value| v.as_str().unwrap().trim_matches(['<', '>']).to_string();
    let first_id = &step(&i, "first_notice").output["message_id"];
    let second_id = &step(&i, "confirmation").output["message_id"];
    assert_eq!(bare(first_id), bare(&h["Message-ID"]));
    assert_eq!(bare(second_id), bare(&h2["Message-ID"]));
    assert_ne!(first_id, second_id, "two steps, two Message-IDs");
    assert!(
        text(&step(&i, "first_notice").output["response"]).starts_with("250"),
        "{:?}",
        step(&i, "first_notice").output
    );
    assert_eq!(
        step(&i, "answer").output,
        json!({"ref": "IT-2026-0042", "until": "2027-06-30"})
    );
    assert_eq!(
        i.output,
        Some(json!({"first": first_id, "second": second_id}))
    );
    assert_eq!(i.error, None);

    // The history is one verified chain with exactly one call per send.
    let history = verified_history(&rt, &i);
    assert_eq!(
        calls(&history),
        [
            ("first_notice".to_string(), 1),
            ("confirmation".to_string(), 1)
        ]
    );
    assert!(
        history
            .iter()
            .any(|e| matches!(&e.record, Record::SignalConsumed { name, .. } if name == SIGNAL))
    );
    assert!(matches!(
        last_record(&history),
        Some(Record::Completed { .. })
    ));
    assert!(rt.store().ids_with_calls().unwrap().is_empty());
    rt.shutdown().await;
    eprintln!("relay up: {} ms", started.elapsed().as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_relay_down_the_instance_fails_after_its_attempts() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let port = dead_port();
    let rt = open(dir.path(), port, false).await;

    let id = rt
        .start("notify_owner", input(), "ops@kommun.example", None)
        .await
        .unwrap();
    assert_eq!(final_status(&rt, &id).await, Status::Failed);

    let i = rt.instance(&id).unwrap().unwrap();
    let error = i.error.clone().expect("a failed instance has its error");
    eprintln!("{}", error.message);
    assert_eq!(error.kind, "connector");
    assert!(error.retryable, "a relay that is down is worth retrying");
    for needle in [
        "plugin `mail`".to_string(),
        format!("relay 127.0.0.1:{port}"),
        "(gave up after 3 attempts)".to_string(),
    ] {
        assert!(
            error.message.contains(&needle),
            "`{}` lacks `{needle}`",
            error.message
        );
    }
    let first = step(&i, "first_notice");
    assert_eq!(first.status, "failed");
    assert_eq!(first.output["error"]["message"], error.message.as_str());
    assert!(!i.outputs[&0].contains_key("answer"), "nothing ran after");

    let history = verified_history(&rt, &i);
    assert_eq!(
        calls(&history),
        [1, 2, 3].map(|n| ("first_notice".to_string(), n))
    );
    // Two back-offs between the three attempts: 1 s, then 2 s, each
    // shortened by a jitter of at most half.
    let retries = history
        .iter()
        .filter(|e| {
            matches!(
                e.record,
                Record::TimerSet {
                    purpose: TimerPurpose::Retry { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(retries, 2);
    assert!(matches!(last_record(&history), Some(Record::Failed { .. })));
    let at: Vec<Ts> = call_times(&history).iter().map(|c| c.2).collect();
    let gaps = [at[1] - at[0], at[2] - at[1]];
    assert!(
        (500..2000).contains(&gaps[0]) && (1000..3000).contains(&gaps[1]),
        "back-offs of {gaps:?} ms"
    );
    rt.shutdown().await;
    eprintln!("relay down: {} ms", started.elapsed().as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_relay_down_on_error_handlers_complete_the_instance() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let port = dead_port();
    let rt = open(dir.path(), port, true).await;

    let id = rt
        .start("notify_owner", input(), "ops@kommun.example", None)
        .await
        .unwrap();
    // The handler runs, then the flow goes on after the failed step.
    wait_until(&rt, &id, "to the signal wait", waits_for_signal).await;
    rt.event(
        &id,
        Event::Signal {
            name: SIGNAL.into(),
            data: json!({"ref": "IT-2026-0043", "until": "2027-06-30"}),
        },
    )
    .await
    .unwrap();
    assert_eq!(final_status(&rt, &id).await, Status::Completed);

    let i = rt.instance(&id).unwrap().unwrap();
    assert_eq!(i.error, None);
    let relay = format!("relay 127.0.0.1:{port}");
    for (failed, handler, var) in [
        ("first_notice", "first_notice_failed", "first_error"),
        ("confirmation", "confirmation_failed", "second_error"),
    ] {
        assert_eq!(step(&i, failed).status, "failed");
        let message = step(&i, failed).output["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(&relay), "{message}");
        assert!(message.contains("(gave up after 3 attempts)"), "{message}");
        assert_eq!(step(&i, handler).status, "completed");
        let expected = format!("{failed}: {message}");
        assert_eq!(i.vars[var], expected.as_str());
        assert_eq!(i.output.as_ref().unwrap()[var], expected.as_str());
    }
    assert_eq!(step(&i, "answer").status, "completed");

    let history = verified_history(&rt, &i);
    let mut expected: Vec<_> = [1, 2, 3].map(|n| ("first_notice".to_string(), n)).to_vec();
    expected.extend([1, 2, 3].map(|n| ("confirmation".to_string(), n)));
    assert_eq!(calls(&history), expected);
    let handled = history
        .iter()
        .filter(|e| matches!(e.record, Record::StepFailed { handled: true, .. }))
        .count();
    assert_eq!(handled, 2);
    assert!(matches!(
        last_record(&history),
        Some(Record::Completed { .. })
    ));
    rt.shutdown().await;
    eprintln!("relay down, handled: {} ms", started.elapsed().as_millis());
}
