//! The scenario file format (`*.test.yaml`): what an administrator writes.
//!
//! These types mirror the YAML one to one, like the workflow's authored form:
//! `deny_unknown_fields` everywhere and every value an author can get wrong
//! wrapped in [`Sp`] so that `load` can point at it. Meaning (step ids,
//! options, roles, times) is checked in `load`, which collects every error.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::workflow::duration::Duration;
use crate::workflow::span::Sp;

/// Who holds each role: role name → the addresses that hold it.
pub type Roles = IndexMap<String, Sp<Vec<Sp<String>>>>;
/// A map of values whose locations matter (input fields).
pub type Fields = Sp<IndexMap<String, Sp<Value>>>;

/// One scenario file: several scenarios for one workflow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The id of the workflow under test.
    pub workflow: Sp<String>,
    /// Where the virtual clock starts (RFC 3339); scenarios may override it.
    pub start_at: Option<Sp<String>>,
    /// Who starts the instances (default `vakt-test@example.invalid`).
    pub started_by: Option<Sp<String>>,
    /// Who holds each `role:` the workflow assigns tasks to.
    #[serde(default)]
    pub roles: Roles,
    /// Input shared by every scenario; a scenario's own `input` is laid over it.
    pub input: Option<Fields>,
    /// Scripted connector answers shared by every scenario, by `role.action`.
    #[serde(default)]
    pub connectors: IndexMap<String, Sp<Answers>>,
    pub scenarios: Sp<Vec<Sp<ScenarioDef>>>,
}

/// One scenario: an instance started, events at virtual times, expectations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDef {
    pub name: Sp<String>,
    /// Free text for the reader.
    pub description: Option<String>,
    pub start_at: Option<Sp<String>>,
    pub started_by: Option<Sp<String>>,
    #[serde(default)]
    pub roles: Roles,
    pub input: Option<Fields>,
    #[serde(default)]
    pub connectors: IndexMap<String, Sp<Answers>>,
    #[serde(default)]
    pub events: Vec<Sp<EventDef>>,
    /// Stop the virtual clock this long after the start (default: run until
    /// nothing is left to happen, at most a year after the last event).
    pub run_for: Option<Sp<Duration>>,
    pub expect: Option<Sp<Expect>>,
}

/// The answers of one connector action: one answer, or a list of answers
/// tried in order (the first whose `when` matches the call's arguments).
#[derive(Debug)]
pub enum Answers {
    One(Box<Answer>),
    Many(Vec<Sp<Answer>>),
}

/// How a connector answers a call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// Only for calls whose arguments contain these values.
    pub when: Option<Sp<Value>>,
    /// The answer's output (default `{}`).
    pub output: Option<Sp<Value>>,
    /// Fail (the first `times` calls, or every call), before answering `output`.
    pub fail: Option<Sp<Failure>>,
}

/// A connector error: a message, or a map.
#[derive(Debug, Default)]
pub struct Failure {
    pub message: Option<String>,
    /// Whether a retry can help (default true).
    pub retryable: Option<bool>,
    /// Fail this many calls, then answer (default: fail every call).
    pub times: Option<Sp<u32>>,
    /// The wait the server asks for (HTTP 429 `Retry-After`).
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailureSpec {
    message: Option<String>,
    retryable: Option<bool>,
    times: Option<Sp<u32>>,
    retry_after: Option<Duration>,
}

/// Something that happens at a virtual time: exactly one of `decide`,
/// `delegate`, `signal`, `cancel` or `expect`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDef {
    /// A duration after the start (`30m`, `2d 4h`) or an instant (RFC 3339).
    pub at: Sp<String>,
    pub decide: Option<Sp<Decide>>,
    pub delegate: Option<Sp<Delegate>>,
    pub signal: Option<Sp<Signal>>,
    pub cancel: Option<Sp<Cancel>>,
    /// Expectations checked at this moment.
    pub expect: Option<Sp<Expect>>,
    /// The event must be refused, with a message containing this text.
    pub refused: Option<Sp<String>>,
}

/// A decision on the open task of a step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    pub step: Sp<String>,
    pub option: Sp<String>,
    /// Who decides (default: the task's first assignee).
    pub by: Option<Sp<String>>,
    pub comment: Option<String>,
    /// Pick the task whose title contains this text (several are open).
    pub title: Option<Sp<String>>,
    /// Decide every open task of the step (that matches `title`).
    #[serde(default)]
    pub all: bool,
}

