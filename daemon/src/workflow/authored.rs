//! The authored form of a workflow file: what an administrator writes.
//!
//! These types mirror the YAML one to one. They are parsed with
//! `deny_unknown_fields`, keep the location of every value (`Sp<T>`), and
//! carry doc comments that become the descriptions of the JSON Schema
//! (`vakt schema`). Nothing here is checked beyond its shape: meaning is
//! checked, and errors collected, in `lower`.

use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::duration::Duration;
use super::span::Sp;

/// A workflow file: one workflow.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowFile {
    /// Identifier used in the API and CLI: lower-case letters, digits, `-` and `_`.
    pub id: Sp<String>,
    /// A short title, shown in lists and mails.
    pub title: Option<Sp<String>>,
    /// What the routine is for and who owns it.
    pub description: Option<Sp<String>>,
    /// The input an instance starts with, field by field. Checked at start.
    #[serde(default)]
    pub input: IndexMap<String, Sp<InputField>>,
    /// How instances are started. Without `triggers`, only through the API.
    pub triggers: Option<Sp<Triggers>>,
    /// Statutory deadlines that run alongside the steps.
    #[serde(default)]
    pub clocks: IndexMap<String, Sp<ClockDef>>,
    /// The steps, run in order unless a step says otherwise.
    pub steps: Sp<Vec<Sp<StepDef>>>,
    /// The workflow's result: values rendered when it completes.
    pub output: Option<Sp<IndexMap<String, Sp<serde_json::Value>>>>,
    /// How long a finished instance keeps its personal data (inputs, outputs,
    /// comments) before it is purged. Default: the daemon's setting.
    pub retention: Option<Sp<Duration>>,
}

/// The type of an input field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Text,
    Number,
    Integer,
    Boolean,
    /// An instant in RFC 3339 form, such as `2026-03-02T08:15:00+01:00`.
    Datetime,
    /// A calendar date, `2026-03-02`.
    Date,
    Email,
    List,
    Object,
}

/// One field of the input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputField {
    #[serde(rename = "type")]
    pub ty: Sp<FieldType>,
    /// Whether the field must be given. Default: true, unless a default is set.
    pub required: Option<Sp<bool>>,
    /// Value used when the field is not given.
    pub default: Option<Sp<serde_json::Value>>,
    /// The allowed values.
    #[serde(rename = "enum")]
    pub allowed: Option<Sp<Vec<serde_json::Value>>>,
    /// Shown in forms and in `vakt show`.
    pub description: Option<String>,
    /// The type of the items of a `list`.
    pub items: Option<Sp<FieldType>>,
}

/// How instances are started.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    /// Allow starts through the HTTP API and the CLI (default: true).
    pub api: Option<Sp<bool>>,
    /// Scheduled starts.
    #[serde(default)]
    pub cron: Vec<Sp<CronTrigger>>,
}

/// A scheduled start.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CronTrigger {
    /// A 5-field crontab line (`0 7 15 1 *`) or a macro (`@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`).
    pub schedule: Sp<String>,
    /// The IANA time zone the schedule is read in, such as `Europe/Oslo`.
    pub timezone: Sp<String>,
    /// Runs missed while the daemon was down: `none`, `latest` (default) or `all`.
    pub catch_up: Option<Sp<CatchUp>>,
    /// The input of the instances this trigger starts, field by field.
    pub input: Option<Sp<IndexMap<String, Sp<serde_json::Value>>>>,
}

/// What to do about scheduled runs missed while the daemon was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Skip them.
    None,
    /// Run once for the most recent missed time.
    Latest,
    /// Run once for every missed time.
    All,
}

/// A statutory deadline.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockDef {
    /// Shown in mails and lists, such as "Report to the DPA (GDPR art. 33)".
    pub title: Option<Sp<String>>,
    /// An expression giving the instant the clock starts from, such as `input.discovered_at`.
    pub anchor: Sp<String>,
    /// How long after the anchor the deadline falls.
    pub duration: Sp<Duration>,
    /// Run the clock only when this expression is true at start.
    pub when: Option<Sp<String>>,
    /// Warn this long before the deadline (each value is one warning).
    #[serde(default)]
    pub warn_before: Vec<Sp<Duration>>,
    /// The clock stops, met, when this step completes.
    pub stopped_by: Option<Sp<String>>,
    /// Steps run at each warning.
    #[serde(default)]
    pub on_warning: Vec<Sp<StepDef>>,
    /// Steps run when the deadline passes with the clock still running.
    #[serde(default)]
    pub on_breach: Vec<Sp<StepDef>>,
}

/// Named blocks of steps: the `cases` of a `switch`, the branches of a `parallel`.
pub type NamedBlocks = IndexMap<String, Sp<Vec<Sp<StepDef>>>>;

