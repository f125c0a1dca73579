//! The directory read from the three CSV tables, checked as a whole, and
//! the identity operations answered from it.
//!
//! - users: `id,user_name,email,display_name,manager` and optionally
//!   `active`; `manager` is the manager's user id or e-mail address;
//! - groups: `id,name`;
//! - memberships: `group,user`, both by id.
//!
//! Column names are matched case-insensitively, in any order; other columns
//! are ignored. A duplicate id, an unknown manager, group or user, or an
//! unreadable `active` is an error naming the file, line and column. A
//! user's `manager` in the answers is the manager's e-mail address, as the
//! WIT `user` record says.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use vakt_plugin_sdk::PluginError;
use vakt_plugin_sdk::identity::{Group, User};

use crate::csv::{CsvError, Table};
use crate::filter::{Filter, Op};

/// One account.
#[derive(Debug, Clone, PartialEq)]
struct Person {
    id: String,
    user_name: String,
    email: Option<String>,
    display_name: Option<String>,
    /// Index of the manager in `Directory::users`.
    manager: Option<usize>,
    active: bool,
}

/// One group and its members (indexes into `Directory::users`).
#[derive(Debug, Clone, PartialEq)]
struct Team {
    id: String,
    name: String,
    members: Vec<usize>,
}

/// The users, and the groups when they were read.
#[derive(Debug, Clone, PartialEq)]
pub struct Directory {
    users: Vec<Person>,
    by_id: HashMap<String, usize>,
    groups: Vec<Team>,
}

fn nonempty(s: &str) -> Option<String> {
    Some(s.to_owned()).filter(|s| !s.is_empty())
}

impl Directory {
    /// The users table alone (enough for `list_users` and `get_manager`).
    pub fn from_users(users: &Table) -> Result<Directory, CsvError> {
        let [id, user_name, email, display_name, manager] =
            ["id", "user_name", "email", "display_name", "manager"].map(|c| users.column(c));
        let (id, user_name, email, display_name, manager) =
            (id?, user_name?, email?, display_name?, manager?);
        let active = users.optional("active");

        let mut people = Vec::with_capacity(users.rows.len());
        let mut by_id = HashMap::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        // E-mail (lower case) → index, or None when two users share it.
        let mut by_email: HashMap<String, Option<usize>> = HashMap::new();
        for (i, row) in users.rows.iter().enumerate() {
            let field = |c: usize| row.fields[c].as_str();
            let required = |c: usize, what: &str| {
                nonempty(field(c))
                    .ok_or_else(|| users.error_at(row, c, format!("the {what} is empty")))
            };
            let uid = required(id, "id")?;
            if let Some(first) = by_id.insert(uid.clone(), i) {
                let line = users.rows[first].line;
                return Err(users.error_at(
                    row,
                    id,
                    format!("duplicate id `{uid}` (first on line {line})"),
                ));
            }
            let name = required(user_name, "user name")?;
            if let Some(first) = by_name.insert(name.to_lowercase(), i) {
                let line = users.rows[first].line;
                return Err(users.error_at(
                    row,
                    user_name,
                    format!("duplicate user name `{name}` (first on line {line})"),
                ));
            }
            let mail = nonempty(field(email));
            if let Some(m) = &mail {
                if !m.contains('@') {
                    return Err(users.error_at(
                        row,
                        email,
                        format!("`{m}` is not an e-mail address"),
                    ));
                }
                match by_email.entry(m.to_lowercase()) {
                    Entry::Occupied(mut e) => *e.get_mut() = None,
                    Entry::Vacant(e) => {
                        e.insert(Some(i));
                    }
                }
            }
            let active = match active {
                Some(c) => parse_active(field(c)).ok_or_else(|| {
                    users.error_at(
                        row,
                        c,
                        format!(
                            "`{}` is not a yes or no (write true/false, yes/no, ja/nei, 1/0, \
                             or leave it empty for active)",
                            field(c)
                        ),
                    )
                })?,
                None => true,
            };
            people.push(Person {
                id: uid,
                user_name: name,
                email: mail,
                display_name: nonempty(field(display_name)),
                manager: None,
                active,
            });
        }
        // Managers, once every user is known (a manager may come later).
        for (i, row) in users.rows.iter().enumerate() {
            let Some(m) = nonempty(&row.fields[manager]) else {
                continue;
            };
            let found = match by_id.get(&m) {
                Some(&j) => j,
                None => match by_email.get(&m.to_lowercase()) {
                    Some(Some(j)) => *j,
                    Some(None) => {
                        return Err(users.error_at(
                            row,
                            manager,
                            format!(
                                "the manager `{m}` is ambiguous: several users have this \
                                 e-mail address (give the manager's id)"
                            ),
                        ));
                    }
                    None => {
                        return Err(users.error_at(
                            row,
                            manager,
                            format!(
                                "unknown manager `{m}`: no user in file `{}` has this id or \
                                 e-mail address",
                                users.file
                            ),
                        ));
                    }
                },
            };
            people[i].manager = Some(found);
        }
        Ok(Directory {
            users: people,
            by_id,
            groups: Vec::new(),
        })
    }

