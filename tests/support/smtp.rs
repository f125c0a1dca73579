//! A real SMTP server on loopback: the daemon tests' aiosmtpd sink
//! (`daemon/tests/plugin_support/smtp_sink.py PORT OUTDIR`), which writes
//! every message to `OUTDIR/NNNN.eml` (atomically, by rename) with its
//! envelope in `NNNN.json`. Killed on drop.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use super::mail::Mail;
use super::{poll, repo_root};

/// A Python with aiosmtpd: `$VAKT_TEST_PYTHON`, Debian's, or the one on PATH.
pub fn python_with_aiosmtpd() -> String {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("VAKT_TEST_PYTHON") {
        candidates.push(p);
    }
    candidates.extend(["/usr/bin/python3".to_owned(), "python3".to_owned()]);
    for p in &candidates {
        let ok = Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p.clone();
        }
    }
    panic!(
        "no python3 with aiosmtpd (tried {candidates:?}); install Debian's \
         `python3-aiosmtpd` or set VAKT_TEST_PYTHON"
    );
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on loopback")
        .port()
}

/// The SMTP sink.
pub struct Smtp {
    pub port: u16,
    /// Where messages land.
    pub dir: PathBuf,
    child: Child,
    /// Messages parsed so far (a received file never changes).
    parsed: Mutex<BTreeMap<PathBuf, Mail>>,
    _tmp: tempfile::TempDir,
}

impl Smtp {
    /// Starts the sink on a free port (tries three ports: a port picked free
    /// may be taken before the sink binds it).
    pub fn start() -> Smtp {
        let python = python_with_aiosmtpd();
        let script = repo_root().join("daemon/tests/plugin_support/smtp_sink.py");
        let tmp = tempfile::Builder::new()
            .prefix("vakt-smtp-")
            .tempdir()
            .expect("a temporary directory");
        let dir = tmp.path().join("mail");
        std::fs::create_dir_all(&dir).unwrap();
        let log = tmp.path().join("smtp.log");
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&python)
                .arg(&script)
                .arg(port.to_string())
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(File::create(&log).expect("the sink's log"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
            let out = child.stdout.take().unwrap();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(out).read_line(&mut line);
                let _ = tx.send(line);
            });
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.trim() == "ready" => {
                    return Smtp {
                        port,
                        dir,
                        child,
                        parsed: Mutex::new(BTreeMap::new()),
                        _tmp: tmp,
                    };
                }
                other => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = format!(
                        "{other:?}; its stderr: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        panic!("the SMTP sink did not start: {last}");
    }

    /// Every message received so far, in arrival order.
    pub fn mails(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .expect("the sink's directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        let mut parsed = self.parsed.lock().unwrap();
        files
            .into_iter()
            .map(|f| {
                parsed
                    .entry(f)
                    .or_insert_with_key(|f| Mail::read(f))
                    .clone()
            })
            .collect()
    }

    /// Waits (up to `timeout`) until `count` messages match `pred`; returns
    /// them. Panics listing what did arrive.
    pub fn wait_for(
        &self,
        what: &str,
        count: usize,
        timeout: Duration,
        pred: impl Fn(&Mail) -> bool,
    ) -> Vec<Mail> {
        poll(what, timeout, || {
            let all = self.mails();
            let hits: Vec<Mail> = all.iter().filter(|m| pred(m)).cloned().collect();
            if hits.len() >= count {
                Ok(hits)
            } else {
                Err(format!(
                    "{} matching of {} received: {:#?}",
                    hits.len(),
                    all.len(),
                    all.iter()
                        .map(|m| format!("{} to {:?}: {}", m.file.display(), m.rcpt, m.subject))
                        .collect::<Vec<_>>()
                ))
            }
        })
    }

    /// Waits for one message matching `pred`; returns the first.
    pub fn wait_one(&self, what: &str, timeout: Duration, pred: impl Fn(&Mail) -> bool) -> Mail {
        self.wait_for(what, 1, timeout, pred).remove(0)
    }

    /// The directory of the messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
