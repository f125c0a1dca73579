//! The workflow AST the generator builds, and the constants its indices
//! pick from: every workflow has the fixed [`INPUT`] section, and every
//! connector action comes from the catalogue (see [`actions`]).

use vakt::workflow::connectors;

/// A workflow. The input section is fixed (see [`INPUT`]).
#[derive(Debug, Clone)]
pub(crate) struct Wf {
    pub(crate) clocks: Vec<ClockDef>,
    pub(crate) main: Block,
    pub(crate) output: Option<Val>,
}

/// A list of steps, optionally ended by `fail` or `succeed` (only the last
/// step of a list may end the instance: anything after it could never run).
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub(crate) steps: Vec<Step>,
    pub(crate) end: Option<End>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum End {
    Fail,
    Succeed,
}

#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) when: Option<Cond>,
    pub(crate) kind: Kind,
    pub(crate) on_error: Option<Handler>,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
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
pub(crate) enum Handler {
    Forward(u8),
    Steps(Block),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Cond {
    Flag,
    NotFlag,
    KindIs(u8),
    HasItems,
    VarSet(u8),
    StepDone(u8),
}

/// A value: a literal or a template reading what is in scope.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val {
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
pub(crate) struct Call {
    pub(crate) action: u8,
    pub(crate) optional_arg: bool,
    pub(crate) arg: Val,
    pub(crate) retry: Option<(u8, u8)>,
    pub(crate) timeout: Option<u8>,
    pub(crate) on_timeout: Option<Handler>,
}

#[derive(Debug, Clone)]
pub(crate) struct Approval {
    pub(crate) assignees: Vec<u8>,
    pub(crate) options: Option<Vec<Opt>>,
    pub(crate) quorum: Quorum,
    pub(crate) require_comment: bool,
    pub(crate) no_self_approval: bool,
    pub(crate) no_delegation: bool,
    pub(crate) deadline: Option<Deadline>,
    pub(crate) default: Option<u8>,
    pub(crate) reminders: Option<Reminders>,
    pub(crate) escalation: Vec<Rung>,
    pub(crate) on_timeout: Option<Handler>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Quorum {
    Any,
    All,
    N(u8),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Deadline {
    After(u8),
    AtInput,
}

#[derive(Debug, Clone)]
pub(crate) struct Opt {
    pub(crate) id: u8,
    /// Send back: go to the sibling this many steps before (0: the approval itself).
    pub(crate) goto_back: Option<u8>,
    pub(crate) require_comment: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Reminders {
    pub(crate) every: Option<u8>,
    pub(crate) max: Option<u8>,
    pub(crate) after: Vec<u8>,
    pub(crate) before_deadline: Vec<u8>,
}

#[derive(Debug, Clone)]
pub(crate) struct Rung {
    pub(crate) to: Vec<u8>,
    pub(crate) replace: bool,
    pub(crate) note: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct ClockDef {
    /// Anchored on the optional `reported_at` instead of `discovered_at`.
    pub(crate) on_reported: bool,
    pub(crate) duration: u8,
    pub(crate) when: Option<Cond>,
    pub(crate) warn: Vec<u8>,
    pub(crate) stopped_by: Option<u8>,
    pub(crate) on_warning: Option<Block>,
    pub(crate) on_breach: Option<Block>,
}

pub(crate) const INPUT: &str = r#"input:
  discovered_at: {type: datetime}
  reported_at: {type: datetime, required: false}
  due_at: {type: datetime}
  kind: {type: string, enum: [a, b, c]}
  flag: {type: boolean, default: false}
  items: {type: list, default: []}
  owner: {type: email}
  backup: {type: string, default: "d@k.se"}
"#;

pub(crate) const KINDS: &[&str] = &["a", "b", "c"];
pub(crate) const WAITS: &[&str] = &["1m", "30m", "2h", "1d"];
pub(crate) const SIGNALS: &[&str] = &["go", "ack", "other"];
pub(crate) const SIGNAL_TIMEOUTS: &[&str] = &["30m", "4h", "2d"];
pub(crate) const CALL_TIMEOUTS: &[&str] = &["2m", "1h", "1d"];
pub(crate) const BACKOFFS: &[&str] = &["10s", "1m", "5m"];
pub(crate) const ASSIGNEES: &[&str] = &[
    "a@k.se",
    "b@k.se",
    "c@k.se",
    "role:dpo",
    "{{ input.owner }}",
    "{{ input.backup }}",
];
pub(crate) const ESCALATE_TO: &[&str] = &["d@k.se", "b@k.se", "role:ciso", "{{ input.backup }}"];
pub(crate) const OPTION_IDS: &[&str] = &["approve", "reject", "send_back", "hold"];
/// All after the last escalation rung and reminder.
pub(crate) const DEADLINES: &[&str] = &["3h", "8h", "1d", "3d"];
pub(crate) const RUNG_AFTER: &[&str] = &["30m", "1h", "2h"];
pub(crate) const REMIND_AFTER: &[&str] = &["20m", "45m", "90m"];
pub(crate) const REMIND_EVERY: &[&str] = &["10m", "1h", "6h"];
pub(crate) const BEFORE_DEADLINE: &[&str] = &["1h", "2h"];
/// All longer than every warning.
pub(crate) const CLOCK_DURATIONS: &[&str] = &["2h", "1d", "3d"];
pub(crate) const CLOCK_WARNINGS: &[&str] = &["30m", "1h"];

/// Every connector action, from the catalogue.
pub(crate) fn actions() -> Vec<(&'static str, &'static connectors::Action)> {
    connectors::ROLES
        .iter()
        .flat_map(|r| r.actions.iter().map(move |a| (r.name, a)))
        .collect()
}
