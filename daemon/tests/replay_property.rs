//! Replaying an instance's stored history rebuilds exactly its live state,
//! whatever the workflow and whatever happens to the instance.
//!
//! Random but valid workflows are written as YAML from a small AST: calls of
//! every connector action in the catalogue (with retry, timeout, `on_error`
//! and `on_timeout`), approvals (one to three assignees, options with
//! send-back `goto`s, quorum `any`/`all`/N, deadlines with or without a
//! default, reminders, escalation), waits (a duration, an instant, a signal
//! with a timeout), `if`/`switch` on the input, `parallel`, `foreach` with a
//! concurrency, `set`, `fail`/`succeed`, `when` conditions, and statutory
//! clocks with warnings and handlers anchored on a datetime input. Every one
//! must pass validation (a failure to do so is a generator bug). Each runs on
//! the virtual-time simulator against a random event sequence: time jumps,
//! decisions and delegations by right and wrong people with valid and
//! invalid options, signals, cancels, late starts, duplicate deliveries of
//! fired timers and answered calls, and connector answers (ok, retryable
//! error, permanent error) from a seeded sequence. Time is moved by
//! delivering each due timer as an event of its own, in the simulator's
//! order, so that the properties are checked after each of them too, and so
//! that an instance that never pauses fails the test instead of hanging it.
//!
//! After every event: (a) every instance's history replays into its live
//! state; (c) a rejected event, or a duplicate delivery, records nothing;
//! (d) the invariants hold: `seq` counts the records, ids (timers included)
//! are never reused, nothing follows the final record, a finished instance
//! has no threads, calls, timers or open tasks, and a running one is at rest
//! and consistent (every wait names a live timer or open task, every timer
//! and open task serves a live thread, task or clock, no assignee is listed
//! twice, every attempt of a call has the same idempotency key). And (b):
//! each case runs twice and must give identical histories, states, calls and
//! notifications.
//!
//! 300 cases by default; `PROPTEST_CASES=3000` hunts longer. The engine
//! bugs this test found (B1–B6) are fixed and pinned by the `bug_*` tests at
//! the end. Should a new one be found and not fixed at once, list it in
//! [`Mode::AVOID_KNOWN_BUGS`] to steer the generator around it, pin it with
//! an ignored `bug_*` test, and remove both with the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use vakt::engine::Status;
use vakt::engine::model::{CallOutcome, Event, Record, TimerPurpose, rfc3339};
use vakt::engine::sim::Sim;
use vakt::engine::state::{Instance, Waiting};
use vakt::workflow::plan::{NodeKind, Plan};
use vakt::workflow::{self, connectors};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const MIN: i64 = 60_000;
const H: i64 = 60 * MIN;

// ---------------------------------------------------------------------------
// The workflow AST
// ---------------------------------------------------------------------------

/// A workflow. The input section is fixed (see [`INPUT`]).
#[derive(Debug, Clone)]
struct Wf {
    clocks: Vec<ClockDef>,
    main: Block,
    output: Option<Val>,
}

/// A list of steps, optionally ended by `fail` or `succeed` (only the last
/// step of a list may end the instance: anything after it could never run).
#[derive(Debug, Clone)]
struct Block {
    steps: Vec<Step>,
    end: Option<End>,
}

#[derive(Debug, Clone, Copy)]
enum End {
    Fail,
    Succeed,
}

#[derive(Debug, Clone)]
struct Step {
    when: Option<Cond>,
    kind: Kind,
    on_error: Option<Handler>,
}

#[derive(Debug, Clone)]
enum Kind {
    Call(Box<Call>),
    Approval(Box<Approval>),
    WaitFor(u8),
    WaitUntil,
    WaitSignal {
        name: u8,
        timeout: Option<u8>,
        on_timeout: Option<Handler>,
    },
    If {
        cond: Cond,
        then: Block,
        otherwise: Option<Block>,
    },
    Switch {
        cases: Vec<(u8, Block)>,
        default: Option<Block>,
    },
    Parallel(Vec<Block>),
    Foreach {
        concurrency: u32,
        named: bool,
        body: Block,
    },
    Set(Vec<(u8, Val)>),
}

/// Where a handler goes: a later sibling step (a forward jump cannot close a
/// loop), or steps of its own.
#[derive(Debug, Clone)]
enum Handler {
    Forward(u8),
    Steps(Block),
}

#[derive(Debug, Clone, Copy)]
enum Cond {
    Flag,
    NotFlag,
    KindIs(u8),
    HasItems,
    VarSet(u8),
    StepDone(u8),
}

/// A value: a literal or a template reading what is in scope.
#[derive(Debug, Clone, Copy)]
enum Val {
    Lit,
    Num,
    Kind,
    Now,
    Instance,
    Item,
    Error,
    Clock,
    /// `vars.vN`, which fails to render while unset.
    Var(u8),
    /// `steps.<some step>.output.id`, which fails to render unless that step gave an id.
    StepOut(u8),
    /// Renders at the instant the instance starts, not later (bug B5).
    TimeBomb,
}

#[derive(Debug, Clone)]
struct Call {
    action: u8,
    optional_arg: bool,
    arg: Val,
    retry: Option<(u8, u8)>,
    timeout: Option<u8>,
    on_timeout: Option<Handler>,
}

#[derive(Debug, Clone)]
struct Approval {
    assignees: Vec<u8>,
    options: Option<Vec<Opt>>,
    quorum: Quorum,
    require_comment: bool,
    no_self_approval: bool,
    no_delegation: bool,
    deadline: Option<Deadline>,
    default: Option<u8>,
    reminders: Option<Reminders>,
    escalation: Vec<Rung>,
    on_timeout: Option<Handler>,
}

#[derive(Debug, Clone, Copy)]
enum Quorum {
    Any,
    All,
    N(u8),
}

#[derive(Debug, Clone, Copy)]
enum Deadline {
    After(u8),
    AtInput,
}

#[derive(Debug, Clone)]
struct Opt {
    id: u8,
    /// Send back: go to the sibling this many steps before (0: the approval itself).
    goto_back: Option<u8>,
    require_comment: bool,
}

