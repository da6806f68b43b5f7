//! Epistula v2: the request signing convention Bittensor miners and validators speak over
//! HTTP (specs/chain.md, "Epistula v2"). The sender signs
//! `"{sha256_hex(body)}.{uuid}.{timestamp_ms}.{signed_for}"` with its sr25519 hotkey (context
//! `substrate`) and sends the signature and its inputs as headers.
//!
//! - [`Headers::sign`] makes the headers for a body; [`Headers::pairs`] lists them for an HTTP
//!   client; [`Headers::parse`] reads them back from any header map.
//! - [`Verifier`] checks a signed request as a receiver must: the signature over the exact
//!   body bytes, the age of the timestamp (stale or from the future), the intended receiver,
//!   an optional allow-list of senders, and a cache of recent uuids so a captured request
//!   cannot be replayed while it is still fresh.
//!
//! **API Boundary:** header values are untrusted; every parse failure is an
//! [`EpistulaError`] naming the header, never a panic.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use weightlog_schema::event::AccountId;
use weightlog_schema::signature::{PublicKey, SIGNATURE_BYTES};

use crate::keys::Hotkey;

pub const VERSION: &str = "2";
pub const HEADER_VERSION: &str = "Epistula-Version";
pub const HEADER_TIMESTAMP: &str = "Epistula-Timestamp";
pub const HEADER_UUID: &str = "Epistula-Uuid";
pub const HEADER_SIGNED_BY: &str = "Epistula-Signed-By";
pub const HEADER_SIGNED_FOR: &str = "Epistula-Signed-For";
pub const HEADER_SIGNATURE: &str = "Epistula-Request-Signature";

/// A request older than this is refused (the convention's 8 seconds).
pub const STALE_AFTER_MS: u64 = 8_000;
/// A request stamped further than this in the future is refused (clock skew allowance).
pub const FUTURE_SKEW_MS_MAX: u64 = 2_000;
/// Uuids remembered for replay detection; older ones are stale anyway.
pub const REPLAY_CACHE_MAX: usize = 100_000;
/// A uuid longer than this is refused before it reaches the cache.
pub const UUID_BYTES_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpistulaError {
    #[error("missing header {0}: requests must be signed with Epistula v2")]
    Missing(&'static str),
    #[error("header {header} is malformed: {reason}")]
    Malformed {
        header: &'static str,
        reason: String,
    },
    #[error("Epistula version {0} is not supported; send Epistula-Version: 2")]
    UnsupportedVersion(String),
    #[error("the request is stale: signed {age_ms} ms ago, more than {limit_ms} ms")]
    Stale { age_ms: u64, limit_ms: u64 },
    #[error("the request is signed {ahead_ms} ms in the future (allowed skew {limit_ms} ms)")]
    FromTheFuture { ahead_ms: u64, limit_ms: u64 },
    #[error("the request is signed for {found}, not for this receiver {expected}")]
    WrongReceiver { expected: String, found: String },
    #[error("sender {0} is not allowed to send here")]
    NotAllowed(String),
    #[error("the signature does not verify for {0} over this body")]
    BadSignature(String),
    #[error("request uuid {0} was already used; sign every request with a fresh uuid")]
    Replayed(String),
    #[error("the system clock is before 1970")]
    Clock,
}

/// The Epistula headers of one signed request (or response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    pub timestamp_ms: u64,
    pub uuid: String,
    pub signed_by: AccountId,
    pub signed_for: Option<AccountId>,
    pub signature: [u8; SIGNATURE_BYTES],
}

/// Milliseconds since 1970, for stamping and checking requests.
pub fn now_ms() -> Result<u64, EpistulaError> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .map_err(|_| EpistulaError::Clock)
}

/// A random uuid v4 string.
pub fn fresh_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The exact string an Epistula v2 signature covers.
pub fn message(
    body: &[u8],
    uuid: &str,
    timestamp_ms: u64,
    signed_for: Option<&AccountId>,
) -> String {
    let digest = hex::encode(Sha256::digest(body));
    let signed_for = signed_for.map(AccountId::to_ss58).unwrap_or_default();
    format!("{digest}.{uuid}.{timestamp_ms}.{signed_for}")
}