    /// Adds the groups, and their members when `memberships` is given.
    pub fn with_groups(
        mut self,
        groups: &Table,
        memberships: Option<&Table>,
    ) -> Result<Directory, CsvError> {
        let (id, name) = (groups.column("id")?, groups.column("name")?);
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for (i, row) in groups.rows.iter().enumerate() {
            let gid = nonempty(&row.fields[id])
                .ok_or_else(|| groups.error_at(row, id, "the id is empty"))?;
            if let Some(first) = by_id.insert(gid.clone(), i) {
                let line = groups.rows[first].line;
                return Err(groups.error_at(
                    row,
                    id,
                    format!("duplicate id `{gid}` (first on line {line})"),
                ));
            }
            let gname = nonempty(&row.fields[name])
                .ok_or_else(|| groups.error_at(row, name, "the name is empty"))?;
            self.groups.push(Team {
                id: gid,
                name: gname,
                members: Vec::new(),
            });
        }
        let Some(m) = memberships else {
            return Ok(self);
        };
        let (group, user) = (m.column("group")?, m.column("user")?);
        for row in &m.rows {
            let (g, u) = (&row.fields[group], &row.fields[user]);
            let &gi = by_id.get(g).ok_or_else(|| {
                m.error_at(
                    row,
                    group,
                    format!(
                        "unknown group `{g}`: no group in file `{}` has this id",
                        groups.file
                    ),
                )
            })?;
            let &ui = self.by_id.get(u).ok_or_else(|| {
                m.error_at(
                    row,
                    user,
                    format!("unknown user `{u}`: no user in the users file has this id"),
                )
            })?;
            let members = &mut self.groups[gi].members;
            if !members.contains(&ui) {
                members.push(ui);
            }
        }
        Ok(self)
    }

    /// The users matching `filter` (`userName eq`, `id eq`), in file order.
    pub fn list_users(&self, filter: Option<&str>) -> Result<Vec<User>, PluginError> {
        let filter = parse(filter, "userName eq \"…\" or id eq \"…\"")?;
        let keep = |p: &Person| match &filter {
            None => Ok(true),
            Some(f) if f.op == Op::Eq && f.is_on("userName") => Ok(f.matches(&p.user_name, false)),
            Some(f) if f.op == Op::Eq && f.is_on("id") => Ok(f.matches(&p.id, true)),
            Some(f) => Err(refused(f, "userName eq \"…\" or id eq \"…\"")),
        };
        let mut out = Vec::new();
        for p in &self.users {
            if keep(p)? {
                out.push(self.user(p));
            }
        }
        Ok(out)
    }

    /// The groups matching `filter` (`displayName eq`/`sw`, `id eq`), in
    /// file order, with their members when asked.
    pub fn list_groups(
        &self,
        filter: Option<&str>,
        include_members: bool,
    ) -> Result<Vec<Group>, PluginError> {
        const SUPPORTED: &str = "displayName eq \"…\", displayName sw \"…\" or id eq \"…\"";
        let filter = parse(filter, SUPPORTED)?;
        let mut out = Vec::new();
        for t in &self.groups {
            let keep = match &filter {
                None => true,
                Some(f) if f.is_on("displayName") => f.matches(&t.name, false),
                Some(f) if f.op == Op::Eq && f.is_on("id") => f.matches(&t.id, true),
                Some(f) => return Err(refused(f, SUPPORTED)),
            };
            if keep {
                out.push(Group {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    members: if include_members {
                        t.members
                            .iter()
                            .map(|&i| self.user(&self.users[i]))
                            .collect()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
        Ok(out)
    }

    /// The manager of `user` (an id, a user name or an e-mail address).
    pub fn get_manager(&self, user: &str) -> Result<Option<User>, PluginError> {
        let i = self.find(user).ok_or_else(|| {
            PluginError::permanent(format_args!(
                "no user `{user}` in the users file (looked for an id, a user name and an \
                 e-mail address)"
            ))
        })?;
        Ok(self.users[i].manager.map(|m| self.user(&self.users[m])))
    }

    fn find(&self, key: &str) -> Option<usize> {
        let key = key.trim();
        self.by_id.get(key).copied().or_else(|| {
            let lower = key.to_lowercase();
            self.users.iter().position(|p| {
                p.user_name.to_lowercase() == lower
                    || p.email.as_ref().is_some_and(|e| e.to_lowercase() == lower)
            })
        })
    }

    /// The WIT record of `p`: the manager as an e-mail address.
    fn user(&self, p: &Person) -> User {
        let manager = p.manager.map(|m| &self.users[m]).and_then(|m| {
            m.email
                .clone()
                .or_else(|| Some(m.user_name.clone()).filter(|n| n.contains('@')))
        });
        User {
            id: p.id.clone(),
            user_name: p.user_name.clone(),
            email: p.email.clone(),
            display_name: p.display_name.clone(),
            manager,
            active: p.active,
        }
    }
}

fn parse(filter: Option<&str>, supported: &str) -> Result<Option<Filter>, PluginError> {
    Filter::parse(filter.unwrap_or("")).map_err(|why| {
        PluginError::permanent(format_args!(
            "the filter `{}` is not supported by the file directory: {why}; use {supported}",
            filter.unwrap_or("")
        ))
    })
}

fn refused(f: &Filter, supported: &str) -> PluginError {
    let op = match f.op {
        Op::Eq => "eq",
        Op::Sw => "sw",
    };
    PluginError::permanent(format_args!(
        "the filter `{} {op} \"{}\"` is not supported by the file directory; use {supported}",
        f.attribute, f.value
    ))
}

/// `active`: empty is active.
fn parse_active(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "" | "true" | "yes" | "y" | "1" | "ja" | "j" | "active" | "aktiv" => Some(true),
        "false" | "no" | "n" | "0" | "nei" | "nej" | "inactive" | "inaktiv" | "disabled" => {
            Some(false)
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "directory_tests.rs"]
mod tests;
