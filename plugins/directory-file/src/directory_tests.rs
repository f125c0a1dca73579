//! Unit tests of `directory.rs`: the tables checked as a whole, filters,
//! managers as e-mail addresses, and every error naming file, line and
//! column.

use super::*;

const USERS: &str = "\
id,user_name,email,display_name,manager,active
u1,rektor,rektor@skole.no,Rita Rektor,,
u2,ola,ola@skole.no,Ola Nordmann,rektor@skole.no,yes
u3,kari,kari@skole.no,\"Nordmann, Kari\",u2,nei
u4,per,,Per,u2,1
";
const GROUPS: &str = "id,name\ng1,tilgang-lonn\ng2,tilgang-elev\ng3,laerere\n";
const MEMBERS: &str = "group,user\ng1,u2\ng1,u3\ng1,u2\ng2,u4\ng3,u1\n";

fn table(file: &str, text: &str) -> Table {
    Table::parse(file, text.as_bytes()).unwrap()
}

fn full() -> Directory {
    Directory::from_users(&table("users", USERS))
        .unwrap()
        .with_groups(
            &table("groups", GROUPS),
            Some(&table("memberships", MEMBERS)),
        )
        .unwrap()
}

fn users_err(text: &str) -> String {
    Directory::from_users(&table("users", text))
        .unwrap_err()
        .to_string()
}

fn ids(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.id.as_str()).collect()
}

#[test]
fn users_with_managers_as_addresses() {
    let d = full();
    let all = d.list_users(None).unwrap();
    assert_eq!(ids(&all), vec!["u1", "u2", "u3", "u4"]);
    assert_eq!(all[0].manager, None);
    assert_eq!(all[1].manager.as_deref(), Some("rektor@skole.no"));
    assert_eq!(all[2].manager.as_deref(), Some("ola@skole.no"));
    assert_eq!(all[2].display_name.as_deref(), Some("Nordmann, Kari"));
    assert_eq!(all[3].email, None);
    assert_eq!(
        all.iter().map(|u| u.active).collect::<Vec<_>>(),
        vec![true, true, false, true]
    );
}

