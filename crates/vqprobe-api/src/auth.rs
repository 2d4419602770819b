//! Bearer-key authentication. Keys are only ever held as SHA-256 digests: the config
//! file carries digests, and plaintext keys from `VQPROBE_API_KEYS` are hashed at start
//! and dropped, so neither the file nor a memory dump of the key set yields a key.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::error::ApiError;

/// Environment variable with extra plaintext keys, comma-separated.
pub const KEYS_ENV: &str = "VQPROBE_API_KEYS";

/// Why a key set could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// An `api.key_hashes` entry is not `sha256:` + 64 hex digits. The value is not
    /// echoed: it may be a key pasted by mistake.
    #[error("api.key_hashes[{0}]: expected \"sha256:\" followed by 64 hex digits")]
    BadHash(usize),
}

/// The accepted keys, as SHA-256 digests.
#[derive(Clone, Default)]
pub struct KeySet {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Digests are not secrets, but they let an attacker test guesses offline.
        write!(f, "KeySet({} keys)", self.digests.len())
    }
}

impl KeySet {
    /// A set with no keys: the API then serves without authentication, which
    /// [`check_listen`] only allows on loopback.
    pub fn empty() -> KeySet {
        KeySet::default()
    }

    /// Builds the set from configured digests (`sha256:<hex>`) and plaintext keys
    /// (empty entries are skipped, surrounding blanks trimmed).
    pub fn new<'a>(
        hashes: &[String],
        plaintext: impl IntoIterator<Item = &'a str>,
    ) -> Result<KeySet, KeyError> {
        let mut digests = Vec::with_capacity(hashes.len());
        for (i, h) in hashes.iter().enumerate() {
            let hex_part = h.strip_prefix("sha256:").ok_or(KeyError::BadHash(i))?;
            let mut d = [0u8; 32];
            hex::decode_to_slice(hex_part, &mut d).map_err(|_| KeyError::BadHash(i))?;
            digests.push(d);
        }
        for key in plaintext {
            let key = key.trim();
            if !key.is_empty() {
                digests.push(digest(key.as_bytes()));
            }
        }
        Ok(KeySet { digests })
    }

    /// [`KeySet::new`] with the plaintext keys read from [`KEYS_ENV`] (unset = none).
    pub fn from_config(hashes: &[String]) -> Result<KeySet, KeyError> {
        let env = std::env::var(KEYS_ENV).unwrap_or_default();
        KeySet::new(hashes, env.split(','))
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Number of accepted keys.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether `presented` is one of the keys. The presented key's digest is compared
    /// with every stored digest in constant time and without an early exit, so the
    /// timing says neither which key matched nor how much of one did.
    pub fn verify(&self, presented: &[u8]) -> bool {
        let d = digest(presented);
        let mut found = Choice::from(0);
        for stored in &self.digests {
            found |= stored.ct_eq(&d);
        }
        bool::from(found)
    }

    /// Whether a request with this `Authorization` header value may pass.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        if self.is_empty() {
            return true;
        }
        authorization
            .and_then(bearer_token)
            .is_some_and(|key| self.verify(key))
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The key of `Bearer <key>` (the scheme is case-insensitive, RFC 7235 §2.1).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let key = rest.trim_ascii();
    (!key.is_empty()).then_some(key)
}

/// Refuses an API without keys on anything but a loopback address; `Err` holds the
/// one-line reason for the operator.
pub fn check_listen(listen: SocketAddr, keys: &KeySet) -> Result<(), String> {
    if keys.is_empty() && !listen.ip().to_canonical().is_loopback() {
        return Err(format!(
            "api.listen {listen} is not a loopback address and no API key is configured \
             (set api.key_hashes or {KEYS_ENV}); refusing to serve the API without \
             authentication"
        ));
    }
    Ok(())
}

/// What the daemon should print at start about authentication.
pub fn startup_notice(listen: SocketAddr, keys: &KeySet) -> String {
    if keys.is_empty() {
        format!(
            "no API key configured: serving the API on loopback only ({listen}) \
             without authentication"
        )
    } else {
        format!(
            "serving the API on {listen}; {} bearer key(s) accepted",
            keys.len()
        )
    }
}

/// Middleware: lets the request through with a valid key, else answers 401.
pub async fn require_key(State(keys): State<Arc<KeySet>>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if keys.allows(header) {
        next.run(req).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(key: &str) -> String {
        format!("sha256:{}", hex::encode(digest(key.as_bytes())))
    }

    #[test]
    fn hashed_and_plain_keys_both_verify() {
        let keys = KeySet::new(&[hash_of("alpha")], [" beta ", "", "gamma"]).unwrap();
        assert_eq!(keys.len(), 3);
        for k in ["alpha", "beta", "gamma"] {
            assert!(keys.verify(k.as_bytes()), "{k}");
        }
        assert!(!keys.verify(b"delta"));
        assert!(!keys.verify(b""));
        assert!(!format!("{keys:?}").contains("beta"));
    }

    #[test]
    fn bad_hash_is_named_by_index() {
        let err = KeySet::new(&[hash_of("a"), "sha256:zz".into()], []).unwrap_err();
        assert_eq!(err, KeyError::BadHash(1));
        assert_eq!(
            KeySet::new(&["md5:00".into()], []).unwrap_err(),
            KeyError::BadHash(0)
        );
    }

    #[test]
    fn bearer_header_parsing() {
        let keys = KeySet::new(&[], ["s3cret"]).unwrap();
        assert!(keys.allows(Some(b"Bearer s3cret")));
        assert!(keys.allows(Some(b"bearer  s3cret ")));
        assert!(!keys.allows(Some(b"Basic s3cret")));
        assert!(!keys.allows(Some(b"Bearer")));
        assert!(!keys.allows(Some(b"Bearer ")));
        assert!(!keys.allows(Some(b"s3cret")));
        assert!(!keys.allows(None));
        assert!(KeySet::empty().allows(None));
    }

    #[test]
    fn listen_without_keys_must_be_loopback() {
        let keys = KeySet::empty();
        for ok in ["127.0.0.1:8080", "[::1]:8080", "[::ffff:127.0.0.1]:80"] {
            assert!(check_listen(ok.parse().unwrap(), &keys).is_ok(), "{ok}");
        }
        for bad in ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:8080"] {
            let msg = check_listen(bad.parse().unwrap(), &keys).unwrap_err();
            assert!(msg.contains("no API key"), "{msg}");
        }
        let keyed = KeySet::new(&[], ["k"]).unwrap();
        assert!(check_listen("0.0.0.0:8080".parse().unwrap(), &keyed).is_ok());
    }
}
