//! Unit tests of the scenario runner: a passing scenario, failing ones with
//! their exact messages, load errors at their `line:column`, and the exit
//! codes and output of `vakt test`.

use std::collections::HashMap;
use std::sync::Arc;

use super::{load, run};
use crate::workflow::{self, Plan, diag};

const WORKFLOW: &str = r#"
id: ack
input:
  discovered_at: {type: datetime}
clocks:
  dpa:
    anchor: input.discovered_at
    duration: 72h
    warn_before: [24h]
    stopped_by: report
steps:
  - id: open_ticket
    call: ticketing.create
    with: {subject: "s", body: "b"}
    retry: {attempts: 3, backoff: 10s}
  - id: acknowledge
    approval:
      title: "Kvittera"
      assignees: ["role:security_officer"]
      options: [acknowledge, {id: decline, require_comment: true}]
      escalation: [{after: 1h, to: [deputy@k.se]}]
      deadline: 3h
      default: decline
  - id: notified
    wait: {signal: dpa-notified}
  - id: report
    set: {ref: "{{ steps.notified.output.ref }}"}
  - id: done
    succeed: "{{ steps.acknowledge.output.decision }} {{ vars.ref }}"
"#;

/// The head of every scenario file below (7 lines; scenarios start at line 8).
const HEAD: &str = "workflow: ack
start_at: 2026-03-02T08:00:00+01:00
roles:
  security_officer: [anna@k.se]
input: {discovered_at: 2026-03-02T07:00:00+01:00}
connectors:
  ticketing.create: {fail: {message: 503, times: 2}, output: {id: T-1}}
";

fn plans() -> HashMap<String, Arc<Plan>> {
    let l = workflow::load_source("ack.yaml", WORKFLOW.to_owned());
    let plan = match &l.result {
        Ok(p) => p.clone(),
        Err(_) => panic!("{}", l.render_errors()),
    };
    HashMap::from([(plan.id.clone(), plan)])
}

fn run_all(scenarios: &str) -> Vec<run::Outcome> {
    let src = format!("{HEAD}{scenarios}");
    let plans = plans();
    let suite = load::load("t.test.yaml", &src, &plans)
        .unwrap_or_else(|d| panic!("{}", diag::render("t.test.yaml", &src, &d)));
    suite
        .scenarios
        .iter()
        .map(|s| run::run(s, &suite.workflow, &plans))
        .collect()
}

fn messages(o: &run::Outcome) -> Vec<String> {
    o.failures
        .iter()
        .map(|f| format!("{}: {}", f.loc, f.message))
        .collect()
}

/// The first line of each rendered load error.
fn load_errors(scenarios: &str) -> Vec<String> {
    let src = format!("{HEAD}{scenarios}");
    let d = load::load("t.test.yaml", &src, &plans()).expect_err("the file should not load");
    diag::render("t.test.yaml", &src, &d)
        .lines()
        .filter(|l| l.starts_with("t.test.yaml:"))
        .map(str::to_owned)
        .collect()
}

const HAPPY: &str = "scenarios:
  - name: acknowledged, then notified
    events:
      - at: 30m
        decide: {step: acknowledge, option: acknowledge}
      - at: 2h
        signal: {name: dpa-notified, data: {ref: IMY-1}}
    expect:
      status: completed
      message: acknowledge IMY-1
      path: [open_ticket, acknowledge, notified, report, done]
      not_path: []
      calls: [{call: ticketing.create, count: 3}]
      tasks: [{step: acknowledge, outcome: acknowledge, decided_by: anna@k.se, by_default: false}]
      notifications: [{step: acknowledge, reason: escalation, count: 0}]
      clocks: {dpa: {met: true, breached: false, warned: 0}}
      finished_within: 2h
";

#[test]
fn a_scenario_that_holds_passes() {
    let out = run_all(HAPPY);
    assert!(out[0].passed(), "{:?}", messages(&out[0]));
    assert_eq!(
        out[0].virtual_ms,
        2 * 3_600_000,
        "the run ends when the instance does"
    );
    assert!(
        out[0]
            .timeline
            .iter()
            .any(|l| l.contains("anna@k.se decided `acknowledge`")),
        "{:#?}",
        out[0].timeline
    );
}

