//! The daemon's connector: routes a call's role to the plugin bound to it,
//! or, for `mail` with no plugin bound, to the `.eml` outbox; times every
//! call into the plugin-call latency histogram.
//!
//! Binding is the config's business: a workflow names only the role
//! (`ticketing`), `[plugins.NAME] role = "ticketing"` picks the product.

use std::sync::Arc;
use std::time::Instant;

use super::metrics::Metrics;
use crate::engine::CallOutcome;
use crate::runtime::{BoxFuture, Connector, ConnectorCall};

/// Routes calls by role.
pub struct Router {
    /// The plugin host (serves every role a plugin is bound to).
    plugins: Option<Arc<dyn Connector>>,
    /// The roles a plugin is bound to.
    bound: Vec<String>,
    /// The `mail` role when no plugin serves it.
    mail_fallback: Option<Arc<dyn Connector>>,
    metrics: Arc<Metrics>,
}

impl Router {
    pub fn new(
        plugins: Option<Arc<dyn Connector>>,
        bound: Vec<String>,
        mail_fallback: Option<Arc<dyn Connector>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        metrics.describe(
            "vakt_connector_call_seconds",
            "histogram",
            "Connector calls by role, action and outcome, in seconds.",
        );
        Router {
            plugins,
            bound,
            mail_fallback,
            metrics,
        }
    }

    fn target(&self, role: &str) -> Result<(&Arc<dyn Connector>, &'static str), String> {
        if self.bound.iter().any(|r| r == role)
            && let Some(p) = &self.plugins
        {
            return Ok((p, "plugin"));
        }
        if role == "mail"
            && let Some(m) = &self.mail_fallback
        {
            return Ok((m, "outbox"));
        }
        Err(format!(
            "no plugin is bound to the `{role}` role; add `[plugins.NAME]` with `role = \"{role}\"` to vakt.toml (see docs/configuration.md)"
        ))
    }
}

impl Connector for Router {
    fn call(&self, call: ConnectorCall) -> BoxFuture<CallOutcome> {
        let (target, via) = match self.target(&call.role) {
            Ok(t) => (t.0.clone(), t.1),
            Err(message) => {
                return Box::pin(async move {
                    CallOutcome::Err {
                        message,
                        retryable: false,
                        retry_after: None,
                    }
                });
            }
        };
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let role = call.role.clone();
            let action = call.action.clone();
            let started = Instant::now();
            let outcome = target.call(call).await;
            let result = match &outcome {
                CallOutcome::Ok(_) => "ok",
                CallOutcome::Err {
                    retryable: true, ..
                } => "retryable_error",
                CallOutcome::Err { .. } => "error",
            };
            metrics.observe(
                "vakt_connector_call_seconds",
                &[
                    ("role", &role),
                    ("action", &action),
                    ("via", via),
                    ("result", result),
                ],
                started.elapsed().as_secs_f64(),
            );
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Answer(&'static str);
    impl Connector for Answer {
        fn call(&self, _call: ConnectorCall) -> BoxFuture<CallOutcome> {
            let v = self.0;
            Box::pin(async move { CallOutcome::Ok(json!(v)) })
        }
    }

    fn call(role: &str) -> ConnectorCall {
        ConnectorCall {
            instance: "i".into(),
            role: role.into(),
            action: "send".into(),
            args: json!({}),
            idempotency_key: "k".into(),
            attempt: 1,
            deadline: None,
        }
    }

    #[tokio::test]
    async fn routes_by_binding_with_the_outbox_as_mail_fallback() {
        let m = Arc::new(Metrics::new());
        let r = Router::new(
            Some(Arc::new(Answer("plugin"))),
            vec!["ticketing".into()],
            Some(Arc::new(Answer("outbox"))),
            m.clone(),
        );
        assert_eq!(
            r.call(call("ticketing")).await,
            CallOutcome::Ok(json!("plugin"))
        );
        assert_eq!(r.call(call("mail")).await, CallOutcome::Ok(json!("outbox")));
        match r.call(call("identity")).await {
            CallOutcome::Err {
                message, retryable, ..
            } => {
                assert!(!retryable);
                assert!(message.contains("`identity` role"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("role=\"mail\",action=\"send\",via=\"outbox\""),
            "{out}"
        );
    }
}
