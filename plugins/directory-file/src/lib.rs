//! vakt's `identity` connector for a directory that exists only as a CSV
//! export (a school's student administration system): users with their
//! managers, groups, and memberships. The host reads the granted files and
//! hands the plugin their content (the plugin has no filesystem); the
//! directory is read-only.
//!
//! Settings (the grant names of the files, each defaulting to itself):
//! `users`, `groups`, `memberships`. Grant the files in the daemon config:
//!
//! ```toml
//! [plugins.directory]
//! wasm = "/usr/lib/vakt/plugins/vakt_plugin_directory_file.wasm"
//! role = "identity"
//! files = { users = "/srv/export/users.csv", groups = "/srv/export/groups.csv", memberships = "/srv/export/memberships.csv" }
//! ```
//!
//! The files (see [`csv`] for the format and [`directory`] for the
//! columns) are read at every call, so a new export is used as soon as it
//! is written. `list_users` answers `userName eq` and `id eq` filters;
//! `list_groups` answers `displayName eq`, `displayName sw` and `id eq`;
//! both answer one page. `get_manager` takes an id, a user name or an
//! e-mail address. `remove_member` and `disable_user` fail, not retryable:
//! the change must be made in the source system.
//!
//! Modules: [`csv`] (parsing), [`filter`] (the filters), [`directory`]
//! (checking the tables and answering).

pub mod csv;
pub mod directory;
pub mod filter;

use vakt_plugin_sdk::identity::{GroupPage, User, UserPage};
use vakt_plugin_sdk::prelude::*;
use vakt_plugin_sdk::{files, settings};

use crate::csv::Table;
use crate::directory::Directory;

/// The settings that name the files, which are also their default names.
pub const FILE_SETTINGS: [&str; 3] = ["users", "groups", "memberships"];

pub struct DirectoryFile;

/// The grant names of the three files, from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNames {
    pub users: String,
    pub groups: String,
    pub memberships: String,
}

impl FileNames {
    /// From a lookup of settings (empty or unset: the default name).
    pub fn from(get: impl Fn(&str) -> Option<String>) -> FileNames {
        let name = |s: &str| {
            get(s)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| s.to_owned())
        };
        FileNames {
            users: name("users"),
            groups: name("groups"),
            memberships: name("memberships"),
        }
    }

    fn from_settings() -> FileNames {
        FileNames::from(settings::get)
    }
}

/// The manifest for `names`: the three settings and the three files.
pub fn manifest_for(names: &FileNames) -> Manifest {
    let mut m = Manifest::builder("directory-file", env!("CARGO_PKG_VERSION"));
    for s in FILE_SETTINGS {
        m = m.setting(s);
    }
    m.file(names.users.as_str())
        .file(names.groups.as_str())
        .file(names.memberships.as_str())
        .build()
}

impl Plugin for DirectoryFile {
    fn new() -> Self {
        DirectoryFile
    }

    fn manifest() -> Manifest {
        // The host shows the plugin its settings while it reads the
        // manifest, so a renamed file is asked for under its name.
        manifest_for(&FileNames::from_settings())
    }
}

fn table(name: &str) -> Result<Table, PluginError> {
    let bytes = files::read(name)?;
    Table::parse(name, &bytes).map_err(PluginError::permanent)
}

fn users() -> Result<Directory, PluginError> {
    let names = FileNames::from_settings();
    Directory::from_users(&table(&names.users)?).map_err(PluginError::permanent)
}

/// A change the file directory cannot make.
pub fn read_only(what: &str) -> PluginError {
    PluginError::permanent(format_args!(
        "the file directory is read-only: {what} in the source system that writes the \
         export; the next export will show it"
    ))
}

impl IdentityPlugin for DirectoryFile {
    fn list_users(
        &mut self,
        _ctx: &CallContext,
        filter: Option<String>,
        _cursor: Option<String>,
    ) -> Result<UserPage, PluginError> {
        Ok(UserPage {
            users: users()?.list_users(filter.as_deref())?,
            next: None,
        })
    }

    fn list_groups(
        &mut self,
        _ctx: &CallContext,
        filter: Option<String>,
        include_members: bool,
        _cursor: Option<String>,
    ) -> Result<GroupPage, PluginError> {
        let names = FileNames::from_settings();
        let groups = table(&names.groups)?;
        let memberships = if include_members {
            Some(table(&names.memberships)?)
        } else {
            None
        };
        let directory = users()?
            .with_groups(&groups, memberships.as_ref())
            .map_err(PluginError::permanent)?;
        Ok(GroupPage {
            groups: directory.list_groups(filter.as_deref(), include_members)?,
            next: None,
        })
    }

    fn get_manager(
        &mut self,
        _ctx: &CallContext,
        user: String,
    ) -> Result<Option<User>, PluginError> {
        users()?.get_manager(&user)
    }

    fn remove_member(
        &mut self,
        _ctx: &CallContext,
        group: String,
        user: String,
    ) -> Result<bool, PluginError> {
        Err(read_only(&format!(
            "remove user `{user}` from group `{group}`"
        )))
    }

    fn disable_user(&mut self, _ctx: &CallContext, user: String) -> Result<bool, PluginError> {
        Err(read_only(&format!("disable user `{user}`")))
    }
}

vakt_plugin_sdk::export_identity!(DirectoryFile);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_asks_for_the_named_files() {
        let m = manifest_for(&FileNames::from(|_| None));
        assert_eq!(m.files, vec!["users", "groups", "memberships"]);
        assert_eq!(m.settings, vec!["users", "groups", "memberships"]);
        assert!(!m.http && !m.smtp && m.secrets.is_empty());
        let names = FileNames::from(|s| (s == "users").then(|| " staff ".to_owned()));
        assert_eq!(names.users, "staff");
        assert_eq!(
            manifest_for(&names).files,
            vec!["staff", "groups", "memberships"]
        );
    }

    #[test]
    fn changes_are_refused_without_a_retry() {
        let e = read_only("disable user `u1`");
        assert!(!e.retryable);
        assert!(e.message.contains("read-only"), "{}", e.message);
        assert!(e.message.contains("source system"), "{}", e.message);
    }
}
