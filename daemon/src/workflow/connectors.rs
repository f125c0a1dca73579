//! The connector catalogue: the roles a workflow may call and their actions.
//!
//! A workflow names a role (`ticketing`), never a product (Redmine); the
//! daemon's config binds each role to a plugin. The catalogue is the contract
//! between the language and the plugin interface (`plugins/wit/`): the
//! validator checks every `call:` against it, arguments included.

/// One action of a role, with its arguments.
#[derive(Debug, Clone, Copy)]
pub struct Action {
    pub name: &'static str,
    pub summary: &'static str,
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
}

/// A connector role.
#[derive(Debug, Clone, Copy)]
pub struct Role {
    pub name: &'static str,
    pub summary: &'static str,
    pub actions: &'static [Action],
}

const fn action(
    name: &'static str,
    summary: &'static str,
    required: &'static [&'static str],
    optional: &'static [&'static str],
) -> Action {
    Action {
        name,
        summary,
        required,
        optional,
    }
}

/// Every role and action a workflow may call.
pub const ROLES: &[Role] = &[
    Role {
        name: "mail",
        summary: "sends mail through the configured relay",
        actions: &[action(
            "send",
            "send a message; returns its Message-ID",
            &["to", "subject", "body"],
            &["cc", "bcc", "reply_to", "html", "from_name"],
        )],
    },
    Role {
        name: "ticketing",
        summary: "the municipality's ticket system",
        actions: &[
            action(
                "create",
                "open a ticket; returns `id` and `url`",
                &["subject", "body"],
                &["queue", "priority", "requester", "assignee", "fields"],
            ),
            action(
                "comment",
                "add a comment to a ticket",
                &["ticket", "body"],
                &["private"],
            ),
            action(
                "update_status",
                "change a ticket's status",
                &["ticket", "status"],
                &["comment"],
            ),
            action("get", "read a ticket", &["ticket"], &[]),
            action(
                "close",
                "close a ticket",
                &["ticket"],
                &["comment", "resolution"],
            ),
        ],
    },
    Role {
        name: "identity",
        summary: "the identity provider (SCIM, Entra ID, LDAP, a CSV export)",
        actions: &[
            action("list_users", "list user accounts", &[], &["filter"]),
            action(
                "list_groups",
                "list groups with their members",
                &[],
                &["filter", "include_members"],
            ),
            action("get_manager", "the manager of a user", &["user"], &[]),
            action(
                "remove_member",
                "remove a user from a group",
                &["group", "user"],
                &[],
            ),
            action("disable_user", "disable an account", &["user"], &[]),
        ],
    },
];

/// Looks a role up by name.
pub fn role(name: &str) -> Option<&'static Role> {
    ROLES.iter().find(|r| r.name == name)
}

impl Role {
    pub fn action(&self, name: &str) -> Option<&'static Action> {
        self.actions.iter().find(|a| a.name == name)
    }

    pub fn action_names(&self) -> String {
        self.actions
            .iter()
            .map(|a| a.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The role names, for error messages.
pub fn role_names() -> String {
    ROLES.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
}
