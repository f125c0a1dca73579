//! `spin`: `invoke` loops forever. The host must stop it at its epoch deadline
//! (CPU) or wall-clock timeout and fail the call with a clear error.

use vakt_plugin_sdk::prelude::*;

struct TestPlugin;

impl Plugin for TestPlugin {
    fn new() -> Self {
        TestPlugin
    }
    fn manifest() -> Manifest {
        Manifest::builder("spin", env!("CARGO_PKG_VERSION")).build()
    }
}

impl GenericPlugin for TestPlugin {
    fn invoke(
        &mut self,
        _ctx: &CallContext,
        _action: &str,
        _input: String,
    ) -> Result<String, PluginError> {
        let mut n: u64 = 0;
        loop {
            // black_box keeps the optimiser from proving the loop away.
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

vakt_plugin_sdk::export_generic!(TestPlugin);
