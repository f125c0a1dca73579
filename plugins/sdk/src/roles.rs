//! The role traits and the export macros.
//!
//! A plugin type implements [`Plugin`] and one role trait. Every operation of
//! a role trait has a default that fails with a non-retryable "not
//! supported" error, so a connector implements only what its product can do.
//! The export macro picks the world: [`export_mail!`](crate::export_mail),
//! [`export_ticketing!`](crate::export_ticketing),
//! [`export_identity!`](crate::export_identity),
//! [`export_generic!`](crate::export_generic).
//!
//! The host instantiates afresh for every call, and the SDK calls
//! [`Plugin::new`] once per call, so `&mut self` state lives for one call.

use crate::{CallContext, Manifest, PluginError};

/// The records of the `mail` interface.
pub mod mail {
    pub use crate::bindings::mail::exports::vakt::plugin::mail::{Message, Sent};
}

/// The records of the `ticketing` interface.
pub mod ticketing {
    pub use crate::bindings::ticketing::exports::vakt::plugin::ticketing::{NewTicket, Ticket};
}

/// The records of the `identity` interface.
pub mod identity {
    pub use crate::bindings::identity::exports::vakt::plugin::identity::{
        Group, GroupPage, User, UserPage,
    };
}

/// What every plugin has: a constructor and a manifest.
pub trait Plugin: Sized + 'static {
    /// Creates the plugin for one call.
    fn new() -> Self;

    /// What the plugin needs (HTTP, SMTP, settings, secrets). The role is
    /// filled in by the export macro.
    fn manifest() -> Manifest;
}

/// A `mail` connector.
pub trait MailPlugin: Plugin {
    /// Sends one message; returns its Message-ID and the relay's answer.
    fn send(
        &mut self,
        ctx: &CallContext,
        message: mail::Message,
    ) -> Result<mail::Sent, PluginError> {
        let _ = (ctx, message);
        Err(PluginError::unsupported("mail", "send"))
    }
}

/// A `ticketing` connector.
pub trait TicketingPlugin: Plugin {
    /// Opens a ticket; a repeat with the same idempotency key must return the
    /// ticket the first call opened.
    fn create(
        &mut self,
        ctx: &CallContext,
        ticket: ticketing::NewTicket,
    ) -> Result<ticketing::Ticket, PluginError> {
        let _ = (ctx, ticket);
        Err(PluginError::unsupported("ticketing", "create"))
    }

    fn comment(
        &mut self,
        ctx: &CallContext,
        id: String,
        body: String,
        private: bool,
    ) -> Result<ticketing::Ticket, PluginError> {
        let _ = (ctx, id, body, private);
        Err(PluginError::unsupported("ticketing", "comment"))
    }

    fn update_status(
        &mut self,
        ctx: &CallContext,
        id: String,
        status: String,
        comment: Option<String>,
    ) -> Result<ticketing::Ticket, PluginError> {
        let _ = (ctx, id, status, comment);
        Err(PluginError::unsupported("ticketing", "update-status"))
    }

    fn get(&mut self, ctx: &CallContext, id: String) -> Result<ticketing::Ticket, PluginError> {
        let _ = (ctx, id);
        Err(PluginError::unsupported("ticketing", "get"))
    }

    fn close(
        &mut self,
        ctx: &CallContext,
        id: String,
        comment: Option<String>,
        resolution: Option<String>,
    ) -> Result<ticketing::Ticket, PluginError> {
        let _ = (ctx, id, comment, resolution);
        Err(PluginError::unsupported("ticketing", "close"))
    }
}

/// An `identity` connector.
pub trait IdentityPlugin: Plugin {
    fn list_users(
        &mut self,
        ctx: &CallContext,
        filter: Option<String>,
        cursor: Option<String>,
    ) -> Result<identity::UserPage, PluginError> {
        let _ = (ctx, filter, cursor);
        Err(PluginError::unsupported("identity", "list-users"))
    }

    fn list_groups(
        &mut self,
        ctx: &CallContext,
        filter: Option<String>,
        include_members: bool,
        cursor: Option<String>,
    ) -> Result<identity::GroupPage, PluginError> {
        let _ = (ctx, filter, include_members, cursor);
        Err(PluginError::unsupported("identity", "list-groups"))
    }

    fn get_manager(
        &mut self,
        ctx: &CallContext,
        user: String,
    ) -> Result<Option<identity::User>, PluginError> {
        let _ = (ctx, user);
        Err(PluginError::unsupported("identity", "get-manager"))
    }

