//! API tokens: who is calling, and in which roles.
//!
//! A token is `vakt_<id>_<secret>`: `id` is 8 random hex characters (shown
//! in `vakt token list`, used to revoke), `secret` is 32 random bytes in
//! unpadded base64url. Only `sha256(secret)` (of the secret's text) is kept,
//! in `<data_dir>/tokens.json`, a file of its own because the running daemon
//! holds the store's lock and `vakt token create` must work beside it.
//!
//! Writers (`create`, `revoke`) take an exclusive lock on
//! `<data_dir>/tokens.lock`, read the file, change it, and replace it
//! atomically (temporary file, fsync, rename, fsync of the directory); the
//! file and the lock are mode 0600. The daemon's [`Tokens::authenticate`]
//! looks at the file's identity (inode, length, mtime) at most once a
//! second and re-reads it when it changed, so tokens created or revoked
//! while it runs count within about a second. A file that became corrupt is
//! reported once and the last good set stays in force.
//!
//! Secrets are compared by their digests in constant time.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const FILE: &str = "tokens.json";
const LOCK: &str = "tokens.lock";
const PREFIX: &str = "vakt_";
const ID_LEN: usize = 8;
/// 32 bytes in unpadded base64.
const SECRET_LEN: usize = 43;
/// How often `authenticate` looks at the file.
const RECHECK: Duration = Duration::from_secs(1);

/// What a token allows. `admin` holds every role (see [`Principal::has`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    /// Everything.
    Admin,
    /// Start, signal and cancel instances; read everything.
    Operator,
    /// Decide tasks assigned to the token's principal.
    Approver,
}

impl ApiRole {
    pub const ALL: [ApiRole; 3] = [ApiRole::Admin, ApiRole::Operator, ApiRole::Approver];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Admin => "admin",
            ApiRole::Operator => "operator",
            ApiRole::Approver => "approver",
        }
    }
}

impl fmt::Display for ApiRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiRole {
    type Err = String;

    fn from_str(s: &str) -> Result<ApiRole, String> {
        ApiRole::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("`{s}` is not an API role; the roles are admin, operator and approver")
            })
    }
}

/// The caller behind an accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A mail address, as given when the token was created.
    pub address: String,
    pub roles: Vec<ApiRole>,
    pub token_id: String,
}

impl Principal {
    /// Whether the principal holds `role`; `admin` holds every role.
    pub fn has(&self, role: ApiRole) -> bool {
        self.roles
            .iter()
            .any(|r| *r == role || *r == ApiRole::Admin)
    }
}

/// A token as listed: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub principal: String,
    pub roles: Vec<ApiRole>,
    /// RFC 3339, UTC.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One token as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    info: TokenInfo,
    /// sha256 of the secret's text, hex.
    sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    version: u32,
    tokens: Vec<Stored>,
}

/// What identifies one version of the file; `None` when there is no file.
type Stamp = Option<(u64, u64, SystemTime)>;

struct Cache {
    by_id: BTreeMap<String, ([u8; 32], TokenInfo)>,
    stamp: Stamp,
    checked: Instant,
    /// The version of the file last reported as unreadable.
    reported: Option<Stamp>,
}

impl Cache {
    /// Logs a reload failure once per version of the file.
    fn report(&mut self, stamp: Stamp, error: &str) {
        if self.reported != Some(stamp) {
            tracing::error!(
                error,
                "cannot reload the API tokens; the last good set stays"
            );
            self.reported = Some(stamp);
        }
    }
}

/// The token set of one data directory.
pub struct Tokens {
    dir: PathBuf,
    file: PathBuf,
    recheck: Duration,
    cache: Mutex<Cache>,
}

impl Tokens {
    /// Reads `<data_dir>/tokens.json`; a missing file (or directory) is an
    /// empty set. An unreadable or corrupt file is an error naming it.
    pub fn open(data_dir: &Path) -> Result<Tokens, String> {
        let file = data_dir.join(FILE);
        let stamp = stamp(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let parsed = read_file(&file)?;
        Ok(Tokens {
            dir: data_dir.to_path_buf(),
            cache: Mutex::new(Cache {
                by_id: index(&parsed)?,
                stamp,
                checked: Instant::now(),
                reported: None,
            }),
            file,
            recheck: RECHECK,
        })
    }

    /// The principal a bearer token stands for, if it is a current token.
    /// `bearer` is the token itself (`vakt_…`), without `Bearer `.
    pub fn authenticate(&self, bearer: &str) -> Option<Principal> {
        let (id, secret) = split(bearer.trim())?;
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        self.refresh(&mut cache);
        let (want, info) = cache.by_id.get(id)?;
        if !constant_time_eq(want, &digest) {
            return None;
        }
        Some(Principal {
            address: info.principal.clone(),
            roles: info.roles.clone(),
            token_id: info.id.clone(),
        })
    }

    /// Creates a token; returns it listed and the token text, which is
    /// shown once and never stored.
    pub fn create(
        &self,
        principal: &str,
        roles: &[ApiRole],
        note: Option<&str>,
    ) -> Result<(TokenInfo, String), String> {
        check(principal, roles, note)?;
        let principal = principal.trim();
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        let mut secret_bytes = [0u8; 32];
        getrandom::fill(&mut secret_bytes).map_err(|e| format!("no randomness: {e}"))?;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes);
        let digest = hex::encode(Sha256::digest(secret.as_bytes()));
        self.modify(|tokens| {
            let id = loop {
                let mut raw = [0u8; ID_LEN / 2];
                getrandom::fill(&mut raw).map_err(|e| format!("no randomness: {e}"))?;
                let id = hex::encode(raw);
                if !tokens.iter().any(|t| t.info.id == id) {
                    break id;
                }
            };
            let info = TokenInfo {
                id: id.clone(),
                principal: principal.to_owned(),
                roles,
                created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                note: note.map(str::to_owned),
            };
            tokens.push(Stored {
                info: info.clone(),
                sha256: digest,
            });
            Ok((info.clone(), format!("{PREFIX}{id}_{secret}")))
        })
    }

