//! The [`Manifest`] builder: what a plugin asks for. The host intersects it
//! with the grant in the daemon config at load and refuses a plugin that asks
//! for something not granted.

use crate::Manifest;

/// The connector roles; the export macro fills the manifest's `role` in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Mail,
    Ticketing,
    Identity,
    Generic,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Mail => "mail",
            Role::Ticketing => "ticketing",
            Role::Identity => "identity",
            Role::Generic => "generic",
        }
    }
}

impl Manifest {
    /// Starts a manifest that asks for nothing. `role` is filled in by the
    /// export macro from the world the plugin is exported as.
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> ManifestBuilder {
        ManifestBuilder {
            manifest: Manifest {
                name: name.into(),
                version: version.into(),
                role: String::new(),
                http: false,
                smtp: false,
                secrets: Vec::new(),
                settings: Vec::new(),
                files: Vec::new(),
            },
        }
    }
}

/// Builds a [`Manifest`]; see [`Manifest::builder`].
#[derive(Clone, Debug)]
pub struct ManifestBuilder {
    manifest: Manifest,
}

impl ManifestBuilder {
    /// Asks for outgoing HTTP (the origins come from the grant).
    pub fn http(mut self) -> Self {
        self.manifest.http = true;
        self
    }

    /// Asks for the host `smtp` interface.
    pub fn smtp(mut self) -> Self {
        self.manifest.smtp = true;
        self
    }

    /// Asks for a secret by name, read with [`crate::secrets::get`].
    pub fn secret(mut self, name: impl Into<String>) -> Self {
        push_unique(&mut self.manifest.secrets, name.into());
        self
    }

    /// Declares a setting it reads with [`crate::settings::get`].
    pub fn setting(mut self, name: impl Into<String>) -> Self {
        push_unique(&mut self.manifest.settings, name.into());
        self
    }

    /// Asks for a granted file by name, read with [`crate::files::read`].
    pub fn file(mut self, name: impl Into<String>) -> Self {
        push_unique(&mut self.manifest.files, name.into());
        self
    }

    pub fn build(self) -> Manifest {
        self.manifest
    }
}

fn push_unique(list: &mut Vec<String>, name: String) {
    if !list.contains(&name) {
        list.push(name);
    }
}

/// The manifest as exported: the role is the one of the exported world.
pub(crate) fn for_role(mut manifest: Manifest, role: Role) -> Manifest {
    manifest.role = role.as_str().to_owned();
    manifest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_collects_what_is_asked_for() {
        let m = Manifest::builder("redmine", "1.2.0")
            .http()
            .setting("base-url")
            .setting("base-url")
            .secret("api-key")
            .file("users")
            .file("users")
            .build();
        assert_eq!(m.name, "redmine");
        assert_eq!(m.version, "1.2.0");
        assert!(m.http);
        assert!(!m.smtp);
        assert_eq!(m.settings, vec!["base-url"]);
        assert_eq!(m.secrets, vec!["api-key"]);
        assert_eq!(m.files, vec!["users"]);
        let m = for_role(m, Role::Ticketing);
        assert_eq!(m.role, "ticketing");
    }

    #[test]
    fn an_empty_manifest_asks_for_nothing() {
        let m = Manifest::builder("noop", "0.1.0").build();
        assert!(!m.http && !m.smtp && m.secrets.is_empty() && m.settings.is_empty());
        assert!(m.files.is_empty());
    }
}