/// A step. Each step has an `id` and exactly one kind: `call`, `approval`,
/// `wait`, `if`, `switch`, `parallel`, `foreach`, `workflow`, `set`, `fail`
/// or `succeed`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    /// The step's id: letters, digits and `_`. Its output is `steps.<id>.output`.
    pub id: Sp<String>,
    /// A human-readable name.
    pub name: Option<Sp<String>>,
    /// Run the step only when this expression is true; otherwise skip it.
    pub when: Option<Sp<String>>,

    /// Call a connector: `role.action`, such as `ticketing.create` or `mail.send`.
    pub call: Option<Sp<String>>,
    /// Arguments of a `call`; strings are templates.
    pub with: Option<Sp<IndexMap<String, Sp<serde_json::Value>>>>,

    /// A human task.
    pub approval: Option<Sp<ApprovalDef>>,

    /// Wait: a duration (`2h`), or `until`, or a `signal`.
    pub wait: Option<Sp<WaitDef>>,

    /// Branch: an expression; `then` runs when it is true, `else` otherwise.
    #[serde(rename = "if")]
    pub if_: Option<Sp<String>>,
    #[serde(default)]
    pub then: Option<Sp<Vec<Sp<StepDef>>>>,
    #[serde(rename = "else")]
    pub else_: Option<Sp<Vec<Sp<StepDef>>>>,

    /// Branch on a value: an expression; the matching `cases` entry runs.
    pub switch: Option<Sp<String>>,
    pub cases: Option<Sp<NamedBlocks>>,
    /// Steps run when no case of a `switch` matches.
    pub default: Option<Sp<Vec<Sp<StepDef>>>>,

    /// Branches run side by side; the step completes when all have.
    pub parallel: Option<Sp<NamedBlocks>>,

    /// Run `steps` once per item of this list (an expression).
    pub foreach: Option<Sp<String>>,
    /// The name of the current item inside a `foreach` (default `item`).
    #[serde(rename = "as")]
    pub as_: Option<Sp<String>>,
    /// How many items run at once in a `foreach` (default 1).
    pub concurrency: Option<Sp<u32>>,
    /// The body of a `foreach`.
    pub steps: Option<Sp<Vec<Sp<StepDef>>>>,

    /// Run another workflow to completion, by id.
    pub workflow: Option<Sp<String>>,
    /// Input of the sub-workflow; strings are templates.
    pub input: Option<Sp<IndexMap<String, Sp<serde_json::Value>>>>,

    /// Set variables, readable as `vars.<name>`; strings are templates.
    pub set: Option<Sp<IndexMap<String, Sp<serde_json::Value>>>>,

    /// End the instance as failed, with this message (a template).
    pub fail: Option<Sp<String>>,
    /// End the instance as completed, with this message (a template).
    pub succeed: Option<Sp<String>>,

    /// Retry a failing `call` (only errors a retry can help).
    pub retry: Option<Sp<RetryDef>>,
    /// How long a `call`, `wait` for a signal or `workflow` may take.
    pub timeout: Option<Sp<Duration>>,
    /// When the step fails for good: a step id to go to, or steps to run
    /// after which the workflow goes on after this step.
    pub on_error: Option<Sp<Handler>>,
    /// When the step times out: a step id or steps, as `on_error`.
    pub on_timeout: Option<Sp<Handler>>,
    /// Go to this step afterwards instead of the next one.
    pub goto: Option<Sp<String>>,
}

/// Retry policy with exponential backoff and jitter.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    /// Attempts in all, the first included (default 3).
    pub attempts: Option<Sp<u32>>,
    /// Wait before the second attempt (default 10s); doubles each time.
    pub backoff: Option<Sp<Duration>>,
    /// The longest wait between attempts (default 1h).
    pub max_backoff: Option<Sp<Duration>>,
}

/// A handler: a step id to go to, or a list of steps to run.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum Handler {
    /// Go to this step.
    Goto(String),
    /// Run these steps, then continue after the failed step.
    Steps(Vec<Sp<StepDef>>),
}

impl<'de> Deserialize<'de> for Handler {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Handler;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a step id, or a list of steps")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Handler, E> {
                Ok(Handler::Goto(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Handler, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Handler::Steps)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// What to wait for.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum WaitDef {
    /// A duration, such as `2h`.
    For(Duration),
    /// An instant, or a signal.
    Spec(WaitSpec),
}

/// A wait for an instant or a signal.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitSpec {
    /// A duration.
    #[serde(rename = "for")]
    pub for_: Option<Sp<Duration>>,
    /// An expression giving an instant, such as `clocks.dpa.due`.
    pub until: Option<Sp<String>>,
    /// The name of a signal sent through the API (`POST .../signals/<name>`).
    pub signal: Option<Sp<String>>,
}

