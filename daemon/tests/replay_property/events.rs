//! Inputs and events: generating instance starts and event sequences, and
//! turning a generated event into a simulator event aimed at an instance,
//! task and person that exist (mostly); plus the seeded connector.

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Value, json};
use vakt::engine::model::{CallOutcome, Event, Record, rfc3339};
use vakt::engine::sim::Sim;
use vakt::engine::state::Instance;
use vakt::workflow::plan::{NodeKind, Plan};

use crate::ast::{KINDS, SIGNALS, Wf};
use crate::generate::workflow;
use crate::yaml::pick;
use crate::{Bug, H, MIN, Mode, T0};

#[derive(Debug, Clone)]
pub(crate) struct Start {
    discovered_h: i8,
    reported_h: Option<i8>,
    due_min: i16,
    kind: u8,
    flag: bool,
    items: Vec<u8>,
    owner: u8,
    backup: u8,
    pub(crate) by: u8,
}

const OWNERS: &[&str] = &["a@k.se", "c@k.se", "d@k.se"];
const BACKUPS: &[&str] = &["d@k.se", "role:it", "d@k.se", "role:it", "nobody", ""];
pub(crate) const STARTERS: &[&str] = &["u@k.se", "a@k.se"];

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
    pub(crate) fn input(&self, mode: Mode) -> Value {
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
pub(crate) enum Ev {
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

pub(crate) const ADVANCES: &[i64] = &[0, 1_000, MIN, 20 * MIN, H, 3 * H, 24 * H, 96 * H];
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
pub(crate) struct Case {
    pub(crate) wf: Wf,
    pub(crate) starts: Vec<Start>,
    /// Connector answers, cycled, by value mod 16: 0–12 ok, 13–14 retryable
    /// (some with `Retry-After`), 15 permanent.
    pub(crate) connector: Vec<u8>,
    pub(crate) events: Vec<Ev>,
}

pub(crate) fn case() -> impl Strategy<Value = Case> {
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
pub(crate) fn realize(sim: &Sim, ev: &Ev, mode: Mode) -> Option<(String, Event, bool)> {
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

pub(crate) fn connector(
    seq: Vec<u8>,
) -> impl FnMut(&vakt::engine::sim::CallSeen) -> CallOutcome + 'static {
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