    /// Every token, oldest first, read from the file as it is now.
    pub fn list(&self) -> Result<Vec<TokenInfo>, String> {
        let mut tokens: Vec<TokenInfo> = read_file(&self.file)?
            .tokens
            .into_iter()
            .map(|t| t.info)
            .collect();
        tokens.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(tokens)
    }

    /// Removes the token `id` (the 8 hex characters); `false` if there was
    /// none.
    pub fn revoke(&self, id: &str) -> Result<bool, String> {
        let id = id.trim();
        let id = id
            .strip_prefix(PREFIX)
            .map(|rest| rest.get(..ID_LEN).unwrap_or(rest))
            .unwrap_or(id);
        self.modify(|tokens| {
            let before = tokens.len();
            tokens.retain(|t| !t.info.id.eq_ignore_ascii_case(id));
            Ok(tokens.len() != before)
        })
    }

    /// Re-reads the file if it changed and the last look is old enough.
    fn refresh(&self, cache: &mut Cache) {
        if cache.checked.elapsed() < self.recheck {
            return;
        }
        cache.checked = Instant::now();
        let now = match stamp(&self.file) {
            Ok(s) => s,
            Err(e) => {
                cache.report(None, &format!("{}: {e}", self.file.display()));
                return;
            }
        };
        if now == cache.stamp {
            return;
        }
        match read_file(&self.file).and_then(|f| index(&f)) {
            Ok(by_id) => {
                tracing::info!(file = %self.file.display(), tokens = by_id.len(), "API tokens reloaded");
                cache.by_id = by_id;
                cache.stamp = now;
                cache.reported = None;
            }
            Err(e) => cache.report(now, &e),
        }
    }

    /// Read-modify-write under the lock file; the cache follows.
    fn modify<T>(
        &self,
        change: impl FnOnce(&mut Vec<Stored>) -> Result<T, String>,
    ) -> Result<T, String> {
        let named = |e: io::Error, p: &Path| format!("{}: {e}", p.display());
        if !self.dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| named(e, &self.dir))?;
        }
        let lock_path = self.dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| named(e, &lock_path))?;
        lock.lock().map_err(|e| named(e, &lock_path))?;
        let mut file = read_file(&self.file)?;
        let out = change(&mut file.tokens)?;
        file.version = 1;
        let by_id = index(&file)?;
        let text = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
        write_atomic(&self.dir, &self.file, &text).map_err(|e| named(e, &self.file))?;
        let stamp = stamp(&self.file).map_err(|e| named(e, &self.file))?;
        drop(lock);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        *cache = Cache {
            by_id,
            stamp,
            checked: Instant::now(),
            reported: None,
        };
        Ok(out)
    }
}

/// Why [`Tokens::create`] would refuse these arguments, if it would.
pub fn check(principal: &str, roles: &[ApiRole], note: Option<&str>) -> Result<(), String> {
    let principal = principal.trim();
    if !looks_like_address(principal) {
        return Err(format!(
            "principal `{principal}` is not a mail address (write `name@example.org`)"
        ));
    }
    if roles.is_empty() {
        return Err("give at least one role (admin, operator or approver)".into());
    }
    if note.is_some_and(|n| n.trim().chars().any(char::is_control)) {
        return Err("the note must be one line of text".into());
    }
    Ok(())
}

fn stamp(file: &Path) -> io::Result<Stamp> {
    match fs::metadata(file) {
        Ok(m) => Ok(Some((m.ino(), m.len(), m.modified()?))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_file(file: &Path) -> Result<TokenFile, String> {
    let bytes = match fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(TokenFile::default()),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let parsed: TokenFile = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{}: not a valid token file ({e}); restore it from a backup or move it away and create new tokens",
            file.display()
        )
    })?;
    if parsed.version != 1 {
        return Err(format!(
            "{}: token file version {} is not supported by this vakt",
            file.display(),
            parsed.version
        ));
    }
    Ok(parsed)
}

fn index(file: &TokenFile) -> Result<BTreeMap<String, ([u8; 32], TokenInfo)>, String> {
    let mut by_id = BTreeMap::new();
    for t in &file.tokens {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(&t.sha256, &mut digest)
            .map_err(|_| format!("token {}: the stored digest is not sha256 hex", t.info.id))?;
        if by_id
            .insert(t.info.id.clone(), (digest, t.info.clone()))
            .is_some()
        {
            return Err(format!("token {} is listed twice", t.info.id));
        }
    }
    Ok(by_id)
}

fn write_atomic(dir: &Path, file: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut nonce = [0u8; 4];
    getrandom::fill(&mut nonce).map_err(io::Error::other)?;
    let tmp = dir.join(format!(
        ".{FILE}.{}.{}",
        std::process::id(),
        hex::encode(nonce)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, file)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `vakt_<id>_<secret>` → (id, secret), if well formed.
fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let id = rest.get(..ID_LEN)?;
    let secret = rest.get(ID_LEN..)?.strip_prefix('_')?;
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let secret_ok = secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn looks_like_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !local.contains('@')
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests;