impl Headers {
    /// Signs `body` for `signed_for` (None: not bound to a receiver).
    pub fn sign(
        hotkey: &Hotkey,
        body: &[u8],
        signed_for: Option<AccountId>,
        timestamp_ms: u64,
        uuid: String,
    ) -> Headers {
        let message = message(body, &uuid, timestamp_ms, signed_for.as_ref());
        Headers {
            timestamp_ms,
            uuid,
            signed_by: AccountId(hotkey.public_key()),
            signed_for,
            signature: hotkey.sign(message.as_bytes()),
        }
    }

    /// Signs `body` now, with a fresh uuid.
    pub fn sign_now(
        hotkey: &Hotkey,
        body: &[u8],
        signed_for: Option<AccountId>,
    ) -> Result<Headers, EpistulaError> {
        Ok(Self::sign(
            hotkey,
            body,
            signed_for,
            now_ms()?,
            fresh_uuid(),
        ))
    }

    /// The headers as (name, value) pairs, for an HTTP client or server.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            (HEADER_VERSION, VERSION.to_string()),
            (HEADER_TIMESTAMP, self.timestamp_ms.to_string()),
            (HEADER_UUID, self.uuid.clone()),
            (HEADER_SIGNED_BY, self.signed_by.to_ss58()),
        ];
        if let Some(signed_for) = &self.signed_for {
            pairs.push((HEADER_SIGNED_FOR, signed_for.to_ss58()));
        }
        pairs.push((
            HEADER_SIGNATURE,
            format!("0x{}", hex::encode(self.signature)),
        ));
        pairs
    }

    /// Reads the headers through `get` (a case-insensitive lookup in the caller's header map).
    pub fn parse<'a>(
        get: impl Fn(&'static str) -> Option<&'a str>,
    ) -> Result<Headers, EpistulaError> {
        let required = |name: &'static str| get(name).ok_or(EpistulaError::Missing(name));
        let version = required(HEADER_VERSION)?.trim();
        if version != VERSION {
            return Err(EpistulaError::UnsupportedVersion(truncated(version)));
        }
        let timestamp = required(HEADER_TIMESTAMP)?.trim();
        let timestamp_ms = timestamp
            .parse::<u64>()
            .map_err(|_| malformed(HEADER_TIMESTAMP, "expected Unix time in milliseconds"))?;
        let uuid = required(HEADER_UUID)?.trim();
        if uuid.is_empty() || uuid.len() > UUID_BYTES_MAX {
            return Err(malformed(HEADER_UUID, "expected a uuid"));
        }
        let signed_by = account(HEADER_SIGNED_BY, required(HEADER_SIGNED_BY)?)?;
        let signed_for = match get(HEADER_SIGNED_FOR).map(str::trim) {
            None | Some("") => None,
            Some(value) => Some(account(HEADER_SIGNED_FOR, value)?),
        };
        let signature = required(HEADER_SIGNATURE)?.trim();
        let digits = signature
            .strip_prefix("0x")
            .ok_or_else(|| malformed(HEADER_SIGNATURE, "expected 0x followed by 128 hex digits"))?;
        let mut bytes = [0u8; SIGNATURE_BYTES];
        hex::decode_to_slice(digits, &mut bytes)
            .map_err(|_| malformed(HEADER_SIGNATURE, "expected 0x followed by 128 hex digits"))?;
        Ok(Headers {
            timestamp_ms,
            uuid: uuid.to_string(),
            signed_by,
            signed_for,
            signature: bytes,
        })
    }

    /// Checks the signature over `body`; returns the signer. Says nothing of freshness: see
    /// [`Verifier`].
    pub fn verify_signature(&self, body: &[u8]) -> Result<AccountId, EpistulaError> {
        let message = message(
            body,
            &self.uuid,
            self.timestamp_ms,
            self.signed_for.as_ref(),
        );
        PublicKey(self.signed_by.0)
            .verify(message.as_bytes(), &self.signature)
            .map_err(|_| EpistulaError::BadSignature(self.signed_by.to_ss58()))?;
        Ok(self.signed_by)
    }
}

fn malformed(header: &'static str, reason: &str) -> EpistulaError {
    EpistulaError::Malformed {
        header,
        reason: reason.to_string(),
    }
}

fn truncated(value: &str) -> String {
    value.chars().take(32).collect()
}

fn account(header: &'static str, value: &str) -> Result<AccountId, EpistulaError> {
    AccountId::from_ss58(value.trim())
        .map_err(|error| malformed(header, &format!("expected an SS58 address: {error}")))
}

