//! The host's imports, wrapped. Each still needs its grant: the host answers
//! a call to an interface the plugin was not granted with an error (or, for
//! `settings`, with nothing).

/// Logging into the daemon's log, tagged by the host with the plugin and the
/// instance. Never log a secret.
pub mod log {
    use crate::bindings::imports::vakt::plugin::log as wit;
    pub use crate::bindings::imports::vakt::plugin::log::Level;

    pub fn log(level: Level, message: impl AsRef<str>) {
        wit::log(level, message.as_ref());
    }
    pub fn trace(message: impl AsRef<str>) {
        log(Level::Trace, message);
    }
    pub fn debug(message: impl AsRef<str>) {
        log(Level::Debug, message);
    }
    pub fn info(message: impl AsRef<str>) {
        log(Level::Info, message);
    }
    pub fn warn(message: impl AsRef<str>) {
        log(Level::Warn, message);
    }
    pub fn error(message: impl AsRef<str>) {
        log(Level::Error, message);
    }
}

/// Non-secret settings from the plugin's section of the daemon config. A
/// plugin lists the names it reads in its manifest.
pub mod settings {
    use crate::PluginError;
    use crate::bindings::imports::vakt::plugin::settings as wit;

    /// The setting's value, if it is set (empty counts as unset).
    pub fn get(name: &str) -> Option<String> {
        wit::get(name).filter(|v| !v.trim().is_empty())
    }

    /// The setting's value, or a non-retryable error that says where to set it.
    pub fn require(name: &str) -> Result<String, PluginError> {
        get(name).ok_or_else(|| missing(name))
    }

    pub(crate) fn missing(name: &str) -> PluginError {
        PluginError::permanent(format_args!(
            "the setting `{name}` is not set: add it to this plugin's settings in the daemon config"
        ))
    }
}

/// Secrets granted to this plugin by name. Prefer host-injected credentials
/// (the plugin never sees them); never log what this returns.
pub mod secrets {
    use crate::PluginError;
    use crate::bindings::imports::vakt::plugin::secrets as wit;

    pub fn get(name: &str) -> Result<String, PluginError> {
        wit::get(name)
    }
}

/// Sending a complete RFC 5322 message through the relay granted to this
/// plugin.
pub mod smtp {
    use crate::PluginError;
    use crate::bindings::imports::vakt::plugin::smtp as wit;
    pub use crate::bindings::imports::vakt::plugin::smtp::Envelope;

    /// Returns the relay's final reply (`250 2.0.0 Ok: queued as …`).
    pub fn send(envelope: &Envelope, message: &[u8]) -> Result<String, PluginError> {
        wit::send(envelope, message)
    }
}

/// Files granted to this plugin by name: the host reads the file the daemon
/// config maps the name to and hands over its content (the plugin has no
/// filesystem). A plugin lists the names it reads in its manifest
/// ([`crate::ManifestBuilder::file`]).
pub mod files {
    use crate::PluginError;
    use crate::bindings::imports::vakt::plugin::files as wit;

    /// The whole content of granted file `name`. The error (not granted,
    /// missing, over the host's size cap) names the grant to fix.
    pub fn read(name: &str) -> Result<Vec<u8>, PluginError> {
        wit::read(name)
    }
}

/// `vakt_plugin_sdk::info!("sent {}", id)`: logs at info level through the host.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::info(::std::format!($($arg)*)) };
}

/// Logs at debug level through the host.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::debug(::std::format!($($arg)*)) };
}

/// Logs at warn level through the host.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::warn(::std::format!($($arg)*)) };
}

/// Logs at error level through the host.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::error(::std::format!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_setting_says_where_to_set_it() {
        let e = super::settings::missing("from");
        assert!(!e.retryable);
        assert!(e.message.contains("`from`"));
        assert!(e.message.contains("daemon config"));
    }
}