#[test]
fn a_failing_scenario_says_what_was_expected_and_what_happened() {
    let out = run_all(
        "scenarios:
  - name: wrong on purpose
    connectors: {ticketing.create: {output: {id: T-2}}}
    events:
      - at: 30m
        decide: {step: acknowledge, option: acknowledge}
    expect:
      status: completed
      path: [acknowledge, open_ticket]
      calls: [{call: ticketing.create, count: 2}]
      tasks: [{step: acknowledge, decided_by: deputy@k.se}]
      clocks: {dpa: {breached: false}}
",
    );
    assert!(!out[0].passed());
    assert_eq!(
        messages(&out[0]),
        [
            "15:15: expect.status: expected `completed`, got `waiting`; it waits on signal `dpa-notified`",
            "16:27: expect.path: `open_ticket` completed, but not after `acknowledge`; completed, in order: open_ticket, acknowledge",
            "17:47: expect.calls: expected 2 calls of `ticketing.create`, got 1; the calls of `ticketing.create`: +0s attempt 1 {\"subject\":\"s\",\"body\":\"b\"}",
            "18:47: expect.tasks: expected the task of step `acknowledge` decided by deputy@k.se, got anna@k.se",
            "19:32: expect.clocks.dpa.breached: expected false, it was breached at +2d23h",
        ]
    );
}

