//! The lowered plan: the only form of a workflow the engine sees.
//!
//! A plan is immutable and fully checked. Steps are flattened into a graph of
//! [`Node`]s: every edge is an `Option<NodeId>`, where `None` means "the end of
//! this thread" (the instance, a parallel branch, a foreach iteration or a
//! clock handler). Durations, cron lines and time zones are parsed; templates
//! and expressions are compiled into the plan's [`Templates`].

use serde::Serialize;

use super::authored::{CatchUp, FieldType};
use super::duration::Duration;
use super::span::Loc;
use super::template::{Expr, Templates, Tpl};

/// An index into [`Plan::nodes`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A checked, immutable workflow.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// sha256 of the file's bytes: instances are pinned to it.
    #[serde(skip)]
    pub hash: String,
    pub input: Vec<InputField>,
    pub triggers: Triggers,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clocks: Vec<Clock>,
    pub entry: Option<NodeId>,
    pub nodes: Vec<Node>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<ValueTpl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<Duration>,
    /// The connector roles the workflow calls, sorted.
    pub roles: Vec<String>,
    /// The workflows it starts as sub-workflows, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sub_workflows: Vec<String>,
    #[serde(skip)]
    pub templates: Templates,
}

impl Plan {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct InputField {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: FieldType,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    #[serde(rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<FieldType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Triggers {
    pub api: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cron: Vec<CronTrigger>,
}

/// A parsed schedule.
#[derive(Debug, Serialize)]
pub struct CronTrigger {
    /// Stable name of the trigger: `cron[<index>]`, used to persist its last fire.
    pub name: String,
    pub schedule: String,
    #[serde(serialize_with = "ser_tz")]
    pub timezone: chrono_tz::Tz,
    #[serde(skip)]
    pub cron: croner::Cron,
    pub catch_up: CatchUp,
    pub input: serde_json::Value,
}

fn ser_tz<S: serde::Serializer>(tz: &chrono_tz::Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

/// A statutory clock.
#[derive(Debug, Serialize)]
pub struct Clock {
    pub name: String,
    pub title: String,
    pub anchor: Expr,
    pub duration: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<Expr>,
    /// Sorted from the earliest warning (longest before) to the latest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warn_before: Vec<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<NodeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_warning: Option<NodeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_breach: Option<NodeId>,
}

/// One step, lowered.
#[derive(Debug, Serialize)]
pub struct Node {
    /// The author's step id.
    pub step: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the step is written, for run-time error messages.
    pub loc: Loc,
    /// The thread the node runs in: the first node of the root flow, of a
    /// parallel branch, a foreach body or a handler. Jumps stay inside it.
    pub thread: NodeId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<Expr>,
    pub kind: NodeKind,
    pub next: Option<NodeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_error: Option<Jump>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<Jump>,
}

/// A handler's target. `None` in `to` means the handler ends the thread.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Jump {
    pub to: Option<NodeId>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Call {
        role: String,
        action: String,
        args: ValueTpl,
    },
    Approval(Box<Approval>),
    Wait(Wait),
    If {
        cond: Expr,
        then: Option<NodeId>,
        #[serde(rename = "else")]
        otherwise: Option<NodeId>,
    },
    Switch {
        on: Expr,
        cases: Vec<(String, Option<NodeId>)>,
        default: Option<NodeId>,
    },
    Parallel {
        branches: Vec<(String, Option<NodeId>)>,
    },
    Foreach {
        items: Expr,
        #[serde(rename = "as")]
        var: String,
        concurrency: u32,
        body: Option<NodeId>,
    },
    Workflow {
        id: String,
        input: ValueTpl,
    },
    Set {
        vars: Vec<(String, ValueTpl)>,
    },
    Fail {
        message: Tpl,
    },
    Succeed {
        message: Option<Tpl>,
    },
}

impl NodeKind {
    /// The author's name of the kind.
    pub fn name(&self) -> &'static str {
        match self {
            NodeKind::Call { .. } => "call",
            NodeKind::Approval(_) => "approval",
            NodeKind::Wait(_) => "wait",
            NodeKind::If { .. } => "if",
            NodeKind::Switch { .. } => "switch",
            NodeKind::Parallel { .. } => "parallel",
            NodeKind::Foreach { .. } => "foreach",
            NodeKind::Workflow { .. } => "workflow",
            NodeKind::Set { .. } => "set",
            NodeKind::Fail { .. } => "fail",
            NodeKind::Succeed { .. } => "succeed",
        }
    }

    /// Whether an instance can rest here waiting for time or a person.
    pub fn pauses(&self) -> bool {
        matches!(self, NodeKind::Approval(_) | NodeKind::Wait(_))
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    For(Duration),
    Until(Expr),
    Signal(String),
}

#[derive(Debug, Serialize)]
pub struct Approval {
    pub title: Tpl,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Tpl>,
    pub assignees: Vec<Assignee>,
    pub options: Vec<DecisionOption>,
    pub quorum: Quorum,
    pub require_comment: bool,
    pub no_self_approval: bool,
    pub allow_delegation: bool,
    pub reminders: Reminders,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub escalation: Vec<Escalation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    /// Index into `options` of the decision applied at the deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<usize>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignee {
    Address(String),
    Role(String),
    Template(Tpl),
}

#[derive(Debug, Serialize)]
pub struct DecisionOption {
    pub id: String,
    pub label: String,
    /// Where the flow goes when this option wins; `None`: the next step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goto: Option<Jump>,
    pub require_comment: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quorum {
    Any,
    All,
    Count(u32),
}

#[derive(Debug, Default, Serialize)]
pub struct Reminders {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    pub max: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Duration>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub before_deadline: Vec<Duration>,
}

#[derive(Debug, Serialize)]
pub struct Escalation {
    pub after: Duration,
    pub to: Vec<Assignee>,
    pub replace: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<Tpl>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Deadline {
    After(Duration),
    At(Expr),
}

/// A JSON value whose strings are templates.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ValueTpl {
    /// A value with no template in it.
    Literal(serde_json::Value),
    /// A string with `{{ }}` in it, rendered to text.
    Text(Tpl),
    /// A string that is exactly one `{{ expr }}`: the expression's value.
    Value(ExprValue),
    List(Vec<ValueTpl>),
    Map(Vec<(String, ValueTpl)>),
}

/// Serializes as `{"expr": "<source>"}` to tell it apart from text.
#[derive(Debug)]
pub struct ExprValue(pub Expr);

impl Serialize for ExprValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("expr", &self.0)?;
        m.end()
    }
}