    /// True if the user was a member and is no longer.
    fn remove_member(
        &mut self,
        ctx: &CallContext,
        group: String,
        user: String,
    ) -> Result<bool, PluginError> {
        let _ = (ctx, group, user);
        Err(PluginError::unsupported("identity", "remove-member"))
    }

    /// True if the account was active and is now disabled.
    fn disable_user(&mut self, ctx: &CallContext, user: String) -> Result<bool, PluginError> {
        let _ = (ctx, user);
        Err(PluginError::unsupported("identity", "disable-user"))
    }
}

/// Anything else: an action name and JSON in, JSON out.
pub trait GenericPlugin: Plugin {
    fn invoke(
        &mut self,
        ctx: &CallContext,
        action: &str,
        input_json: String,
    ) -> Result<String, PluginError> {
        let _ = (ctx, input_json);
        Err(PluginError::permanent(format_args!(
            "action `{action}` is not supported by this plugin"
        )))
    }
}

/// Exports a [`MailPlugin`] as the `vakt:plugin` `mail-plugin` world.
#[macro_export]
macro_rules! export_mail {
    ($plugin:ty) => {
        // Natively (unit tests, clippy) there is nothing to export: the
        // export names (`vakt:plugin/...#...`) are component-model names.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = $crate::__private::implements::<$crate::__private::MailExport<$plugin>>;
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __VaktPluginExport = $crate::__private::MailExport<$plugin>;
            $crate::bindings::plugin::export_plugin_world!(
                __VaktPluginExport with_types_in $crate::bindings::plugin
            );
            $crate::bindings::mail::export_mail_world!(
                __VaktPluginExport with_types_in $crate::bindings::mail
            );
        };
    };
}

/// Exports a [`TicketingPlugin`] as the `vakt:plugin` `ticketing-plugin` world.
#[macro_export]
macro_rules! export_ticketing {
    ($plugin:ty) => {
        // Natively (unit tests, clippy) there is nothing to export: the
        // export names (`vakt:plugin/...#...`) are component-model names.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() =
            $crate::__private::implements::<$crate::__private::TicketingExport<$plugin>>;
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __VaktPluginExport = $crate::__private::TicketingExport<$plugin>;
            $crate::bindings::plugin::export_plugin_world!(
                __VaktPluginExport with_types_in $crate::bindings::plugin
            );
            $crate::bindings::ticketing::export_ticketing_world!(
                __VaktPluginExport with_types_in $crate::bindings::ticketing
            );
        };
    };
}

/// Exports an [`IdentityPlugin`] as the `vakt:plugin` `identity-plugin` world.
#[macro_export]
macro_rules! export_identity {
    ($plugin:ty) => {
        // Natively (unit tests, clippy) there is nothing to export: the
        // export names (`vakt:plugin/...#...`) are component-model names.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = $crate::__private::implements::<$crate::__private::IdentityExport<$plugin>>;
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __VaktPluginExport = $crate::__private::IdentityExport<$plugin>;
            $crate::bindings::plugin::export_plugin_world!(
                __VaktPluginExport with_types_in $crate::bindings::plugin
            );
            $crate::bindings::identity::export_identity_world!(
                __VaktPluginExport with_types_in $crate::bindings::identity
            );
        };
    };
}

/// Exports a [`GenericPlugin`] as the `vakt:plugin` `generic-plugin` world.
#[macro_export]
macro_rules! export_generic {
    ($plugin:ty) => {
        // Natively (unit tests, clippy) there is nothing to export: the
        // export names (`vakt:plugin/...#...`) are component-model names.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = $crate::__private::implements::<$crate::__private::GenericExport<$plugin>>;
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __VaktPluginExport = $crate::__private::GenericExport<$plugin>;
            $crate::bindings::plugin::export_plugin_world!(
                __VaktPluginExport with_types_in $crate::bindings::plugin
            );
            $crate::bindings::generic::export_generic_world!(
                __VaktPluginExport with_types_in $crate::bindings::generic
            );
        };
    };
}

/// The types the generated export glue calls: one per role, each forwarding
/// to the role trait of `T`.
pub(crate) mod adapters {
    use std::marker::PhantomData;

    use super::*;
    use crate::bindings;
    use crate::manifest::{Role, for_role};

    macro_rules! adapter {
        ($name:ident, $bound:ident, $role:expr) => {
            pub struct $name<T>(PhantomData<T>);

            impl<T: $bound> bindings::plugin::exports::vakt::plugin::plugin::Guest for $name<T> {
                fn manifest() -> Manifest {
                    for_role(T::manifest(), $role)
                }
            }
        };
    }