/// An assignee hands the open task of a step to someone else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegate {
    pub step: Sp<String>,
    pub to: Sp<String>,
    pub by: Option<Sp<String>>,
    pub note: Option<String>,
    pub title: Option<Sp<String>>,
}

/// A signal sent to the instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub name: Sp<String>,
    pub data: Option<Value>,
}

/// The instance is cancelled.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    pub by: Option<String>,
    pub reason: Option<String>,
}

/// What must hold at the end of a scenario (or at an `expect` event).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// running, waiting, completed, failed or cancelled.
    pub status: Option<Sp<String>>,
    /// Text the final message contains (of `succeed`, `fail`, or the error).
    pub message: Option<Sp<String>>,
    /// Steps that completed, in this order (others may come between).
    pub path: Option<Sp<Vec<Sp<String>>>>,
    /// Steps that never ran.
    pub not_path: Option<Sp<Vec<Sp<String>>>>,
    /// Values the workflow's output contains.
    pub output: Option<Sp<Value>>,
    /// Values the workflow's variables contain.
    pub vars: Option<Sp<Value>>,
    /// Per step: its status and values its output contains.
    #[serde(default)]
    pub steps: IndexMap<String, Sp<StepExpect>>,
    #[serde(default)]
    pub calls: Vec<Sp<CallExpect>>,
    #[serde(default)]
    pub notifications: Vec<Sp<NoticeExpect>>,
    #[serde(default)]
    pub tasks: Vec<Sp<TaskExpect>>,
    /// Steps whose tasks were opened, in this order.
    pub tasks_opened: Option<Sp<Vec<Sp<String>>>>,
    #[serde(default)]
    pub clocks: IndexMap<String, Sp<ClockExpect>>,
    /// The instance finished at most this long after its start.
    pub finished_within: Option<Sp<Duration>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepExpect {
    /// completed, failed or skipped.
    pub status: Option<Sp<String>>,
    pub output: Option<Sp<Value>>,
}

/// Connector calls of one action (every attempt counts).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallExpect {
    /// `role.action`.
    pub call: Sp<String>,
    /// Only calls whose arguments contain these values.
    pub with: Option<Sp<Value>>,
    /// Only calls with this text in one of their arguments.
    pub text: Option<Sp<String>>,
    /// How many such calls (default: at least one).
    pub count: Option<Sp<u32>>,
}

/// Mails the daemon sends to assignees about tasks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeExpect {
    pub step: Option<Sp<String>>,
    /// opened, reminder, escalation or delegated.
    pub reason: Option<Sp<String>>,
    /// An address or `role:<name>` among the recipients.
    pub to: Option<Sp<String>>,
    /// How many such notifications (default: at least one).
    pub count: Option<Sp<u32>>,
}

/// The tasks of an approval step; the fields are checked on the latest one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskExpect {
    pub step: Sp<String>,
    /// Only tasks whose title contains this text.
    pub title: Option<Sp<String>>,
    /// How many tasks of the step were opened.
    pub count: Option<Sp<u32>>,
    pub open: Option<Sp<bool>>,
    /// The option that won.
    pub outcome: Option<Sp<String>>,
    pub by_default: Option<Sp<bool>>,
    pub decided_by: Option<Sp<String>>,
    /// Addresses or `role:<name>` among the assignees (after escalation).
    pub assignees: Option<Sp<Vec<Sp<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockExpect {
    pub started: Option<Sp<bool>>,
    pub met: Option<Sp<bool>>,
    pub breached: Option<Sp<bool>>,
    /// How many warnings were given.
    pub warned: Option<Sp<u32>>,
}

impl<'de> Deserialize<'de> for Answers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Answers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an answer (`output`, `fail`, `when`), or a list of answers")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Answers, A::Error> {
                Answer::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|a| Answers::One(Box::new(a)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Answers, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Answers::Many)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Failure {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Failure;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an error message, or a map with `message`, `retryable`, `times`, `retry_after`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Failure, E> {
                Ok(Failure {
                    message: Some(v.to_owned()),
                    ..Default::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Failure, A::Error> {
                let s = FailureSpec::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Failure {
                    message: s.message,
                    retryable: s.retryable,
                    times: s.times,
                    retry_after: s.retry_after,
                })
            }
        }
        deserializer.deserialize_any(V)
    }
}
