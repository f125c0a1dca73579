//! Client verbs: `vakt start`, `instances`, `show`, `tasks`, `decide`,
//! `signal`, `cancel` and `workflows`, which talk to a running `vakt serve`
//! over its HTTP API v1.
//!
//! The daemon is found by `--url` or `VAKT_URL` (default
//! `http://127.0.0.1:7700`), the caller by `--token` or `VAKT_TOKEN`
//! (never printed). Answers are shown as aligned tables with times in UTC;
//! `--json` prints the API's JSON instead. Failures are one `error:` line
//! (the API's message and code, or why the daemon could not be reached),
//! sometimes a `hint:`, and exit code 1; a wrong command exits 2.
//!
//! - [`api`]: requests and failures.
//! - [`render`]: tables and views.

pub(crate) mod api;
pub(crate) mod render;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, Read, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use api::{Api, Failure};

/// Where the daemon is and who is asking.
#[derive(Clone, Args)]
pub struct Conn {
    /// The daemon's address.
    #[arg(long, env = "VAKT_URL", default_value = "http://127.0.0.1:7700")]
    pub url: String,
    /// An API token (`vakt token create`). Prefer VAKT_TOKEN: an argument
    /// is visible to other users in the process list.
    #[arg(long, env = "VAKT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API's JSON as it is (pretty-printed).
    #[arg(long)]
    pub json: bool,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "[hidden]"))
            .field("json", &self.json)
            .finish()
    }
}

