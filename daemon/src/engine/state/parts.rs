//! The parts of an instance's state: its status, threads and what they
//! wait for, calls in flight, timers, tasks, clocks and step results.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::engine::model::{ThreadKind, TimerPurpose, Ts, Vote};
use crate::workflow::plan::NodeId;

/// The status names of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Steps are executing or a connector call is in flight.
    #[default]
    Running,
    /// Resting until a timer, a person or a signal.
    Waiting,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Waiting => "waiting",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// What a thread is waiting for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "on")]
pub enum Waiting {
    /// Ready to run its current node.
    #[default]
    Ready,
    Call {
        call: u32,
    },
    Timer {
        timer: u32,
    },
    Task {
        task: u32,
    },
    Signal {
        name: String,
    },
    /// Children threads of a parallel or foreach node.
    Join,
    Child {
        child: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    pub parent: Option<u32>,
    pub kind: ThreadKind,
    pub node: NodeId,
    pub locals: Map<String, Value>,
    /// The output layer its steps write to.
    pub layer: u32,
    pub waiting: Waiting,
    /// The output of the last step it completed (a foreach iteration's result).
    pub last: Value,
    /// The attempt of the current call (1-based) while one is in flight or backing off.
    pub attempt: u32,
    /// Which visit of its current step this is (counted per step and
    /// iteration), fixed when the step is entered: part of the idempotency key.
    #[serde(default)]
    pub visit: u32,
    /// When the thread entered its current step (for step durations).
    #[serde(default)]
    pub entered_at: Ts,
    /// Threads still running under a parallel/foreach node, and foreach progress.
    pub join: Option<Join>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Join {
    pub running: u32,
    /// Foreach: the items not yet started and the results so far.
    pub items: VecDeque<(u32, Value)>,
    pub results: BTreeMap<u32, Value>,
    /// Parallel: branch results by name.
    pub branches: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub thread: u32,
    pub node: NodeId,
    pub attempt: u32,
    pub idempotency_key: String,
    pub role: String,
    pub action: String,
    pub args: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    pub due: Ts,
    pub purpose: TimerPurpose,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub thread: u32,
    pub node: NodeId,
    pub title: String,
    pub description: String,
    pub assignees: Vec<String>,
    pub due: Option<Ts>,
    pub opened_at: Ts,
    pub votes: Vec<Vote>,
    pub reminders_sent: u32,
    /// Reminders sent by `every` (capped by `max`).
    #[serde(default)]
    pub periodic_reminders: u32,
    /// When the assignees were last mailed a reminder or an escalation.
    #[serde(default)]
    pub last_notice_at: Option<Ts>,
    pub open: bool,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockState {
    pub anchor: Ts,
    pub due: Ts,
    pub warned: Vec<u64>,
    pub breached: bool,
    pub met_at: Option<Ts>,
}

/// A step's recorded result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub status: String,
    pub output: Value,
}
