//! What the daemon refuses, and in what shape: deeply nested bodies (the
//! fuzzing once found depths the store could not read back), and what the
//! framework itself rejects (a method, a query, a path).

use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::checks::assert_error;
use crate::model::{MAX_DEPTH, nested};
use crate::setup::{Fixture, Resp, fixture, show_body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_nested_ten_thousand_deep_are_refused() {
    let fx = fixture().await;
    let (id, n) = fx.waiting("fuzz").await;
    let before = fx.history_len(&id);
    let arrays = nested("[", "]", 10_000);
    let objects = nested("{\"a\":", "}", 10_000);
    assert!(arrays.starts_with(b"{\"a\": [[[["));
    for body in [&arrays, &objects] {
        for (token, uri) in [
            (&fx.operator, "/api/v1/workflows/fuzz/instances".to_owned()),
            (&fx.operator, format!("/api/v1/instances/{id}/signals/go")),
            (&fx.operator, format!("/api/v1/instances/{id}/cancel")),
            (&fx.anna, format!("/api/v1/tasks/{id}:{n}/decision")),
        ] {
            let r = fx.call(Method::POST, &uri, Some(token), body.clone()).await;
            assert_error(&r, StatusCode::BAD_REQUEST, &uri);
            assert_eq!(r.json()["error"]["code"], json!("bad_request"));
        }
    }
    assert_eq!(fx.history_len(&id), before);
    let r = fx
        .call(Method::GET, "/api/v1/instances", Some(&fx.operator), "")
        .await;
    assert_eq!(r.json()["instances"].as_array().unwrap().len(), 1);
}

/// An operator's start of `fuzz` with `body` as the input.
async fn start_with(fx: &Fixture, body: Vec<u8>) -> Resp {
    fx.call(
        Method::POST,
        "/api/v1/workflows/fuzz/instances",
        Some(&fx.operator),
        body,
    )
    .await
}

/// Input nested deeper than `MAX_DEPTH` was once accepted (201) and stored
/// as a snapshot the store could not read back: the instance, the instance
/// list and the task list then answered 500. It is refused now, and input
/// at the limit is stored and reads back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_start_input_is_refused() {
    let fx = fixture().await;
    fx.waiting("fuzz").await;
    // `nested(…, n)` nests `n + 1` deep.
    for n in [MAX_DEPTH, MAX_DEPTH + 1, 110, 124, 125, 126, 127] {
        for body in [nested("[", "]", n), nested("{\"a\":", "}", n)] {
            let r = start_with(&fx, body).await;
            let what = format!("a start nested {} deep", n + 1);
            assert_error(&r, StatusCode::BAD_REQUEST, &what);
            assert_eq!(r.json()["error"]["code"], json!("bad_request"), "{what}");
        }
    }
    let r = fx
        .call(Method::GET, "/api/v1/instances", Some(&fx.operator), "")
        .await;
    assert_eq!(r.json()["instances"].as_array().unwrap().len(), 1);
    fx.all_readable().await;

    // `a` is a list: arrays at the limit are valid input.
    let body = nested("[", "]", MAX_DEPTH - 1);
    let r = start_with(&fx, body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", show_body(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = fx
        .call(
            Method::GET,
            &format!("/api/v1/instances/{id}"),
            Some(&fx.operator),
            "",
        )
        .await;
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(r.json()["input"]["a"], sent["a"]);
    fx.all_readable().await;
}

/// Signal data nested deeper than `MAX_DEPTH` was once accepted (202), and
/// the instance then answered 500. It is refused now and records nothing;
/// data at the limit is accepted and the instance still reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_signal_data_is_refused() {
    let fx = fixture().await;
    let (id, _) = fx.waiting("fuzz").await;
    let before = fx.history_len(&id);
    let uri = format!("/api/v1/instances/{id}/signals/later");
    for n in [MAX_DEPTH, 110, 124, 125, 127] {
        for body in [nested("[", "]", n), nested("{\"a\":", "}", n)] {
            let r = fx.call(Method::POST, &uri, Some(&fx.operator), body).await;
            assert_error(
                &r,
                StatusCode::BAD_REQUEST,
                &format!("a signal nested {} deep", n + 1),
            );
        }
    }
    assert_eq!(fx.history_len(&id), before);
    for body in [
        nested("[", "]", MAX_DEPTH - 1),
        nested("{\"a\":", "}", MAX_DEPTH - 1),
    ] {
        let r = fx.call(Method::POST, &uri, Some(&fx.operator), body).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", show_body(&r.body));
    }
    assert!(fx.history_len(&id) > before);
    fx.all_readable().await;
}

/// A method a route does not take: 405 in the JSON error shape (it was an
/// empty body), with `Allow`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_not_allowed_has_the_error_shape() {
    let fx = fixture().await;
    for (method, uri) in [
        (Method::PUT, "/api/v1/instances"),
        (Method::DELETE, "/api/v1/instances/x"),
        (Method::GET, "/api/v1/workflows/fuzz/instances"),
        (Method::GET, "/api/v1/tasks/x:1/decision"),
        (Method::POST, "/healthz"),
        (Method::DELETE, "/metrics"),
    ] {
        let what = format!("{method} {uri}");
        let r = fx.call(method.clone(), uri, Some(&fx.operator), "").await;
        assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, &what);
        assert_eq!(
            r.json()["error"]["code"],
            json!("method_not_allowed"),
            "{what}"
        );
        assert!(r.headers.contains_key(header::ALLOW), "{what}: no Allow");
    }
}

/// A query the Query extractor rejects: 400 in the JSON error shape (it
/// was plain text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_does_not_parse_has_the_error_shape() {
    let fx = fixture().await;
    for uri in [
        "/api/v1/instances?limit=abc",
        "/api/v1/instances?limit=-1",
        "/api/v1/instances?limit=18446744073709551616",
        "/api/v1/tasks?limit=",
        "/api/v1/tasks?status=open&status=all",
        "/api/v1/tasks?status=%FF",
    ] {
        let r = fx.call(Method::GET, uri, Some(&fx.operator), "").await;
        assert_error(&r, StatusCode::BAD_REQUEST, uri);
        assert_eq!(r.json()["error"]["code"], json!("bad_request"), "{uri}");
    }
}

/// A path segment that is not UTF-8 once decoded: 400 in the JSON error
/// shape under `/api/`, an HTML page under `/t/` (both were plain text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_does_not_decode_has_the_error_shape_or_a_page() {
    let fx = fixture().await;
    for (method, uri) in [
        (Method::GET, "/api/v1/instances/%FF"),
        (Method::GET, "/api/v1/instances/%C3%28/history"),
        (Method::POST, "/api/v1/workflows/%FF/instances"),
        (Method::POST, "/api/v1/instances/x/signals/%FF"),
        (Method::POST, "/api/v1/tasks/%FF/decision"),
    ] {
        let what = format!("{method} {uri}");
        let r = fx.call(method.clone(), uri, Some(&fx.operator), "{}").await;
        assert_error(&r, StatusCode::BAD_REQUEST, &what);
    }
    for method in [Method::GET, Method::POST] {
        let r = fx.call(method.clone(), "/t/%FF", None, "").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", show_body(&r.body));
        assert!(
            r.content_type().starts_with("text/html"),
            "{method} /t/%FF: {}",
            r.content_type()
        );
    }
}
