//! End to end: the real `workflows/access-recertification.yaml` in a real
//! `vakt serve`, `identity` bound to the SCIM plugin against scim2-server on
//! loopback (a fresh tenant seeded with 200 users, managers and 10 groups
//! `tilgang-…`, one group per user: 200 memberships, 11 reviewers;
//! `scripts/servers/scim.sh`, `VAKT_SKIP_SERVERS=1` skips), `mail` to the
//! mail plugin and the SMTP sink. (Two groups per user, 400 memberships,
//! does not fit the shortened deadline in a debug build: every decision is
//! a transition of the one big instance, about 0.3 s each there.)
//!
//! The test's copy of the workflow differs from the file only in timing
//! (text substitution, then `vakt validate` on the copy): the 14-day
//! deadline is 70 s (a day is 5 s: reminders 10 s and 5 s before it, the
//! escalation after 50 s; `every: 4d` becomes the smallest allowed, 5m,
//! which never falls before the deadline).
//!
//! On demand: an operator starts the campaign through the API; every
//! reviewer (each manager, and the system owner for members without one)
//! gets exactly one digest for the opening, listing each of their tasks
//! with its links. Most reviewers decide by following links (GET shows a
//! page and decides nothing; POST decides; `revoke` needs the form's
//! `comment`, the justification); one decides through the API with an
//! approver token; one never answers, so their tasks get the default
//! `revoke` at the deadline. Then: every revoked membership is gone on the
//! server and every confirmed one is still there (read over SCIM REST), the
//! output's counts and rows agree, and the report (`/report?format=csv|
//! html|json`, once that route exists: a 404 "no such route" is said and
//! skipped) has one row per membership matching the server.
//!
//! By cron: a copy under another id with a `* * * * *` schedule in a second
//! daemon (its own tenant and sink) starts within the minute and reaches
//! the review tasks; it is cancelled through the API.

#[path = "support/recertification.rs"]
mod recert;
#[path = "support/scim.rs"]
mod scim;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use recert::{
    API_MANAGER, AUDITOR, Decided, OPS, OWNER, SILENT, WAIT, WORKFLOW, check_report, check_rows,
    is_open, memberships, opening, opening_digests, review_tasks, test_copy,
};
use scim::{ScimServer, cell};
use serde_json::json;
use vakt_tests::support::http;
use vakt_tests::support::{DaemonBuilder, Lcg, Smtp, poll};