#[test]
fn nobody_answers_escalation_then_the_default_decision() {
    let out = run_all(
        "scenarios:
  - name: silence
    connectors: {ticketing.create: {output: {id: T-2}}}
    run_for: 4h
    events:
      - at: 1h
        expect:
          notifications: [{step: acknowledge, reason: escalation, to: deputy@k.se, count: 1}]
          tasks: [{step: acknowledge, open: true, assignees: [\"role:security_officer\", deputy@k.se]}]
    expect:
      status: waiting
      tasks: [{step: acknowledge, outcome: decline, by_default: true}]
      steps: {acknowledge: {status: completed, output: {decision: decline, by_default: true}}}
      tasks_opened: [acknowledge]
",
    );
    assert!(out[0].passed(), "{:?}", messages(&out[0]));
}

#[test]
fn events_that_do_not_fit_the_run_stop_it_with_the_reason() {
    let out = run_all(
        "scenarios:
  - name: decided twice
    events:
      - at: 30m
        decide: {step: acknowledge, option: acknowledge}
      - at: 40m
        decide: {step: acknowledge, option: acknowledge}
    expect: {status: completed}
  - name: a comment is required
    events:
      - at: 10m
        decide: {step: acknowledge, option: decline}
        refused: needs a comment
      - at: 20m
        decide: {step: acknowledge, option: decline}
  - name: not an assignee
    events:
      - at: 10m
        decide: {step: acknowledge, by: someone@k.se, option: acknowledge}
      - at: 20m
        delegate: {step: acknowledge, to: bob@k.se, note: semester}
      - at: 30m
        decide: {step: acknowledge, by: bob@k.se, option: acknowledge}
",
    );
    assert_eq!(
        messages(&out[0]),
        [
            "13:9: at +40m: decide `acknowledge` on step `acknowledge`: no open task of step `acknowledge`: it was closed with `acknowledge` at +30m; the scenario stopped here"
        ]
    );
    assert_eq!(
        messages(&out[1]),
        [
            "21:9: at +20m: decide `decline` on step `acknowledge`: refused: this decision needs a comment: add `comment:`; the scenario stopped here"
        ]
    );
    assert_eq!(
        messages(&out[2]),
        [
            "25:9: at +10m: decide `acknowledge` on step `acknowledge`: refused: someone@k.se is not an assignee of this task (its assignees: role:security_officer; someone@k.se holds no role under `roles:`); the scenario stopped here"
        ]
    );
    assert!(
        out[2].timeline.iter().all(|l| !l.contains("bob@k.se")),
        "nothing after the stop"
    );
}

#[test]
fn delegation_and_cancellation() {
    let out = run_all(
        "scenarios:
  - name: handed over, then cancelled
    events:
      - at: 10m
        delegate: {step: acknowledge, to: bob@k.se, note: semester}
      - at: 20m
        decide: {step: acknowledge, by: carl@k.se, option: acknowledge}
        refused: not an assignee
      - at: 30m
        decide: {step: acknowledge, by: bob@k.se, option: acknowledge}
      - at: 1h
        cancel: {by: admin@k.se, reason: test}
      - at: 2h
        signal: {name: dpa-notified}
        refused: already finished
    expect:
      status: cancelled
      notifications: [{step: acknowledge, reason: delegated, to: bob@k.se, count: 1}]
      tasks: [{step: acknowledge, decided_by: bob@k.se}]
",
    );
    assert!(out[0].passed(), "{:?}", messages(&out[0]));
}

#[test]
fn load_errors_point_at_the_value_that_is_wrong() {
    let unknown_field = format!("{}    expect: {{staus: completed}}\n", errors_fixture());
    let errors = load_errors(&unknown_field);
    assert_eq!(
        errors,
        [
            "t.test.yaml:24:14: unknown field `staus` (did you mean `status`?): the fields here are `status`, `message`, `path`, `not_path`, `output`, `vars`, `steps`, `calls`, `notifications`, `tasks`, `tasks_opened`, `clocks`, `finished_within`"
        ]
    );
    let errors = load_errors(&errors_fixture());
    assert_eq!(
        errors,
        [
            "t.test.yaml:8:14: workflow `ack` never calls `mail.send` (it calls: ticketing.create)",
            "t.test.yaml:13:24: decide: workflow `ack` has no step `acknowlege` (did you mean `acknowledge`?)",
            "t.test.yaml:14:13: `1h` is earlier than the event before it (line 12): list events in time order",
            "t.test.yaml:15:45: decide: `approve` is not an option of step `acknowledge`: its options are acknowledge, decline",
            "t.test.yaml:16:13: `soon` is neither a duration after the start (`30m`, `2d 4h`) nor an instant (`2026-03-02T10:00:00+01:00`)",
            "t.test.yaml:17:24: signal: workflow `ack` never waits for signal `dpa-notifed` (it waits for: dpa-notified)",
            "t.test.yaml:19:15: expect.status: `done` is not one of running, waiting, completed, failed, cancelled",
            "t.test.yaml:20:14: expect.path: workflow `ack` has no step `open_tiket` (did you mean `open_ticket`?)",
            "t.test.yaml:21:22: `ticketing.craete`: role `ticketing` has no action `craete` (did you mean `create`?): its actions are create, comment, update_status, get, close",
            "t.test.yaml:22:21: expect.clocks: workflow `ack` has no clock `imy` (its clocks: dpa)",
            "t.test.yaml:23:11: scenario `typos` is already defined at line 10: names must be unique in a file",
        ]
    );
}

/// [`load_errors_point_at_the_value_that_is_wrong`] without its unknown field.
fn errors_fixture() -> String {
    "  mail.send: {output: {}}
scenarios:
  - name: typos
    events:
      - at: 2h
        decide: {step: acknowlege, option: ok}
      - at: 1h
        decide: {step: acknowledge, option: approve}
      - at: soon
        signal: {name: dpa-notifed}
    expect:
      status: done
      path: [open_tiket]
      calls: [{call: ticketing.craete}]
      clocks: {imy: {met: true}}
  - name: typos
"
    .to_owned()
}

#[test]
fn unknown_roles_and_inputs_are_load_errors() {
    let src = HEAD
        .replace("security_officer: [anna@k.se]", "security_oficer: [anna]")
        .replace("discovered_at: 2026", "discovered: 2026");
    let src = format!("{src}scenarios:\n  - name: x\n");
    let d = load::load("t.test.yaml", &src, &plans()).expect_err("invalid");
    let lines: Vec<String> = diag::render("t.test.yaml", &src, &d)
        .lines()
        .filter(|l| l.starts_with("t.test.yaml:"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        [
            "t.test.yaml:4:20: role `security_oficer` is not assigned any task in workflow `ack` (did you mean `security_officer`?) (its roles: security_officer)",
            "t.test.yaml:4:21: `anna` is not an address: list who holds role `security_oficer`, such as `anna@kommun.se`",
            "t.test.yaml:5:8: input: `discovered_at` is required",
            "t.test.yaml:5:8: input: `discovered` is not an input field of `ack` (its fields: discovered_at)",
        ]
    );
}

#[test]
fn the_command_finds_files_runs_them_and_sets_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("tests");
    std::fs::create_dir(&tests).unwrap();
    std::fs::write(dir.path().join("ack.yaml"), WORKFLOW).unwrap();
    let run_cli = |paths: &[std::path::PathBuf]| {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = super::run_paths(paths, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    };
    let file = tests.join("ack.test.yaml");
    std::fs::write(&file, format!("{HEAD}{HAPPY}")).unwrap();
    let (code, out, _) = run_cli(&[dir.path().to_owned()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "test {} :: acknowledged, then notified ... ok\n",
            file.display()
        )),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("1 passed, 0 failed"));

    // Named alone, the scenario file finds its workflow in the directory above.
    let failing = HAPPY.replace("count: 3}", "count: 1}");
    std::fs::write(&file, format!("{HEAD}{failing}")).unwrap();
    let (code, out, _) = run_cli(std::slice::from_ref(&file));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("acknowledged, then notified ... FAILED"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}:20:47: expect.calls: expected 1 call of `ticketing.create`, got 3",
            file.display()
        )),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("0 passed, 1 failed"));

    std::fs::write(&file, format!("{HEAD}scenarios: []\n")).unwrap();
    let (code, out, err) = run_cli(&[dir.path().to_owned()]);
    assert_eq!(code, 2);
    assert!(
        out.contains("ack.test.yaml:8:12: `scenarios` is empty"),
        "{out}"
    );
    assert!(
        err.contains("1 invalid file(s); no scenario was run"),
        "{err}"
    );

    let (code, _, err) = run_cli(&[dir.path().join("missing")]);
    assert_eq!(code, 2);
    assert!(err.contains("no such file or directory"), "{err}");
    std::fs::remove_file(&file).unwrap();
    let (code, _, err) = run_cli(&[dir.path().to_owned()]);
    assert_eq!(code, 2);
    assert!(err.contains("no scenario files"), "{err}");
}
