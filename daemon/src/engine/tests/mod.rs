//! Unit tests of every step kind on virtual time, with a replay check after
//! each scenario: the stored history folds back into the same state.

mod flow;
mod tasks;

use std::sync::Arc;

use super::model::{Event, Rejection};
use super::sim::Sim;
use crate::workflow::{self, Plan};

pub(super) const H: i64 = 3_600_000;
pub(super) const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

pub(super) fn plan(yaml: &str) -> Arc<Plan> {
    let l = workflow::load_source("t.yaml", yaml.to_owned());
    match l.result {
        Ok(p) => p,
        Err(_) => panic!("{}", l.render_errors()),
    }
}

pub(super) fn sim(yaml: &str) -> Sim {
    Sim::new([plan(yaml)], T0)
}

pub(super) fn check_replay(s: &Sim) {
    for id in s.instances.keys() {
        assert!(s.replay_matches(id), "replay of {id} differs");
    }
}

pub(super) fn decide(s: &mut Sim, id: &str, by: &str, option: &str) -> Result<(), Rejection> {
    let task = s.open_tasks(id)[0];
    s.event(
        id,
        Event::Decide {
            task,
            by: by.into(),
            roles: vec![],
            option: option.into(),
            comment: None,
        },
    )
}