/// Checks signed requests as a receiver: signature, freshness, receiver, sender allow-list
/// and uuid replay. Shared across request handlers (`&self` methods; the replay cache has its
/// own lock).
#[derive(Debug)]
pub struct Verifier {
    /// The receiver's own hotkey: a request signed for another receiver is refused, and so is
    /// one bound to no receiver when `require_signed_for` is set.
    pub receiver: Option<AccountId>,
    pub require_signed_for: bool,
    /// `None`: any sender whose signature verifies.
    pub allowed: Option<BTreeSet<AccountId>>,
    pub stale_after_ms: u64,
    pub future_skew_ms: u64,
    seen: Mutex<ReplayCache>,
}

#[derive(Debug, Default)]
struct ReplayCache {
    /// uuid -> timestamp it was signed at.
    uuids: HashMap<(AccountId, String), u64>,
    order: VecDeque<((AccountId, String), u64)>,
}

impl Verifier {
    pub fn new(receiver: Option<AccountId>, allowed: Option<BTreeSet<AccountId>>) -> Verifier {
        Verifier {
            receiver,
            require_signed_for: false,
            allowed,
            stale_after_ms: STALE_AFTER_MS,
            future_skew_ms: FUTURE_SKEW_MS_MAX,
            seen: Mutex::new(ReplayCache::default()),
        }
    }

    /// Verifies a request received at `now_ms`; returns the sender. A request that passes is
    /// remembered, so the same uuid from the same sender is refused until it is stale.
    pub fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        now_ms: u64,
    ) -> Result<AccountId, EpistulaError> {
        if headers.timestamp_ms > now_ms.saturating_add(self.future_skew_ms) {
            return Err(EpistulaError::FromTheFuture {
                ahead_ms: headers.timestamp_ms - now_ms,
                limit_ms: self.future_skew_ms,
            });
        }
        let age_ms = now_ms.saturating_sub(headers.timestamp_ms);
        if age_ms > self.stale_after_ms {
            return Err(EpistulaError::Stale {
                age_ms,
                limit_ms: self.stale_after_ms,
            });
        }
        if let Some(receiver) = &self.receiver {
            match &headers.signed_for {
                Some(found) if found != receiver => {
                    return Err(EpistulaError::WrongReceiver {
                        expected: receiver.to_ss58(),
                        found: found.to_ss58(),
                    });
                }
                None if self.require_signed_for => {
                    return Err(EpistulaError::Missing(HEADER_SIGNED_FOR));
                }
                _ => {}
            }
        }
        if let Some(allowed) = &self.allowed
            && !allowed.contains(&headers.signed_by)
        {
            return Err(EpistulaError::NotAllowed(headers.signed_by.to_ss58()));
        }
        let sender = headers.verify_signature(body)?;
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.forget_before(now_ms.saturating_sub(self.stale_after_ms + self.future_skew_ms));
        let key = (sender, headers.uuid.clone());
        if seen.uuids.contains_key(&key) {
            return Err(EpistulaError::Replayed(headers.uuid.clone()));
        }
        if seen.order.len() >= REPLAY_CACHE_MAX
            && let Some((oldest, _)) = seen.order.pop_front()
        {
            seen.uuids.remove(&oldest);
        }
        seen.uuids.insert(key.clone(), headers.timestamp_ms);
        seen.order.push_back((key, headers.timestamp_ms));
        Ok(sender)
    }
}

