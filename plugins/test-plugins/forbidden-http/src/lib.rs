//! `forbidden-http`: `invoke` requests an origin that no test config grants
//! (`https://forbidden.invalid/`). The host must refuse it; the plugin returns
//! the error it got (`HttpRequestDenied` maps to a non-retryable error).

use vakt_plugin_sdk::prelude::*;

struct TestPlugin;

impl Plugin for TestPlugin {
    fn new() -> Self {
        TestPlugin
    }
    fn manifest() -> Manifest {
        Manifest::builder("forbidden-http", env!("CARGO_PKG_VERSION"))
            .http()
            .build()
    }
}

impl GenericPlugin for TestPlugin {
    fn invoke(
        &mut self,
        _ctx: &CallContext,
        _action: &str,
        _input: String,
    ) -> Result<String, PluginError> {
        let response = Client::new()
            .get("https://forbidden.invalid/secret")
            .send()?;
        Ok(format!("{{\"status\":{}}}", response.status()))
    }
}

vakt_plugin_sdk::export_generic!(TestPlugin);
