//! `vakt internal …`: load drivers for vakt's own crash tests and
//! benchmarks. Hidden from `--help`; not a user interface.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use serde_json::json;

use crate::engine::CallOutcome;
use crate::runtime::{
    BoxFuture, Connector, ConnectorCall, LogNotifier, Plans, Runtime, RuntimeConfig, SystemClock,
};
use crate::store::{Instances, SledStore, StoreConfig};
use crate::workflow;

/// The workflow the crash test runs: three connector calls around a timer.
pub const CRASH_WORKFLOW: &str = r#"
id: crash
input:
  n: {type: integer}
steps:
  - id: open
    call: ticketing.create
    with: {subject: "crash {{ input.n }}", body: "b"}
    retry: {attempts: 10, backoff: 1s}
  - id: pause
    wait: 1s
  - id: note
    call: ticketing.comment
    with: {ticket: "{{ steps.open.output.id }}", body: "c"}
  - id: close
    call: ticketing.close
    with: {ticket: "{{ steps.open.output.id }}"}
"#;

#[derive(Debug, Subcommand)]
pub enum Internal {
    /// Start COUNT instances of the crash workflow (idempotently, by key),
    /// print `ACK <n> <id>` as each start is acknowledged, and `DONE` when
    /// all have completed.
    CrashLoad {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 300)]
        count: u32,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
}

pub fn run(cmd: Internal) -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match cmd {
        Internal::CrashLoad {
            data,
            count,
            concurrency,
        } => rt.block_on(crash_load(data, count, concurrency)),
    }
}

/// Answers after a few milliseconds, so that calls are in flight when killed.
struct SlowTickets;

impl Connector for SlowTickets {
    fn call(&self, call: ConnectorCall) -> BoxFuture<CallOutcome> {
        Box::pin(async move {
            let jitter = call
                .idempotency_key
                .bytes()
                .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64))
                % 20;
            tokio::time::sleep(Duration::from_millis(jitter)).await;
            CallOutcome::Ok(json!({"id": format!("T-{}", call.idempotency_key)}))
        })
    }
}

async fn crash_load(data: PathBuf, count: u32, concurrency: usize) -> ExitCode {
    let store = match SledStore::open(&data, &StoreConfig::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vakt internal crash-load: {e}");
            return ExitCode::from(2);
        }
    };
    let plan = workflow::load_source("crash.yaml", CRASH_WORKFLOW.to_owned())
        .result
        .expect("the crash workflow is valid");
    let mut plans = Plans::default();
    plans.insert(plan.clone());
    let rt = Runtime::open(
        store,
        plans,
        Arc::new(SlowTickets),
        Arc::new(LogNotifier),
        Arc::new(SystemClock),
        RuntimeConfig::default(),
    )
    .expect("runtime opens");
    rt.install(plan, CRASH_WORKFLOW).expect("definition stored");
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut handles = Vec::new();
    for n in 0..count {
        let rt = rt.clone();
        let sem = sem.clone();
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire().await;
            match rt
                .start(
                    "crash",
                    json!({"n": n}),
                    "load@vakt.test",
                    Some(format!("crash-{n}")),
                )
                .await
            {
                Ok(id) => println!("ACK {n} {id}"),
                Err(e) => eprintln!("start {n}: {e}"),
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    loop {
        let done = rt
            .store()
            .ids_by_workflow("crash", Some("completed"), count as usize + 1)
            .map(|v| v.len())
            .unwrap_or(0);
        if done >= count as usize {
            println!("DONE");
            rt.shutdown().await;
            return ExitCode::SUCCESS;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
