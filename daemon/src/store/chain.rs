//! The hash chain of an instance's history: each entry carries the hash of
//! the one before it, so that a changed, removed or reordered entry is seen.
//!
//! `hash = sha256(prev_hash || seq (u64 BE) || at (i64 BE) || record JSON)`;
//! the first entry's `prev_hash` is 32 zero bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::{Record, Ts};

pub const GENESIS: [u8; 32] = [0; 32];

/// One stored history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at: Ts,
    pub record: Record,
    #[serde(with = "hex32")]
    pub prev: [u8; 32],
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
    /// Set when the record's payload was purged (retention): the sha256 of
    /// the record as it was, so the chain still verifies.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex32")]
    pub purged: Option<[u8; 32]>,
}

impl Entry {
    /// Builds the entry that follows `prev`.
    pub fn link(prev: [u8; 32], seq: u64, at: Ts, record: Record) -> Entry {
        let json = serde_json::to_vec(&record).expect("records serialize");
        let hash = digest(&prev, seq, at, &json);
        Entry {
            seq,
            at,
            record,
            prev,
            hash,
            purged: None,
        }
    }
}

/// Links a record after `prev` and returns the new hash with the stored
/// bytes of the entry (the same JSON as [`Entry`]'s), serializing the
/// record once.
pub fn link_bytes(prev: [u8; 32], seq: u64, at: Ts, record: &Record) -> ([u8; 32], Vec<u8>) {
    let json = serde_json::to_vec(record).expect("records serialize");
    let hash = digest(&prev, seq, at, &json);
    let mut out = Vec::with_capacity(json.len() + 200);
    out.extend_from_slice(format!("{{\"seq\":{seq},\"at\":{at},\"record\":").as_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(
        format!(
            ",\"prev\":\"{}\",\"hash\":\"{}\"}}",
            hex::encode(prev),
            hex::encode(hash)
        )
        .as_bytes(),
    );
    (hash, out)
}

/// An entry's hash: over the previous hash, the sequence number, the time
/// and the sha256 of the record's JSON (so a purged record, whose content
/// hash is kept, still verifies).
fn digest(prev: &[u8; 32], seq: u64, at: Ts, record_json: &[u8]) -> [u8; 32] {
    digest_of(prev, seq, at, &content_hash(record_json))
}

fn digest_of(prev: &[u8; 32], seq: u64, at: Ts, content: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    h.update(content);
    h.finalize().into()
}

/// The sha256 of a record's JSON.
pub fn content_hash(record_json: &[u8]) -> [u8; 32] {
    Sha256::digest(record_json).into()
}

/// What is wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("entry {seq}: expected sequence number {expected}")]
    Gap { seq: u64, expected: u64 },
    #[error("entry {seq}: its previous hash does not match the entry before it")]
    Broken { seq: u64 },
    #[error("entry {seq}: its hash does not match its content (it was changed)")]
    Tampered { seq: u64 },
}

/// Verifies a whole chain; returns the number of entries and the last hash.
pub fn verify<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
) -> Result<(u64, [u8; 32]), ChainError> {
    let mut prev = GENESIS;
    let mut n = 0u64;
    for e in entries {
        let expected = n + 1;
        if e.seq != expected {
            return Err(ChainError::Gap {
                seq: e.seq,
                expected,
            });
        }
        if e.prev != prev {
            return Err(ChainError::Broken { seq: e.seq });
        }
        let content = match e.purged {
            Some(c) => c,
            None => content_hash(&serde_json::to_vec(&e.record).expect("records serialize")),
        };
        if digest_of(&e.prev, e.seq, e.at, &content) != e.hash {
            return Err(ChainError::Tampered { seq: e.seq });
        }
        prev = e.hash;
        n = expected;
    }
    Ok((n, prev))
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let bytes = hex::decode(&s).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a hash is 32 bytes"))
    }
}

mod opt_hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&hex::encode(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => {
                let bytes = hex::decode(&s).map_err(serde::de::Error::custom)?;
                bytes
                    .try_into()
                    .map(Some)
                    .map_err(|_| serde::de::Error::custom("a hash is 32 bytes"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain() -> Vec<Entry> {
        let mut out = Vec::new();
        let mut prev = GENESIS;
        for i in 1..=3 {
            let e = Entry::link(
                prev,
                i,
                i as i64 * 10,
                Record::SignalReceived {
                    name: format!("s{i}"),
                    data: json!(i),
                },
            );
            prev = e.hash;
            out.push(e);
        }
        out
    }

    #[test]
    fn a_good_chain_verifies() {
        let c = chain();
        assert_eq!(verify(&c).unwrap(), (3, c[2].hash));
    }

    #[test]
    fn link_bytes_are_the_entry_json() {
        let c = chain();
        let (hash, bytes) = link_bytes(c[0].hash, 2, 20, &c[1].record);
        assert_eq!(hash, c[1].hash);
        let back: Entry = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, c[1]);
    }

    #[test]
    fn changes_are_seen() {
        let mut c = chain();
        c[1].record = Record::SignalReceived {
            name: "forged".into(),
            data: json!(0),
        };
        assert_eq!(verify(&c), Err(ChainError::Tampered { seq: 2 }));
        let mut c = chain();
        c.remove(1);
        assert_eq!(
            verify(&c),
            Err(ChainError::Gap {
                seq: 3,
                expected: 2
            })
        );
        let mut c = chain();
        c[2].prev = [1; 32];
        assert_eq!(verify(&c), Err(ChainError::Broken { seq: 3 }));
    }
}