    adapter!(MailExport, MailPlugin, Role::Mail);
    adapter!(TicketingExport, TicketingPlugin, Role::Ticketing);
    adapter!(IdentityExport, IdentityPlugin, Role::Identity);
    adapter!(GenericExport, GenericPlugin, Role::Generic);

    impl<T: MailPlugin> bindings::mail::exports::vakt::plugin::mail::Guest for MailExport<T> {
        fn send(ctx: CallContext, message: mail::Message) -> Result<mail::Sent, PluginError> {
            T::new().send(&ctx, message)
        }
    }

    impl<T: TicketingPlugin> bindings::ticketing::exports::vakt::plugin::ticketing::Guest
        for TicketingExport<T>
    {
        fn create(
            ctx: CallContext,
            ticket: ticketing::NewTicket,
        ) -> Result<ticketing::Ticket, PluginError> {
            T::new().create(&ctx, ticket)
        }
        fn comment(
            ctx: CallContext,
            id: String,
            body: String,
            private: bool,
        ) -> Result<ticketing::Ticket, PluginError> {
            T::new().comment(&ctx, id, body, private)
        }
        fn update_status(
            ctx: CallContext,
            id: String,
            status: String,
            comment: Option<String>,
        ) -> Result<ticketing::Ticket, PluginError> {
            T::new().update_status(&ctx, id, status, comment)
        }
        fn get(ctx: CallContext, id: String) -> Result<ticketing::Ticket, PluginError> {
            T::new().get(&ctx, id)
        }
        fn close(
            ctx: CallContext,
            id: String,
            comment: Option<String>,
            resolution: Option<String>,
        ) -> Result<ticketing::Ticket, PluginError> {
            T::new().close(&ctx, id, comment, resolution)
        }
    }

    impl<T: IdentityPlugin> bindings::identity::exports::vakt::plugin::identity::Guest
        for IdentityExport<T>
    {
        fn list_users(
            ctx: CallContext,
            filter: Option<String>,
            cursor: Option<String>,
        ) -> Result<identity::UserPage, PluginError> {
            T::new().list_users(&ctx, filter, cursor)
        }
        fn list_groups(
            ctx: CallContext,
            filter: Option<String>,
            include_members: bool,
            cursor: Option<String>,
        ) -> Result<identity::GroupPage, PluginError> {
            T::new().list_groups(&ctx, filter, include_members, cursor)
        }
        fn get_manager(
            ctx: CallContext,
            user: String,
        ) -> Result<Option<identity::User>, PluginError> {
            T::new().get_manager(&ctx, user)
        }
        fn remove_member(
            ctx: CallContext,
            group: String,
            user: String,
        ) -> Result<bool, PluginError> {
            T::new().remove_member(&ctx, group, user)
        }
        fn disable_user(ctx: CallContext, user: String) -> Result<bool, PluginError> {
            T::new().disable_user(&ctx, user)
        }
    }

    impl<T: GenericPlugin> bindings::generic::exports::vakt::plugin::generic::Guest
        for GenericExport<T>
    {
        fn invoke(
            ctx: CallContext,
            action: String,
            input_json: String,
        ) -> Result<String, PluginError> {
            T::new().invoke(&ctx, &action, input_json)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;
    impl Plugin for Nothing {
        fn new() -> Self {
            Nothing
        }
        fn manifest() -> Manifest {
            Manifest::builder("nothing", "0.0.0").build()
        }
    }
    impl TicketingPlugin for Nothing {}
    impl GenericPlugin for Nothing {}

    fn ctx() -> CallContext {
        CallContext {
            instance_id: "i".into(),
            step_id: "s".into(),
            idempotency_key: "i/s/0".into(),
            attempt: 1,
            deadline_ms: 0,
        }
    }

    #[test]
    fn defaults_say_not_supported_and_are_not_retryable() {
        let e = Nothing::new()
            .close(&ctx(), "1".into(), None, None)
            .unwrap_err();
        assert!(!e.retryable);
        assert!(
            e.message.contains("ticketing.close is not supported"),
            "{}",
            e.message
        );
        let e = Nothing::new()
            .invoke(&ctx(), "frobnicate", "{}".into())
            .unwrap_err();
        assert!(!e.retryable);
        assert!(e.message.contains("`frobnicate`"), "{}", e.message);
    }

    #[test]
    fn the_adapter_fills_in_the_role() {
        use crate::bindings::plugin::exports::vakt::plugin::plugin::Guest;
        let m = adapters::TicketingExport::<Nothing>::manifest();
        assert_eq!(m.role, "ticketing");
        assert_eq!(m.name, "nothing");
    }
}
