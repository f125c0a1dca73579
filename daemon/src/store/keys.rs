//! The key layout of the sled store, in one place.
//!
//! Everything lives in one sled tree so that a commit of many instances'
//! records is one atomic `apply_batch`. The first byte of a key names the
//! table; the rest sorts the way each table is scanned:
//!
//! | table | key | value |
//! |---|---|---|
//! | `M` meta | name | bytes |
//! | `D` definitions | sha256 hex | workflow source |
//! | `I` instances | id | snapshot (JSON) |
//! | `H` history | id, `0xFF`, seq (u64 BE) | entry (JSON) |
//! | `T` timers | due (i64 as BE with the sign bit flipped), id, `0xFF`, timer (u32 BE) | empty |
//! | `A` open tasks by assignee | assignee, `0xFF`, id, `0xFF`, task (u32 BE) | empty |
//! | `W` instances by workflow and status | workflow, `0xFF`, status, `0xFF`, id | empty |
//! | `O` outbox (actions to perform) | id, `0xFF`, seq (u64 BE) | action (JSON) |
//! | `K` start idempotency keys | key | id |
//! | `C` instances with calls in flight | id | empty |
//! | `S` the daemon's own state (cron fires, used links, purges) | namespace, `0xFF`, name | bytes |
//!
//! Instance ids, workflow ids and addresses are UTF-8 and never contain
//! `0xFF`, so `0xFF` ends a variable-length part and prefix scans are exact.

pub const META: u8 = b'M';
pub const DEFINITION: u8 = b'D';
pub const INSTANCE: u8 = b'I';
pub const HISTORY: u8 = b'H';
pub const TIMER: u8 = b'T';
pub const TASK: u8 = b'A';
pub const BY_WORKFLOW: u8 = b'W';
pub const OUTBOX: u8 = b'O';
pub const START_KEY: u8 = b'K';
pub const CALLS: u8 = b'C';
pub const SERVICE: u8 = b'S';

const SEP: u8 = 0xFF;

fn key(table: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    k.push(table);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(SEP);
        }
        k.extend_from_slice(p);
    }
    k
}

pub fn meta(name: &str) -> Vec<u8> {
    key(META, &[name.as_bytes()])
}

pub fn definition(hash: &str) -> Vec<u8> {
    key(DEFINITION, &[hash.as_bytes()])
}

pub fn instance(id: &str) -> Vec<u8> {
    key(INSTANCE, &[id.as_bytes()])
}

pub fn history(id: &str, seq: u64) -> Vec<u8> {
    key(HISTORY, &[id.as_bytes(), &seq.to_be_bytes()])
}

/// The prefix of one instance's history.
pub fn history_prefix(id: &str) -> Vec<u8> {
    let mut k = key(HISTORY, &[id.as_bytes()]);
    k.push(SEP);
    k
}

