//! HTTP basic authentication against bcrypt hashes (`basic_auth_users`).
//!
//! bcrypt is slow on purpose (cost 10 is tens of milliseconds), so a
//! Prometheus scraping every 15 s must not pay it each time: the outcome of
//! a check is cached per (user, password) pair. The cache key is an HMAC of
//! the pair under a key made at start, so the cache never holds a password
//! and its lookups reveal nothing about one. Positive outcomes live apart
//! from negative ones, so an attacker trying passwords can only flush the
//! negative cache, never push a valid scraper back onto bcrypt.
//!
//! A user that does not exist is checked against a real user's hash anyway
//! (and then refused), so the response time does not tell whether a name
//! exists. bcrypt itself compares in constant time (the `bcrypt` crate uses
//! `subtle`). bcrypt runs on the blocking pool, one at a time, so a flood of
//! wrong passwords cannot take all CPUs or stall the server thread.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::Mutex;

use base64::Engine;
use hyper::header::HeaderValue;

/// Negative outcomes kept before the negative cache is emptied.
const MAX_NEGATIVE: usize = 1024;
/// Positive outcomes kept (one per valid user and password in use).
const MAX_POSITIVE: usize = 64;

pub struct BasicAuth {
    /// User name → bcrypt hash; never empty.
    users: BTreeMap<String, String>,
    /// The hash checked for unknown users, so they cost the same.
    decoy: String,
    key: ring::hmac::Key,
    positive: Mutex<HashSet<[u8; 32]>>,
    negative: Mutex<HashSet<[u8; 32]>>,
    bcrypt: tokio::sync::Semaphore,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth").field("users", &self.users.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

/// What a request's credentials amount to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied,
}

impl BasicAuth {
    /// Checks every hash; the message names the user, never the hash.
    pub fn new(users: BTreeMap<String, String>) -> Result<BasicAuth, String> {
        for (user, hash) in &users {
            if user.contains(':') {
                return Err(format!(
                    "basic_auth_users: user name {user:?} contains ':', which basic auth cannot carry"
                ));
            }
            let parts = bcrypt::HashParts::from_str(hash).map_err(|e| {
                format!("basic_auth_users: the password of user {user:?} is not a bcrypt hash ($2y$10$…, as made by htpasswd -nBC 10 {user}): {e}")
            })?;
            if !(4..=31).contains(&parts.get_cost()) {
                return Err(format!(
                    "basic_auth_users: the bcrypt cost of user {user:?} is {}, not 4 to 31",
                    parts.get_cost()
                ));
            }
        }
        let decoy = users.values().next().cloned().ok_or("basic_auth_users is empty")?;
        let rng = ring::rand::SystemRandom::new();
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .map_err(|_| "cannot get random bytes from the operating system for the credential cache".to_string())?;
        Ok(BasicAuth {
            users,
            decoy,
            key,
            positive: Mutex::new(HashSet::new()),
            negative: Mutex::new(HashSet::new()),
            bcrypt: tokio::sync::Semaphore::new(1),
        })
    }

    /// Checks an `Authorization` header.
    pub async fn check(&self, header: Option<&HeaderValue>) -> Outcome {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return Outcome::Denied;
        };
        let mut message = Vec::with_capacity(user.len() + password.len() + 1);
        message.extend_from_slice(user.as_bytes());
        message.push(0);
        message.extend_from_slice(password.as_bytes());
        let mut cache_key = [0u8; 32];
        cache_key.copy_from_slice(ring::hmac::sign(&self.key, &message).as_ref());
        if lock(&self.positive).contains(&cache_key) {
            return Outcome::Allowed;
        }
        if lock(&self.negative).contains(&cache_key) {
            return Outcome::Denied;
        }
        let (known, hash) = match self.users.get(&user) {
            Some(hash) => (true, hash.clone()),
            None => (false, self.decoy.clone()),
        };
        let Ok(_permit) = self.bcrypt.acquire().await else {
            return Outcome::Denied;
        };
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        tracing::debug!(user = %user, "checked credentials with bcrypt");
        if known && verified {
            let mut positive = lock(&self.positive);
            if positive.len() >= MAX_POSITIVE {
                positive.clear();
            }
            positive.insert(cache_key);
            Outcome::Allowed
        } else {
            let mut negative = lock(&self.negative);
            if negative.len() >= MAX_NEGATIVE {
                negative.clear();
            }
            negative.insert(cache_key);
            Outcome::Denied
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `Basic base64(user:password)`; the scheme is case-insensitive and the
/// password may contain ':'.
fn parse_basic(header: &HeaderValue) -> Option<(String, String)> {
    let text = header.to_str().ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_for(user: &str, password: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn users(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(u, h)| (u.to_string(), h.to_string())).collect()
    }

    #[test]
    fn parses_the_header() {
        assert_eq!(parse_basic(&header_for("a", "b:c")), Some(("a".into(), "b:c".into())));
        assert_eq!(parse_basic(&HeaderValue::from_static("basic YTpi")), Some(("a".into(), "b".into())));
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer YTpi")), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic !!!")), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic YWJj")), None, "no colon");
    }

    #[test]
    fn every_prefix_verifies_and_outcomes_are_exact() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let hashed = bcrypt::hash_with_result("s3cret", 4).unwrap();
        let auth = BasicAuth::new(users(&[
            ("a", &hashed.format_for_version(bcrypt::Version::TwoA)),
            ("b", &hashed.format_for_version(bcrypt::Version::TwoB)),
            ("y", &hashed.format_for_version(bcrypt::Version::TwoY)),
        ]))
        .unwrap();
        runtime.block_on(async {
            for user in ["a", "b", "y"] {
                assert_eq!(auth.check(Some(&header_for(user, "s3cret"))).await, Outcome::Allowed, "{user}");
                // Cached now; the same answer.
                assert_eq!(auth.check(Some(&header_for(user, "s3cret"))).await, Outcome::Allowed, "{user}");
                assert_eq!(auth.check(Some(&header_for(user, "s3cret "))).await, Outcome::Denied, "{user}");
            }
            assert_eq!(auth.check(Some(&header_for("nobody", "s3cret"))).await, Outcome::Denied);
            assert_eq!(auth.check(None).await, Outcome::Denied);
        });
        assert_eq!(lock(&auth.positive).len(), 3);
        assert_eq!(lock(&auth.negative).len(), 4);
    }

    #[test]
    fn bad_hashes_are_named_without_the_hash() {
        let err = BasicAuth::new(users(&[("alice", "$1$plainmd5")])).unwrap_err();
        assert!(err.contains("user \"alice\"") && !err.contains("plainmd5"), "{err}");
        let hashed = bcrypt::hash_with_result("x", 4).unwrap().format_for_version(bcrypt::Version::TwoY);
        let too_cheap = hashed.replacen("$04$", "$03$", 1);
        let err = BasicAuth::new(users(&[("bob", &too_cheap)])).unwrap_err();
        assert!(err.contains("cost of user \"bob\" is 3"), "{err}");
    }
}
