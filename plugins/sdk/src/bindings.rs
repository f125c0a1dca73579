//! Bindings of `plugins/wit/vakt-plugin.wit` (vakt:plugin@0.1.0).
//!
//! The contract's worlds (`mail-plugin`, `ticketing-plugin`, …) all export
//! `vakt:plugin/plugin`, and wit-bindgen names each interface's export macro
//! after the interface, so generating the four worlds side by side in one
//! crate would define `plugin`'s export macro four times. The SDK therefore
//! generates from small internal worlds (package `vakt:plugin-sdk`) that name
//! the contract's interfaces without changing any of them:
//!
//! - [`imports`]: `log`, `settings`, `secrets`, `smtp`, `files` and `types`,
//!   generated once and shared by everything else through `with`, so a
//!   `PluginError` is one Rust type everywhere;
//! - one world per export (`plugin`, `mail`, `ticketing`, `identity`,
//!   `generic`), each with a public export macro.
//!
//! `export_mail!` and friends invoke the `plugin` export and the role's export
//! in the plugin crate. Each emits the custom section describing its world;
//! `wit-component` merges them, so the component imports and exports exactly
//! what the contract's role world says (unused imports are dropped). The
//! SDK's own sections carry imports only, so linking the SDK never makes a
//! plugin export a role it does not implement.

/// The internal worlds; they refer to the contract's interfaces by id.
macro_rules! sdk_world {
    ($module:ident, $world:literal, $macro_name:literal) => {
        pub mod $module {
            wit_bindgen::generate!({
                path: "../wit/vakt-plugin.wit",
                inline: "
                    package vakt:plugin-sdk;

                    world imports {
                        import vakt:plugin/types@0.1.0;
                        import vakt:plugin/log@0.1.0;
                        import vakt:plugin/settings@0.1.0;
                        import vakt:plugin/secrets@0.1.0;
                        import vakt:plugin/smtp@0.1.0;
                        import vakt:plugin/files@0.1.0;
                    }
                    world plugin-export { export vakt:plugin/plugin@0.1.0; }
                    world mail-export { export vakt:plugin/mail@0.1.0; }
                    world ticketing-export { export vakt:plugin/ticketing@0.1.0; }
                    world identity-export { export vakt:plugin/identity@0.1.0; }
                    world generic-export { export vakt:plugin/generic@0.1.0; }
                ",
                world: $world,
                with: {
                    "vakt:plugin/types@0.1.0": crate::bindings::imports::vakt::plugin::types,
                },
                pub_export_macro: true,
                export_macro_name: $macro_name,
                additional_derives: [PartialEq],
                generate_all,
            });
        }
    };
}

/// The imports every plugin may use (each still needs its grant), and the
/// shared types.
pub mod imports {
    wit_bindgen::generate!({
        path: "../wit/vakt-plugin.wit",
        inline: "
            package vakt:plugin-sdk;

            world imports {
                import vakt:plugin/types@0.1.0;
                import vakt:plugin/log@0.1.0;
                import vakt:plugin/settings@0.1.0;
                import vakt:plugin/secrets@0.1.0;
                import vakt:plugin/smtp@0.1.0;
                import vakt:plugin/files@0.1.0;
            }
        ",
        world: "imports",
        additional_derives: [PartialEq],
        generate_all,
    });
}

sdk_world!(plugin, "plugin-export", "export_plugin_world");
sdk_world!(mail, "mail-export", "export_mail_world");
sdk_world!(ticketing, "ticketing-export", "export_ticketing_world");
sdk_world!(identity, "identity-export", "export_identity_world");
sdk_world!(generic, "generic-export", "export_generic_world");
