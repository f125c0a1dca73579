//! Helpers of the `serve_recertification` tests: the seeded memberships
//! and their reviewers, the test's copy of
//! `workflows/access-recertification.yaml` (timing shortened by text
//! substitution, validated), the review tasks and opening digests of a
//! campaign, and the checks of its `output.rows` and of its report
//! (`GET /api/v1/instances/{id}/report?format=csv|html|json`).
//!
//! Included with `#[path = "support/recertification.rs"]` next to
//! `support/scim.rs` (as `crate::scim`).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;
use vakt_tests::support::{Daemon, Mail, Smtp, poll, repo_root};

use crate::scim::{Seed, cell, parse_csv, substitute, validate};

pub const WORKFLOW: &str = "access-recertification";
pub const FILE: &str = "access-recertification.yaml";
pub const OPS: &str = "ops@kommune.example";
pub const OWNER: &str = "systemeier@kommune.example.no";
pub const AUDITOR: &str = "revisor@kommune.example.no";
/// Decides through the API with an approver token.
pub const API_MANAGER: &str = "user0161@kommune.example.no";
/// Never answers: the deadline decides.
pub const SILENT: &str = "user0181@kommune.example.no";
/// The copy's deadline (and the rest of its timing, a day being 5 s).
pub const TIMING: [(&str, &str); 3] = [
    ("deadline: 14d", "deadline: 70s"),
    (
        "reminders: {every: 4d, before_deadline: [2d, 1d], max: 3}",
        "reminders: {every: 5m, before_deadline: [10s, 5s], max: 3}",
    ),
    ("- after: 10d", "- after: 50s"),
];
pub const WAIT: Duration = Duration::from_secs(90);

/// One seeded membership and who reviews it.
#[derive(Clone, Debug)]
pub struct Membership {
    pub user_id: String,
    pub group_id: String,
    pub reviewer: String,
}

/// (account, group) → membership.
pub fn memberships(seed: &Seed) -> BTreeMap<(String, String), Membership> {
    let mut out = BTreeMap::new();
    for g in &seed.groups {
        for m in &g.members {
            let u = seed.user(m);
            let reviewer = u
                .manager
                .as_deref()
                .map_or(OWNER.to_owned(), |x| seed.user(x).email.clone());
            let key = (u.user_name.clone(), g.name.clone());
            out.insert(
                key,
                Membership {
                    user_id: u.id.clone(),
                    group_id: g.id.clone(),
                    reviewer,
                },
            );
        }
    }
    out
}

/// The repository's workflow with the test's timing and `extra` changes,
/// written to `dir` and validated there.
pub fn test_copy(dir: &std::path::Path, extra: &[(&str, &str)]) -> String {
    let path = repo_root().join("workflows").join(FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut subs = TIMING.to_vec();
    subs.extend_from_slice(extra);
    let copy = substitute(&text, &subs);
    let file = dir.join(FILE);
    std::fs::write(&file, &copy).unwrap();
    validate(&file);
    copy
}

/// (account, group) of a task, from its description `NAME (ACCOUNT) er
/// medlem av GROUP.`
pub fn task_membership(task: &Value) -> (String, String) {
    let d = task["description"].as_str().unwrap_or_default();
    let first = d.lines().next().unwrap_or_default();
    let parse = || {
        let (head, group) = first.split_once(") er medlem av ")?;
        let account = head.rsplit_once(" (")?.1;
        Some((account.to_owned(), group.trim_end_matches('.').to_owned()))
    };
    parse().unwrap_or_else(|| panic!("no membership in task {task:#}"))
}

/// An opening digest (every task in it is new).
pub fn opening(m: &Mail) -> bool {
    m.text.contains("You are asked to decide on")
}

/// Waits for the instance's review tasks: task id → (account, group).
pub fn review_tasks(
    d: &Daemon,
    ops: &str,
    id: &str,
    expected: usize,
) -> BTreeMap<String, ((String, String), Vec<String>)> {
    let tasks = poll("the review tasks to open", WAIT, || {
        let inst = d.instance(ops, id);
        assert!(
            !["failed", "cancelled", "completed"].contains(&inst["status"].as_str().unwrap_or("")),
            "the campaign ended early: {inst:#}"
        );
        let ts = inst["tasks"].as_array().cloned().unwrap_or_default();
        match ts.len() == expected {
            true => Ok(ts),
            false => Err(format!(
                "{} tasks, waiting on {}",
                ts.len(),
                inst["waiting"]
            )),
        }
    });
    tasks
        .iter()
        .map(|t| {
            let assignees = t["assignees"]
                .as_array()
                .unwrap()
                .iter()
                .map(cell)
                .collect();
            (cell(&t["id"]), (task_membership(t), assignees))
        })
        .collect()
}

/// Checks each reviewer's one opening digest: theirs, every task of theirs
/// with both links, nothing else. Returns reviewer → mail.
pub fn opening_digests(
    smtp: &Smtp,
    id: &str,
    by_reviewer: &BTreeMap<String, BTreeSet<String>>,
) -> HashMap<String, Mail> {
    let mails = smtp.wait_for(
        "an opening digest per reviewer",
        by_reviewer.len(),
        WAIT,
        opening,
    );
    let mut out = HashMap::new();
    for (reviewer, tasks) in by_reviewer {
        let mine: Vec<&Mail> = mails.iter().filter(|m| m.is_for(reviewer)).collect();
        assert_eq!(
            mine.len(),
            1,
            "{reviewer}: one opening digest, got {mine:#?}"
        );
        let m = mine[0];
        assert_eq!(
            m.rcpt,
            std::slice::from_ref(reviewer),
            "{}",
            m.file.display()
        );
        assert!(
            m.subject
                .starts_with(&format!("{} decisions needed", tasks.len())),
            "{reviewer}: {}",
            m.subject
        );
        let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for l in m.links() {
            let c = l.claim();
            assert_eq!(
                (c.instance.as_str(), c.assignee.as_str()),
                (id, reviewer.as_str())
            );
            seen.entry(format!("{id}:{}", c.task))
                .or_default()
                .insert(c.option);
        }
        let both: BTreeSet<String> = ["confirm", "revoke"].map(str::to_owned).into();
        assert_eq!(
            seen.keys().cloned().collect::<BTreeSet<_>>(),
            *tasks,
            "{reviewer}"
        );
        assert!(seen.values().all(|o| *o == both), "{reviewer}: {seen:#?}");
        out.insert(reviewer.clone(), m.clone());
    }
    let total = mails.len();
    assert_eq!(total, by_reviewer.len(), "one opening digest per reviewer");
    out
}

/// What the test decided for a membership: (decision, justification, by).
pub type Decided = (String, String, String);

pub fn is_open(d: &Daemon, ops: &str, id: &str, task: &str) -> bool {
    let inst = d.instance(ops, id);
    let tasks = inst["tasks"].as_array().unwrap();
    tasks
        .iter()
        .any(|t| t["id"] == task && t["status"] == "open")
}

/// A row's column under its contract name, else its earlier name.
pub fn col<'a>(row: &'a Value, name: &str, before: &str) -> &'a Value {
    match row.get(name) {
        Some(v) => v,
        None => &row[before],
    }
}

