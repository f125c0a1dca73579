//! The durability contract under `kill -9`.
//!
//! A real `vakt internal crash-load` process runs the engine on a sled
//! directory, starting instances 64 at a time (50 new ones each round, 3,050
//! in all) (each start idempotent by
//! key) whose steps call a connector with random latency and wait on a
//! timer. It is killed with SIGKILL at a random moment, again and again.
//! After every kill the test opens the directory itself and checks:
//! - every start the process acknowledged (printed `ACK`) exists;
//! - every instance's hash chain verifies and ends at its snapshot's `seq`;
//! - the snapshot equals the fold of the history (nothing applied twice,
//!   nothing lost between records and state);
//! - no connector answer and no timer firing is recorded twice.
//!
//! Finally the process runs undisturbed and every instance completes.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vakt::engine::{self, Record, Status};
use vakt::store::{Instances, SledStore, StoreConfig, chain};

/// New starts each round: every kill lands on fresh work.
const PER_ROUND: u32 = 50;
const KILLS: u32 = 60;
const COUNT: u32 = PER_ROUND * (KILLS + 1);

struct Tally {
    records: u64,
    instances: usize,
    completed: usize,
}

fn check(dir: &std::path::Path, acked: &BTreeMap<u32, String>) -> Tally {
    let store = SledStore::open(
        dir,
        &StoreConfig {
            cache_bytes: 8 << 20,
        },
    )
    .expect("the store opens after a kill");
    for (n, id) in acked {
        assert!(
            store.load(id).unwrap().is_some(),
            "start {n} was acknowledged as {id} but is missing"
        );
    }
    let ids = store.all_ids().unwrap();
    let mut records = 0;
    let mut completed = 0;
    for id in &ids {
        let stored = store.load(id).unwrap().unwrap();
        completed += usize::from(stored.instance.status == Status::Completed);
        let history = store.history(id).unwrap();
        let (n, last) = chain::verify(&history).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(
            n, stored.instance.seq,
            "{id}: history and snapshot disagree"
        );
        assert_eq!(
            last, stored.last_hash,
            "{id}: the snapshot's chain end is not the history's"
        );
        let replayed = engine::replay(id, history.iter().map(|e| (&e.record, e.at)));
        assert_eq!(
            replayed, stored.instance,
            "{id}: the fold of the history differs from the snapshot"
        );
        let mut answers = HashSet::new();
        let mut fired = HashSet::new();
        for e in &history {
            match &e.record {
                Record::CallAnswered { call, .. } => {
                    assert!(answers.insert(*call), "{id}: call {call} answered twice")
                }
                Record::TimerFired { timer } => {
                    assert!(fired.insert(*timer), "{id}: timer {timer} fired twice")
                }
                _ => {}
            }
        }
        records += n;
    }
    Tally {
        records,
        instances: ids.len(),
        completed,
    }
}

fn spawn(
    dir: &std::path::Path,
    count: u32,
    acked: &Arc<Mutex<BTreeMap<u32, String>>>,
) -> (std::process::Child, std::thread::JoinHandle<bool>) {
    let mut child = Command::new(vakt_tests::vakt_bin())
        .args([
            "internal",
            "crash-load",
            "--count",
            &count.to_string(),
            "--data",
        ])
        .arg(dir)
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("vakt starts");
    let out = child.stdout.take().unwrap();
    let acked = acked.clone();
    let reader = std::thread::spawn(move || {
        let mut done = false;
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some("ACK"), Some(n), Some(id)) => {
                    let n: u32 = n.parse().unwrap();
                    let mut a = acked.lock().unwrap();
                    if let Some(prev) = a.get(&n) {
                        assert_eq!(
                            prev, id,
                            "start {n} was acknowledged as two different instances"
                        );
                    }
                    a.insert(n, id.to_owned());
                }
                (Some("DONE"), ..) => done = true,
                _ => {}
            }
        }
        done
    });
    (child, reader)
}

/// A small deterministic generator, so a failing run can be repeated.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn kill_dash_nine_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let seed = std::env::var("VAKT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = Lcg(seed);
    let mut kills = 0;
    let mut last = Tally {
        records: 0,
        instances: 0,
        completed: 0,
    };
    let mut midway = 0;
    let started = Instant::now();
    for round in 0..KILLS {
        // Round r asks for the first 50·(r+1) starts: the earlier ones are
        // acknowledged again from their keys, 50 are new.
        let (mut child, reader) = spawn(&data, PER_ROUND * (round + 1), &acked);
        std::thread::sleep(Duration::from_millis(40 + rng.next(400)));
        let _ = child.kill(); // SIGKILL on Unix
        let _ = child.wait();
        let _ = reader.join();
        kills += 1;
        last = check(&data, &acked.lock().unwrap());
        // A kill counts as "mid-way" when instances were left unfinished.
        midway += u32::from(last.completed < last.instances);
    }
    assert!(
        midway >= 50,
        "only {midway} of {KILLS} kills hit unfinished work: make the load heavier"
    );
    let (mut child, reader) = spawn(&data, COUNT, &acked);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the final run failed: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "the final run did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(reader.join().unwrap(), "the final run did not report DONE");
    let acked = acked.lock().unwrap();
    assert_eq!(
        acked.len(),
        COUNT as usize,
        "every start was acknowledged in the end"
    );
    let end = check(&data, &acked);
    let store = SledStore::open(&data, &StoreConfig::default()).unwrap();
    for id in acked.values() {
        assert_eq!(
            store.load(id).unwrap().unwrap().instance.status,
            Status::Completed,
            "{id} did not complete"
        );
    }
    assert_eq!(
        end.instances, COUNT as usize,
        "no instance was started twice"
    );
    println!(
        "crash test: {kills} kills (seed {seed:#x}), {midway} mid-way, {} instances, {} records verified at the end; after the last kill {} of {} instances had completed; {:.1} s",
        end.instances,
        end.records,
        last.completed,
        last.instances,
        started.elapsed().as_secs_f64()
    );
}
