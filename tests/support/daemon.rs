//! A real `vakt serve` process for a test.
//!
//! [`DaemonBuilder`] writes a temporary directory: `vakt.toml` (listening on
//! `127.0.0.1:0`, workflows from `workflows/`, `[roles]`, optionally the
//! mail plugin bound to the `mail` role and granted the test's SMTP sink),
//! the workflow files, and the data directory, which is given to the daemon
//! through `VAKT_DATA_DIR` (so the override is exercised by every test).
//! [`Daemon`] spawns `vakt serve --config …`, reads the bound address from
//! the line it prints on stdout, waits for `/healthz`, and on a restart asks
//! for the same port again through `VAKT_LISTEN` (mailed links stay valid;
//! another port is taken only if that one is gone).
//!
//! The daemon's stderr (its log) is appended to `daemon.log` across restarts;
//! when a test panics the tail is printed. The process is killed on drop.
//! Set `VAKT_KEEP_TEST_DIRS=1` to keep the directory of a failed test.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{self, Req};
use super::smtp::Smtp;
use super::{poll, repo_root};

/// How long a start may take to print its address (the first start compiles
/// the mail plugin; test binaries run in parallel).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The mail plugin's component, built by `plugins/build.sh` (run once here
/// if it is missing).
pub fn mail_plugin_wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"));
            let wasm = target.join("wasm32-wasip2/release/vakt_plugin_mail.wasm");
            if !wasm.exists() {
                let script = repo_root().join("plugins/build.sh");
                eprintln!(
                    "{} is missing: running {}",
                    wasm.display(),
                    script.display()
                );
                let status = Command::new("bash")
                    .arg(&script)
                    .current_dir(repo_root())
                    .status()
                    .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
                assert!(
                    status.success() && wasm.exists(),
                    "plugins/build.sh failed ({status}); build the plugins with \
                     `./plugins/build.sh` (needs `rustup target add wasm32-wasip2`)"
                );
            }
            wasm
        })
        .clone()
}

