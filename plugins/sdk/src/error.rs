//! Constructors for [`PluginError`], the error every operation returns.
//!
//! `retryable` tells the engine whether trying again later could help: a 5xx,
//! a timeout, a refused connection or a 429 can; a 400, a 401/403, a missing
//! setting or a malformed answer cannot. Messages are for the operator: name
//! the server, the status and what to fix, and never include a secret.

use std::fmt;

use crate::PluginError;

impl PluginError {
    /// A failure that another attempt will not fix (bad input, missing
    /// setting, refused credential).
    pub fn permanent(message: impl fmt::Display) -> Self {
        PluginError {
            message: message.to_string(),
            retryable: false,
            retry_after_secs: None,
        }
    }

    /// A failure that may go away (a timeout, a 5xx, a refused connection).
    pub fn retryable(message: impl fmt::Display) -> Self {
        PluginError {
            message: message.to_string(),
            retryable: true,
            retry_after_secs: None,
        }
    }

    /// A retryable failure where the remote asked to wait `secs` seconds.
    pub fn retry_after(message: impl fmt::Display, secs: u32) -> Self {
        PluginError {
            message: message.to_string(),
            retryable: true,
            retry_after_secs: Some(secs),
        }
    }

    /// The answer of a role operation the plugin does not implement.
    pub fn unsupported(role: &str, operation: &str) -> Self {
        Self::permanent(format_args!(
            "{role}.{operation} is not supported by this plugin; \
             pick a plugin that implements it for this connector"
        ))
    }

    /// Prefixes the message with some context (`"creating the ticket: …"`).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_retryable() {
        assert!(!PluginError::permanent("x").retryable);
        assert!(PluginError::retryable("x").retryable);
        let e = PluginError::retry_after("slow down", 30);
        assert!(e.retryable);
        assert_eq!(e.retry_after_secs, Some(30));
        let e = PluginError::unsupported("ticketing", "close");
        assert!(!e.retryable);
        assert!(e.message.starts_with("ticketing.close is not supported"));
        let e = PluginError::permanent("bad").context("sending");
        assert_eq!(e.message, "sending: bad");
        assert!(e.to_string().contains("sending: bad"));
    }
}
