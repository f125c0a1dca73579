//! The engine's vocabulary: ids, events in, history records, actions out.
//!
//! A [`Record`] is a fact in an instance's history; the state of an instance
//! is the fold of its records (`state::Instance::apply`). An [`Event`] is
//! something that happened outside (a connector answered, a timer fired, a
//! person decided). An [`Action`] is what the runtime must do after the
//! records are durable (call a connector, notify assignees, start a child).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::workflow::plan::NodeId;

/// Milliseconds since the Unix epoch, UTC. The engine never reads a clock:
/// every transition is given its `now`.
pub type Ts = i64;

/// Formats a timestamp as RFC 3339 (UTC, seconds precision).
pub fn rfc3339(ts: Ts) -> String {
    chrono::DateTime::from_timestamp_millis(ts)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Parses an RFC 3339 instant into a timestamp.
pub fn parse_instant(text: &str) -> Option<Ts> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|d| d.timestamp_millis())
}

/// An error a step ended with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// `connector`, `timeout`, `template`, `input`, `child`, `fail`.
    pub kind: String,
    pub message: String,
    /// Whether trying again could help (for connector errors).
    #[serde(default)]
    pub retryable: bool,
}

impl StepError {
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        StepError {
            kind: kind.to_owned(),
            message: message.into(),
            retryable: false,
        }
    }
}

/// What a connector answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    Ok(Value),
    Err {
        message: String,
        retryable: bool,
        /// Seconds the server asked us to wait (HTTP 429 `Retry-After`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
}

/// Why a timer was set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TimerPurpose {
    /// A `wait` step.
    Wait {
        thread: u32,
    },
    /// A signal wait's or a call's timeout.
    Timeout {
        thread: u32,
    },
    /// The next attempt of a failed call.
    Retry {
        thread: u32,
    },
    Reminder {
        task: u32,
        /// Set by `every` (re-armed after each), not `after`/`before_deadline`.
        #[serde(default)]
        periodic: bool,
    },
    Escalation {
        task: u32,
        rung: u32,
    },
    Deadline {
        task: u32,
    },
    ClockWarning {
        clock: String,
        before_secs: u64,
    },
    ClockDue {
        clock: String,
    },
}

/// The kind of thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ThreadKind {
    Root,
    Branch { name: String },
    Iteration { index: u32 },
    ClockHandler { clock: String },
}

/// How one assignee decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub by: String,
    pub option: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub at: Ts,
}

