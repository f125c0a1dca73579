//! `loopback-http`: `invoke` requests `http://127.0.0.1:<port>/`, the port
//! from the setting `port`. The host must refuse loopback unless that origin
//! is granted explicitly.

use vakt_plugin_sdk::prelude::*;

struct TestPlugin;

impl Plugin for TestPlugin {
    fn new() -> Self {
        TestPlugin
    }
    fn manifest() -> Manifest {
        Manifest::builder("loopback-http", env!("CARGO_PKG_VERSION"))
            .http()
            .setting("port")
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
        let port = vakt_plugin_sdk::settings::require("port")?;
        let response = Client::new()
            .get(&format!("http://127.0.0.1:{port}/"))
            .send()?;
        Ok(format!("{{\"status\":{}}}", response.status()))
    }
}

vakt_plugin_sdk::export_generic!(TestPlugin);
