//! `vakt token create|list|revoke`: the API tokens of a data directory,
//! managed on the daemon's machine, while the daemon runs or not (tokens
//! live in `<data_dir>/tokens.json`, outside the store's lock; a running
//! daemon sees a change within about a second). See [`crate::serve::tokens`].
//!
//! The data directory is `--data-dir`, else `VAKT_DATA_DIR`, else the
//! config's `data_dir` (`--config`, or `./vakt.toml` when present), else
//! `./data`: the same one `vakt serve` would use.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::client::render::Table;
use crate::serve::config::Config;
use crate::serve::tokens::{self, ApiRole, TokenInfo, Tokens};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token. It is printed alone on stdout, once:
    /// `export VAKT_TOKEN=$(vakt token create …)`.
    Create {
        /// Who uses the token: a mail address (an approver decides the
        /// tasks assigned to this address).
        #[arg(long, value_name = "ADDRESS")]
        principal: String,
        /// admin, operator or approver; repeat for several.
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<ApiRole>,
        /// What the token is for (shown in `vakt token list`).
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        #[command(flatten)]
        place: Place,
    },
    /// List tokens (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        place: Place,
    },
    /// Revoke a token by its id (the 8 characters after `vakt_`).
    Revoke {
        id: String,
        #[command(flatten)]
        place: Place,
    },
}

/// Which data directory.
#[derive(Debug, Args)]
pub struct Place {
    /// The daemon's data directory. Default: VAKT_DATA_DIR, else the
    /// config's data_dir, else ./data.
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    pub data_dir: Option<PathBuf>,
    /// The daemon's config file, to find its data_dir. Default: ./vakt.toml
    /// when present.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl Place {
    /// The data directory `vakt serve` would use with these arguments.
    pub fn data_dir(&self) -> Result<PathBuf, String> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        // The config would give VAKT_DATA_DIR precedence too; reading it
        // first spares a config that fails for other reasons.
        if let Some(d) = std::env::var_os("VAKT_DATA_DIR").filter(|d| !d.is_empty()) {
            return Ok(d.into());
        }
        Config::load(self.config.as_deref())
            .map(|c| c.data_dir)
            .map_err(|e| format!("{e}\n(or name the data directory with --data-dir)"))
    }
}

/// Runs `vakt token …`; returns the exit code.
pub fn run(cmd: TokenCommand) -> ExitCode {
    let code = execute(cmd, &mut io::stdout().lock(), &mut io::stderr().lock());
    ExitCode::from(code)
}

/// Runs a token verb with its streams given; returns the exit code.
pub fn execute(cmd: TokenCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let place = match &cmd {
        TokenCommand::Create { place, .. }
        | TokenCommand::List { place, .. }
        | TokenCommand::Revoke { place, .. } => place,
    };
    let dir = match place.data_dir() {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
    let tokens = match Tokens::open(&dir) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 1;
        }
    };
    let file = dir.join("tokens.json");
    let result = match cmd {
        TokenCommand::Create {
            principal,
            roles,
            note,
            ..
        } => create(
            &tokens,
            &file,
            &principal,
            &roles,
            note.as_deref(),
            out,
            err,
        ),
        TokenCommand::List { json, .. } => list(&tokens, &file, json, out, err),
        TokenCommand::Revoke { id, .. } => match tokens.revoke(&id) {
            Ok(true) => {
                let _ = writeln!(out, "revoked token {id}");
                Ok(0)
            }
            Ok(false) => Err((1, format!("no token `{id}` in {}", file.display()))),
            Err(e) => Err((1, e)),
        },
    };
    match result {
        Ok(code) => code,
        Err((code, message)) => {
            let _ = writeln!(err, "error: {message}");
            code
        }
    }
}

