//! The HTTP API under hostile requests, in process: the real router
//! (`vakt::serve::api::router`) over a real sled store, runtime, loader,
//! tokens and link key, driven with `tower::ServiceExt::oneshot`.
//!
//! 1. A property test of arbitrary requests (method, a path from the real
//!    route templates with hostile segments, query, headers, body): the
//!    service never panics and never answers 5xx; every non-2xx answer
//!    outside the link pages has the JSON error shape with a message; 401
//!    iff the token is missing or invalid on an authenticated route; the
//!    link pages answer HTML, 4xx for a garbage token; a body nested deeper
//!    than 64 levels is refused with 400 by every route that reads one; and
//!    afterwards the daemon still lists, starts, decides and signals.
//! 2. Deterministic checks of roles and assignment, idempotent starts,
//!    deeply nested bodies, and the error shape of what the framework itself
//!    refuses (a method not allowed, a query or path that does not parse).
//!
//! With `--nocapture` the fuzz prints how often each route answered each
//! status (apart for bodies nested too deep). `PROPTEST_CASES` overrides the number of cases (500).
//!
//! [`setup`] builds the daemon, [`model`] and [`generate`] the requests,
//! [`judge`] holds the properties; [`checks`] and [`refusals`] are the
//! deterministic tests.

mod checks;
mod generate;
mod judge;
mod model;
mod refusals;
mod setup;

use axum::http::{Method, StatusCode};
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestError, TestRunner};
use vakt::engine::Status;

use crate::generate::request;
use crate::judge::{Match, classify, judge};
use crate::model::{MAX_DEPTH, Targets, materialize};
use crate::setup::{fixture, short, show_body, tokio_rt};

/// Runs the generated requests against one daemon (each naming a fresh
/// waiting instance where it needs one, or one cancelled at the start),
/// judges every answer, prints the tally, then checks the daemon still works.
fn run_fuzz() {
    let rt = tokio_rt();
    let fx = rt.block_on(fixture());
    let finished = rt.block_on(async {
        let (id, n) = fx.waiting("fuzz").await;
        let r = fx
            .call(
                Method::POST,
                &format!("/api/v1/instances/{id}/cancel"),
                Some(&fx.operator),
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", show_body(&r.body));
        (id, n)
    });
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let mut runner = TestRunner::new(PropConfig {
        cases,
        failure_persistence: None,
        // Shrinking re-runs requests against a daemon whose state moved on;
        // keep it bounded.
        max_shrink_iters: 300,
        max_shrink_time: 60_000,
        ..PropConfig::default()
    });
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<String, usize>::new());
    let result = runner.run(&request(), |req| {
        rt.block_on(async {
            let live = if req.needs_live() {
                Some(fx.waiting("fuzz").await)
            } else {
                None
            };
            let targets = Targets {
                live,
                finished: finished.clone(),
            };
            let (path, query, request) = materialize(&req, &fx, &targets);
            let r = fx.send(request).await;
            let route = match classify(&req.method, &path) {
                Match::Route(t, _) => format!("{} {t}", req.method),
                Match::WrongMethod(t) => format!("{} {t} (wrong method)", req.method),
                Match::None => "fallback".into(),
            };
            let deep = match req.body.nesting() {
                Some(d) if d > MAX_DEPTH => format!(", body nested > {MAX_DEPTH}"),
                _ => String::new(),
            };
            *seen
                .lock()
                .unwrap()
                .entry(format!("{route}{deep} -> {}", r.status.as_u16()))
                .or_default() += 1;
            let Err(why) = judge(&req, &fx, &path, &r) else {
                return Ok(());
            };
            Err(TestCaseError::fail(format!(
                "{why}\n  request: {} {}{}\n  answer: {} {:?}\n  body: {}",
                req.method,
                short(&path),
                query.map(|q| format!("?{q}")).unwrap_or_default(),
                r.status,
                r.headers,
                show_body(&r.body)
            )))
        })
    });
    for (k, n) in seen.lock().unwrap().iter() {
        eprintln!("{n:5} {k}");
    }
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, req)) => panic!("{why}\nminimal request: {req:#?}"),
        Err(e) => panic!("{e}"),
    }
    // The daemon is still whole: healthy, every listing reads, an instance
    // still starts, gets decided and signalled to completion, and every
    // stored instance reads.
    rt.block_on(async {
        for (uri, token) in [
            ("/healthz", None),
            ("/metrics", None),
            ("/api/v1/workflows", Some(&fx.operator)),
            ("/api/v1/instances?limit=10000", Some(&fx.operator)),
            ("/api/v1/tasks?status=all&limit=10000", Some(&fx.operator)),
            ("/api/v1/tasks?status=all", Some(&fx.anna)),
        ] {
            let r = fx
                .call(Method::GET, uri, token.map(String::as_str), "")
                .await;
            assert_eq!(r.status, StatusCode::OK, "{uri}: {}", show_body(&r.body));
        }
        let (id, n) = fx.waiting("fuzz").await;
        let r = fx
            .call(
                Method::POST,
                &format!("/api/v1/tasks/{id}:{n}/decision"),
                Some(&fx.anna),
                r#"{"decision": "approve"}"#,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", show_body(&r.body));
        let r = fx
            .call(
                Method::POST,
                &format!("/api/v1/instances/{id}/signals/go"),
                Some(&fx.operator),
                "{}",
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", show_body(&r.body));
        fx.until(&id, Status::Completed).await;
        fx.all_readable().await;
    });
}

/// Arbitrary requests, every property in full.
#[test]
fn fuzz_requests() {
    run_fuzz();
}
