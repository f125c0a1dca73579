//! `panics`: `invoke` panics. wasm32 panics abort, so the call traps; the
//! host must report a clean error and go on.

use vakt_plugin_sdk::prelude::*;

struct TestPlugin;

impl Plugin for TestPlugin {
    fn new() -> Self {
        TestPlugin
    }
    fn manifest() -> Manifest {
        Manifest::builder("panics", env!("CARGO_PKG_VERSION")).build()
    }
}

impl GenericPlugin for TestPlugin {
    fn invoke(
        &mut self,
        _ctx: &CallContext,
        _action: &str,
        _input: String,
    ) -> Result<String, PluginError> {
        panic!("the panics test plugin panics on purpose")
    }
}

vakt_plugin_sdk::export_generic!(TestPlugin);