impl ReplayCache {
    /// Drops uuids signed before `cutoff_ms`: a replay of them is refused as stale anyway.
    fn forget_before(&mut self, cutoff_ms: u64) {
        // Timestamps are not monotonic across senders, so scan from the front while old.
        while let Some((_, timestamp)) = self.order.front() {
            if *timestamp >= cutoff_ms {
                break;
            }
            if let Some((key, _)) = self.order.pop_front() {
                self.uuids.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/chain-fixtures/vectors.json"
        );
        let text = std::fs::read_to_string(path).expect("chain-fixtures/vectors.json");
        serde_json::from_str(&text).expect("vectors.json parses")
    }

    #[test]
    fn the_fixture_signature_verifies_and_its_message_is_rebuilt_exactly() {
        let vectors = vectors();
        let v = &vectors["epistula_v2"];
        let body = v["body_utf8"].as_str().unwrap().as_bytes();
        let signed_for = AccountId::from_ss58(v["signed_for"].as_str().unwrap()).unwrap();
        let uuid = v["uuid"].as_str().unwrap();
        let timestamp_ms = v["timestamp_ms"].as_u64().unwrap();
        assert_eq!(
            message(body, uuid, timestamp_ms, Some(&signed_for)),
            v["signed_message"].as_str().unwrap()
        );
        let get = |name: &'static str| match name {
            HEADER_VERSION => Some("2"),
            HEADER_TIMESTAMP => v["timestamp_ms"].as_u64().map(|_| "1760000000000"),
            HEADER_UUID => v["uuid"].as_str(),
            HEADER_SIGNED_BY => v["signed_by"].as_str(),
            HEADER_SIGNED_FOR => v["signed_for"].as_str(),
            HEADER_SIGNATURE => v["signature"].as_str(),
            _ => None,
        };
        let headers = Headers::parse(get).unwrap();
        assert_eq!(headers.timestamp_ms, timestamp_ms);
        assert_eq!(
            headers.verify_signature(body).unwrap().to_ss58(),
            v["signed_by"].as_str().unwrap()
        );
        assert!(matches!(
            headers.verify_signature(b"{\"task\":\"ping\",\"id\":43}"),
            Err(EpistulaError::BadSignature(_))
        ));
        let verifier = Verifier::new(Some(signed_for), None);
        assert_eq!(
            verifier.verify(&headers, body, timestamp_ms + 100).unwrap(),
            headers.signed_by
        );
        assert_eq!(
            verifier.verify(&headers, body, timestamp_ms + 200),
            Err(EpistulaError::Replayed(uuid.to_string()))
        );
        assert!(matches!(
            verifier.verify(&headers, body, timestamp_ms + STALE_AFTER_MS + 1),
            Err(EpistulaError::Stale { .. })
        ));
    }

    #[test]
    fn signed_headers_round_trip_and_every_check_refuses_with_its_reason() {
        let sender = Hotkey::from_seed(&[7; 32]);
        let receiver = AccountId(Hotkey::from_seed(&[8; 32]).public_key());
        let other = AccountId(Hotkey::from_seed(&[9; 32]).public_key());
        let body = br#"{"challenge_id":"c1"}"#;
        let now = 1_800_000_000_000;
        let headers = Headers::sign(&sender, body, Some(receiver), now, fresh_uuid());
        let pairs = headers.pairs();
        let parsed = Headers::parse(|name| {
            pairs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        })
        .unwrap();
        assert_eq!(parsed, headers);

        let fresh = || Verifier::new(Some(receiver), None);
        assert!(fresh().verify(&parsed, body, now + 5).is_ok());
        assert!(matches!(
            fresh().verify(&parsed, b"{}", now),
            Err(EpistulaError::BadSignature(_))
        ));
        assert!(matches!(
            fresh().verify(&parsed, body, now - FUTURE_SKEW_MS_MAX - 1),
            Err(EpistulaError::FromTheFuture { .. })
        ));
        assert!(matches!(
            Verifier::new(Some(other), None).verify(&parsed, body, now),
            Err(EpistulaError::WrongReceiver { .. })
        ));
        let only_other = Verifier::new(Some(receiver), Some(BTreeSet::from([other])));
        assert_eq!(
            only_other.verify(&parsed, body, now),
            Err(EpistulaError::NotAllowed(parsed.signed_by.to_ss58()))
        );
        let mut strict = fresh();
        strict.require_signed_for = true;
        let unbound = Headers::sign(&sender, body, None, now, fresh_uuid());
        assert_eq!(
            strict.verify(&unbound, body, now),
            Err(EpistulaError::Missing(HEADER_SIGNED_FOR))
        );

        assert_eq!(
            Headers::parse(|_| None),
            Err(EpistulaError::Missing(HEADER_VERSION))
        );
        let bad_signature = Headers::parse(|name| match name {
            HEADER_SIGNATURE => Some("0xzz"),
            other => pairs
                .iter()
                .find(|(n, _)| *n == other)
                .map(|(_, v)| v.as_str()),
        });
        assert!(matches!(
            bad_signature,
            Err(EpistulaError::Malformed {
                header: HEADER_SIGNATURE,
                ..
            })
        ));
        let version_1 = Headers::parse(|name| match name {
            HEADER_VERSION => Some("1"),
            other => pairs
                .iter()
                .find(|(n, _)| *n == other)
                .map(|(_, v)| v.as_str()),
        });
        assert_eq!(
            version_1,
            Err(EpistulaError::UnsupportedVersion("1".into()))
        );
    }
}