#[test]
fn user_filters() {
    let d = full();
    assert_eq!(
        ids(&d.list_users(Some(r#"userName eq "KARI""#)).unwrap()),
        vec!["u3"]
    );
    assert_eq!(
        ids(&d.list_users(Some(r#"id eq "u4""#)).unwrap()),
        vec!["u4"]
    );
    assert!(d.list_users(Some(r#"id eq "U4""#)).unwrap().is_empty());
    assert_eq!(d.list_users(Some("  ")).unwrap().len(), 4);
    let e = d.list_users(Some(r#"userName sw "k""#)).unwrap_err();
    assert!(!e.retryable);
    assert!(e.message.contains("not supported"), "{}", e.message);
    assert!(e.message.contains("userName eq"), "{}", e.message);
    let e = d.list_users(Some(r#"emails.value eq "x""#)).unwrap_err();
    assert!(e.message.contains("emails.value"), "{}", e.message);
    let e = d
        .list_users(Some(r#"userName eq "a" or id eq "b""#))
        .unwrap_err();
    assert!(e.message.contains("`or`"), "{}", e.message);
}

#[test]
fn groups_with_members_and_filters() {
    let d = full();
    let all = d.list_groups(None, true).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(
        ids(&all[0].members),
        vec!["u2", "u3"],
        "a repeated membership once"
    );
    assert_eq!(all[0].members[1].manager.as_deref(), Some("ola@skole.no"));
    let sw = d
        .list_groups(Some(r#"displayName sw "tilgang-""#), true)
        .unwrap();
    assert_eq!(
        sw.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        vec!["tilgang-lonn", "tilgang-elev"]
    );
    let eq = d
        .list_groups(Some(r#"displayName eq "Laerere""#), false)
        .unwrap();
    assert_eq!(eq.len(), 1);
    assert!(eq[0].members.is_empty());
    let by_id = d.list_groups(Some(r#"id eq "g2""#), true).unwrap();
    assert_eq!(ids(&by_id[0].members), vec!["u4"]);
    let e = d.list_groups(Some(r#"id sw "g""#), true).unwrap_err();
    assert!(e.message.contains("displayName sw"), "{}", e.message);
}

#[test]
fn managers_by_id_name_or_address() {
    let d = full();
    let m = d.get_manager("u3").unwrap().unwrap();
    assert_eq!(m.id, "u2");
    assert_eq!(m.manager.as_deref(), Some("rektor@skole.no"));
    assert_eq!(d.get_manager("Ola").unwrap().unwrap().id, "u1");
    assert_eq!(d.get_manager("per").unwrap().unwrap().id, "u2");
    assert_eq!(d.get_manager("KARI@skole.no").unwrap().unwrap().id, "u2");
    assert_eq!(d.get_manager("u1").unwrap(), None);
    let e = d.get_manager("nobody").unwrap_err();
    assert!(!e.retryable);
    assert!(e.message.contains("no user `nobody`"), "{}", e.message);
}

#[test]
fn bad_users_files_name_line_and_column() {
    let e = users_err("id,user_name,email,display_name\nu1,a,,\n");
    assert!(e.contains("file `users`, line 1"), "{e}");
    assert!(e.contains("no column `manager`"), "{e}");

    let e = users_err("id,user_name,email,display_name,manager\nu1,a,,,\nu1,b,,,\n");
    assert_eq!(
        e,
        "file `users`, line 3, column 1 (`id`): duplicate id `u1` (first on line 2)"
    );

    let e = users_err("id,user_name,email,display_name,manager\nu1,a,,,u9\n");
    assert!(
        e.starts_with("file `users`, line 2, column 5 (`manager`): unknown manager `u9`"),
        "{e}"
    );

    let e = users_err("id,user_name,email,display_name,manager,active\nu1,a,,,,perhaps\n");
    assert!(
        e.starts_with("file `users`, line 2, column 6 (`active`)"),
        "{e}"
    );

    let e = users_err("id,user_name,email,display_name,manager\nu1,a,not-mail,,\n");
    assert!(e.contains("column 3 (`email`)"), "{e}");

    let e = users_err("id,user_name,email,display_name,manager\n,a,,,\n");
    assert!(
        e.contains("line 2, column 1 (`id`): the id is empty"),
        "{e}"
    );

    let e = users_err("id,user_name,email,display_name,manager\nu1,a,,,\nu2,A,,,\n");
    assert!(e.contains("duplicate user name `A`"), "{e}");

    let e = users_err(
        "id,user_name,email,display_name,manager\nu1,a,x@s.no,,\nu2,b,X@s.no,,\nu3,c,,,x@s.no\n",
    );
    assert!(
        e.contains("line 4, column 5") && e.contains("ambiguous"),
        "{e}"
    );
}

#[test]
fn bad_groups_and_memberships_name_line_and_column() {
    let users = Directory::from_users(&table("users", USERS)).unwrap();
    let err = |groups: &str, members: &str| {
        users
            .clone()
            .with_groups(
                &table("groups", groups),
                Some(&table("memberships", members)),
            )
            .unwrap_err()
            .to_string()
    };
    let e = err("id,name\ng1,a\ng1,b\n", MEMBERS);
    assert!(
        e.starts_with("file `groups`, line 3, column 1 (`id`): duplicate id `g1`"),
        "{e}"
    );
    let e = err("id,title\ng1,a\n", MEMBERS);
    assert!(e.contains("no column `name`"), "{e}");
    let e = err(GROUPS, "group,user\ng1,u2\ng1,u9\n");
    assert_eq!(
        e,
        "file `memberships`, line 3, column 2 (`user`): unknown user `u9`: no user in the \
         users file has this id"
    );
    let e = err(GROUPS, "group;user\ng9;u2\n");
    assert!(
        e.starts_with("file `memberships`, line 2, column 1 (`group`): unknown group"),
        "{e}"
    );
    let e = err(GROUPS, "group,member\ng1,u2\n");
    assert!(
        e.contains("file `memberships`, line 1: the header row has no column `user`"),
        "{e}"
    );
}

#[test]
fn a_semicolon_export_with_a_bom_and_crlf() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(
        "ID;User_Name;Email;Display_Name;Manager\r\nu1;åse;åse@skole.no;\"Ås, Åse\";\r\nu2;øyvind;;Øyvind;åse@skole.no\r\n"
            .as_bytes(),
    );
    let d = Directory::from_users(&Table::parse("users", &bytes).unwrap()).unwrap();
    let all = d.list_users(None).unwrap();
    assert_eq!(all[0].display_name.as_deref(), Some("Ås, Åse"));
    assert_eq!(all[1].manager.as_deref(), Some("åse@skole.no"));
    assert!(all.iter().all(|u| u.active));
}