#[derive(Debug, Clone)]
struct Reminders {
    every: Option<u8>,
    max: Option<u8>,
    after: Vec<u8>,
    before_deadline: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Rung {
    to: Vec<u8>,
    replace: bool,
    note: bool,
}

#[derive(Debug, Clone)]
struct ClockDef {
    /// Anchored on the optional `reported_at` instead of `discovered_at`.
    on_reported: bool,
    duration: u8,
    when: Option<Cond>,
    warn: Vec<u8>,
    stopped_by: Option<u8>,
    on_warning: Option<Block>,
    on_breach: Option<Block>,
}

const INPUT: &str = r#"input:
  discovered_at: {type: datetime}
  reported_at: {type: datetime, required: false}
  due_at: {type: datetime}
  kind: {type: string, enum: [a, b, c]}
  flag: {type: boolean, default: false}
  items: {type: list, default: []}
  owner: {type: email}
  backup: {type: string, default: "d@k.se"}
"#;

const KINDS: &[&str] = &["a", "b", "c"];
const WAITS: &[&str] = &["1m", "30m", "2h", "1d"];
const SIGNALS: &[&str] = &["go", "ack", "other"];
const SIGNAL_TIMEOUTS: &[&str] = &["30m", "4h", "2d"];
const CALL_TIMEOUTS: &[&str] = &["2m", "1h", "1d"];
const BACKOFFS: &[&str] = &["10s", "1m", "5m"];
const ASSIGNEES: &[&str] = &[
    "a@k.se",
    "b@k.se",
    "c@k.se",
    "role:dpo",
    "{{ input.owner }}",
    "{{ input.backup }}",
];
const ESCALATE_TO: &[&str] = &["d@k.se", "b@k.se", "role:ciso", "{{ input.backup }}"];
const OPTION_IDS: &[&str] = &["approve", "reject", "send_back", "hold"];
/// All after the last escalation rung and reminder.
const DEADLINES: &[&str] = &["3h", "8h", "1d", "3d"];
const RUNG_AFTER: &[&str] = &["30m", "1h", "2h"];
const REMIND_AFTER: &[&str] = &["20m", "45m", "90m"];
const REMIND_EVERY: &[&str] = &["10m", "1h", "6h"];
const BEFORE_DEADLINE: &[&str] = &["1h", "2h"];
/// All longer than every warning.
const CLOCK_DURATIONS: &[&str] = &["2h", "1d", "3d"];
const CLOCK_WARNINGS: &[&str] = &["30m", "1h"];

/// Every connector action, from the catalogue.
fn actions() -> Vec<(&'static str, &'static connectors::Action)> {
    connectors::ROLES
        .iter()
        .flat_map(|r| r.actions.iter().map(move |a| (r.name, a)))
        .collect()
}

// ---------------------------------------------------------------------------
// Generating the AST
// ---------------------------------------------------------------------------

fn cond() -> BoxedStrategy<Cond> {
    prop_oneof![
        Just(Cond::Flag),
        Just(Cond::NotFlag),
        (0u8..3).prop_map(Cond::KindIs),
        Just(Cond::HasItems),
        (0u8..3).prop_map(Cond::VarSet),
        any::<u8>().prop_map(Cond::StepDone),
    ]
    .boxed()
}

fn val() -> BoxedStrategy<Val> {
    prop_oneof![
        6 => Just(Val::Lit),
        1 => Just(Val::Num),
        2 => Just(Val::Kind),
        1 => Just(Val::Now),
        1 => Just(Val::Instance),
        3 => Just(Val::Item),
        2 => Just(Val::Error),
        2 => Just(Val::Clock),
        1 => (0u8..3).prop_map(Val::Var),
        1 => any::<u8>().prop_map(Val::StepOut),
        1 => Just(Val::TimeBomb),
    ]
    .boxed()
}

fn handler(depth: u32) -> BoxedStrategy<Handler> {
    if depth == 0 {
        (0u8..3).prop_map(Handler::Forward).boxed()
    } else {
        prop_oneof![
            (0u8..3).prop_map(Handler::Forward),
            block(depth - 1, 2).prop_map(Handler::Steps)
        ]
        .boxed()
    }
}

fn call(depth: u32) -> BoxedStrategy<Kind> {
    let n = actions().len() as u8;
    (
        0..n,
        any::<bool>(),
        val(),
        proptest::option::weighted(0.6, (2u8..=4, 0u8..3)),
        proptest::option::weighted(0.3, 0u8..3),
        proptest::option::weighted(0.7, handler(depth)),
    )
        .prop_map(|(action, optional_arg, arg, retry, timeout, on_timeout)| {
            Kind::Call(Box::new(Call {
                action,
                optional_arg,
                arg,
                retry,
                timeout,
                on_timeout,
            }))
        })
        .boxed()
}

fn approval(depth: u32) -> BoxedStrategy<Kind> {
    let opt = (
        0u8..4,
        proptest::option::weighted(0.4, 0u8..3),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(id, goto_back, require_comment)| Opt {
            id,
            goto_back,
            require_comment,
        });
    let quorum = prop_oneof![
        Just(Quorum::Any),
        Just(Quorum::All),
        (0u8..4).prop_map(Quorum::N)
    ];
    let deadline =
        prop_oneof![3 => (0u8..4).prop_map(Deadline::After), 1 => Just(Deadline::AtInput)];
    let reminders = (
        proptest::option::of(0u8..3),
        proptest::option::of(1u8..=3),
        vec(0u8..3, 0..=2),
        vec(0u8..2, 0..=1),
    )
        .prop_map(|(every, max, after, before_deadline)| Reminders {
            every,
            max,
            after,
            before_deadline,
        });
    let rung = (
        vec(0u8..4, 1..=2),
        proptest::bool::weighted(0.3),
        any::<bool>(),
    )
        .prop_map(|(to, replace, note)| Rung { to, replace, note });
    (
        vec(0u8..6, 1..=3),
        proptest::option::weighted(0.6, vec(opt, 1..=3)),
        quorum,
        (
            proptest::bool::weighted(0.15),
            proptest::bool::weighted(0.3),
            proptest::bool::weighted(0.2),
        ),
        proptest::option::weighted(0.6, deadline),
        proptest::option::weighted(0.5, 0u8..3),
        proptest::option::weighted(0.5, reminders),
        vec(rung, 0..=2),
        proptest::option::weighted(0.7, handler(depth)),
    )
        .prop_map(
            |(
                assignees,
                options,
                quorum,
                flags,
                deadline,
                default,
                reminders,
                escalation,
                on_timeout,
            )| {
                let (require_comment, no_self_approval, no_delegation) = flags;
                Kind::Approval(Box::new(Approval {
                    assignees,
                    options,
                    quorum,
                    require_comment,
                    no_self_approval,
                    no_delegation,
                    deadline,
                    default,
                    reminders,
                    escalation,
                    on_timeout,
                }))
            },
        )
        .boxed()
}

fn wait(depth: u32) -> BoxedStrategy<Kind> {
    prop_oneof![
        2 => (0u8..4).prop_map(Kind::WaitFor),
        1 => Just(Kind::WaitUntil),
        2 => (0u8..3, proptest::option::weighted(0.6, 0u8..3), proptest::option::weighted(0.7, handler(depth)))
            .prop_map(|(name, timeout, on_timeout)| Kind::WaitSignal { name, timeout, on_timeout }),
    ]
    .boxed()
}

fn set() -> BoxedStrategy<Kind> {
    vec((0u8..3, val()), 1..=2).prop_map(Kind::Set).boxed()
}

fn step(depth: u32) -> BoxedStrategy<Step> {
    let leaf = prop_oneof![3 => call(depth), 3 => approval(depth), 2 => wait(depth), 1 => set()];
    let kind = if depth == 0 {
        leaf.boxed()
    } else {
        let d = depth - 1;
        prop_oneof![
            9 => leaf,
            1 => (cond(), block(d, 3), proptest::option::of(block(d, 2)))
                .prop_map(|(cond, then, otherwise)| Kind::If { cond, then, otherwise }),
            1 => (vec((0u8..3, block(d, 2)), 1..=3), proptest::option::of(block(d, 2)))
                .prop_map(|(cases, default)| Kind::Switch { cases, default }),
            1 => vec(block(d, 3), 2..=3).prop_map(Kind::Parallel),
            1 => (1u32..=3, any::<bool>(), block(d, 3))
                .prop_map(|(concurrency, named, body)| Kind::Foreach { concurrency, named, body }),
        ]
        .boxed()
    };
    (
        proptest::option::weighted(0.15, cond()),
        kind,
        proptest::option::weighted(0.25, handler(depth)),
    )
        .prop_map(|(when, kind, on_error)| Step {
            when,
            kind,
            on_error,
        })
        .boxed()
}

fn block(depth: u32, max_len: usize) -> BoxedStrategy<Block> {
    let end = prop_oneof![Just(End::Fail), Just(End::Succeed)];
    (
        vec(step(depth), 1..=max_len),
        proptest::option::weighted(0.12, end),
    )
        .prop_map(|(steps, end)| Block { steps, end })
        .boxed()
}

fn clock() -> BoxedStrategy<ClockDef> {
    (
        proptest::bool::weighted(0.3),
        0u8..3,
        proptest::option::weighted(0.3, cond()),
        vec(0u8..2, 0..=2),
        proptest::option::weighted(0.6, any::<u8>()),
        proptest::option::weighted(0.5, block(0, 2)),
        proptest::option::weighted(0.5, block(0, 2)),
    )
        .prop_map(
            |(on_reported, duration, when, warn, stopped_by, on_warning, on_breach)| ClockDef {
                on_reported,
                duration,
                when,
                warn,
                stopped_by,
                on_warning,
                on_breach,
            },
        )
        .boxed()
}

fn workflow() -> BoxedStrategy<Wf> {
    (
        vec(clock(), 0..=2),
        block(2, 6),
        proptest::option::weighted(0.3, val()),
    )
        .prop_map(|(clocks, main, output)| Wf {
            clocks,
            main,
            output,
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// Writing the AST as YAML
// ---------------------------------------------------------------------------

/// The engine bugs this test found, each pinned by a `bug_*` test below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    /// An escalation whose assignee template gives no address fails the step
    /// but leaves the task open: a later decision completes another step.
    B1EscalationFailureLeavesTaskOpen,
    /// A clock anchor that is not an instant fails the start, and the root
    /// thread is started after the `failed` record.
    B2RecordsAfterFailedStart,
    /// Concurrent foreach iterations through one call step change the
    /// idempotency key between the attempts of one call.
    B3IdempotencyKeyChangesBetweenAttempts,
    /// Delegating to someone already on the task lists them twice; with
    /// quorum `all` the task can then never be decided.
    B4DelegationDuplicatesAssignee,
    /// A retry whose arguments fail to render leaves the call's timeout
    /// armed; it later times out whatever step the thread is at.
    B5TimeoutOutlivesItsStep,
    /// A `default` that jumps back, at a deadline that is an instant already
    /// past, loops forever at one instant.
    B6DefaultAtPastDeadlineLoops,
}

/// Which known bugs the generator and the checks steer around.
#[derive(Debug, Clone, Copy)]
struct Mode {
    avoid: &'static [Bug],
}

impl Mode {
    /// Remove a bug from this list once it is fixed (and un-ignore its test).
    const AVOID_KNOWN_BUGS: Mode = Mode { avoid: &[] };
    const UNRESTRICTED: Mode = Mode { avoid: &[] };

    fn avoids(self, bug: Bug) -> bool {
        self.avoid.contains(&bug)
    }
}

/// Names visible to templates where a value is written.
#[derive(Debug, Clone, Default)]
struct Scope {
    item: Option<&'static str>,
    error: bool,
    clock: bool,
}

/// What the whole file defines, learnt by a first pass.
#[derive(Debug, Default)]
struct Names {
    steps: Vec<String>,
    /// Steps a clock may be stopped by: not `if` or `switch`, which complete
    /// as soon as their condition is evaluated.
    stoppers: Vec<String>,
    vars: BTreeSet<u8>,
}

struct Writer {
    mode: Mode,
    known: Names,
    seen: Names,
    out: String,
}

/// A JSON string is a YAML double-quoted scalar.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn list(items: &[&str]) -> String {
    let v: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", v.join(", "))
}

fn pick<T: Copy>(list: &[T], i: u8) -> T {
    list[i as usize % list.len()]
}

fn terminal(b: &Block) -> bool {
    b.end.is_some()
}

/// Renders a workflow to YAML; `None` pieces are normalised so that the text
/// is always valid (jumps clamped to existing siblings, conflicting options
/// dropped).
fn render(wf: &Wf, mode: Mode) -> String {
    let mut w = Writer {
        mode,
        known: Names::default(),
        seen: Names::default(),
        out: String::new(),
    };
    w.workflow(wf);
    w.known = std::mem::take(&mut w.seen);
    w.out.clear();
    w.workflow(wf);
    w.out
}

impl Writer {
    fn line(&mut self, indent: usize, text: &str) {
        let _ = writeln!(self.out, "{:indent$}{text}", "");
    }

    fn workflow(&mut self, wf: &Wf) {
        self.out.push_str("id: w\n");
        self.out.push_str(INPUT);
        if !wf.clocks.is_empty() {
            self.line(0, "clocks:");
            for (i, c) in wf.clocks.iter().enumerate() {
                self.clock(i, c);
            }
        }
        self.line(0, "steps:");
        self.block(&wf.main, "s", 2, &Scope::default());
        if let Some(v) = wf.output {
            let v = self.val(v, &Scope::default());
            self.line(0, "output:");
            self.line(2, &format!("result: {v}"));
        }
    }

    fn clock(&mut self, i: usize, c: &ClockDef) {
        self.line(2, &format!("c{i}:"));
        let anchor = if c.on_reported {
            "input.reported_at"
        } else {
            "input.discovered_at"
        };
        self.line(4, &format!("anchor: {}", q(anchor)));
        self.line(
            4,
            &format!("duration: {}", pick(CLOCK_DURATIONS, c.duration)),
        );
        if let Some(cond) = c.when {
            let cond = self.cond(cond);
            self.line(4, &format!("when: {}", q(&cond)));
        }
        let mut warn: Vec<&str> = c.warn.iter().map(|w| pick(CLOCK_WARNINGS, *w)).collect();
        warn.sort();
        warn.dedup();
        if c.on_warning.is_some() && warn.is_empty() {
            warn.push(CLOCK_WARNINGS[0]);
        }
        if !warn.is_empty() {
            self.line(4, &format!("warn_before: [{}]", warn.join(", ")));
        }
        if let Some(s) = c.stopped_by
            && !self.known.stoppers.is_empty()
        {
            let target = self.known.stoppers[s as usize % self.known.stoppers.len()].clone();
            self.line(4, &format!("stopped_by: {target}"));
        }
        let scope = Scope {
            clock: true,
            ..Scope::default()
        };
        if let Some(b) = &c.on_warning {
            self.line(4, "on_warning:");
            self.block(b, &format!("w{i}"), 6, &scope);
        }
        if let Some(b) = &c.on_breach {
            self.line(4, "on_breach:");
            self.block(b, &format!("b{i}"), 6, &scope);
        }
    }

    /// Writes a list of steps with `- ` at `indent`; step ids are `<prefix>_<index>`.
    fn block(&mut self, b: &Block, prefix: &str, indent: usize, scope: &Scope) {
        let count = b.steps.len() + usize::from(b.end.is_some());
        let ids: Vec<String> = (0..count).map(|i| format!("{prefix}_{i}")).collect();
        for (i, s) in b.steps.iter().enumerate() {
            self.step(s, &ids, i, indent, scope);
        }
        if let Some(end) = b.end {
            let id = &ids[b.steps.len()];
            self.seen.steps.push(id.clone());
            self.seen.stoppers.push(id.clone());
            self.line(indent, &format!("- id: {id}"));
            match end {
                End::Fail => self.line(indent + 2, &format!("fail: {}", q("stopped at {{ now }}"))),
                End::Succeed => self.line(
                    indent + 2,
                    &format!("succeed: {}", q("done: {{ input.kind }}")),
                ),
            }
        }
    }

    fn step(&mut self, s: &Step, ids: &[String], i: usize, indent: usize, scope: &Scope) {
        let id = ids[i].clone();
        self.seen.steps.push(id.clone());
        if !matches!(s.kind, Kind::If { .. } | Kind::Switch { .. }) {
            self.seen.stoppers.push(id.clone());
        }
        self.line(indent, &format!("- id: {id}"));
        let ind = indent + 2;
        if let Some(c) = s.when {
            let c = self.cond(c);
            self.line(ind, &format!("when: {}", q(&c)));
        }
        match &s.kind {
            Kind::Call(c) => self.call(c, ids, i, ind, scope),
            Kind::Approval(a) => self.approval(a, ids, i, ind, scope),
            Kind::WaitFor(d) => self.line(ind, &format!("wait: {}", pick(WAITS, *d))),
            Kind::WaitUntil => self.line(ind, "wait: {until: \"input.due_at\"}"),
            Kind::WaitSignal {
                name,
                timeout,
                on_timeout,
            } => {
                self.line(ind, &format!("wait: {{signal: {}}}", pick(SIGNALS, *name)));
                if let Some(t) = timeout {
                    self.line(ind, &format!("timeout: {}", pick(SIGNAL_TIMEOUTS, *t)));
                    if let Some(h) = on_timeout {
                        self.handler("on_timeout", h, ids, i, ind, scope);
                    }
                }
            }
            Kind::If {
                cond,
                then,
                otherwise,
            } => {
                let c = self.cond(*cond);
                self.line(ind, &format!("if: {}", q(&c)));
                self.line(ind, "then:");
                self.block(then, &format!("{id}t"), ind + 2, scope);
                if let Some(e) = otherwise {
                    // Both ending the instance would leave the next step unreachable.
                    let e = if terminal(then) && terminal(e) {
                        &Block {
                            steps: e.steps.clone(),
                            end: None,
                        }
                    } else {
                        e
                    };
                    self.line(ind, "else:");
                    self.block(e, &format!("{id}e"), ind + 2, scope);
                }
            }
            Kind::Switch { cases, default } => {
                self.line(ind, &format!("switch: {}", q("input.kind")));
                self.line(ind, "cases:");
                let mut seen = BTreeSet::new();
                let mut all_terminal = true;
                for (k, (key, b)) in cases.iter().enumerate() {
                    let key = pick(KINDS, *key);
                    if !seen.insert(key) {
                        continue;
                    }
                    all_terminal &= terminal(b);
                    self.line(ind + 2, &format!("{key}:"));
                    self.block(b, &format!("{id}c{k}"), ind + 4, scope);
                }
                if let Some(d) = default {
                    let d = if all_terminal && terminal(d) {
                        &Block {
                            steps: d.steps.clone(),
                            end: None,
                        }
                    } else {
                        d
                    };
                    self.line(ind, "default:");
                    self.block(d, &format!("{id}d"), ind + 2, scope);
                }
            }
            Kind::Parallel(branches) => {
                self.line(ind, "parallel:");
                for (k, b) in branches.iter().enumerate() {
                    self.line(ind + 2, &format!("p{k}:"));
                    self.block(b, &format!("{id}p{k}"), ind + 4, scope);
                }
            }
            Kind::Foreach {
                concurrency,
                named,
                body,
            } => {
                self.line(ind, &format!("foreach: {}", q("input.items")));
                let var = if *named {
                    self.line(ind, "as: it");
                    "it"
                } else {
                    "item"
                };
                self.line(ind, &format!("concurrency: {concurrency}"));
                self.line(ind, "steps:");
                let inner = Scope {
                    item: Some(var),
                    ..scope.clone()
                };
                self.block(body, &format!("{id}b"), ind + 2, &inner);
            }
            Kind::Set(vars) => {
                self.line(ind, "set:");
                let mut seen = BTreeSet::new();
                for (name, v) in vars {
                    if !seen.insert(*name) {
                        continue;
                    }
                    self.seen.vars.insert(*name);
                    let v = self.val(*v, scope);
                    self.line(ind + 2, &format!("v{name}: {v}"));
                }
            }
        }
        if let Some(h) = &s.on_error {
            self.handler("on_error", h, ids, i, ind, scope);
        }
    }

    fn handler(
        &mut self,
        field: &str,
        h: &Handler,
        ids: &[String],
        i: usize,
        ind: usize,
        scope: &Scope,
    ) {
        match h {
            Handler::Forward(k) => {
                // Only forward: a backward jump could close a loop with no pause.
                if i + 1 < ids.len() {
                    let target = (i + 1 + *k as usize).min(ids.len() - 1);
                    self.line(ind, &format!("{field}: {}", ids[target]));
                }
            }
            Handler::Steps(b) => {
                self.line(ind, &format!("{field}:"));
                let suffix = if field == "on_error" { "x" } else { "y" };
                let inner = Scope {
                    error: true,
                    ..scope.clone()
                };
                self.block(b, &format!("{}{suffix}", ids[i]), ind + 2, &inner);
            }
        }
    }

    fn call(&mut self, c: &Call, ids: &[String], i: usize, ind: usize, scope: &Scope) {
        let all = actions();
        let (role, action) = all[c.action as usize % all.len()];
        self.line(ind, &format!("call: {role}.{}", action.name));
        let mut args: Vec<(&str, String)> = Vec::new();
        for (k, name) in action.required.iter().enumerate() {
            let v = if k == 0 {
                self.val(c.arg, scope)
            } else {
                q("x")
            };
            args.push((name, v));
        }
        if c.optional_arg
            && let Some(name) = action.optional.first()
        {
            let v = if args.is_empty() {
                self.val(c.arg, scope)
            } else {
                q("opt")
            };
            args.push((name, v));
        }
        if !args.is_empty() {
            self.line(ind, "with:");
            for (name, v) in args {
                self.line(ind + 2, &format!("{name}: {v}"));
            }
        }
        if let Some((attempts, backoff)) = c.retry {
            self.line(
                ind,
                &format!(
                    "retry: {{attempts: {attempts}, backoff: {}}}",
                    pick(BACKOFFS, backoff)
                ),
            );
        }
        if let Some(t) = c.timeout {
            self.line(ind, &format!("timeout: {}", pick(CALL_TIMEOUTS, t)));
            if let Some(h) = &c.on_timeout {
                self.handler("on_timeout", h, ids, i, ind, scope);
            }
        }
    }

    fn approval(&mut self, a: &Approval, ids: &[String], i: usize, ind: usize, scope: &Scope) {
        self.line(ind, "approval:");
        let ind2 = ind + 2;
        let title = match scope.item {
            Some(var) => format!("Item {{{{ {var} }}}} ({{{{ input.kind }}}})"),
            None => "Review {{ input.kind }}".to_owned(),
        };
        self.line(ind2, &format!("title: {}", q(&title)));
        let mut assignees: Vec<&str> = a.assignees.iter().map(|x| pick(ASSIGNEES, *x)).collect();
        let mut seen = BTreeSet::new();
        assignees.retain(|x| seen.insert(*x));
        self.line(ind2, &format!("assignees: {}", list(&assignees)));
        let mut option_ids: Vec<&str> = vec!["approve", "reject"];
        let mut jumps: Vec<bool> = vec![false, false];
        if let Some(opts) = &a.options {
            let mut seen = BTreeSet::new();
            let opts: Vec<&Opt> = opts.iter().filter(|o| seen.insert(o.id % 4)).collect();
            // At least one option must go on to the next step, or it could never run.
            let all_jump = opts.iter().all(|o| o.goto_back.is_some());
            option_ids.clear();
            jumps.clear();
            self.line(ind2, "options:");
            for (k, o) in opts.iter().enumerate() {
                let id = pick(OPTION_IDS, o.id);
                option_ids.push(id);
                let mut fields = vec![format!("id: {}", q(id))];
                let jump = o.goto_back.filter(|_| !(all_jump && k == 0));
                jumps.push(jump.is_some());
                if let Some(back) = jump {
                    fields.push(format!("goto: {}", ids[i.saturating_sub(back as usize)]));
                }
                if o.require_comment {
                    fields.push("require_comment: true".to_owned());
                }
                self.line(ind2 + 2, &format!("- {{{}}}", fields.join(", ")));
            }
        }
        let static_count = assignees
            .iter()
            .filter(|x| !x.contains("{{") && !x.starts_with("role:"))
            .count();
        match a.quorum {
            Quorum::Any => self.line(ind2, "quorum: any"),
            Quorum::All => self.line(ind2, "quorum: all"),
            Quorum::N(n) => {
                let mut n = u32::from(n).max(1);
                if static_count == assignees.len() {
                    n = n.min(assignees.len() as u32);
                }
                self.line(ind2, &format!("quorum: {n}"));
            }
        }
        if a.require_comment {
            self.line(ind2, "require_comment: true");
        }
        if a.no_self_approval {
            self.line(ind2, "no_self_approval: true");
        }
        if a.no_delegation {
            self.line(ind2, "allow_delegation: false");
        }
        let mut has_default = false;
        if let Some(d) = a.deadline {
            match d {
                Deadline::After(k) => self.line(ind2, &format!("deadline: {}", pick(DEADLINES, k))),
                Deadline::AtInput => self.line(ind2, &format!("deadline: {}", q("input.due_at"))),
            }
            let loops = |k: u8| matches!(d, Deadline::AtInput) && pick(&jumps, k);
            if let Some(k) = a
                .default
                .filter(|k| !(self.mode.avoids(Bug::B6DefaultAtPastDeadlineLoops) && loops(*k)))
            {
                has_default = true;
                self.line(ind2, &format!("default: {}", pick(&option_ids, k)));
            }
        }
        if let Some(r) = &a.reminders {
            let mut fields = Vec::new();
            if let Some(e) = r.every {
                fields.push(format!("every: {}", pick(REMIND_EVERY, e)));
            }
            if let Some(m) = r.max {
                fields.push(format!("max: {m}"));
            }
            let mut after: Vec<u8> = r
                .after
                .iter()
                .map(|x| x % REMIND_AFTER.len() as u8)
                .collect();
            after.sort();
            after.dedup();
            let after: Vec<&str> = after.iter().map(|x| pick(REMIND_AFTER, *x)).collect();
            if !after.is_empty() {
                fields.push(format!("after: [{}]", after.join(", ")));
            }
            if a.deadline.is_some() && !r.before_deadline.is_empty() {
                let before: Vec<&str> = r
                    .before_deadline
                    .iter()
                    .map(|x| pick(BEFORE_DEADLINE, *x))
                    .collect();
                fields.push(format!("before_deadline: [{}]", before.join(", ")));
            }
            if !fields.is_empty() {
                self.line(ind2, &format!("reminders: {{{}}}", fields.join(", ")));
            }
        }
        if !a.escalation.is_empty() {
            self.line(ind2, "escalation:");
            for (k, rung) in a.escalation.iter().enumerate() {
                let mut to: Vec<&str> = rung.to.iter().map(|x| pick(ESCALATE_TO, *x)).collect();
                if self.mode.avoids(Bug::B1EscalationFailureLeavesTaskOpen) {
                    to.retain(|x| !x.contains("input.backup"));
                    if to.is_empty() {
                        to.push(ESCALATE_TO[0]);
                    }
                }
                let mut seen = BTreeSet::new();
                to.retain(|x| seen.insert(*x));
                let mut fields = vec![
                    format!("after: {}", RUNG_AFTER[k]),
                    format!("to: {}", list(&to)),
                ];
                if rung.replace {
                    fields.push("replace: true".to_owned());
                }
                if rung.note {
                    fields.push(format!("note: {}", q("late: {{ input.kind }}")));
                }
                self.line(ind2 + 2, &format!("- {{{}}}", fields.join(", ")));
            }
        }
        if a.deadline.is_some()
            && !has_default
            && let Some(h) = &a.on_timeout
        {
            self.handler("on_timeout", h, ids, i, ind, scope);
        }
    }

    fn cond(&mut self, c: Cond) -> String {
        match c {
            Cond::Flag => "input.flag".to_owned(),
            Cond::NotFlag => "not input.flag".to_owned(),
            Cond::KindIs(k) => format!("input.kind == {}", q(pick(KINDS, k))),
            Cond::HasItems => "input.items | length > 1".to_owned(),
            Cond::VarSet(v) if self.known.vars.contains(&v) => format!("vars.v{v} is defined"),
            Cond::StepDone(k) if !self.known.steps.is_empty() => {
                let s = &self.known.steps[k as usize % self.known.steps.len()];
                format!("steps.{s} is defined and steps.{s}.status == \"completed\"")
            }
            Cond::VarSet(_) | Cond::StepDone(_) => "input.flag".to_owned(),
        }
    }

    fn val(&mut self, v: Val, scope: &Scope) -> String {
        let text = match v {
            Val::Num => return "42".to_owned(),
            Val::Kind => "{{ input.kind }}".to_owned(),
            Val::Now => "at {{ now }}".to_owned(),
            Val::Instance => "{{ instance.id }}".to_owned(),
            Val::Item if scope.item.is_some() => {
                format!("{{{{ {} }}}}", scope.item.unwrap_or("item"))
            }
            Val::Error if scope.error => "failed: {{ error.message }}".to_owned(),
            Val::Clock if scope.clock => "{{ clock.title }} due {{ clock.due }}".to_owned(),
            Val::Var(n) if self.known.vars.contains(&n) => format!("v={{{{ vars.v{n} }}}}"),
            Val::StepOut(k) if !self.known.steps.is_empty() => {
                format!(
                    "ref {{{{ steps.{}.output.id }}}}",
                    self.known.steps[k as usize % self.known.steps.len()]
                )
            }
            Val::TimeBomb if !self.mode.avoids(Bug::B5TimeoutOutlivesItsStep) => {
                "u{{ 'x' if now <= instance.started_at else input.items[9] }}".to_owned()
            }
            _ => "text".to_owned(),
        };
        q(&text)
    }
}

// ---------------------------------------------------------------------------
// Inputs and events
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Start {
    discovered_h: i8,
    reported_h: Option<i8>,
    due_min: i16,
    kind: u8,
    flag: bool,
    items: Vec<u8>,
    owner: u8,
    backup: u8,
    by: u8,
}

const OWNERS: &[&str] = &["a@k.se", "c@k.se", "d@k.se"];
const BACKUPS: &[&str] = &["d@k.se", "role:it", "d@k.se", "role:it", "nobody", ""];
const STARTERS: &[&str] = &["u@k.se", "a@k.se"];

fn start() -> BoxedStrategy<Start> {
    (
        (
            -80i8..=4,
            proptest::option::weighted(0.8, -80i8..=4),
            -60i16..=3000,
        ),
        (0u8..3, any::<bool>(), vec(any::<u8>(), 0..=4)),
        (0u8..3, 0u8..6, 0u8..2),
    )
        .prop_map(
            |((discovered_h, reported_h, due_min), (kind, flag, items), (owner, backup, by))| {
                Start {
                    discovered_h,
                    reported_h,
                    due_min,
                    kind,
                    flag,
                    items,
                    owner,
                    backup,
                    by,
                }
            },
        )
        .boxed()
}

impl Start {
    fn input(&self, mode: Mode) -> Value {
        let at = |ms: i64| Value::String(rfc3339(T0 + ms));
        let reported = match self.reported_h {
            Some(h) => at(i64::from(h) * H),
            None if mode.avoids(Bug::B2RecordsAfterFailedStart) => at(-H),
            None => Value::Null,
        };
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|n| {
                if n % 2 == 0 {
                    json!(n)
                } else {
                    json!(format!("u{n}"))
                }
            })
            .collect();
        json!({
            "discovered_at": at(i64::from(self.discovered_h) * H),
            "reported_at": reported,
            "due_at": at(i64::from(self.due_min) * MIN),
            "kind": pick(KINDS, self.kind),
            "flag": self.flag,
            "items": items,
            "owner": pick(OWNERS, self.owner),
            "backup": pick(BACKUPS, self.backup),
        })
    }
}

#[derive(Debug, Clone)]
enum Ev {
    Advance(u8),
    Decide {
        inst: u8,
        task: u8,
        by: u8,
        roles: u8,
        option: u8,
        comment: u8,
    },
    Delegate {
        inst: u8,
        task: u8,
        by: u8,
        to: u8,
    },
    Signal {
        inst: u8,
        name: u8,
        data: u8,
    },
    Cancel {
        inst: u8,
    },
    /// A fired or cancelled timer delivered again.
    StaleTimer {
        inst: u8,
        pick: u8,
    },
    /// An answered call answered again.
    StaleAnswer {
        inst: u8,
        pick: u8,
        ok: bool,
    },
    Start(Start),
}

const ADVANCES: &[i64] = &[0, 1_000, MIN, 20 * MIN, H, 3 * H, 24 * H, 96 * H];
const PEOPLE: &[&str] = &["a@k.se", "B@K.se", "x@k.se", "u@k.se"];
const ROLE_SETS: &[&[&str]] = &[&[], &["dpo"], &["ciso", "it"]];
const DELEGATES: &[&str] = &["d@k.se", "b@k.se", "c@k.se", "not an address"];
const COMMENTS: &[Option<&str>] = &[None, Some("ok"), Some("  ")];

fn event() -> BoxedStrategy<Ev> {
    let inst = any::<u8>;
    let decide = (
        inst(),
        any::<u8>(),
        any::<u8>(),
        0u8..3,
        any::<u8>(),
        0u8..3,
    );
    prop_oneof![
        8 => (0u8..ADVANCES.len() as u8).prop_map(Ev::Advance),
        10 => decide.prop_map(|(inst, task, by, roles, option, comment)| {
            Ev::Decide { inst, task, by, roles, option, comment }
        }),
        2 => (inst(), any::<u8>(), any::<u8>(), 0u8..4)
            .prop_map(|(inst, task, by, to)| Ev::Delegate { inst, task, by, to }),
        3 => (inst(), 0u8..3, 0u8..3).prop_map(|(inst, name, data)| Ev::Signal { inst, name, data }),
        1 => inst().prop_map(|inst| Ev::Cancel { inst }),
        2 => (inst(), any::<u8>()).prop_map(|(inst, pick)| Ev::StaleTimer { inst, pick }),
        2 => (inst(), any::<u8>(), any::<bool>())
            .prop_map(|(inst, pick, ok)| Ev::StaleAnswer { inst, pick, ok }),
        1 => start().prop_map(Ev::Start),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
struct Case {
    wf: Wf,
    starts: Vec<Start>,
    /// Connector answers, cycled, by value mod 16: 0–12 ok, 13–14 retryable
    /// (some with `Retry-After`), 15 permanent.
    connector: Vec<u8>,
    events: Vec<Ev>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        workflow(),
        vec(start(), 1..=2),
        vec(any::<u8>(), 1..=6),
        vec(event(), 1..=30),
    )
        .prop_map(|(wf, starts, connector, events)| Case {
            wf,
            starts,
            connector,
            events,
        })
}

// ---------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------

/// Everything a run produced, for the determinism check.
#[derive(Debug, PartialEq)]
struct Outcome {
    histories: BTreeMap<String, Vec<(Record, i64)>>,
    instances: BTreeMap<String, Instance>,
    results: Vec<String>,
    calls: Vec<String>,
    notices: Vec<String>,
}

fn load(yaml: &str) -> Result<Arc<Plan>, String> {
    let loaded = workflow::load_source("generated.yaml", yaml.to_owned());
    match &loaded.result {
        Ok(p) => Ok(p.clone()),
        Err(_) => Err(format!(
            "the generator wrote an invalid workflow:\n{}\n{yaml}",
            loaded.render_errors()
        )),
    }
}

/// Picks an instance: mostly one still running.
fn instance_id(sim: &Sim, pick: u8) -> Option<String> {
    let all: Vec<&String> = sim.instances.keys().collect();
    let live: Vec<&String> = sim
        .instances
        .iter()
        .filter(|(_, i)| !i.status.is_final())
        .map(|(id, _)| id)
        .collect();
    let ids = if pick < 230 && !live.is_empty() {
        live
    } else {
        all
    };
    (!ids.is_empty()).then(|| ids[pick as usize % ids.len()].clone())
}

fn option_ids(plan: &Plan, inst: &Instance, task: u32) -> Vec<String> {
    let Some(t) = inst.tasks.get(&task) else {
        return Vec::new();
    };
    match &plan.node(t.node).kind {
        NodeKind::Approval(a) => a.options.iter().map(|o| o.id.clone()).collect(),
        _ => Vec::new(),
    }
}

/// Picks a task: mostly an open one, sometimes a closed one or one that does not exist.
fn task_id(sim: &Sim, id: &str, pick: u8) -> u32 {
    let open = sim.open_tasks(id);
    let all: Vec<u32> = sim.instances[id].tasks.keys().copied().collect();
    if pick < 200 && !open.is_empty() {
        open[pick as usize % open.len()]
    } else if pick < 250 && !all.is_empty() {
        all[pick as usize % all.len()]
    } else {
        9_999
    }
}

/// A person: mostly one of the task's assignees (a role by a holder of it), else anybody.
fn person(inst: &Instance, task: u32, pick: u8, roles: u8) -> (String, Vec<String>) {
    let assignees = inst
        .tasks
        .get(&task)
        .map(|t| t.assignees.clone())
        .unwrap_or_default();
    let roles: Vec<String> = ROLE_SETS[roles as usize % ROLE_SETS.len()]
        .iter()
        .map(|r| r.to_string())
        .collect();
    let n = assignees.len();
    let k = pick as usize % (3 * n + PEOPLE.len());
    if k >= 3 * n {
        return (PEOPLE[k - 3 * n].to_owned(), roles);
    }
    match assignees[k % n].strip_prefix("role:") {
        Some(r) => ("holder@k.se".to_owned(), vec![r.to_owned()]),
        None => (assignees[k % n].clone(), roles),
    }
}

/// Turns a generated event into a simulator event; `None` when it has no target.
/// The flag tells whether the event must record nothing even when accepted.
fn realize(sim: &Sim, ev: &Ev, mode: Mode) -> Option<(String, Event, bool)> {
    let inst_of = |pick: u8| instance_id(sim, pick);
    Some(match ev {
        Ev::Advance(_) | Ev::Start(_) => return None,
        Ev::Decide {
            inst,
            task,
            by,
            roles,
            option,
            comment,
        } => {
            let id = inst_of(*inst)?;
            let i = &sim.instances[&id];
            let task = task_id(sim, &id, *task);
            let (by, roles) = person(i, task, *by, *roles);
            let options = option_ids(&sim.plans[&i.workflow], i, task);
            let k = *option as usize % (2 * options.len() + 1);
            let option = options
                .get(k % options.len().max(1))
                .filter(|_| k < 2 * options.len())
                .cloned();
            let option = option.unwrap_or_else(|| "maybe".to_owned());
            let comment = COMMENTS[*comment as usize % COMMENTS.len()].map(str::to_owned);
            (
                id,
                Event::Decide {
                    task,
                    by,
                    roles,
                    option,
                    comment,
                },
                false,
            )
        }
        Ev::Delegate { inst, task, by, to } => {
            let id = inst_of(*inst)?;
            let i = &sim.instances[&id];
            let task = task_id(sim, &id, *task);
            let (by, roles) = person(i, task, *by, 0);
            let mut to = pick(DELEGATES, *to).to_owned();
            if mode.avoids(Bug::B4DelegationDuplicatesAssignee)
                && let Some(t) = i.tasks.get(&task)
            {
                let mut n = 0;
                while t.assignees.contains(&to) {
                    n += 1;
                    to = format!("e{n}@k.se");
                }
            }
            (
                id,
                Event::Delegate {
                    task,
                    by,
                    roles,
                    to,
                    note: "away".to_owned(),
                },
                false,
            )
        }
        Ev::Signal { inst, name, data } => {
            let id = inst_of(*inst)?;
            let data = [Value::Null, json!({"ref": "IMY-1"}), json!(7)][*data as usize % 3].clone();
            (
                id,
                Event::Signal {
                    name: pick(SIGNALS, *name).to_owned(),
                    data,
                },
                false,
            )
        }
        Ev::Cancel { inst } => (
            inst_of(*inst)?,
            Event::Cancel {
                by: "admin@k.se".to_owned(),
                reason: "test".to_owned(),
            },
            false,
        ),
        Ev::StaleTimer { inst, pick } => {
            let id = inst_of(*inst)?;
            let i = &sim.instances[&id];
            let gone: Vec<u32> = sim.histories[&id]
                .iter()
                .filter_map(|(r, _)| match r {
                    Record::TimerSet { timer, .. } if !i.timers.contains_key(timer) => Some(*timer),
                    _ => None,
                })
                .collect();
            let timer = *gone.get(*pick as usize % gone.len().max(1))?;
            (id, Event::TimerFired { timer }, true)
        }
        Ev::StaleAnswer { inst, pick, ok } => {
            let id = inst_of(*inst)?;
            let i = &sim.instances[&id];
            let gone: Vec<u32> = sim.histories[&id]
                .iter()
                .filter_map(|(r, _)| match r {
                    Record::CallRequested { call, .. } if !i.calls.contains_key(call) => {
                        Some(*call)
                    }
                    _ => None,
                })
                .collect();
            let call = *gone.get(*pick as usize % gone.len().max(1))?;
            let outcome = if *ok {
                CallOutcome::Ok(json!({"id": "late"}))
            } else {
                CallOutcome::Err {
                    message: "late".to_owned(),
                    retryable: true,
                    retry_after: None,
                }
            };
            (id, Event::CallAnswered { call, outcome }, true)
        }
    })
}

fn connector(seq: Vec<u8>) -> impl FnMut(&vakt::engine::sim::CallSeen) -> CallOutcome + 'static {
    let mut n = 0usize;
    move |_| {
        let b = seq[n % seq.len()];
        n += 1;
        match b % 16 {
            0..=12 => {
                CallOutcome::Ok(json!({"id": format!("T-{n}"), "message_id": format!("m{n}")}))
            }
            13 | 14 => CallOutcome::Err {
                message: "503".to_owned(),
                retryable: true,
                retry_after: (b >= 128).then_some(30),
            },
            _ => CallOutcome::Err {
                message: "400 bad request".to_owned(),
                retryable: false,
                retry_after: None,
            },
        }
    }
}

/// More timers firing at one instant than any workflow needs: an instance
/// that never pauses fails the test instead of hanging it.
const TIMERS_AT_ONE_INSTANT: usize = 100;
/// A case that loops on through virtual time (an approval sent back every
/// few hours by its default, say) is legitimate but, replayed after every
/// event, slow: it stops after this many fired timers or records.
const TIMER_BUDGET: usize = 3_000;
const MAX_RECORDS: usize = 3_000;

type Snapshot = BTreeMap<String, (usize, Instance)>;

/// Runs a case on the simulator, checking the properties after every event.
struct Runner {
    sim: Sim,
    mode: Mode,
    check: bool,
    results: Vec<String>,
    budget: usize,
    /// Each instance as last checked, with its history's length: an instance
    /// that is still the same need not be replayed again.
    checked: Snapshot,
    /// Set when the case has run long enough (see [`MAX_RECORDS`]).
    stopped: bool,
}

impl Runner {
    fn snapshot(&self) -> Snapshot {
        self.sim
            .instances
            .iter()
            .map(|(id, i)| (id.clone(), (self.sim.histories[id].len(), i.clone())))
            .collect()
    }

