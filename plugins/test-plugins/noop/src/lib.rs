//! `noop`: a generic plugin whose `invoke` returns its input at once. Used for
//! the per-call overhead benchmark (fresh store + instantiate + call).

use vakt_plugin_sdk::prelude::*;

struct Noop;

impl Plugin for Noop {
    fn new() -> Self {
        Noop
    }
    fn manifest() -> Manifest {
        Manifest::builder("noop", env!("CARGO_PKG_VERSION")).build()
    }
}

impl GenericPlugin for Noop {
    fn invoke(
        &mut self,
        _ctx: &CallContext,
        _action: &str,
        input_json: String,
    ) -> Result<String, PluginError> {
        Ok(input_json)
    }
}

vakt_plugin_sdk::export_generic!(Noop);