/// A `vakt` command with no `VAKT_*` variable of the test's environment
/// (the daemon refuses unknown ones as config fields).
fn vakt_command() -> Command {
    let mut cmd = Command::new(crate::vakt_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("VAKT_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("RUST_LOG", "info").stdin(Stdio::null());
    cmd
}

/// What to put in the daemon's directory before it starts.
pub struct DaemonBuilder {
    name: String,
    lines: Vec<String>,
    roles: Vec<(String, Vec<String>)>,
    smtp_port: Option<u16>,
    workflows: Vec<(String, Vec<u8>)>,
}

impl DaemonBuilder {
    /// `name` prefixes the temporary directory.
    pub fn new(name: &str) -> DaemonBuilder {
        DaemonBuilder {
            name: name.to_owned(),
            lines: Vec::new(),
            roles: Vec::new(),
            smtp_port: None,
            workflows: Vec::new(),
        }
    }

    /// A top-level line of `vakt.toml` (`max_body_bytes = 4096`).
    pub fn config(mut self, line: &str) -> Self {
        self.lines.push(line.to_owned());
        self
    }

    /// `[roles] role = [addresses]`.
    pub fn role(mut self, role: &str, addresses: &[&str]) -> Self {
        self.roles.push((
            role.to_owned(),
            addresses.iter().map(|a| a.to_string()).collect(),
        ));
        self
    }

    /// Binds the real mail plugin to the `mail` role, granted the sink.
    pub fn mail_through(mut self, smtp: &Smtp) -> Self {
        self.smtp_port = Some(smtp.port);
        self
    }

    /// A workflow file in the watched directory.
    pub fn workflow(mut self, file: &str, text: &str) -> Self {
        self.workflows
            .push((file.to_owned(), text.as_bytes().to_vec()));
        self
    }

    /// A copy of a workflow of the repository (`workflows/…`).
    pub fn repo_workflow(mut self, relative: &str) -> Self {
        let path = repo_root().join(relative);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        self.workflows.push((name, bytes));
        self
    }

    /// Writes the directory without starting the daemon (tokens can be
    /// made first with [`Daemon::token`]).
    pub fn prepare(self) -> Daemon {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("vakt-{}-", self.name))
            .tempdir()
            .expect("a temporary directory");
        let root = tmp.path().to_path_buf();
        let data_dir = root.join("data");
        let workflows_dir = root.join("workflows");
        std::fs::create_dir_all(&workflows_dir).unwrap();
        for (file, bytes) in &self.workflows {
            std::fs::write(workflows_dir.join(file), bytes).unwrap();
        }
        let mut toml = String::new();
        toml.push_str("# Written by the test harness (tests/support/daemon.rs).\n");
        toml.push_str("# data_dir comes from VAKT_DATA_DIR.\n");
        toml.push_str("listen = \"127.0.0.1:0\"\n");
        toml.push_str(&format!(
            "workflows = {:?}\n",
            workflows_dir.display().to_string()
        ));
        toml.push_str("log_level = \"info\"\n");
        for l in &self.lines {
            toml.push_str(l);
            toml.push('\n');
        }
        toml.push_str("\n[mail]\nfrom = \"vakt@kommun.example\"\n");
        if !self.roles.is_empty() {
            toml.push_str("\n[roles]\n");
            for (role, people) in &self.roles {
                toml.push_str(&format!("{role} = {people:?}\n"));
            }
        }
        if let Some(port) = self.smtp_port {
            toml.push_str(&format!(
                "\n[plugins.mail]\nwasm = {:?}\nrole = \"mail\"\nsettings = {{ from = \"vakt@kommun.example\" }}\n\
                 smtp = {{ host = \"127.0.0.1\", port = {port}, tls = \"none\" }}\n",
                mail_plugin_wasm().display().to_string()
            ));
        }
        let config_file = root.join("vakt.toml");
        std::fs::write(&config_file, toml).unwrap();
        Daemon {
            log_file: root.join("daemon.log"),
            tmp: Some(tmp),
            root,
            data_dir,
            workflows_dir,
            config_file,
            child: None,
            base: Arc::new(RwLock::new(String::new())),
            port: 0,
            starts: 0,
        }
    }

    /// Writes the directory and starts the daemon.
    pub fn start(self) -> Daemon {
        let mut d = self.prepare();
        d.start();
        d
    }
}

/// A running (or stopped) `vakt serve` and its directory.
pub struct Daemon {
    tmp: Option<tempfile::TempDir>,
    pub root: PathBuf,
    pub data_dir: PathBuf,
    pub workflows_dir: PathBuf,
    pub config_file: PathBuf,
    log_file: PathBuf,
    child: Option<Child>,
    base: Arc<RwLock<String>>,
    port: u16,
    starts: u32,
}

impl Daemon {
    /// Starts the daemon (the first time: on port 0).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the daemon is already running");
        if let Err(e) = self.spawn(None) {
            panic!("vakt serve did not start: {e}\n{}", self.log_tail(60));
        }
    }

    /// Starts the daemon again on the same data directory, on the same port
    /// if it can be had.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the daemon before restarting it");
        let same = format!("127.0.0.1:{}", self.port);
        if let Err(e) = self.spawn(Some(same)) {
            if !e.contains("exited") || !self.log().contains("cannot listen") {
                panic!("vakt serve did not restart: {e}\n{}", self.log_tail(60));
            }
            eprintln!(
                "port {} is taken: the daemon restarts on another one",
                self.port
            );
            if let Err(e) = self.spawn(None) {
                panic!("vakt serve did not restart: {e}\n{}", self.log_tail(60));
            }
        }
    }

    fn spawn(&mut self, listen: Option<String>) -> Result<(), String> {
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .expect("the daemon's log file");
        let _ = writeln!(
            log,
            "==== test harness: vakt serve, start {} ({}) ====",
            self.starts,
            listen.as_deref().unwrap_or("port 0")
        );
        let mut cmd = vakt_command();
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config_file)
            .current_dir(&self.root)
            .env("VAKT_DATA_DIR", &self.data_dir)
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(l) = &listen {
            cmd.env("VAKT_LISTEN", l);
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot run vakt: {e}"))?;
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Sends the address line, then keeps draining stdout.
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("vakt: listening on ") {
                    let _ = tx.send(line);
                }
            }
        });
        let started = Instant::now();
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => break line,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let status = child.wait().map_err(|e| e.to_string())?;
                    return Err(format!("vakt serve exited ({status}) before listening"));
                }
            }
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("vakt serve exited ({status}) before listening"));
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "vakt serve printed no address within {START_TIMEOUT:?}"
                ));
            }
        };
        // `vakt: listening on http://127.0.0.1:PORT (bound to 127.0.0.1:PORT)`
        let rest = &line["vakt: listening on ".len()..];
        let (base, bound) = rest
            .split_once(" (bound to ")
            .ok_or_else(|| format!("unexpected address line: {line}"))?;
        let port = bound
            .trim_end_matches(')')
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .ok_or_else(|| format!("no port in: {line}"))?;
        if let Some(asked) = &listen
            && bound.trim_end_matches(')') != asked
        {
            let _ = child.kill();
            let _ = child.wait();
            panic!("VAKT_LISTEN={asked} was not obeyed: {line}");
        }
        self.port = port;
        *self.base.write().unwrap() = base.to_owned();
        self.child = Some(child);
        let health = self.url("/healthz");
        poll(
            "GET /healthz → 200",
            Duration::from_secs(30),
            || match http::get(&health).try_send() {
                Ok(r) if r.status == 200 => Ok(()),
                Ok(r) => Err(format!("{r:?}")),
                Err(e) => Err(e),
            },
        );
        Ok(())
    }

    /// Whether the process is alive.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// The process id (of the running daemon).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon runs").id()
    }

    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM; waits (up to 30 s) for the exit and returns its status.
    pub fn sigterm(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("the daemon runs");
        let status = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -TERM {} failed", c.id());
        let started = Instant::now();
        loop {
            if let Some(s) = c.try_wait().expect("wait for vakt") {
                return s;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "vakt serve did not exit within 30 s of SIGTERM\n{}",
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        self.base.read().unwrap().clone()
    }

    /// The base address, shared: it follows restarts (for client threads).
    pub fn base_handle(&self) -> Arc<RwLock<String>> {
        self.base.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    pub fn get(&self, path: &str) -> Req {
        http::get(self.url(path))
    }

    pub fn post(&self, path: &str) -> Req {
        http::post(self.url(path))
    }

    /// `vakt token create --principal … --role … --data-dir …`; when the
    /// daemon runs, waits until it accepts the new token.
    pub fn token(&mut self, principal: &str, role: &str) -> String {
        let out =
            self.cli_on_data_dir(&["token", "create", "--principal", principal, "--role", role]);
        assert!(
            out.status.success(),
            "vakt token create failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(
            token.starts_with("vakt_") && !token.contains(char::is_whitespace),
            "vakt token create printed `{token}`"
        );
        if self.is_running() {
            poll(
                format!("the daemon to accept the new token of {principal}"),
                Duration::from_secs(10),
                || {
                    let r = self.get("/api/v1/workflows").bearer(&token).send();
                    if r.status == 200 {
                        Ok(())
                    } else {
                        Err(format!("{r:?}"))
                    }
                },
            );
        }
        token
    }

    /// Runs `vakt ARGS… --data-dir <data dir>` (a token verb); returns its
    /// output.
    pub fn cli_on_data_dir(&self, args: &[&str]) -> std::process::Output {
        vakt_command()
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .output()
            .expect("run vakt")
    }

    /// Writes (or replaces) a workflow file, atomically.
    pub fn write_workflow(&self, file: &str, text: &str) {
        let tmp = self.workflows_dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.workflows_dir.join(file)).unwrap();
    }

    pub fn remove_workflow(&self, file: &str) {
        std::fs::remove_file(self.workflows_dir.join(file)).unwrap();
    }

    /// Starts an instance; asserts 201 and returns its id.
    #[track_caller]
    pub fn start_instance(&self, token: &str, workflow: &str, input: &Value) -> String {
        let r = self
            .post(&format!("/api/v1/workflows/{workflow}/instances"))
            .bearer(token)
            .json(input)
            .send()
            .expect(201);
        r.json()["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id: {r:?}"))
            .to_owned()
    }

    /// `GET /api/v1/instances/{id}`; asserts 200.
    #[track_caller]
    pub fn instance(&self, token: &str, id: &str) -> Value {
        self.get(&format!("/api/v1/instances/{id}"))
            .bearer(token)
            .send()
            .expect(200)
            .json()
    }

    /// `GET /api/v1/instances/{id}/history`; asserts 200 and `verified`;
    /// returns the records.
    #[track_caller]
    pub fn history(&self, token: &str, id: &str) -> Vec<Value> {
        let v = self
            .get(&format!("/api/v1/instances/{id}/history"))
            .bearer(token)
            .send()
            .expect(200)
            .json();
        assert_eq!(v["verified"], true, "the history of {id} does not verify");
        v["history"].as_array().cloned().unwrap_or_default()
    }

    /// Polls an instance until `status`; returns it.
    #[track_caller]
    pub fn wait_status(&self, token: &str, id: &str, status: &str, timeout: Duration) -> Value {
        poll(format!("instance {id} to be {status}"), timeout, || {
            let v = self.instance(token, id);
            if v["status"] == status {
                Ok(v)
            } else {
                Err(format!(
                    "status {}, waiting on {}, error {}",
                    v["status"], v["waiting"], v["error"]
                ))
            }
        })
    }

    /// The daemon's log so far (every start).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(n);
        format!(
            "---- last {} lines of {} ----\n{}\n----",
            lines.len() - from,
            self.log_file.display(),
            lines[from..].join("\n")
        )
    }

    /// The directory of the test, for messages.
    pub fn dir(&self) -> &Path {
        &self.root
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(80));
            if std::env::var_os("VAKT_KEEP_TEST_DIRS").is_some()
                && let Some(tmp) = self.tmp.take()
            {
                eprintln!("kept the test directory {}", tmp.keep().display());
            }
        }
    }
}
