//! `metadata-http`: `invoke` requests the cloud metadata address
//! `http://169.254.169.254/latest/meta-data/` (link-local). The host must
//! refuse it even if the test config grants HTTP.

use vakt_plugin_sdk::prelude::*;

struct TestPlugin;

impl Plugin for TestPlugin {
    fn new() -> Self {
        TestPlugin
    }
    fn manifest() -> Manifest {
        Manifest::builder("metadata-http", env!("CARGO_PKG_VERSION"))
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
            .get("http://169.254.169.254/latest/meta-data/")
            .send()?;
        Ok(format!("{{\"status\":{}}}", response.status()))
    }
}

vakt_plugin_sdk::export_generic!(TestPlugin);