impl<'de> Deserialize<'de> for WaitDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WaitDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `2h`, or a map with `for`, `until` or `signal`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WaitDef, E> {
                Duration::parse(v).map(WaitDef::For).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<WaitDef, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit: write `{v}m`, `{v}h` or `{v}d`"
                )))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<WaitDef, A::Error> {
                WaitSpec::deserialize(de::value::MapAccessDeserializer::new(map)).map(WaitDef::Spec)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A human task.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDef {
    /// The task's title (a template), shown in the inbox and the mail subject.
    pub title: Sp<String>,
    /// What the assignee is asked to do (a template), shown in the mail and on the page.
    pub description: Option<Sp<String>>,
    /// Who decides: e-mail addresses, `role:<name>` (roles from the daemon's
    /// config), or templates such as `{{ item.manager }}`.
    #[serde(default)]
    pub assignees: Vec<Sp<String>>,
    /// The choices (default: approve and reject).
    #[serde(default)]
    pub options: Vec<Sp<OptionDef>>,
    /// How many must decide alike: `any` (default), `all`, or a number.
    pub quorum: Option<Sp<Quorum>>,
    /// Whether a comment is required with every decision (default false).
    pub require_comment: Option<Sp<bool>>,
    /// Forbid the person who started the instance from deciding (default false).
    pub no_self_approval: Option<Sp<bool>>,
    /// Whether an assignee may hand the task to someone else, with a note (default true).
    pub allow_delegation: Option<Sp<bool>>,
    /// Reminders to the assignees who have not decided.
    pub reminders: Option<Sp<RemindersDef>>,
    /// Who is added when nobody has decided in time: an escalation ladder.
    #[serde(default)]
    pub escalation: Vec<Sp<EscalationDef>>,
    /// When the task must be decided: a duration from when it opens, or an
    /// expression giving an instant (such as `clocks.dpa.due`).
    pub deadline: Option<Sp<String>>,
    /// The decision applied when the deadline passes (an option id). Without
    /// it, the step times out (see `on_timeout`).
    pub default: Option<Sp<String>>,
}

/// One choice of an approval: an id (`approve`), or a map with a label,
/// a step to go to and whether a comment is required.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum OptionDef {
    Id(String),
    Full(OptionSpec),
}

/// A choice with its own label, route and comment rule.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    /// The decision's value, such as `approve`, `reject`, `send_back`.
    pub id: Sp<String>,
    /// The button text, such as "Godkänn".
    pub label: Option<Sp<String>>,
    /// Go to this step when this option wins.
    pub goto: Option<Sp<String>>,
    /// Require a comment (a justification) with this choice.
    pub require_comment: Option<Sp<bool>>,
}

impl<'de> Deserialize<'de> for OptionDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OptionDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an option id such as `approve`, or a map with `id`, `label`, `goto`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OptionDef, E> {
                Ok(OptionDef::Id(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OptionDef, A::Error> {
                OptionSpec::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(OptionDef::Full)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// How many assignees must decide alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum Quorum {
    /// `any` or `all`.
    Word(QuorumWord),
    /// N of the assignees.
    Count(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuorumWord {
    Any,
    All,
}

impl<'de> Deserialize<'de> for Quorum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Quorum;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`any`, `all` or a number of assignees")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quorum, E> {
                match v {
                    "any" => Ok(Quorum::Word(QuorumWord::Any)),
                    "all" => Ok(Quorum::Word(QuorumWord::All)),
                    other => Err(E::custom(format!(
                        "`{other}` is not a quorum: write `any`, `all` or a number"
                    ))),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quorum, E> {
                u32::try_from(v)
                    .map(Quorum::Count)
                    .map_err(|_| E::custom("quorum is too large"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quorum, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a quorum must be at least 1"))
                    .and_then(|v| self.visit_u64(v))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Reminders to assignees who have not decided.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemindersDef {
    /// Remind this long after the task opens, then every `every`.
    pub every: Option<Sp<Duration>>,
    /// Remind at these times after the task opens.
    #[serde(default)]
    pub after: Vec<Sp<Duration>>,
    /// Remind this long before the deadline.
    #[serde(default)]
    pub before_deadline: Vec<Sp<Duration>>,
    /// At most this many reminders from `every` (default 10).
    pub max: Option<Sp<u32>>,
}

/// One rung of an escalation ladder.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationDef {
    /// How long after the task opens, undecided, this rung applies.
    pub after: Sp<Duration>,
    /// Who is added as assignee (addresses, `role:` names or templates).
    pub to: Vec<Sp<String>>,
    /// Replace the current assignees instead of adding to them (default false).
    pub replace: Option<Sp<bool>>,
    /// A note added to the escalation mail (a template).
    pub note: Option<Sp<String>>,
}

/// Field names of a step that choose its kind, in the order they are reported.
pub const STEP_KINDS: &[&str] = &[
    "call", "approval", "wait", "if", "switch", "parallel", "foreach", "workflow", "set", "fail",
    "succeed",
];

impl StepDef {
    /// The kinds this step names (well-formed steps name exactly one).
    pub fn kinds(&self) -> Vec<&'static str> {
        let present = [
            self.call.is_some(),
            self.approval.is_some(),
            self.wait.is_some(),
            self.if_.is_some(),
            self.switch.is_some(),
            self.parallel.is_some(),
            self.foreach.is_some(),
            self.workflow.is_some(),
            self.set.is_some(),
            self.fail.is_some(),
            self.succeed.is_some(),
        ];
        STEP_KINDS
            .iter()
            .zip(present)
            .filter_map(|(k, p)| p.then_some(*k))
            .collect()
    }
}