/// Instance statuses, for `--status`.
const STATUSES: [&str; 5] = ["running", "waiting", "completed", "failed", "cancelled"];

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Start an instance of a workflow (on a running daemon); prints its id.
    Start {
        /// The workflow's id.
        workflow: String,
        /// The input: JSON, @FILE, or - for stdin. Default: {}.
        #[arg(long, value_name = "JSON|@FILE|-")]
        input: Option<String>,
        /// Starting twice with one key starts one instance.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List instances (on a running daemon).
    Instances {
        /// Only instances of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only instances in this status.
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show an instance: status, tasks, clocks and its verified history.
    Show {
        /// The instance's id.
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List open tasks (on a running daemon).
    Tasks {
        /// Closed tasks too.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Decide a task: choose one of its options.
    Decide {
        /// The task's id (`<instance>:<n>`, see `vakt tasks`).
        task: String,
        /// The option's id (`approve`, `reject`, …).
        option: String,
        /// A comment, kept in the history.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Send a signal to an instance waiting for it.
    Signal {
        /// The instance's id.
        id: String,
        /// The signal's name.
        name: String,
        /// The signal's data: JSON, @FILE, or - for stdin. Default: null.
        #[arg(long, value_name = "JSON|@FILE|-")]
        data: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Cancel an instance.
    Cancel {
        /// The instance's id.
        id: String,
        /// Why, kept in the history.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the loaded workflows, with the errors of invalid files.
    Workflows {
        #[command(flatten)]
        conn: Conn,
    },
}

/// Runs a client verb; returns the exit code.
pub fn run(cmd: ClientCommand) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let mut out = io::stdout().lock();
    let mut err = io::stderr().lock();
    let code = match rt.block_on(execute(cmd, &mut io::stdin(), &mut out, &mut err)) {
        Ok(code) => code,
        Err(f) => {
            let _ = err.write_all(f.render().as_bytes());
            f.code
        }
    };
    let _ = out.flush();
    ExitCode::from(code)
}

/// Runs a verb with its streams given; `Ok` is the exit code.
pub async fn execute(
    cmd: ClientCommand,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Failure> {
    let conn = match &cmd {
        ClientCommand::Start { conn, .. }
        | ClientCommand::Instances { conn, .. }
        | ClientCommand::Show { conn, .. }
        | ClientCommand::Tasks { conn, .. }
        | ClientCommand::Decide { conn, .. }
        | ClientCommand::Signal { conn, .. }
        | ClientCommand::Cancel { conn, .. }
        | ClientCommand::Workflows { conn } => conn.clone(),
    };
    let api = Api::new(&conn.url, conn.token.as_deref())?;
    let json = conn.json;
    // What the answer is, and how a person reads it.
    let (answer, human): (Value, View) = match cmd {
        ClientCommand::Start {
            workflow,
            input,
            idempotency_key,
            ..
        } => {
            let input = match input {
                Some(arg) => json_arg("--input", &arg, stdin)?,
                None => json!({}),
            };
            let key = idempotency_key.as_deref().map(|k| ("idempotency-key", k));
            let v = api
                .post(&["workflows", &workflow, "instances"], &input, key)
                .await?;
            let human = move |v: &Value| Human {
                out: format!("{}\n", render::field(v, "id")),
                err: format!(
                    "started an instance of {workflow} ({})\n",
                    render::field(v, "status")
                ),
                code: 0,
            };
            (v, Box::new(human))
        }
        ClientCommand::Instances {
            workflow,
            status,
            limit,
            ..
        } => {
            let limit = limit.map(|l| l.to_string()).unwrap_or_default();
            let query = [
                ("workflow", workflow.as_deref().unwrap_or("")),
                ("status", status.as_deref().unwrap_or("")),
                ("limit", limit.as_str()),
            ];
            let v = api.get(&["instances"], &query).await?;
            (v, Box::new(|v: &Value| Human::out(render::instances(v))))
        }
        ClientCommand::Show { id, .. } => {
            let inst = api.get(&["instances", &id], &[]).await?;
            let history = api.get(&["instances", &id, "history"], &[]).await?;
            let verified = history.get("verified").and_then(Value::as_bool) == Some(true);
            let human = move |v: &Value| Human {
                out: render::show(&v["instance"], &v["history"]),
                err: if verified {
                    String::new()
                } else {
                    format!(
                        "error: the history of {id} does not verify: it was changed outside vakt\n"
                    )
                },
                code: if verified { 0 } else { 1 },
            };
            (
                json!({"instance": inst, "history": history}),
                Box::new(human),
            )
        }
        ClientCommand::Tasks { all, .. } => {
            let status = if all { "all" } else { "open" };
            let v = api.get(&["tasks"], &[("status", status)]).await?;
            let human = move |v: &Value| Human::out(render::tasks(render::list(v, "tasks"), all));
            (v, Box::new(human))
        }
        ClientCommand::Decide {
            task,
            option,
            comment,
            ..
        } => {
            let mut body = json!({"decision": option});
            if let Some(c) = comment {
                body["comment"] = Value::String(c);
            }
            let v = api.post(&["tasks", &task, "decision"], &body, None).await?;
            let human = move |v: &Value| {
                Human::out(format!(
                    "decided {task}: {} (instance {})\n",
                    render::field(v, "decision"),
                    render::field(v, "instance")
                ))
            };
            (v, Box::new(human))
        }
        ClientCommand::Signal { id, name, data, .. } => {
            let data = match data {
                Some(arg) => json_arg("--data", &arg, stdin)?,
                None => Value::Null,
            };
            let v = api
                .post(&["instances", &id, "signals", &name], &data, None)
                .await?;
            let human = move |_: &Value| Human::out(format!("sent signal {name} to {id}\n"));
            (v, Box::new(human))
        }
        ClientCommand::Cancel { id, reason, .. } => {
            let body = match reason {
                Some(r) => json!({"reason": r}),
                None => json!({}),
            };
            let v = api.post(&["instances", &id, "cancel"], &body, None).await?;
            let human =
                move |v: &Value| Human::out(format!("{id}: {}\n", render::field(v, "status")));
            (v, Box::new(human))
        }
        ClientCommand::Workflows { .. } => {
            let v = api.get(&["workflows"], &[]).await?;
            (v, Box::new(|v: &Value| Human::out(render::workflows(v))))
        }
    };
    let shown = if json {
        let text = serde_json::to_string_pretty(&answer).unwrap_or_default();
        Human::out(text + "\n")
    } else {
        human(&answer)
    };
    // A closed pipe (`vakt instances | head`) is not an error.
    let _ = out.write_all(shown.out.as_bytes());
    let _ = err.write_all(shown.err.as_bytes());
    Ok(shown.code)
}

/// How a person reads an answer.
type View = Box<dyn FnOnce(&Value) -> Human>;

/// What a verb prints, and its exit code.
struct Human {
    out: String,
    err: String,
    code: u8,
}

impl Human {
    fn out(out: String) -> Human {
        Human {
            out,
            err: String::new(),
            code: 0,
        }
    }
}

/// A JSON argument: the text itself, `@FILE`, or `-` for stdin. Errors
/// name the flag.
pub fn json_arg(flag: &str, arg: &str, stdin: &mut dyn Read) -> Result<Value, Failure> {
    let (text, from) = if arg == "-" {
        let mut s = String::new();
        stdin
            .read_to_string(&mut s)
            .map_err(|e| Failure::usage(format!("{flag}: cannot read stdin: {e}")))?;
        (s, "stdin".to_owned())
    } else if let Some(path) = arg.strip_prefix('@') {
        let s = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("{flag}: cannot read {path}: {e}")))?;
        (s, path.to_owned())
    } else {
        (arg.to_owned(), "the argument".to_owned())
    };
    serde_json::from_str(&text).map_err(|e| {
        Failure::usage(format!(
            "{flag}: {from} is not valid JSON ({e}); give JSON, @FILE or - for stdin"
        ))
    })
}