#[test]
fn recertification_campaign_against_scim() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let seed = server.seed(200, 10, 1);
    let expected = memberships(&seed);
    assert_eq!(expected.len(), 200, "one membership per user");

    let smtp = Smtp::start();
    let mut d = DaemonBuilder::new("recertification")
        .mail_through(&smtp)
        .prepare();
    test_copy(&d.workflows_dir, &[]);
    scim::bind_identity(&d, "scim", &seed);
    let ops = d.token(OPS, "operator");
    let api_token = d.token(API_MANAGER, "approver");
    d.start();

    let id = d.start_instance(
        &ops,
        WORKFLOW,
        &json!({"reason": "annual", "group_filter": "displayName sw \"tilgang-\"",
                "system_owner": OWNER, "auditor": AUDITOR}),
    );
    let t0 = Instant::now();
    let tasks = review_tasks(&d, &ops, &id, expected.len());
    let opened = Instant::now();
    eprintln!(
        "{} review tasks open {:?} after the start",
        tasks.len(),
        t0.elapsed()
    );
    let mut by_reviewer: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut task_of: HashMap<String, (String, String)> = HashMap::new();
    for (task, (key, assignees)) in &tasks {
        let m = expected
            .get(key)
            .unwrap_or_else(|| panic!("{task}: {key:?} not seeded"));
        assert_eq!(
            *assignees,
            std::slice::from_ref(&m.reviewer),
            "{task} {key:?}"
        );
        by_reviewer
            .entry(m.reviewer.clone())
            .or_default()
            .insert(task.clone());
        task_of.insert(task.clone(), key.clone());
    }
    assert_eq!(task_of.len(), expected.len(), "one task per membership");
    assert!(by_reviewer.len() >= 11 && by_reviewer.contains_key(OWNER));
    assert!(
        by_reviewer.values().all(|t| t.len() >= 2),
        "every reviewer gets a digest"
    );
    let digests = opening_digests(&smtp, &id, &by_reviewer);
    eprintln!(
        "{} opening digests {:?} after the tasks",
        digests.len(),
        opened.elapsed()
    );

    // ---- Decisions. Links for most reviewers, the API for one, none for one.
    let mut decided: HashMap<(String, String), Decided> = HashMap::new();
    let mut lcg = Lcg(6);
    let mut posts: Vec<(String, String, Option<String>)> = Vec::new();
    for (reviewer, mail) in &digests {
        if reviewer == SILENT || reviewer == API_MANAGER {
            continue;
        }
        for task in &by_reviewer[reviewer] {
            let key = task_of[task].clone();
            let n: u32 = task.rsplit_once(':').unwrap().1.parse().unwrap();
            let revoke = lcg.below(4) == 0;
            let option = if revoke { "revoke" } else { "confirm" };
            let link = mail
                .links()
                .into_iter()
                .find(|l| l.claim().task == n && l.claim().option == option)
                .unwrap();
            let comment = revoke.then(|| format!("{} trenger ikke {} lenger", key.0, key.1));
            let justification = comment.clone().unwrap_or_default();
            decided.insert(key, (option.into(), justification, reviewer.clone()));
            posts.push((task.clone(), link.url, comment));
        }
    }
    // A page first: GET shows the form and decides nothing; a revoke
    // without its comment is refused with the form again.
    let (task, url, _) = posts
        .iter()
        .find(|(_, _, c)| c.is_some())
        .expect("a revoke by link");
    let page = http::get(url).send().expect(200);
    assert!(
        page.text.contains("<form") && page.text.contains("name=\"comment\""),
        "{page:?}"
    );
    assert!(is_open(&d, &ops, &id, task), "a GET decided {task}");
    let refused = http::post(url).form(&[("comment", " ")]).send();
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(
        is_open(&d, &ops, &id, task),
        "a revoke without comment decided {task}"
    );

    let started = Instant::now();
    std::thread::scope(|s| {
        for chunk in posts.chunks(posts.len().div_ceil(4)) {
            s.spawn(move || {
                for (_, url, comment) in chunk {
                    let fields: Vec<(&str, &str)> =
                        comment.iter().map(|c| ("comment", c.as_str())).collect();
                    let r = http::post(url).form(&fields).send();
                    assert!(
                        r.status == 200 && r.text.contains("Decision recorded"),
                        "{r:?}"
                    );
                }
            });
        }
    });
    eprintln!(
        "{} decisions by link in {:?}",
        posts.len(),
        started.elapsed()
    );

    // The API manager sees exactly their tasks and decides them.
    let listed = d
        .get("/api/v1/tasks")
        .bearer(&api_token)
        .send()
        .expect(200)
        .json();
    let listed: BTreeSet<String> = listed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| cell(&t["id"]))
        .collect();
    assert_eq!(
        listed, by_reviewer[API_MANAGER],
        "the approver's open tasks"
    );
    for (k, task) in listed.iter().enumerate() {
        let key = task_of[task].clone();
        let (option, comment) = match k % 3 {
            0 => ("revoke", format!("Bytter avdeling: {}", key.1)),
            _ => ("confirm", String::new()),
        };
        d.post(&format!("/api/v1/tasks/{task}/decision"))
            .bearer(&api_token)
            .json(&json!({"decision": option, "comment": comment}))
            .send()
            .expect(200);
        decided.insert(key, (option.into(), comment, API_MANAGER.into()));
    }
    for task in &by_reviewer[SILENT] {
        decided.insert(
            task_of[task].clone(),
            ("revoke".into(), String::new(), "deadline".into()),
        );
    }
    let answered = opened.elapsed();
    eprintln!("every answer given {answered:?} after the tasks opened");
    // The answering reviewers must be done before the first reminder (60 s)
    // for their mail counts below; the escalation (50 s) only adds the owner.
    assert!(
        answered < Duration::from_secs(58),
        "answers took {answered:?}: the reminders (60 s) would come first"
    );

    // ---- The deadline decides the silent manager's tasks; the campaign ends.
    let done = d.wait_status(&ops, &id, "completed", Duration::from_secs(150));
    let out = &done["output"];
    check_rows(out, &expected, &decided);
    let count = |pred: &dyn Fn(&Decided) -> bool| decided.values().filter(|x| pred(x)).count();
    let counts = json!({
        "reviewed": expected.len(),
        "kept": count(&|x| x.0 == "confirm"),
        "removed": count(&|x| x.0 == "revoke"),
        "unanswered": by_reviewer[SILENT].len(),
        "without_manager": by_reviewer[OWNER].len(),
        "not_removed": 0,
    });
    for (k, v) in counts.as_object().unwrap() {
        assert_eq!(cell(&out[k]), cell(v), "output.{k}: {out:#}");
    }

    // ---- The server's final state: revoked gone, confirmed kept.
    for g in &seed.groups {
        let now = seed.members_now(&g.id);
        let want: BTreeSet<String> = g
            .members
            .iter()
            .filter(|m| decided[&(seed.user(m).user_name.clone(), g.name.clone())].0 == "confirm")
            .cloned()
            .collect();
        assert_eq!(now, want, "members of {} on the server", g.name);
    }

    // ---- Mail: still one opening digest each; the silent one reminded, the
    // owner told of the escalation; the report to the auditor.
    let mails = smtp.mails();
    for reviewer in by_reviewer.keys() {
        let n = mails
            .iter()
            .filter(|m| opening(m) && m.is_for(reviewer))
            .count();
        assert_eq!(n, 1, "{reviewer}: opening digests");
    }
    let subjects = |who: &str| -> Vec<String> {
        mails
            .iter()
            .filter(|m| m.is_for(who))
            .map(|m| m.subject.clone())
            .collect()
    };
    assert!(
        subjects(SILENT).iter().any(|s| s.starts_with("Reminder: ")),
        "{:#?}",
        subjects(SILENT)
    );
    assert!(
        subjects(OWNER).iter().any(|s| s.starts_with("Escalated: ")),
        "{:#?}",
        subjects(OWNER)
    );
    for reviewer in by_reviewer.keys().filter(|r| *r != SILENT && *r != OWNER) {
        assert_eq!(
            subjects(reviewer).len(),
            1,
            "{reviewer} answered in time: {:#?}",
            subjects(reviewer)
        );
    }
    let report = smtp.wait_one("the report mail", WAIT, |m| m.is_for(AUDITOR));
    assert!(
        report
            .subject
            .contains(&format!("{} medlemskap vurdert", expected.len())),
        "{}",
        report.subject
    );
    assert!(
        report.is_for(OWNER),
        "the owner is copied: {:?}",
        report.rcpt
    );

    check_report(&d, &ops, &id, out);
    assert_eq!(d.sigterm().code(), Some(0));
}

