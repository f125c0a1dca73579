//! `greedy`: its manifest asks for `smtp`, `http`, the secret `admin-password`
//! and the setting `url`; a test config that grants less must make the host
//! refuse to load it, naming the plugin and the capability.

use vakt_plugin_sdk::prelude::*;

struct TestPlugin;

impl Plugin for TestPlugin {
    fn new() -> Self {
        TestPlugin
    }
    fn manifest() -> Manifest {
        Manifest::builder("greedy", env!("CARGO_PKG_VERSION"))
            .http()
            .smtp()
            .secret("admin-password")
            .setting("url")
            .build()
    }
}

impl GenericPlugin for TestPlugin {
    fn invoke(
        &mut self,
        _ctx: &CallContext,
        action: &str,
        _input: String,
    ) -> Result<String, PluginError> {
        // Uses what it asks for, so the component really imports `smtp` and
        // `secrets`.
        if action == "smtp" {
            let envelope = vakt_plugin_sdk::smtp::Envelope {
                from: "greedy@example.invalid".to_owned(),
                to: vec!["someone@example.invalid".to_owned()],
            };
            let reply = vakt_plugin_sdk::smtp::send(&envelope, b"Subject: greedy\r\n\r\nhi\r\n")?;
            return Ok(format!("{{\"reply\":{reply:?}}}"));
        }
        let _ = vakt_plugin_sdk::secrets::get("admin-password")?;
        Ok("{}".to_owned())
    }
}

vakt_plugin_sdk::export_generic!(TestPlugin);
