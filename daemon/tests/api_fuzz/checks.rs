//! Deterministic checks of roles and assignment and idempotent starts.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use crate::judge::error_shape;
use crate::setup::{ANNA, Fixture, Resp, fixture, show_body};

/// `r` has `status` and the API's error shape.
pub(crate) fn assert_error(r: &Resp, status: StatusCode, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", show_body(&r.body));
    if let Err(why) = error_shape(r) {
        panic!("{what}: {why}: {}", show_body(&r.body));
    }
}

/// The task ids a token sees in `GET /api/v1/tasks{query}`.
async fn task_ids(fx: &Fixture, token: &str, query: &str) -> Vec<String> {
    let r = fx
        .call(
            Method::GET,
            &format!("/api/v1/tasks{query}"),
            Some(token),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", show_body(&r.body));
    let mut ids: Vec<String> = r.json()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The number of history entries the API shows an operator.
async fn api_history_len(fx: &Fixture, id: &str) -> usize {
    let r = fx
        .call(
            Method::GET,
            &format!("/api/v1/instances/{id}/history"),
            Some(&fx.operator),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", show_body(&r.body));
    assert_eq!(r.json()["verified"], json!(true));
    r.json()["history"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_cannot_start_or_read_instances() {
    let fx = fixture().await;
    let (id, _) = fx.waiting("fuzz").await;
    let before = fx.history_len(&id);
    let cases = [
        (
            Method::POST,
            "/api/v1/workflows/fuzz/instances".to_owned(),
            "{}",
        ),
        (Method::GET, "/api/v1/instances".to_owned(), ""),
        (Method::GET, format!("/api/v1/instances/{id}"), ""),
        (Method::GET, format!("/api/v1/instances/{id}/history"), ""),
        (
            Method::POST,
            format!("/api/v1/instances/{id}/signals/go"),
            "{}",
        ),
        (Method::POST, format!("/api/v1/instances/{id}/cancel"), "{}"),
    ];
    for (method, uri, body) in cases {
        for token in [&fx.anna, &fx.eve] {
            let r = fx.call(method.clone(), &uri, Some(token), body).await;
            assert_error(
                &r,
                StatusCode::FORBIDDEN,
                &format!("approver {method} {uri}"),
            );
            assert_eq!(r.json()["error"]["code"], json!("forbidden"));
        }
    }
    // Nothing was started, signalled or cancelled.
    assert_eq!(fx.history_len(&id), before);
    let r = fx
        .call(Method::GET, "/api/v1/instances", Some(&fx.operator), "")
        .await;
    assert_eq!(r.json()["instances"].as_array().unwrap().len(), 1);
    // The same requests from an operator and an admin pass the role check.
    for token in [&fx.operator, &fx.admin] {
        let r = fx
            .call(
                Method::GET,
                &format!("/api/v1/instances/{id}"),
                Some(token),
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", show_body(&r.body));
        let r = fx
            .call(
                Method::POST,
                "/api/v1/workflows/fuzz/instances",
                Some(token),
                "{}",
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", show_body(&r.body));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_sees_only_its_own_tasks() {
    let fx = fixture().await;
    let (a1, n1) = fx.waiting("fuzz").await;
    let (a2, n2) = fx.waiting("fuzz").await;
    let (e1, m1) = fx.waiting("other").await;
    let mut annas = vec![format!("{a1}:{n1}"), format!("{a2}:{n2}")];
    annas.sort();
    let eves = vec![format!("{e1}:{m1}")];
    let mut all = [annas.clone(), eves.clone()].concat();
    all.sort();
    for query in ["", "?status=open", "?status=all", "?status=all&limit=10000"] {
        assert_eq!(task_ids(&fx, &fx.anna, query).await, annas, "anna {query}");
        assert_eq!(task_ids(&fx, &fx.eve, query).await, eves, "eve {query}");
        assert_eq!(
            task_ids(&fx, &fx.operator, query).await,
            all,
            "operator {query}"
        );
        assert_eq!(task_ids(&fx, &fx.admin, query).await, all, "admin {query}");
    }
    // The shown tasks name their assignee.
    let r = fx
        .call(Method::GET, "/api/v1/tasks", Some(&fx.anna), "")
        .await;
    for t in r.json()["tasks"].as_array().unwrap() {
        assert_eq!(t["assignees"], json!([ANNA]), "{t}");
    }
    // A decided task leaves the open list, stays in `all`.
    let r = fx
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{a1}:{n1}/decision"),
            Some(&fx.anna),
            r#"{"decision": "approve"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", show_body(&r.body));
    assert_eq!(
        task_ids(&fx, &fx.anna, "").await,
        vec![format!("{a2}:{n2}")]
    );
    assert_eq!(task_ids(&fx, &fx.anna, "?status=all").await, annas);
    assert_eq!(task_ids(&fx, &fx.eve, "?status=all").await, eves);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_on_a_task_not_assigned_is_forbidden_and_changes_nothing() {
    let fx = fixture().await;
    let (id, n) = fx.waiting("fuzz").await;
    let (other, m) = fx.waiting("other").await;
    let task = format!("{id}:{n}");
    let before = api_history_len(&fx, &id).await;
    let before_other = api_history_len(&fx, &other).await;
    let decision = r#"{"decision": "approve", "comment": "not mine"}"#;
    // Eve (an approver), the operator and the admin (who see every task)
    // are not assigned to Anna's task; Anna is not assigned to Eve's.
    for (token, task) in [
        (&fx.eve, task.clone()),
        (&fx.operator, task.clone()),
        (&fx.admin, task.clone()),
        (&fx.anna, format!("{other}:{m}")),
    ] {
        let r = fx
            .call(
                Method::POST,
                &format!("/api/v1/tasks/{task}/decision"),
                Some(token),
                decision,
            )
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, &format!("deciding {task}"));
    }
    assert_eq!(api_history_len(&fx, &id).await, before);
    assert_eq!(api_history_len(&fx, &other).await, before_other);
    assert_eq!(fx.history_len(&id), before);
    let i = fx.runtime().instance(&id).unwrap().unwrap();
    assert!(i.tasks[&n].open && i.tasks[&n].votes.is_empty());
    // Anna's own decision goes through and is recorded once.
    let r = fx
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{task}/decision"),
            Some(&fx.anna),
            decision,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", show_body(&r.body));
    assert!(api_history_len(&fx, &id).await > before);
    let i = fx.runtime().instance(&id).unwrap().unwrap();
    assert_eq!(i.tasks[&n].votes.len(), 1);
    assert_eq!(i.tasks[&n].votes[0].by, ANNA);
    // A second decision is refused and changes nothing either.
    let after = api_history_len(&fx, &id).await;
    let r = fx
        .call(
            Method::POST,
            &format!("/api/v1/tasks/{task}/decision"),
            Some(&fx.anna),
            decision,
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "deciding twice");
    assert_eq!(api_history_len(&fx, &id).await, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_gives_the_same_instance() {
    let fx = fixture().await;
    let start = |key: &'static str, token: String| {
        let fx = &fx;
        async move {
            let req = Request::builder()
                .method(Method::POST)
                .uri("/api/v1/workflows/fuzz/instances")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header("idempotency-key", key)
                .body(Body::from(r#"{"note": "once"}"#))
                .unwrap();
            fx.send(req).await
        }
    };
    let first = start("form-4711", fx.operator.clone()).await;
    assert_eq!(
        first.status,
        StatusCode::CREATED,
        "{}",
        show_body(&first.body)
    );
    let id = first.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        first.headers[header::LOCATION],
        format!("/api/v1/instances/{id}").as_str()
    );
    for token in [fx.operator.clone(), fx.admin.clone()] {
        let again = start("form-4711", token).await;
        assert_eq!(again.status, StatusCode::OK, "{}", show_body(&again.body));
        assert_eq!(again.json()["id"], json!(id));
        assert_eq!(again.headers["idempotent-replayed"], "true");
    }
    let other = start("form-4712", fx.operator.clone()).await;
    assert_eq!(other.status, StatusCode::CREATED);
    assert_ne!(other.json()["id"], json!(id));
    let r = fx
        .call(Method::GET, "/api/v1/instances", Some(&fx.operator), "")
        .await;
    assert_eq!(r.json()["instances"].as_array().unwrap().len(), 2);
}