#[test]
fn recertification_campaign_starts_by_cron() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let seed = server.seed(60, 3, 1);
    let expected = memberships(&seed);
    let smtp = Smtp::start();
    let mut d = DaemonBuilder::new("recertification-cron")
        .mail_through(&smtp)
        .prepare();
    let cron = "access-recertification-cron";
    test_copy(
        &d.workflows_dir,
        &[
            (
                "id: access-recertification\n",
                "id: access-recertification-cron\n",
            ),
            ("schedule: \"0 7 15 1 *\"", "schedule: \"* * * * *\""),
        ],
    );
    scim::bind_identity(&d, "scim", &seed);
    let ops = d.token(OPS, "operator");
    d.start();
    let started = Instant::now();

    let id = poll(
        "the cron trigger to start a campaign",
        Duration::from_secs(75),
        || {
            let v = d
                .get(&format!("/api/v1/instances?workflow={cron}"))
                .bearer(&ops)
                .send()
                .expect(200)
                .json();
            let list = v["instances"].as_array().cloned().unwrap_or_default();
            list.first()
                .map(|i| cell(&i["id"]))
                .ok_or_else(|| format!("{v}"))
        },
    );
    eprintln!("cron started {id} {:?} after the daemon", started.elapsed());
    let inst = d.instance(&ops, &id);
    assert_eq!(inst["input"]["reason"], "annual", "{inst:#}");
    let tasks = review_tasks(&d, &ops, &id, expected.len());
    let mut by_reviewer: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (task, (key, assignees)) in &tasks {
        assert_eq!(*assignees, [expected[key].reviewer.clone()], "{task}");
        by_reviewer
            .entry(assignees[0].clone())
            .or_default()
            .insert(task.clone());
    }
    opening_digests(&smtp, &id, &by_reviewer);

    d.post(&format!("/api/v1/instances/{id}/cancel"))
        .bearer(&ops)
        .json(&json!({"reason": "test: only the start by cron is checked"}))
        .send()
        .expect(200);
    d.wait_status(&ops, &id, "cancelled", WAIT);
    for g in &seed.groups {
        let now = seed.members_now(&g.id);
        assert_eq!(
            now,
            g.members.iter().cloned().collect(),
            "{} is untouched",
            g.name
        );
    }
    assert_eq!(d.sigterm().code(), Some(0));
}