/// `output.rows`: one per membership, each as decided and as the server is.
pub fn check_rows(
    out: &Value,
    expected: &BTreeMap<(String, String), Membership>,
    decided: &HashMap<(String, String), Decided>,
) {
    let rows = out["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {out:#}"));
    assert_eq!(rows.len(), expected.len(), "one row per membership");
    let mut seen = BTreeSet::new();
    for row in rows {
        let key = (cell(col(row, "account", "user")), cell(&row["group"]));
        assert!(seen.insert(key.clone()), "two rows for {key:?}");
        let m = &expected[&key];
        let (decision, justification, by) = &decided[&key];
        assert_eq!(cell(&row["reviewer"]), m.reviewer, "{row:#}");
        assert_eq!(cell(&row["decision"]), *decision, "{row:#}");
        assert_eq!(
            cell(col(row, "justification", "comment")),
            *justification,
            "{row:#}"
        );
        let verified = cell(col(row, "verified", "result"));
        let want = if decision == "confirm" {
            "kept"
        } else {
            "removed"
        };
        assert_eq!(verified, want, "{row:#}");
        assert!(!cell(&row["decided_at"]).is_empty(), "{row:#}");
        let by_default = by == "deadline";
        assert_eq!(cell(&row["by_default"]) == "true", by_default, "{row:#}");
        if !by_default || row.get("justification").is_some() {
            assert_eq!(cell(&row["decided_by"]), *by, "{row:#}");
        }
        if let Some(applied) = row.get("applied_at") {
            assert_eq!(cell(applied).is_empty(), decision == "confirm", "{row:#}");
        }
    }
}

/// The report route (being added: `GET /api/v1/instances/{id}/report`).
/// Until it exists (404 "no such route") this says so and checks nothing.
pub fn check_report(d: &Daemon, ops: &str, id: &str, out: &Value) {
    let get = |format: &str| {
        d.get(&format!("/api/v1/instances/{id}/report?format={format}"))
            .bearer(ops)
            .send()
    };
    let csv = get("csv");
    if csv.status == 404 && csv.text.contains("no such route") {
        eprintln!(
            "NOTE: GET /api/v1/instances/{{id}}/report does not exist yet: report not checked"
        );
        return;
    }
    let rows = out["rows"].as_array().unwrap();
    assert_eq!(csv.status, 200, "{csv:?}");
    assert!(
        csv.header("content-type")
            .is_some_and(|c| c.starts_with("text/csv")),
        "{csv:?}"
    );
    let records = parse_csv(&csv.text);
    let columns = [
        "account",
        "name",
        "group",
        "reviewer",
        "decision",
        "justification",
        "decided_at",
        "decided_by",
        "applied_at",
        "verified",
    ];
    assert!(
        records[0].len() >= columns.len() && records[0][..columns.len()] == columns,
        "{:?}",
        records[0]
    );
    assert_eq!(records.len() - 1, rows.len(), "one CSV row per membership");
    let by_key: HashMap<(String, String), &Value> = rows
        .iter()
        .map(|r| ((cell(&r["account"]), cell(&r["group"])), r))
        .collect();
    for rec in &records[1..] {
        let row = by_key
            .get(&(rec[0].clone(), rec[2].clone()))
            .unwrap_or_else(|| panic!("CSV row of no membership: {rec:?}"));
        for (i, c) in columns.iter().enumerate() {
            assert_eq!(rec[i], cell(&row[*c]), "column {c}: {rec:?} vs {row:#}");
        }
    }
    let html = get("html");
    assert_eq!(html.status, 200, "{html:?}");
    assert!(
        html.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{html:?}"
    );
    let trs = html.text.matches("<tr").count();
    assert!(
        trs == rows.len() || trs == rows.len() + 1,
        "{trs} table rows for {}",
        rows.len()
    );
    for r in rows {
        assert!(
            html.text.contains(&cell(&r["account"])),
            "{r:#} not in the HTML"
        );
    }
    let json = get("json");
    assert_eq!(json.status, 200, "{json:?}");
    let v = json.json();
    let listed = v.get("rows").unwrap_or(&v);
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(rows.len()),
        "{json:?}"
    );
    eprintln!("report checked: {} rows as CSV, HTML and JSON", rows.len());
}