    /// Notes what an event did and checks the properties; `unchanged`: the
    /// state before an event that must have recorded nothing.
    fn after(&mut self, result: String, unchanged: Option<Snapshot>) -> Result<(), String> {
        self.results.push(result);
        if !self.check {
            return Ok(());
        }
        let mut verdict = Ok(());
        for (id, (len, inst)) in unchanged.iter().flatten() {
            if self.sim.histories[id].len() != *len || self.sim.instances[id] != *inst {
                verdict = Err(format!(
                    "{id} changed, but the event was rejected or a duplicate delivery"
                ));
            }
        }
        verdict
            .and_then(|()| self.check_changed())
            .map_err(|e| self.failure(&e))
    }

    fn check_changed(&mut self) -> Result<(), String> {
        for (id, inst) in &self.sim.instances {
            let len = self.sim.histories[id].len();
            if self
                .checked
                .get(id)
                .is_some_and(|(l, i)| *l == len && i == inst)
            {
                continue;
            }
            let plan = &self.sim.plans[&inst.workflow];
            check_instance(&self.sim, id, inst, plan, self.mode)
                .map_err(|e| format!("instance {id}: {e}"))?;
            self.checked.insert(id.clone(), (len, inst.clone()));
        }
        Ok(())
    }

    fn failure(&self, e: &str) -> String {
        let n = self.results.len();
        let shown: Vec<&str> = if n > 120 {
            let mut v: Vec<&str> = self.results[..40].iter().map(String::as_str).collect();
            v.push("...");
            v.extend(self.results[n - 80..].iter().map(String::as_str));
            v
        } else {
            self.results.iter().map(String::as_str).collect()
        };
        format!(
            "after event {}: {e}\n--- events:\n{}",
            n.saturating_sub(1),
            shown.join("\n")
        )
    }