/// A fact in an instance's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Record {
    Started {
        workflow: String,
        hash: String,
        input: Value,
        started_by: String,
        at: Ts,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<String>,
    },
    ClockStarted {
        clock: String,
        anchor: Ts,
        due: Ts,
    },
    ClockWarned {
        clock: String,
        before_secs: u64,
    },
    ClockBreached {
        clock: String,
    },
    ClockMet {
        clock: String,
        at: Ts,
    },
    ThreadStarted {
        thread: u32,
        parent: Option<u32>,
        kind: ThreadKind,
        node: NodeId,
        /// Variables the thread brings into scope (a foreach item, `clock`).
        locals: serde_json::Map<String, Value>,
        /// Whether step outputs in this thread are its own (a foreach
        /// iteration) rather than its parent's.
        own_layer: bool,
    },
    StepEntered {
        thread: u32,
        node: NodeId,
        step: String,
    },
    StepSkipped {
        thread: u32,
        node: NodeId,
        step: String,
        next: Option<NodeId>,
    },
    /// A parallel or foreach step starts waiting for its threads.
    JoinStarted {
        thread: u32,
        /// The items of a foreach (empty for parallel).
        items: Vec<Value>,
    },
    WaitingForSignal {
        thread: u32,
        name: String,
    },
    StepCompleted {
        thread: u32,
        node: NodeId,
        step: String,
        output: Value,
        next: Option<NodeId>,
    },
    StepFailed {
        thread: u32,
        node: NodeId,
        step: String,
        error: StepError,
        /// Where the handler takes the thread; `None` with `handled: false`
        /// fails the instance.
        handler: Option<NodeId>,
        handled: bool,
    },
    VarsSet {
        vars: serde_json::Map<String, Value>,
    },
    CallRequested {
        thread: u32,
        call: u32,
        node: NodeId,
        attempt: u32,
        idempotency_key: String,
        role: String,
        action: String,
        args: Value,
    },
    CallAnswered {
        call: u32,
        outcome: CallOutcome,
    },
    TimerSet {
        timer: u32,
        due: Ts,
        purpose: TimerPurpose,
    },
    TimerFired {
        timer: u32,
    },
    TimerCancelled {
        timer: u32,
    },
    TaskOpened {
        task: u32,
        thread: u32,
        node: NodeId,
        title: String,
        description: String,
        assignees: Vec<String>,
        due: Option<Ts>,
    },
    TaskReminded {
        task: u32,
        to: Vec<String>,
        #[serde(default)]
        periodic: bool,
    },
    TaskEscalated {
        task: u32,
        rung: u32,
        assignees: Vec<String>,
        note: Option<String>,
    },
    TaskDelegated {
        task: u32,
        from: String,
        to: String,
        note: String,
    },
    TaskVoted {
        task: u32,
        vote: Vote,
    },
    TaskClosed {
        task: u32,
        outcome: Option<String>,
        by_default: bool,
    },
    SignalReceived {
        name: String,
        data: Value,
    },
    SignalConsumed {
        name: String,
        thread: u32,
    },
    ChildStarted {
        thread: u32,
        child: String,
        workflow: String,
    },
    ThreadEnded {
        thread: u32,
    },
    Completed {
        output: Value,
    },
    Failed {
        error: StepError,
    },
    Cancelled {
        by: String,
        reason: String,
    },
}

/// Something that happened outside the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Event {
    CallAnswered {
        call: u32,
        outcome: CallOutcome,
    },
    TimerFired {
        timer: u32,
    },
    Decide {
        task: u32,
        by: String,
        /// The roles the principal holds, for `role:` assignees.
        #[serde(default)]
        roles: Vec<String>,
        option: String,
        comment: Option<String>,
    },
    Delegate {
        task: u32,
        by: String,
        #[serde(default)]
        roles: Vec<String>,
        to: String,
        note: String,
    },
    Signal {
        name: String,
        data: Value,
    },
    ChildFinished {
        child: String,
        result: Result<Value, StepError>,
    },
    Cancel {
        by: String,
        reason: String,
    },
}

/// What the runtime does once the records are durable.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Action {
    /// Call a connector; answer with [`Event::CallAnswered`].
    Call {
        call: u32,
        role: String,
        action: String,
        args: Value,
        idempotency_key: String,
        attempt: u32,
        /// When the call must have answered, if the step has a timeout.
        deadline: Option<Ts>,
    },
    /// Arm a timer (it is also in the state; the store indexes it).
    Timer { timer: u32, due: Ts },
    /// Mail the given assignees about a task (opened, reminder, escalation).
    Notify {
        task: u32,
        to: Vec<String>,
        reason: NotifyReason,
    },
    /// Start a sub-workflow; answer with [`Event::ChildFinished`].
    StartChild {
        child: String,
        workflow: String,
        input: Value,
    },
    /// Tell the parent instance this one has finished.
    Finished {
        parent: String,
        result: Result<Value, StepError>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyReason {
    Opened,
    Reminder,
    Escalation,
    Delegated,
}

/// Why an event was refused; nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the instance has already finished")]
    Finished,
    #[error("task {0} is not open")]
    TaskNotOpen(u32),
    #[error("{0} is not an assignee of this task")]
    NotAssignee(String),
    #[error("the person who started the instance may not decide this task")]
    SelfApproval,
    #[error("`{option}` is not an option of this task; the options are {options}")]
    UnknownOption { option: String, options: String },
    #[error("this decision needs a comment")]
    CommentRequired,
    #[error("{0} has already decided this task")]
    AlreadyDecided(String),
    #[error("this task cannot be delegated")]
    NoDelegation,
    #[error("{0} is not a valid assignee")]
    BadAssignee(String),
}
