//! Signed approval links: the tokens in `{base_url}/t/{token}`.
//!
//! A token is `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`,
//! without padding, where the payload is the compact JSON of a
//! [`LinkClaim`]: one task, one assignee, one option, an expiry and a random
//! nonce. The MAC is checked in constant time before the payload is parsed,
//! so nothing unauthenticated is ever interpreted.
//!
//! The key is 32 random bytes in `<data_dir>/link.key` (mode 0600), made on
//! first start. Replacing or deleting it invalidates every link already
//! mailed; people then decide through the API or the CLI instead.
//!
//! A link is single-use: after a decision through it, its [`marker`]
//! (sha256 of its MAC) is stored in the `links` namespace of the store, and a
//! second POST is refused. The engine refuses a second vote by the same
//! person anyway; the marker makes the refusal clear and cheap.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The key's size in bytes.
const KEY_LEN: usize = 32;
/// Tokens longer than this are refused before any decoding.
const MAX_TOKEN: usize = 4096;

/// What a link grants: one assignee's one decision on one task, until `expires`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaim {
    #[serde(rename = "i")]
    pub instance: String,
    #[serde(rename = "t")]
    pub task: u32,
    /// The address the link was mailed to (who decides).
    #[serde(rename = "a")]
    pub assignee: String,
    /// The option's id.
    #[serde(rename = "o")]
    pub option: String,
    /// Milliseconds since the Unix epoch.
    #[serde(rename = "e")]
    pub expires: i64,
    /// Random, so two links for the same decision differ.
    #[serde(rename = "n")]
    pub nonce: String,
}

impl LinkClaim {
    /// A fresh random nonce (16 bytes, base64url).
    pub fn nonce() -> String {
        let mut b = [0u8; 16];
        // The OS random source does not fail on the systems vakt runs on; a
        // fixed nonce would still leave links signed and single-use.
        let _ = getrandom::fill(&mut b);
        B64.encode(b)
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error(
        "this link is damaged or incomplete; open it again from the mail, or copy the whole address"
    )]
    Malformed,
    #[error("this link is not valid: it was changed, or it was made by another vakt installation")]
    BadSignature,
    #[error("this link has expired; decide through the task list instead, or ask for a new mail")]
    Expired,
}

/// The HMAC key of signed links.
pub struct LinkKey {
    key: [u8; KEY_LEN],
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey([redacted])")
    }
}

impl LinkKey {
    /// Reads `<data_dir>/link.key`, or makes it (32 random bytes, mode 0600,
    /// written to a temporary file, flushed, then linked into place so a
    /// crash never leaves a partial key).
    pub fn open(data_dir: &Path) -> Result<LinkKey, String> {
        let path = data_dir.join("link.key");
        match std::fs::read(&path) {
            Ok(bytes) => return Self::from_file(&path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read the link key {}: {e}", path.display())),
        }
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key)
            .map_err(|e| format!("cannot make a link key: no random source: {e}"))?;
        let tmp = data_dir.join(format!(".link.key.{}.tmp", std::process::id()));
        let io = |what: &str, p: &Path, e: std::io::Error| {
            format!("cannot {what} the link key {}: {e}", p.display())
        };
        {
            let mut f = private_file(&tmp).map_err(|e| io("write", &tmp, e))?;
            f.write_all(&key).map_err(|e| io("write", &tmp, e))?;
            f.sync_all().map_err(|e| io("flush", &tmp, e))?;
        }
        // A hard link never replaces a key another process made meanwhile.
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes = std::fs::read(&path).map_err(|e| io("read", &path, e))?;
                return Self::from_file(&path, &bytes);
            }
            Err(e) => return Err(io("store", &path, e)),
        }
        if let Ok(dir) = std::fs::File::open(data_dir) {
            let _ = dir.sync_all();
        }
        tracing::info!(path = %path.display(), "made a new key for signed links");
        Ok(LinkKey { key })
    }

    /// A key from its bytes (tests, tools).
    pub fn from_bytes(key: [u8; KEY_LEN]) -> LinkKey {
        LinkKey { key }
    }

    fn from_file(path: &Path, bytes: &[u8]) -> Result<LinkKey, String> {
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            format!(
                "the link key {} has {} bytes, but a link key is exactly {KEY_LEN}; \
                 restore the right file, or remove it to make a new key \
                 (links already mailed then stop working)",
                path.display(),
                bytes.len()
            )
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            if let Ok(m) = std::fs::metadata(path)
                && m.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(path = %path.display(), "the link key is readable by others; chmod 600 it");
            }
        }
        Ok(LinkKey { key })
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any size")
    }

    /// The token for a claim: `payload.mac`, URL-safe.
    pub fn sign(&self, claim: &LinkClaim) -> String {
        let payload = serde_json::to_vec(claim).expect("a claim serializes");
        let mut mac = self.mac();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        format!("{}.{}", B64.encode(&payload), B64.encode(tag))
    }

    /// Checks a token's MAC (in constant time), then its expiry against `now`
    /// (ms since the epoch), and returns its claim.
    pub fn verify(&self, token: &str, now: i64) -> Result<LinkClaim, LinkError> {
        if token.len() > MAX_TOKEN {
            return Err(LinkError::Malformed);
        }
        let (payload, tag) = token.split_once('.').ok_or(LinkError::Malformed)?;
        let payload = B64.decode(payload).map_err(|_| LinkError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| LinkError::Malformed)?;
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&tag)
            .map_err(|_| LinkError::BadSignature)?;
        let claim: LinkClaim =
            serde_json::from_slice(&payload).map_err(|_| LinkError::Malformed)?;
        if now >= claim.expires {
            return Err(LinkError::Expired);
        }
        Ok(claim)
    }
}