    /// Moves virtual time to `to`, delivering each due timer as an event of
    /// its own in the simulator's order (due, instance, timer).
    fn advance(&mut self, to: i64) -> Result<(), String> {
        let mut at_this_instant = (self.sim.now, 0);
        loop {
            let next = self
                .sim
                .instances
                .iter()
                .flat_map(|(id, i)| i.timers.iter().map(move |(t, x)| (x.due, id, *t)))
                .min()
                .filter(|(due, ..)| *due <= to)
                .map(|(due, id, t)| (due, id.clone(), t));
            let Some((due, id, timer)) = next else { break };
            self.sim.now = self.sim.now.max(due);
            if at_this_instant.0 == self.sim.now {
                at_this_instant.1 += 1;
            } else {
                at_this_instant = (self.sim.now, 1);
            }
            if at_this_instant.1 > TIMERS_AT_ONE_INSTANT {
                let at = (self.sim.now - T0) / MIN;
                return Err(self.failure(&format!(
                    "an instance never pauses: {TIMERS_AT_ONE_INSTANT} timers fired at +{at}m"
                )));
            }
            let longest = self.sim.histories.values().map(Vec::len).max().unwrap_or(0);
            if self.budget == 0 || longest > MAX_RECORDS {
                self.stopped = true;
                return self.after("(stopped: long enough)".to_owned(), None);
            }
            self.budget -= 1;
            let result = match self.sim.event(&id, Event::TimerFired { timer }) {
                Ok(()) => format!("+{}m {id} timer {timer} fired", (self.sim.now - T0) / MIN),
                Err(e) => {
                    return Err(
                        self.failure(&format!("due timer {timer} of {id} was refused: {e}"))
                    );
                }
            };
            self.after(result, None)?;
        }
        self.sim.now = self.sim.now.max(to);
        Ok(())
    }

