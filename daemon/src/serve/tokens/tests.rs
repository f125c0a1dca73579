//! Tests of API tokens: create, authenticate, revoke, reload, file safety.
use super::*;
use std::os::unix::fs::PermissionsExt;

const ALICE: &str = "alice@kommun.se";

fn fresh(dir: &Path) -> Tokens {
    let mut t = Tokens::open(dir).unwrap();
    t.recheck = Duration::ZERO;
    t
}

#[test]
fn create_authenticate_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = fresh(dir.path());
    assert!(tokens.list().unwrap().is_empty());
    let roles = [ApiRole::Operator, ApiRole::Approver, ApiRole::Operator];
    let (info, token) = tokens.create(ALICE, &roles, Some("ci")).unwrap();
    assert_eq!(info.roles, vec![ApiRole::Operator, ApiRole::Approver]);
    assert_eq!(info.note.as_deref(), Some("ci"));
    assert!(token.starts_with(&format!("vakt_{}_", info.id)), "{token}");
    let p = tokens.authenticate(&token).unwrap();
    assert_eq!(
        (p.address.as_str(), p.token_id.as_str()),
        (ALICE, info.id.as_str())
    );
    assert!(p.has(ApiRole::Approver) && !p.has(ApiRole::Admin));
    let stored = fs::read_to_string(dir.path().join(FILE)).unwrap();
    assert!(!stored.contains(&token[14..]), "the secret is stored");
    assert_eq!(tokens.list().unwrap(), vec![info.clone()]);
    assert!(tokens.revoke(&info.id).unwrap());
    assert!(!tokens.revoke(&info.id).unwrap());
    assert!(tokens.authenticate(&token).is_none());
    let (_, admin) = tokens.create(ALICE, &[ApiRole::Admin], None).unwrap();
    assert!(tokens.authenticate(&admin).unwrap().has(ApiRole::Operator));
    let e = tokens.create("alice", &[ApiRole::Admin], None).unwrap_err();
    assert!(e.contains("not a mail address"), "{e}");
    assert!(tokens.create(ALICE, &[], None).is_err());
    let e = "boss".parse::<ApiRole>().unwrap_err();
    assert!(e.contains("admin, operator and approver"), "{e}");
    assert_eq!("Approver".parse::<ApiRole>(), Ok(ApiRole::Approver));
}

#[test]
fn wrong_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = fresh(dir.path());
    let (info, token) = tokens.create(ALICE, &[ApiRole::Admin], None).unwrap();
    let last = if token.ends_with('A') { "B" } else { "A" };
    let wrong_secret = format!("{}{last}", &token[..token.len() - 1]);
    let other = ["00000000", "11111111"].into_iter().find(|i| *i != info.id);
    let wrong_id = token.replace(&info.id, other.unwrap());
    for bad in [
        wrong_secret.as_str(),
        &wrong_id,
        "",
        "vakt_",
        &token[..token.len() - 1],
        &format!("{token}x"),
        &token.replace("vakt_", "vakx_"),
        &token.to_uppercase(),
        &format!("Bearer {token}"),
    ] {
        assert!(tokens.authenticate(bad).is_none(), "{bad}");
    }
    assert!(tokens.authenticate(&format!(" {token}\n")).is_some());
}

#[test]
fn another_instance_writes_and_the_daemon_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = fresh(dir.path());
    let cli = Tokens::open(dir.path()).unwrap();
    let (info, token) = cli.create(ALICE, &[ApiRole::Operator], None).unwrap();
    assert!(daemon.authenticate(&token).is_some());
    assert!(cli.revoke(&info.id).unwrap());
    assert!(daemon.authenticate(&token).is_none());
    // A corrupt file: the last good set stays; `open` names the file.
    let (_, token) = cli.create(ALICE, &[ApiRole::Operator], None).unwrap();
    assert!(daemon.authenticate(&token).is_some());
    fs::write(dir.path().join(FILE), b"{ not json").unwrap();
    assert!(daemon.authenticate(&token).is_some());
    assert!(daemon.authenticate(&token).is_some());
    let e = Tokens::open(dir.path()).err().unwrap();
    assert!(e.contains("tokens.json: not a valid token file"), "{e}");
    assert!(cli.create(ALICE, &[ApiRole::Admin], None).is_err());
}

#[test]
fn the_file_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fresh(&data).create(ALICE, &[ApiRole::Admin], None).unwrap();
    for f in [FILE, LOCK] {
        let mode = fs::metadata(data.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let leftovers = fs::read_dir(&data).unwrap().count();
    assert_eq!(leftovers, 2, "temporary files left behind");
}

#[test]
fn concurrent_creates_keep_every_token() {
    let dir = tempfile::tempdir().unwrap();
    let made: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let tokens = Tokens::open(dir.path()).unwrap();
                    (0..10)
                        .map(|_| tokens.create(ALICE, &[ApiRole::Approver], None).unwrap().1)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let tokens = fresh(dir.path());
    assert_eq!(tokens.list().unwrap().len(), 20);
    assert!(made.iter().all(|t| tokens.authenticate(t).is_some()));
}
