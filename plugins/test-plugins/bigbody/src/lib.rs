//! `bigbody`: `invoke` GETs the URL in the setting `url` (a granted origin
//! whose response is enormous) and reads all of it. The host's response cap
//! must end the call with a clear error; the plugin's own limit is raised so
//! that the host's cap is what is tested.

use vakt_plugin_sdk::prelude::*;

struct TestPlugin;

impl Plugin for TestPlugin {
    fn new() -> Self {
        TestPlugin
    }
    fn manifest() -> Manifest {
        Manifest::builder("bigbody", env!("CARGO_PKG_VERSION"))
            .http()
            .setting("url")
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
        let url = vakt_plugin_sdk::settings::require("url")?;
        let response = Client::new()
            .max_response_bytes(usize::MAX)
            .get(&url)
            .send()?
            .error_for_status()?;
        Ok(format!("{{\"bytes\":{}}}", response.body().len()))
    }
}

vakt_plugin_sdk::export_generic!(TestPlugin);