    fn event(&mut self, ev: &Ev) -> Result<(), String> {
        match ev {
            Ev::Advance(k) => {
                let to = self.sim.now + ADVANCES.get(*k as usize).copied().unwrap_or(30 * 24 * H);
                self.advance(to)?;
                if self.stopped {
                    return Ok(());
                }
                self.after(format!("+{}m (advanced)", (self.sim.now - T0) / MIN), None)
            }
            Ev::Start(s) => match self
                .sim
                .start("w", s.input(self.mode), pick(STARTERS, s.by))
            {
                Ok(id) => self.after(format!("started {id}"), None),
                Err(e) => Err(self.failure(&format!("a valid input was refused: {e:?}"))),
            },
            other => match realize(&self.sim, other, self.mode) {
                None => self.after("(no target)".to_owned(), None),
                Some((id, event, no_op)) => {
                    let before = self.snapshot();
                    let text = format!("{id} {}", serde_json::to_string(&event).unwrap());
                    match self.sim.event(&id, event) {
                        Ok(()) => self.after(format!("{text} → ok"), no_op.then_some(before)),
                        Err(e) => self.after(format!("{text} → rejected: {e}"), Some(before)),
                    }
                }
            },
        }
    }
}

/// Runs a case; with `check`, checks the properties after every event.
fn run(case: &Case, plan: &Arc<Plan>, mode: Mode, check: bool) -> Result<Outcome, String> {
    let mut sim = Sim::new([plan.clone()], T0);
    sim.connector(connector(case.connector.clone()));
    let mut r = Runner {
        sim,
        mode,
        check,
        results: Vec::new(),
        budget: TIMER_BUDGET,
        checked: Snapshot::new(),
        stopped: false,
    };
    let starts = case.starts.iter().map(|s| Ev::Start(s.clone()));
    let finale = Ev::Advance(u8::MAX); // a month: everything that can fire does
    for ev in starts.chain(case.events.iter().cloned()).chain([finale]) {
        if r.stopped {
            break;
        }
        r.event(&ev)?;
    }
    Ok(Outcome {
        histories: r.sim.histories.clone(),
        instances: r.sim.instances.clone(),
        results: r.results,
        calls: r.sim.calls.iter().map(|c| format!("{c:?}")).collect(),
        notices: r.sim.notices.iter().map(|n| format!("{n:?}")).collect(),
    })
}

// ---------------------------------------------------------------------------
// The properties checked after every event
// ---------------------------------------------------------------------------

fn check_instance(
    sim: &Sim,
    id: &str,
    inst: &Instance,
    plan: &Plan,
    mode: Mode,
) -> Result<(), String> {
    let history = &sim.histories[id];
    // (a) The stored history folds back into exactly the live state.
    if !sim.replay_matches(id) {
        let replayed = vakt::engine::replay(id, history.iter().map(|(r, t)| (r, *t)));
        return Err(format!(
            "replay differs:\n live: {inst:?}\n replayed: {replayed:?}"
        ));
    }
    // (d) The invariants.
    if inst.seq != history.len() as u64 {
        return Err(format!("seq {} but {} records", inst.seq, history.len()));
    }
    let mut ids = BTreeSet::new();
    let mut timer_ids = BTreeSet::new();
    let mut keys: BTreeMap<u32, (u32, String)> = BTreeMap::new();
    for (n, (r, _)) in history.iter().enumerate() {
        let fresh = match r {
            Record::TimerSet { timer, .. } => {
                if !timer_ids.insert(*timer) {
                    return Err(format!("timer id {timer} set twice"));
                }
                Some(*timer)
            }
            Record::ThreadStarted { thread, .. } => Some(*thread),
            Record::TaskOpened { task, .. } => Some(*task),
            Record::CallRequested {
                call,
                thread,
                attempt,
                idempotency_key,
                ..
            } => {
                // Every attempt of one visit of a step shares the key.
                if !mode.avoids(Bug::B3IdempotencyKeyChangesBetweenAttempts)
                    && *attempt > 1
                    && let Some((prev, key)) = keys.get(thread)
                    && (*prev + 1 != *attempt || key != idempotency_key)
                {
                    return Err(format!(
                        "attempt {attempt} of thread {thread} has key {idempotency_key}, attempt {prev} had {key}"
                    ));
                }
                keys.insert(*thread, (*attempt, idempotency_key.clone()));
                Some(*call)
            }
            _ => None,
        };
        if let Some(x) = fresh
            && !ids.insert(x)
        {
            return Err(format!("id {x} used twice (record {n}: {r:?})"));
        }
        let is_final = matches!(
            r,
            Record::Completed { .. } | Record::Failed { .. } | Record::Cancelled { .. }
        );
        if is_final && n + 1 != history.len() {
            return Err(format!(
                "record {n} ends the instance, but {} records follow it: {:?}",
                history.len() - n - 1,
                history[n + 1].0
            ));
        }
    }
    if inst.status.is_final() {
        if !inst.threads.is_empty() || !inst.calls.is_empty() || !inst.timers.is_empty() {
            return Err(format!(
                "finished ({:?}) with threads {:?}, calls {:?}, timers {:?}",
                inst.status, inst.threads, inst.calls, inst.timers
            ));
        }
        if let Some((t, _)) = inst.tasks.iter().find(|(_, t)| t.open) {
            return Err(format!("finished with task {t} open"));
        }
        return Ok(());
    }
    check_running(inst, plan)
}

/// A running instance is at rest and consistent: every thread waits on
/// something that exists, and everything that exists serves a thread.
fn check_running(inst: &Instance, plan: &Plan) -> Result<(), String> {
    if inst.status != Status::Waiting && inst.status != Status::Running {
        return Err(format!("status {:?}", inst.status));
    }
    for (tid, t) in &inst.threads {
        let ok = match &t.waiting {
            Waiting::Ready => false,
            Waiting::Timer { timer } => inst.timers.contains_key(timer),
            Waiting::Task { task } => inst
                .tasks
                .get(task)
                .is_some_and(|x| x.open && x.thread == *tid),
            Waiting::Signal { name } => !inst.signals.contains_key(name),
            Waiting::Join => t.join.is_some(),
            Waiting::Call { call } => inst.calls.contains_key(call),
            Waiting::Child { .. } => true,
        };
        if !ok {
            return Err(format!(
                "thread {tid} waits on {:?}, which is not there (or is ready but was not run)",
                t.waiting
            ));
        }
    }
    for (k, task) in inst.tasks.iter().filter(|(_, t)| t.open) {
        let waiting = inst
            .threads
            .get(&task.thread)
            .is_some_and(|t| t.waiting == Waiting::Task { task: *k });
        if !waiting {
            return Err(format!(
                "task {k} is open, but thread {} no longer waits on it",
                task.thread
            ));
        }
        let distinct: BTreeSet<&String> = task.assignees.iter().collect();
        if distinct.len() != task.assignees.len() {
            return Err(format!(
                "task {k} lists an assignee twice: {:?}",
                task.assignees
            ));
        }
    }
    for (k, timer) in &inst.timers {
        let thread_waits = |thread: &u32| {
            inst.threads
                .get(thread)
                .is_some_and(|t| t.waiting == Waiting::Timer { timer: *k })
        };
        let task_open = |task: &u32| inst.tasks.get(task).is_some_and(|t| t.open);
        let clock_runs = |clock: &String| {
            inst.clocks
                .get(clock)
                .is_some_and(|c| c.met_at.is_none() && !c.breached)
        };
        let ok = match &timer.purpose {
            TimerPurpose::Wait { thread } | TimerPurpose::Retry { thread } => thread_waits(thread),
            TimerPurpose::Timeout { thread } => inst.threads.get(thread).is_some_and(|t| {
                plan.node(t.node).timeout.is_some()
                    && matches!(
                        t.waiting,
                        Waiting::Call { .. }
                            | Waiting::Signal { .. }
                            | Waiting::Timer { .. }
                            | Waiting::Child { .. }
                    )
            }),
            TimerPurpose::Reminder { task, .. }
            | TimerPurpose::Escalation { task, .. }
            | TimerPurpose::Deadline { task } => task_open(task),
            TimerPurpose::ClockWarning { clock, .. } | TimerPurpose::ClockDue { clock } => {
                clock_runs(clock)
            }
        };
        if !ok {
            return Err(format!(
                "timer {k} ({:?}) serves nothing that is still there",
                timer.purpose
            ));
        }
    }
    Ok(())
}

/// Runs a case twice, checking every property; the error explains the failure.
fn check_case(case: &Case, mode: Mode) -> Result<(), String> {
    let yaml = render(&case.wf, mode);
    let plan = load(&yaml)?;
    let first = run(case, &plan, mode, true).map_err(|e| format!("{e}\n--- workflow:\n{yaml}"))?;
    // (b) The same workflow and events give the same histories.
    let second = run(case, &plan, mode, false)?;
    if first != second {
        return Err(format!(
            "a second run of the same case differs\n--- workflow:\n{yaml}--- events:\n{}",
            first.results.join("\n")
        ));
    }
    Ok(())
}

/// `cases` cases; no regression file is written (the `bug_*` tests pin what was found).
/// `PROPTEST_CASES` overrides the count, for a longer hunt.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        max_shrink_iters: 4_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn replay_reproduces_state(case in case()) {
        check_case(&case, Mode::AVOID_KNOWN_BUGS).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
        fn unrestricted_generation(case in case()) {
        check_case(&case, Mode::UNRESTRICTED).map_err(TestCaseError::fail)?;
    }
}