fn create(
    tokens: &Tokens,
    file: &Path,
    principal: &str,
    roles: &[ApiRole],
    note: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, (u8, String)> {
    tokens::check(principal, roles, note).map_err(|e| (2, e))?;
    let (info, token) = tokens.create(principal, roles, note).map_err(|e| (1, e))?;
    let _ = writeln!(out, "{token}");
    let _ = writeln!(
        err,
        "created token {} for {} ({}) in {}\n\
         it is shown only now; keep it secret. Clients read it from VAKT_TOKEN; revoke it with `vakt token revoke {}`",
        info.id,
        info.principal,
        roles_text(&info),
        file.display(),
        info.id
    );
    Ok(0)
}

fn list(
    tokens: &Tokens,
    file: &Path,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, (u8, String)> {
    let all = tokens.list().map_err(|e| (1, e))?;
    if json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "tokens": all }))
            .map_err(|e| (1, e.to_string()))?;
        let _ = writeln!(out, "{text}");
        return Ok(0);
    }
    if all.is_empty() {
        let _ = writeln!(err, "no tokens in {}", file.display());
        return Ok(0);
    }
    let mut t = Table::new(&["ID", "PRINCIPAL", "ROLES", "CREATED", "NOTE"]);
    for i in &all {
        t.row(vec![
            i.id.clone(),
            i.principal.clone(),
            roles_text(i),
            i.created_at.clone(),
            i.note.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let _ = out.write_all(t.render().as_bytes());
    Ok(0)
}

fn roles_text(info: &TokenInfo) -> String {
    let roles: Vec<&str> = info.roles.iter().map(|r| r.as_str()).collect();
    roles.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: TokenCommand,
    }

    fn parse(args: &[&str]) -> Result<TokenCommand, clap::Error> {
        T::try_parse_from(std::iter::once("vakt").chain(args.iter().copied())).map(|t| t.cmd)
    }

    fn run_in(dir: &Path, args: &[&str]) -> (u8, String, String) {
        let mut all = args.to_vec();
        all.extend(["--data-dir", dir.to_str().unwrap()]);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = execute(parse(&all).unwrap(), &mut out, &mut err);
        let s = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (code, s(out), s(err))
    }

    #[test]
    fn create_list_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (code, token, hint) = run_in(
            &data,
            &[
                "create",
                "--principal",
                "ops@kommun.se",
                "--role",
                "operator",
                "--role",
                "approver",
                "--note",
                "ci",
            ],
        );
        assert_eq!(code, 0, "{hint}");
        let token = token.strip_suffix('\n').unwrap();
        assert!(token.starts_with("vakt_") && !token.contains(char::is_whitespace));
        assert!(
            !hint.contains(token) && hint.contains("VAKT_TOKEN"),
            "{hint}"
        );
        let id = &token[5..13];
        let p = Tokens::open(&data).unwrap().authenticate(token).unwrap();
        assert_eq!(p.roles, vec![ApiRole::Operator, ApiRole::Approver]);

        let (code, table, _) = run_in(&data, &["list"]);
        assert_eq!(code, 0);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("ID        PRINCIPAL      ROLES"),
            "{table}"
        );
        assert!(lines[1].starts_with(&format!("{id}  ops@kommun.se  operator,approver")));
        assert!(lines[1].ends_with("  ci"), "{table}");
        assert!(!table.contains(&token[14..]));
        let (_, json, _) = run_in(&data, &["list", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["tokens"][0]["id"], id);
        assert!(v["tokens"][0].get("sha256").is_none());

        assert_eq!(run_in(&data, &["revoke", id]).0, 0);
        let (code, _, err) = run_in(&data, &["revoke", id]);
        assert_eq!(code, 1);
        assert!(err.starts_with(&format!("error: no token `{id}`")), "{err}");
        let (code, _, err) = run_in(&data, &["create", "--principal", "ops", "--role", "admin"]);
        assert_eq!(code, 2);
        assert!(err.contains("not a mail address"), "{err}");
    }

    #[test]
    fn arguments() {
        let e = parse(&["create", "--principal", "a@b.se", "--role", "boss"]).unwrap_err();
        assert!(
            e.to_string().contains("admin, operator and approver"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
        assert!(parse(&["create", "--principal", "a@b.se"]).is_err());
        let e = parse(&["list", "--data-dir", "d", "--config", "c"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn the_data_dir_comes_from_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("vakt.toml");
        std::fs::write(&cfg, "data_dir = \"/srv/vakt\"\n").unwrap();
        let place = Place {
            data_dir: None,
            config: Some(cfg),
        };
        if std::env::var_os("VAKT_DATA_DIR").is_none() {
            assert_eq!(place.data_dir().unwrap(), PathBuf::from("/srv/vakt"));
        }
        let place = Place {
            data_dir: None,
            config: Some(dir.path().join("missing.toml")),
        };
        if std::env::var_os("VAKT_DATA_DIR").is_none() {
            let e = place.data_dir().unwrap_err();
            assert!(
                e.contains("missing.toml") && e.contains("--data-dir"),
                "{e}"
            );
        }
    }
}
