//! Guest SDK for vakt plugins: WebAssembly components (wasm32-wasip2) that
//! implement the `vakt:plugin@0.1.0` interface in `plugins/wit/`.
//!
//! A plugin is a `cdylib` crate with one type that implements [`Plugin`]
//! (construction and manifest) and the trait of its role ([`MailPlugin`],
//! [`TicketingPlugin`], [`IdentityPlugin`] or [`GenericPlugin`]), exported
//! with the matching macro:
//!
//! ```
//! use vakt_plugin_sdk::prelude::*;
//!
//! struct Echo;
//!
//! impl Plugin for Echo {
//!     fn new() -> Self {
//!         Echo
//!     }
//!     fn manifest() -> Manifest {
//!         Manifest::builder("echo", env!("CARGO_PKG_VERSION")).build()
//!     }
//! }
//!
//! impl GenericPlugin for Echo {
//!     fn invoke(&mut self, _ctx: &CallContext, _action: &str, input: String) -> Result<String, PluginError> {
//!         Ok(input)
//!     }
//! }
//!
//! vakt_plugin_sdk::export_generic!(Echo);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release -p <plugin>`.
//!
//! Modules:
//! - [`bindings`]: the generated bindings (one module per internal world);
//! - [`error`]: constructors for [`PluginError`] that set `retryable` right;
//! - [`manifest`]: the [`Manifest`] builder;
//! - [`roles`]: the role traits, with default methods that answer "not
//!   supported", and the export macros;
//! - [`log`], [`settings`], [`secrets`], [`smtp`], [`files`]: the host's
//!   imports;
//! - [`http`]: a small typed HTTP client over `wasi:http/outgoing-handler`
//!   that maps transport errors and HTTP statuses to [`PluginError`].
//!
//! The host instantiates a fresh component for every call: nothing a plugin
//! keeps in memory survives from one call to the next. Everything except
//! the host calls is plain Rust and compiles natively, so pure helpers can
//! be unit-tested with `cargo test`.

pub mod bindings;
pub mod error;
mod host;
pub mod http;
pub mod manifest;
pub mod roles;

pub use bindings::imports::vakt::plugin::types::{CallContext, Manifest, PluginError};
pub use host::{files, log, secrets, settings, smtp};
pub use manifest::{ManifestBuilder, Role};
pub use roles::{
    GenericPlugin, IdentityPlugin, MailPlugin, Plugin, TicketingPlugin, identity, mail, ticketing,
};

/// What most plugins need in scope.
pub mod prelude {
    pub use crate::http::{Client, Response};
    pub use crate::{
        CallContext, GenericPlugin, IdentityPlugin, MailPlugin, Manifest, Plugin, PluginError,
        TicketingPlugin,
    };
}

/// Used by the export macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::roles::adapters::{GenericExport, IdentityExport, MailExport, TicketingExport};

    /// Checks natively that an adapter's role trait is implemented.
    pub fn implements<T: crate::bindings::plugin::exports::vakt::plugin::plugin::Guest>() {}
}

/// Compiles the example plugin in `plugins/wit/README.md`.
#[cfg(doctest)]
#[doc = include_str!("../../wit/README.md")]
pub struct ReadmeDoctests;