// ---------------------------------------------------------------------------
// Engine bugs found by the properties above, each reduced to a minimal case.
// Each asserts the correct behaviour: it fails until the bug is fixed. Then
// remove the `#[ignore]` and the bug from `Mode::AVOID_KNOWN_BUGS`.
// ---------------------------------------------------------------------------

fn sim(yaml: &str) -> Sim {
    Sim::new([load(yaml).unwrap()], T0)
}

fn decide(s: &mut Sim, id: &str, task: u32, by: &str) -> Result<(), vakt::engine::Rejection> {
    s.event(
        id,
        Event::Decide {
            task,
            by: by.into(),
            roles: vec![],
            option: "approve".into(),
            comment: None,
        },
    )
}

#[test]
fn bug_b1_a_failed_escalation_leaves_its_task_open() {
    let mut s = sim(r#"
id: w
input:
  backup: {type: string}
steps:
  - id: review
    approval:
      title: t
      assignees: [a@k.se]
      escalation: [{after: 1h, to: ["{{ input.backup }}"]}]
    on_error:
      - id: pause
        wait: 1d
  - id: done
    succeed: ok
"#);
    let id = s.start("w", json!({"backup": "nobody"}), "u@k.se").unwrap();
    // At 1h the escalation's assignee renders `nobody`: `review` fails and
    // its handler starts `pause`. Today task 1 stays open (`task::escalate`
    // calls `fail_step` without closing the task or cancelling its timers).
    s.advance(2 * H);
    let task = *s.instance(&id).tasks.keys().next().unwrap();
    assert_eq!(
        s.open_tasks(&id),
        Vec::<u32>::new(),
        "the task of a failed step is still open"
    );
    // Today this is accepted and completes `pause` (a wait step) with the
    // decision as its output; the instance then completes.
    assert!(
        decide(&mut s, &id, task, "a@k.se").is_err(),
        "a decision on the failed step's task was accepted"
    );
    assert_eq!(s.instance(&id).status, Status::Waiting);
}

#[test]
fn bug_b2_a_failed_start_records_a_thread_after_failed() {
    let mut s = sim(
        "id: w\ninput:\n  at: {type: datetime, required: false}\nclocks:\n  c: {anchor: input.at, duration: 1d}\nsteps:\n  - id: a\n    wait: 1h\n",
    );
    // `clock::start_all` emits `failed` (the anchor is null) and returns, but
    // `engine::start` goes on to emit `thread_started` for the root.
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    let i = s.instance(&id);
    assert_eq!(i.status, Status::Failed);
    let last = &s.histories[&id].last().unwrap().0;
    assert!(
        matches!(last, Record::Failed { .. }),
        "a record follows `failed`: {last:?}"
    );
    assert!(
        i.threads.is_empty(),
        "a failed instance has threads: {:?}",
        i.threads
    );
}

#[test]
fn bug_b3_the_idempotency_key_changes_between_attempts() {
    let mut s = sim(r#"
id: w
input:
  users: {type: list}
steps:
  - id: each
    foreach: input.users
    concurrency: 2
    steps:
      - id: disable
        call: identity.disable_user
        with: {user: "{{ item }}"}
        retry: {attempts: 2, backoff: 1m}
"#);
    let mut n = 0;
    s.connector(move |_| {
        n += 1;
        if n == 1 {
            CallOutcome::Err {
                message: "503".into(),
                retryable: true,
                retry_after: None,
            }
        } else {
            CallOutcome::Ok(json!({}))
        }
    });
    s.start("w", json!({"users": ["x", "y"]}), "u@k.se")
        .unwrap();
    s.advance(H);
    let seen: Vec<(String, u32, String)> = s
        .calls
        .iter()
        .map(|c| {
            (
                c.args["user"].to_string(),
                c.attempt,
                c.idempotency_key.clone(),
            )
        })
        .collect();
    // The key ends in the step's visit count, which is counted per step for
    // the whole instance: iteration 1 entering `disable` between the two
    // attempts of iteration 0 bumps it, so the retry gets `i1/disable/0/2`.
    let first = &seen.iter().find(|c| c.0 == "\"x\"" && c.1 == 1).unwrap().2;
    let retry = &seen.iter().find(|c| c.0 == "\"x\"" && c.1 == 2).unwrap().2;
    assert_eq!(retry, first, "one call, two keys: {seen:?}");
}

#[test]
fn bug_b4_delegating_to_an_assignee_lists_them_twice() {
    let mut s = sim(
        "id: w\nsteps:\n  - id: a\n    approval: {title: t, assignees: [a@k.se, b@k.se, c@k.se], quorum: all}\n",
    );
    let id = s.start("w", json!({}), "u@k.se").unwrap();
    let task = s.open_tasks(&id)[0];
    let handover = Event::Delegate {
        task,
        by: "a@k.se".into(),
        roles: vec![],
        to: "c@k.se".into(),
        note: "away".into(),
    };
    s.event(&id, handover).unwrap();
    // `TaskDelegated` replaces a with c, then `Vec::dedup` removes only
    // adjacent duplicates: [c, b, c].
    let assignees = s.instance(&id).tasks[&task].assignees.clone();
    let distinct: BTreeSet<&String> = assignees.iter().collect();
    assert_eq!(distinct.len(), assignees.len(), "{assignees:?}");
    // Everyone on the task approves, yet `all` wants three votes of two people.
    decide(&mut s, &id, task, "b@k.se").unwrap();
    decide(&mut s, &id, task, "c@k.se").unwrap();
    assert_eq!(
        s.instance(&id).status,
        Status::Completed,
        "the task can never be decided"
    );
}

#[test]
fn bug_b5_a_call_timeout_outlives_its_step() {
    let mut s = sim(r#"
id: w
input:
  items: {type: list}
steps:
  - id: lookup
    call: identity.get_manager
    with: {user: "u{{ 'x' if now <= instance.started_at else input.items[9] }}"}
    retry: {attempts: 3, backoff: 1m}
    timeout: 1h
    on_error:
      - id: pause
        wait: 1d
  - id: done
    succeed: ok
"#);
    s.connector(|_| CallOutcome::Err {
        message: "503".into(),
        retryable: true,
        retry_after: None,
    });
    // Attempt 1 renders; the retry, later, does not: `request_call`
    // fails the step without cancelling the `timeout` timer set at attempt 1.
    let id = s.start("w", json!({"items": []}), "u@k.se").unwrap();
    s.advance(2 * H);
    let i = s.instance(&id);
    // Today, at 1h the stale timeout fails `pause` ("no answer within 0s")
    // and with it the instance.
    assert_eq!(i.status, Status::Waiting, "{:?}", i.error);
    assert!(
        i.timers
            .values()
            .all(|t| !matches!(t.purpose, TimerPurpose::Timeout { .. })),
        "{:?}",
        i.timers
    );
}

#[test]
fn bug_b6_a_default_at_a_past_deadline_loops_without_pause() {
    let yaml = r#"
id: w
input:
  due: {type: datetime}
steps:
  - id: prepare
    set: {round: "{{ now }}"}
  - id: review
    approval:
      title: t
      assignees: [a@k.se]
      options: [approve, {id: send_back, goto: prepare}]
      deadline: input.due
      default: send_back
"#;
    // A fix in the validator (refusing this workflow) is a fix too.
    let Ok(plan) = workflow::load_source("t.yaml", yaml.to_owned()).result else {
        return;
    };
    let mut s = Sim::new([plan], T0);
    let id = s
        .start("w", json!({"due": "2025-12-31T00:00:00Z"}), "u@k.se")
        .unwrap();
    // The deadline has passed when the task opens, so its timer is due at
    // once; the default sends the flow back, which opens the task again with
    // the same deadline, and so on: `Sim::advance(0)` never returns and the
    // history grows by 9 records a round. Fire the due timers by hand.
    for _ in 0..20 {
        let due = s
            .instance(&id)
            .timers
            .iter()
            .find(|(_, t)| t.due <= s.now)
            .map(|(k, _)| *k);
        let Some(timer) = due else { return };
        s.event(&id, Event::TimerFired { timer }).unwrap();
    }
    panic!(
        "20 timers fired at one instant; {} records",
        s.histories[&id].len()
    );
}
