//! Tests of the workflow loader: versions, ids, invalid files, watching.

use serde_json::json;

use super::*;
use crate::serve::testkit;

fn runtime(dir: &Path) -> Runtime {
    testkit::runtime(&dir.join("data"), 1_767_225_600_000).0
}

fn leave(title: &str, extra: &str) -> String {
    format!(
        "id: leave\ntitle: {title}\nsteps:\n  - id: ok\n    approval: {{title: \"A\", assignees: [boss@kommun.se]}}\n{extra}"
    )
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn reloads(m: &Metrics, result: &str) -> u64 {
    let mut out = String::new();
    m.render(&mut out);
    let line = format!("{RELOADS}{{result=\"{result}\"}} ");
    out.lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_installed_kept_and_retired() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("workflows");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("leave.yaml");
    let name = file.display().to_string();
    let rt = runtime(tmp.path());
    let metrics = Arc::new(Metrics::new());
    let loader = Loader::new(dir.clone(), rt.clone(), metrics.clone());

    let v1 = leave("Leave", "");
    std::fs::write(&file, &v1).unwrap();
    assert_eq!(loader.scan().loaded, vec!["leave"]);
    assert_eq!(rt.current("leave").unwrap().hash, sha(&v1));
    let id = rt
        .start("leave", json!({}), "t@skola.se", None)
        .await
        .unwrap();

    // A new version: new starts use it, the running instance keeps v1.
    let v2 = leave("Leave v2", "");
    std::fs::write(&file, &v2).unwrap();
    assert_eq!(loader.scan().loaded, vec!["leave"]);
    assert_eq!(rt.current("leave").unwrap().hash, sha(&v2));
    assert_eq!(rt.instance(&id).unwrap().unwrap().hash, sha(&v1));

    // An invalid edit: v2 stays active, the errors are listed.
    std::fs::write(&file, leave("Leave v3", "  - id: ok\n    wait: 1h\n")).unwrap();
    let s = loader.scan();
    assert_eq!((s.loaded.len(), s.invalid), (0, vec![name.clone()]));
    assert_eq!(rt.current("leave").unwrap().hash, sha(&v2));
    let w = &loader.workflows()[0];
    assert_eq!(
        (w.status, w.title.as_str()),
        (WorkflowStatus::Invalid, "Leave v2")
    );
    assert_eq!(w.active_hash.as_deref(), Some(sha(&v2).as_str()));
    assert!(
        w.errors[0].starts_with(&format!("{name}:6:9: ")),
        "{:?}",
        w.errors
    );
    // Scanning again changes nothing and logs nothing again.
    assert!(loader.scan().invalid.is_empty());

    // Back to v2, then a touch: nothing is installed again.
    std::fs::write(&file, &v2).unwrap();
    let s = loader.scan();
    assert!(s.loaded.is_empty() && s.invalid.is_empty());
    assert_eq!(loader.workflows()[0].status, WorkflowStatus::Active);
    let f = std::fs::File::options().append(true).open(&file).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    assert!(loader.scan().loaded.is_empty());
    assert_eq!(reloads(&metrics, "loaded"), 2);
    assert_eq!(reloads(&metrics, "invalid"), 1);

    // Removed: no new starts, the running instance goes on.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(loader.scan().removed, vec!["leave"]);
    assert!(rt.current("leave").is_none());
    let w = &loader.workflows()[0];
    assert_eq!(
        (w.status, w.hash.clone()),
        (WorkflowStatus::Removed, Some(sha(&v2)))
    );
    assert_eq!(rt.instance(&id).unwrap().unwrap().hash, sha(&v1));
    assert_eq!(reloads(&metrics, "removed"), 1);
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_belong_to_the_file_that_has_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("workflows");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let rt = runtime(tmp.path());
    let loader = Arc::new(Loader::new(
        dir.clone(),
        rt.clone(),
        Arc::new(Metrics::new()),
    ));
    let status = |id: &str| {
        let ws = loader.workflows();
        let w = ws
            .iter()
            .find(|w| w.id == id)
            .unwrap_or_else(|| panic!("{id}: {ws:?}"));
        (w.status, w.file.rsplit('/').next().unwrap().to_owned())
    };
    std::fs::write(dir.join("sub/b.yaml"), leave("B", "")).unwrap();
    std::fs::write(dir.join("b.test.yaml"), "not: a workflow").unwrap();
    loader.scan();
    // A newcomer with the same id is the duplicate, though it sorts first.
    std::fs::write(dir.join("a.yaml"), leave("A", "")).unwrap();
    let s = loader.scan();
    assert_eq!((s.files, s.invalid.len()), (2, 1));
    assert_eq!(rt.current("leave").unwrap().title, "B");
    let ws = loader.workflows();
    assert!(ws[0].errors[0].contains("is already used by"), "{ws:?}");
    // B moves to another id: A gets `leave`, nothing is retired.
    std::fs::write(
        dir.join("sub/b.yaml"),
        leave("B", "").replace("id: leave", "id: other"),
    )
    .unwrap();
    let s = loader.scan();
    assert!(s.removed.is_empty() && s.invalid.is_empty(), "{s:?}");
    assert_eq!(rt.current("leave").unwrap().title, "A");
    assert_eq!(status("other"), (WorkflowStatus::Active, "b.yaml".into()));
    // An unparseable new file and an unreadable one are listed by name.
    std::fs::write(dir.join("broken.yaml"), "id: [").unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("dangling.yaml")).unwrap();
    loader.scan();
    assert_eq!(
        status("broken"),
        (WorkflowStatus::Invalid, "broken.yaml".into())
    );
    let ws = loader.workflows();
    let dangling = ws.iter().find(|w| w.id == "dangling").unwrap();
    assert!(
        dangling.errors[0].contains("cannot read the file"),
        "{ws:?}"
    );
    assert!(dangling.hash.is_none());

    // Watching: a new file is picked up without a scan call.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(loader.clone().watch(Duration::from_millis(50), stop));
    std::fs::write(
        dir.join("c.yaml"),
        leave("C", "").replace("id: leave", "id: third"),
    )
    .unwrap();
    for _ in 0..100 {
        if rt.current("third").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rt.current("third").is_some());
    stop_tx.send(true).unwrap();
    watcher.await.unwrap();
    rt.shutdown().await;
}