/// Orders signed timestamps correctly as bytes.
fn ts_bytes(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

fn ts_from(bytes: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

pub fn timer(due: i64, id: &str, timer: u32) -> Vec<u8> {
    let mut k = vec![TIMER];
    k.extend_from_slice(&ts_bytes(due));
    k.extend_from_slice(id.as_bytes());
    k.push(SEP);
    k.extend_from_slice(&timer.to_be_bytes());
    k
}

/// The first timer key due strictly after `ts`.
pub fn timers_after(ts: i64) -> Vec<u8> {
    let mut k = vec![TIMER];
    k.extend_from_slice(&ts_bytes(ts.saturating_add(1)));
    k
}

/// `(due, instance, timer)` from a timer key.
pub fn parse_timer(k: &[u8]) -> Option<(i64, String, u32)> {
    if k.first() != Some(&TIMER) || k.len() < 1 + 8 + 1 + 4 {
        return None;
    }
    let due = ts_from(&k[1..9]);
    let rest = &k[9..];
    let sep = rest.len() - 5;
    if rest[sep] != SEP {
        return None;
    }
    let id = String::from_utf8(rest[..sep].to_vec()).ok()?;
    let mut t = [0u8; 4];
    t.copy_from_slice(&rest[sep + 1..]);
    Some((due, id, u32::from_be_bytes(t)))
}

pub fn task(assignee: &str, id: &str, task: u32) -> Vec<u8> {
    key(
        TASK,
        &[assignee.as_bytes(), id.as_bytes(), &task.to_be_bytes()],
    )
}

pub fn tasks_of(assignee: &str) -> Vec<u8> {
    let mut k = key(TASK, &[assignee.as_bytes()]);
    k.push(SEP);
    k
}

/// `(assignee, instance, task)` from a task key.
pub fn parse_task(k: &[u8]) -> Option<(String, String, u32)> {
    let body = k.strip_prefix(&[TASK])?;
    let first = body.iter().position(|b| *b == SEP)?;
    let rest = &body[first + 1..];
    let sep = rest.len().checked_sub(5)?;
    if rest.get(sep) != Some(&SEP) {
        return None;
    }
    let mut t = [0u8; 4];
    t.copy_from_slice(&rest[sep + 1..]);
    Some((
        String::from_utf8(body[..first].to_vec()).ok()?,
        String::from_utf8(rest[..sep].to_vec()).ok()?,
        u32::from_be_bytes(t),
    ))
}

pub fn by_workflow(workflow: &str, status: &str, id: &str) -> Vec<u8> {
    key(
        BY_WORKFLOW,
        &[workflow.as_bytes(), status.as_bytes(), id.as_bytes()],
    )
}

pub fn by_workflow_prefix(workflow: &str, status: Option<&str>) -> Vec<u8> {
    let mut k = match status {
        Some(s) => key(BY_WORKFLOW, &[workflow.as_bytes(), s.as_bytes()]),
        None => key(BY_WORKFLOW, &[workflow.as_bytes()]),
    };
    k.push(SEP);
    k
}

/// The instance id at the end of a `W` key.
pub fn parse_by_workflow(k: &[u8]) -> Option<String> {
    let last = k.iter().rposition(|b| *b == SEP)?;
    String::from_utf8(k[last + 1..].to_vec()).ok()
}

pub fn outbox(id: &str, seq: u64) -> Vec<u8> {
    key(OUTBOX, &[id.as_bytes(), &seq.to_be_bytes()])
}

pub fn calls(id: &str) -> Vec<u8> {
    key(CALLS, &[id.as_bytes()])
}

pub fn start_key(k: &str) -> Vec<u8> {
    key(START_KEY, &[k.as_bytes()])
}

pub fn service(namespace: &str, name: &[u8]) -> Vec<u8> {
    key(SERVICE, &[namespace.as_bytes(), name])
}

/// The prefix of one namespace of the daemon's own state.
pub fn service_prefix(namespace: &str) -> Vec<u8> {
    let mut k = key(SERVICE, &[namespace.as_bytes()]);
    k.push(SEP);
    k
}

/// `(workflow, status, id)` from a `W` key.
pub fn parse_by_workflow_full(k: &[u8]) -> Option<(String, String, String)> {
    let body = k.get(1..)?;
    let mut parts = body.splitn(3, |b| *b == SEP);
    let w = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let s = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let id = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((w, s, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_sorts_by_instance_then_sequence() {
        let mut keys = vec![
            history("b", 1),
            history("a", 300),
            history("a", 2),
            history("a.1", 0),
            history("a", 256),
        ];
        keys.sort();
        // `.` sorts before the separator: a child's entries come before its
        // parent's, and neither prefix scan sees the other's.
        assert_eq!(
            keys,
            vec![
                history("a.1", 0),
                history("a", 2),
                history("a", 256),
                history("a", 300),
                history("b", 1)
            ]
        );
        // A child's history is not inside its parent's prefix.
        assert!(!history("a.1", 0).starts_with(&history_prefix("a")));
        assert!(history("a", 7).starts_with(&history_prefix("a")));
    }

    #[test]
    fn timers_sort_by_due_time_including_before_1970() {
        let mut keys = [
            timer(5_000, "x", 1),
            timer(-10, "y", 2),
            timer(1_000, "z", 3),
            timer(1_000, "a", 9),
        ];
        keys.sort();
        let order: Vec<_> = keys.iter().map(|k| parse_timer(k).unwrap()).collect();
        assert_eq!(order[0], (-10, "y".into(), 2));
        assert_eq!(order[1], (1_000, "a".into(), 9));
        assert_eq!(order[3], (5_000, "x".into(), 1));
        assert!(timers_after(1_000) > timer(1_000, "zzzz", u32::MAX));
        assert!(timers_after(1_000) < timer(1_001, "", 0));
    }

    #[test]
    fn task_and_workflow_keys_round_trip_and_group() {
        let k = task("dpo@kommun.se", "01abc", 7);
        assert_eq!(
            parse_task(&k),
            Some(("dpo@kommun.se".into(), "01abc".into(), 7))
        );
        assert!(k.starts_with(&tasks_of("dpo@kommun.se")));
        assert!(!k.starts_with(&tasks_of("dpo@kommun.s")));
        let w = by_workflow("incident", "waiting", "01abc");
        assert!(w.starts_with(&by_workflow_prefix("incident", Some("waiting"))));
        assert!(w.starts_with(&by_workflow_prefix("incident", None)));
        assert!(!w.starts_with(&by_workflow_prefix("inc", None)));
        assert_eq!(parse_by_workflow(&w).as_deref(), Some("01abc"));
    }

    #[test]
    fn tables_do_not_interleave() {
        assert!(instance("zzz") < history("", 0) || instance("zzz")[0] != history("", 0)[0]);
        let tables = [
            META,
            DEFINITION,
            INSTANCE,
            HISTORY,
            TIMER,
            TASK,
            BY_WORKFLOW,
            OUTBOX,
            START_KEY,
            CALLS,
            SERVICE,
        ];
        let mut sorted = tables.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), tables.len(), "table prefixes are distinct");
    }
}