/// The single-use marker of a token: sha256 of its MAC (the MAC's bytes, so
/// any spelling of one token gives one marker). Use it after [`LinkKey::verify`].
pub fn marker(token: &str) -> Vec<u8> {
    let tag = token
        .split_once('.')
        .and_then(|(_, t)| B64.decode(t).ok())
        .unwrap_or_else(|| token.as_bytes().to_vec());
    Sha256::digest(&tag).to_vec()
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claim() -> LinkClaim {
        LinkClaim {
            instance: "0190aa".into(),
            task: 7,
            assignee: "åsa@kommun.se".into(),
            option: "approve".into(),
            expires: 10_000,
            nonce: LinkClaim::nonce(),
        }
    }

    fn key(b: u8) -> LinkKey {
        LinkKey::from_bytes([b; KEY_LEN])
    }

    #[test]
    fn round_trip_and_url_safe() {
        let c = claim();
        let t = key(1).sign(&c);
        assert!(
            t.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)),
            "{t}"
        );
        assert_eq!(key(1).verify(&t, 9_999), Ok(c.clone()));
        assert_ne!(
            t,
            key(1).sign(&LinkClaim {
                nonce: LinkClaim::nonce(),
                ..c
            })
        );
    }

    #[test]
    fn tampering_expiry_and_wrong_key_are_refused() {
        let k = key(1);
        let c = claim();
        let t = k.sign(&c);
        let (p, m) = t.split_once('.').unwrap();
        // Another payload under the old MAC.
        let forged = LinkClaim {
            option: "reject".into(),
            ..c.clone()
        };
        let fp = B64.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            k.verify(&format!("{fp}.{m}"), 0),
            Err(LinkError::BadSignature)
        );
        // A changed MAC.
        let mut tag = B64.decode(m).unwrap();
        tag[0] ^= 1;
        let t2 = format!("{p}.{}", B64.encode(&tag));
        assert_eq!(k.verify(&t2, 0), Err(LinkError::BadSignature));
        assert_eq!(
            k.verify(&format!("{p}.{}", &m[..8]), 0),
            Err(LinkError::BadSignature)
        );
        // Expiry is checked after the signature.
        assert_eq!(k.verify(&t, 10_000), Err(LinkError::Expired));
        assert_eq!(key(2).verify(&t, 0), Err(LinkError::BadSignature));
        for bad in [
            "",
            ".",
            "abc",
            "a.b.c",
            "!!!.???",
            &"A".repeat(MAX_TOKEN + 1),
        ] {
            assert!(k.verify(bad, 0).is_err(), "{bad}");
        }
        assert!(!LinkError::Expired.to_string().is_empty());
    }

    #[test]
    fn marker_is_per_token() {
        let k = key(1);
        let a = k.sign(&claim());
        let b = k.sign(&claim());
        assert_eq!(marker(&a), marker(&a));
        assert_ne!(marker(&a), marker(&b));
        assert_eq!(marker(&a).len(), 32);
        assert_eq!(marker("garbage").len(), 32);
    }

    #[test]
    fn the_key_file_is_made_once_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let k1 = LinkKey::open(&data).unwrap();
        let t = k1.sign(&claim());
        let k2 = LinkKey::open(&data).unwrap();
        assert!(k2.verify(&t, 0).is_ok(), "the key is kept");
        let path = data.join("link.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::read_dir(&data).unwrap().count(),
            1,
            "no temp file left"
        );
        std::fs::write(&path, b"short").unwrap();
        let e = LinkKey::open(&data).unwrap_err();
        assert!(e.contains("has 5 bytes") && e.contains("exactly 32"), "{e}");
        assert_eq!(format!("{k1:?}"), "LinkKey([redacted])");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(s in "\\PC{0,300}", dot in "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,80}") {
            let k = key(3);
            prop_assert!(k.verify(&s, 0).is_err());
            prop_assert!(k.verify(&dot, 0).is_err());
            let _ = marker(&s);
        }

        #[test]
        fn any_claim_round_trips(i in "\\PC{0,40}", a in "\\PC{0,40}", o in "\\PC{0,20}", task: u32, e in 1i64..i64::MAX) {
            let k = key(4);
            let c = LinkClaim { instance: i, task, assignee: a, option: o, expires: e, nonce: LinkClaim::nonce() };
            prop_assert_eq!(k.verify(&k.sign(&c), e - 1), Ok(c));
        }
    }
}
