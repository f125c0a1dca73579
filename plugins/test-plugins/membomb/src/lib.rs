//! `membomb`: `invoke` allocates (and touches) memory until the host's
//! memory limit traps it.

use vakt_plugin_sdk::prelude::*;

struct TestPlugin;

impl Plugin for TestPlugin {
    fn new() -> Self {
        TestPlugin
    }
    fn manifest() -> Manifest {
        Manifest::builder("membomb", env!("CARGO_PKG_VERSION")).build()
    }
}

impl GenericPlugin for TestPlugin {
    fn invoke(
        &mut self,
        _ctx: &CallContext,
        _action: &str,
        _input: String,
    ) -> Result<String, PluginError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // 1 MiB at a time, written so the pages are really used.
            hoard.push(vec![0xA5; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

vakt_plugin_sdk::export_generic!(TestPlugin);
