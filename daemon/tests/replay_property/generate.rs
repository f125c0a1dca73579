//! Generating the workflow AST: proptest strategies for every kind of step,
//! handler, condition, value and clock, nested to a bounded depth.

use proptest::collection::vec;
use proptest::prelude::*;

use crate::ast::*;

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

pub(crate) fn workflow() -> BoxedStrategy<Wf> {
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
