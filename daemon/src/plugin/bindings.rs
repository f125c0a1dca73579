//! Host bindings of `vakt:plugin@0.1.0` (`plugins/wit/`), one module per world.
//!
//! The `host` world holds the imports every plugin may use (log, settings,
//! secrets, smtp, files) and the `plugin.manifest` export; the role worlds
//! reuse its import bindings through `with`, so the host implements each
//! interface once. The linker always provides every import of `host`, so a
//! component built before `files` existed (which does not import it) and
//! one that imports it both link. When a new WIT version is released, it gets its own set of modules
//! here and the host converts its types into the latest (see
//! `plugins/wit/README.md`).

/// World `host`: the shared imports and the manifest export.
pub mod host {
    wasmtime::component::bindgen!({
        path: "../plugins/wit",
        world: "vakt:plugin/host",
        imports: {
            "vakt:plugin/smtp.send": async,
            "vakt:plugin/files.read": async,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// World `mail-plugin`.
pub mod mail {
    wasmtime::component::bindgen!({
        path: "../plugins/wit",
        world: "vakt:plugin/mail-plugin",
        exports: { default: async },
        with: {
            "vakt:plugin/types": super::host::vakt::plugin::types,
            "vakt:plugin/log": super::host::vakt::plugin::log,
            "vakt:plugin/settings": super::host::vakt::plugin::settings,
            "vakt:plugin/secrets": super::host::vakt::plugin::secrets,
            "vakt:plugin/smtp": super::host::vakt::plugin::smtp,
            "vakt:plugin/files": super::host::vakt::plugin::files,
        },
    });
}

/// World `ticketing-plugin`.
pub mod ticketing {
    wasmtime::component::bindgen!({
        path: "../plugins/wit",
        world: "vakt:plugin/ticketing-plugin",
        exports: { default: async },
        with: {
            "vakt:plugin/types": super::host::vakt::plugin::types,
            "vakt:plugin/log": super::host::vakt::plugin::log,
            "vakt:plugin/settings": super::host::vakt::plugin::settings,
            "vakt:plugin/secrets": super::host::vakt::plugin::secrets,
            "vakt:plugin/smtp": super::host::vakt::plugin::smtp,
            "vakt:plugin/files": super::host::vakt::plugin::files,
        },
    });
}

/// World `identity-plugin`.
pub mod identity {
    wasmtime::component::bindgen!({
        path: "../plugins/wit",
        world: "vakt:plugin/identity-plugin",
        exports: { default: async },
        with: {
            "vakt:plugin/types": super::host::vakt::plugin::types,
            "vakt:plugin/log": super::host::vakt::plugin::log,
            "vakt:plugin/settings": super::host::vakt::plugin::settings,
            "vakt:plugin/secrets": super::host::vakt::plugin::secrets,
            "vakt:plugin/smtp": super::host::vakt::plugin::smtp,
            "vakt:plugin/files": super::host::vakt::plugin::files,
        },
    });
}

/// World `generic-plugin`.
pub mod generic {
    wasmtime::component::bindgen!({
        path: "../plugins/wit",
        world: "vakt:plugin/generic-plugin",
        exports: { default: async },
        with: {
            "vakt:plugin/types": super::host::vakt::plugin::types,
            "vakt:plugin/log": super::host::vakt::plugin::log,
            "vakt:plugin/settings": super::host::vakt::plugin::settings,
            "vakt:plugin/secrets": super::host::vakt::plugin::secrets,
            "vakt:plugin/smtp": super::host::vakt::plugin::smtp,
            "vakt:plugin/files": super::host::vakt::plugin::files,
        },
    });
}

pub use host::vakt::plugin::types::{CallContext, Manifest, PluginError as WitError};
