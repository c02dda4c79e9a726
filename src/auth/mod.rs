//! Who is asking: credentials checked against the catalog's users and tokens.
//!
//! Passwords are kept only as bcrypt hashes, tokens only as SHA-256; neither is ever
//! logged. bcrypt is slow by design (about 70 ms a check here), so it never runs on a
//! request worker nor under the control state's lock: what a check needs is copied out of
//! the catalog ([`Authenticator::claim`]), then [`Authenticator::verify`] hashes on the
//! blocking pool, a few at a time. A successful check is remembered for a short while,
//! keyed by a salted SHA-256 of the user, the password and the stored hash (so a new
//! password ends it); failed checks are counted per user and per client address, and past
//! a limit refused without hashing.

mod permission;

pub(crate) use permission::effective_permissions;
pub(crate) use permission::{Action, Resource, Wanted};

use crate::catalog::Catalog;
use crate::proto::TokenPermission;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// bcrypt cost, as InfluxDB uses.
const BCRYPT_COST: u32 = 10;
/// Remembered successes and counted failures kept before expired ones are swept.
const MAX_TRACKED_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    /// Something was sent but could not be read as credentials.
    Unparseable,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Principal {
    pub user: String,
    /// Ties the principal to this user, not to a later one of the same name.
    pub user_id: String,
    /// An admin user, by password or with a token that does not narrow its rights, at
    /// the time of authentication.
    pub admin: bool,
    /// A token's own permissions (None: a password, or a token that may do all its user
    /// may do). See [`Principal::privilege`] and [`Principal::holds`].
    pub scope: Option<Vec<TokenPermission>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AuthError {
    #[error("unable to parse authentication credentials")]
    Unparseable,
    #[error("authorization failed")]
    Failed,
    #[error("too many failed authentication attempts, retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("error authorizing query: create admin user first or disable authentication")]
    NoAdminYet,
    #[error("error authorizing query: {user} not authorized to execute statement '{statement}', requires {needs}")]
    NotPermitted {
        user: String,
        statement: String,
        /// `admin privilege`, or a privilege on a database (`READ on db1`).
        needs: String,
    },
    #[error("\"{user}\" user is not authorized to write to database \"{database}\"")]
    WriteNotPermitted { user: String, database: String },
    #[error("cannot hash password: {0}")]
    Hash(String),
}

/// How password checks are bounded (from the node's configuration).
#[derive(Debug, Clone)]
pub(crate) struct PasswordCheckLimits {
    /// bcrypt computations at once; more callers wait their turn (asynchronously).
    pub concurrency: usize,
    /// How long a successful check is remembered.
    pub cache_ttl: Duration,
    /// Failed checks per user and per client address within `failure_window` before
    /// further attempts are refused without a check (0: no limit).
    pub failure_limit: u32,
    pub failure_window: Duration,
}

impl Default for PasswordCheckLimits {
    fn default() -> Self {
        PasswordCheckLimits {
            concurrency: 2,
            cache_ttl: Duration::from_secs(60),
            failure_limit: 10,
            failure_window: Duration::from_secs(60),
        }
    }
}

/// What the catalog says about a set of credentials, copied out so that the lock is not
/// held while a password is hashed.
#[derive(Debug)]
pub(crate) enum Claim {
    /// A token: settled already (hashing a token is cheap).
    Settled(Principal),
    Password {
        user: String,
        password: String,
        /// None for an unknown user: refused, but counted like a wrong password.
        stored: Option<StoredUser>,
    },
}

#[derive(Debug)]
pub(crate) struct StoredUser {
    pub id: String,
    pub admin: bool,
    pub password_bcrypt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum FailureKey {
    User(String),
    Client(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct FailureWindow {
    started: Instant,
    failures: u32,
}

pub(crate) struct Authenticator {
    salt: [u8; 16],
    limits: PasswordCheckLimits,
    bcrypt_slots: Arc<tokio::sync::Semaphore>,
    /// Cache key -> when the success stops being remembered.
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    failures: Mutex<HashMap<FailureKey, FailureWindow>>,
}

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator::new(PasswordCheckLimits::default())
    }
}

impl Authenticator {
    pub(crate) fn new(limits: PasswordCheckLimits) -> Self {
        let mut salt = [0u8; 16];
        // Without the OS's randomness the cache key is still unique per credentials; only
        // its resistance to precomputation is lost.
        let _ = getrandom::fill(&mut salt);
        Authenticator {
            salt,
            bcrypt_slots: Arc::new(tokio::sync::Semaphore::new(limits.concurrency.max(1))),
            limits,
            verified: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Reads what checking `credentials` needs from the catalog: cheap, no hashing.
    pub(crate) fn claim(
        &self,
        catalog: &Catalog,
        credentials: &Credentials,
    ) -> Result<Claim, AuthError> {
        match credentials {
            Credentials::None | Credentials::Unparseable => Err(AuthError::Unparseable),
            Credentials::Token(token) => {
                let digest = token_sha256(token);
                let found = catalog
                    .tokens
                    .values()
                    .find(|t| t.token_sha256 == digest)
                    .ok_or(AuthError::Failed)?;
                // A token whose user is gone is revoked with it.
                let user = catalog
                    .user_by_id(&found.user_id)
                    .ok_or(AuthError::Failed)?;
                let scope = Some(found.permissions.clone()).filter(|p| !p.is_empty());
                Ok(Claim::Settled(Principal {
                    user: user.name.clone(),
                    user_id: user.id.clone(),
                    admin: user.admin && scope.is_none(),
                    scope,
                }))
            }
            Credentials::UserPassword { user, password } => Ok(Claim::Password {
                user: user.clone(),
                password: password.clone(),
                stored: catalog.users.get(user).map(|u| StoredUser {
                    id: u.id.clone(),
                    admin: u.admin,
                    password_bcrypt: u.password_bcrypt.clone(),
                }),
            }),
        }
    }

    /// Settles a claim: remembered success, refusal past the failure limit, or a bcrypt
    /// check on the blocking pool. `client` is the caller's address, when known.
    pub(crate) async fn verify(
        &self,
        claim: Claim,
        client: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        let (user, password, stored) = match claim {
            Claim::Settled(principal) => return Ok(principal),
            Claim::Password {
                user,
                password,
                stored,
            } => (user, password, stored),
        };
        let principal = |s: &StoredUser| Principal {
            user: user.clone(),
            user_id: s.id.clone(),
            admin: s.admin,
            scope: None,
        };
        let key = stored
            .as_ref()
            .map(|s| self.cache_key(&user, &password, &s.password_bcrypt));
        let now = Instant::now();
        if let (Some(s), Some(key)) = (&stored, &key) {
            if self.remembered(key, now) {
                return Ok(principal(s));
            }
        }
        let mut keys = Vec::with_capacity(2);
        if stored.is_some() {
            keys.push(FailureKey::User(user.clone()));
        }
        keys.extend(client.map(FailureKey::Client));
        // An attempt counts as a failure until its hash says otherwise: many attempts
        // arriving together must not all get past the limit while the first are hashed.
        if let Err(refused) = self.admit_attempt(&keys, now) {
            // A client past its limit that retries at once is answered slowly: the
            // refusal itself costs little, but a tight loop of them from many
            // connections would take the CPU that other clients' requests need. A
            // timer holds the connection, not a thread.
            tokio::time::sleep(REFUSAL_DELAY).await;
            return Err(refused);
        }
        let Some(s) = stored else {
            return Err(AuthError::Failed);
        };
        let hash = s.password_bcrypt.clone();
        let matches = self
            .on_blocking_pool(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await?;
        if !matches {
            return Err(AuthError::Failed);
        }
        self.forgive_attempt(&keys);
        if let Some(key) = key {
            self.remember(key, Instant::now());
        }
        Ok(principal(&s))
    }

    /// Hashes a new password off the request workers, within the same bound as checks.
    pub(crate) async fn hash_password(&self, password: &str) -> Result<String, AuthError> {
        let password = password.to_owned();
        self.on_blocking_pool(move || hash_password(&password))
            .await?
    }

    async fn on_blocking_pool<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, AuthError> {
        let _slot = self
            .bcrypt_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        // A thread of its own at a low CPU priority: a burst of password checks (73 ms
        // of CPU each) must not delay writes and `/ping` on a node with few cores. At
        // most `bcrypt_concurrency` exist at once.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("password-hash".into())
            .spawn(move || {
                crate::priority::lower_current_thread(crate::priority::PASSWORD_HASH_NICE);
                let _ = done_tx.send(work());
            })
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        done_rx
            .await
            .map_err(|_| AuthError::Hash("the hashing thread stopped".into()))
    }

    /// A remembered success lasts `cache_ttl` after its last use, not after its check: a
    /// client that keeps sending the right password is never checked again, so that a
    /// flood of wrong passwords for its user (which locks the user's checks) cannot lock
    /// it out. A changed password changes the key.
    fn remembered(&self, key: &[u8; 32], now: Instant) -> bool {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        match verified.get_mut(key) {
            Some(until) if *until > now => {
                *until = now + self.limits.cache_ttl;
                true
            }
            Some(_) => {
                verified.remove(key);
                false
            }
            None => false,
        }
    }

    fn remember(&self, key: [u8; 32], now: Instant) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= MAX_TRACKED_ENTRIES {
            verified.retain(|_, until| *until > now);
        }
        if verified.len() < MAX_TRACKED_ENTRIES {
            verified.insert(key, now + self.limits.cache_ttl);
        }
    }

    /// Refuses the attempt if a key is past the failure limit in its window; otherwise
    /// counts it as a failure for every key (see [`Authenticator::forgive_attempt`]).
    fn admit_attempt(&self, keys: &[FailureKey], now: Instant) -> Result<(), AuthError> {
        if self.limits.failure_limit == 0 {
            return Ok(());
        }
        let window = self.limits.failure_window;
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let wait = keys
            .iter()
            .filter_map(|k| failures.get(k))
            .filter(|w| w.failures >= self.limits.failure_limit)
            .filter_map(|w| (w.started + window).checked_duration_since(now))
            .max();
        if let Some(wait) = wait {
            return Err(AuthError::TooManyAttempts {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            });
        }
        if failures.len() >= MAX_TRACKED_ENTRIES {
            failures.retain(|_, w| w.started + window > now);
        }
        for key in keys {
            if failures.len() >= MAX_TRACKED_ENTRIES && !failures.contains_key(key) {
                continue;
            }
            let w = failures.entry(key.clone()).or_insert(FailureWindow {
                started: now,
                failures: 0,
            });
            if w.started + window <= now {
                *w = FailureWindow {
                    started: now,
                    failures: 0,
                };
            }
            w.failures = w.failures.saturating_add(1);
        }
        Ok(())
    }

    /// Takes back the failure an attempt was counted as, once its password matched.
    fn forgive_attempt(&self, keys: &[FailureKey]) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            if let Some(w) = failures.get_mut(key) {
                w.failures = w.failures.saturating_sub(1);
            }
        }
    }

    fn cache_key(&self, user: &str, password: &str, hash: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [
            &self.salt[..],
            user.as_bytes(),
            b"\0",
            password.as_bytes(),
            b"\0",
            hash.as_bytes(),
        ] {
            h.update(part);
        }
        h.finalize().into()
    }
}

/// How long a refusal past the failure limit is held before it is sent.
const REFUSAL_DELAY: Duration = Duration::from_secs(1);

pub(crate) fn hash_password(password: &str) -> Result<String, AuthError> {
    bcrypt::hash(password, BCRYPT_COST).map_err(|e| AuthError::Hash(e.to_string()))
}

pub(crate) fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes
}

/// A new API token (shown to the client once) and the digest that is stored.
pub(crate) fn new_token() -> (String, String) {
    use base64::Engine;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<48>());
    let digest = token_sha256(&token);
    (token, digest)
}

/// A new object id in InfluxDB 2's form: 16 hex digits.
pub(crate) fn new_id() -> String {
    hex::encode(random_bytes::<8>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::Projection;

    fn catalog_with_user(admin: bool) -> Catalog {
        let mut c = Catalog::default();
        let hash = hash_password("s3cret").unwrap();
        for e in c.create_user("id-ann".into(), "ann", hash, admin).unwrap() {
            c.apply(&e);
        }
        c
    }

    fn password(user: &str, password: &str) -> Credentials {
        Credentials::UserPassword {
            user: user.into(),
            password: password.into(),
        }
    }

    async fn check(
        auth: &Authenticator,
        c: &Catalog,
        credentials: &Credentials,
        client: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        auth.verify(auth.claim(c, credentials)?, client).await
    }

    #[tokio::test]
    async fn passwords_are_checked_and_never_stored_in_plain_text() {
        let c = catalog_with_user(true);
        assert!(!c.users["ann"].password_bcrypt.contains("s3cret"));
        let auth = Authenticator::default();
        let ann = Principal {
            user: "ann".into(),
            user_id: "id-ann".into(),
            admin: true,
            scope: None,
        };
        let ok = password("ann", "s3cret");
        assert_eq!(check(&auth, &c, &ok, None).await, Ok(ann.clone()));
        assert_eq!(check(&auth, &c, &ok, None).await, Ok(ann), "cached");
        assert_eq!(
            check(&auth, &c, &password("ann", "wrong"), None).await,
            Err(AuthError::Failed)
        );
        assert_eq!(
            check(&auth, &c, &password("bob", "s3cret"), None).await,
            Err(AuthError::Failed)
        );
        assert_eq!(
            check(&auth, &c, &Credentials::None, None).await,
            Err(AuthError::Unparseable)
        );
    }

    #[tokio::test]
    async fn a_remembered_success_ends_with_its_ttl_and_with_a_new_password() {
        let mut c = catalog_with_user(false);
        let auth = Authenticator::default();
        let key = auth.cache_key("ann", "s3cret", &c.users["ann"].password_bcrypt);
        let now = Instant::now();
        auth.remember(key, now);
        assert!(auth.remembered(&key, now + Duration::from_secs(50)));
        assert!(
            auth.remembered(&key, now + Duration::from_secs(100)),
            "each use keeps a success for another TTL"
        );
        assert!(!auth.remembered(&key, now + Duration::from_secs(161)));
        assert!(check(&auth, &c, &password("ann", "s3cret"), None)
            .await
            .is_ok());
        for e in c
            .set_password("ann", hash_password("other").unwrap())
            .unwrap()
        {
            c.apply(&e);
        }
        assert_eq!(
            check(&auth, &c, &password("ann", "s3cret"), None).await,
            Err(AuthError::Failed),
            "the old password no longer works, remembered or not"
        );
    }

    #[tokio::test]
    async fn a_client_in_use_with_the_right_password_is_not_locked_out_by_a_flood_of_wrong_ones() {
        let c = catalog_with_user(false);
        let auth = Authenticator::new(PasswordCheckLimits {
            failure_limit: 3,
            ..PasswordCheckLimits::default()
        });
        let (writer, attacker): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 9].into());
        assert!(check(&auth, &c, &password("ann", "s3cret"), Some(writer))
            .await
            .is_ok());
        for _ in 0..3 {
            let _ = check(&auth, &c, &password("ann", "wrong"), Some(attacker)).await;
        }
        assert!(matches!(
            check(&auth, &c, &password("ann", "guess"), Some(attacker)).await,
            Err(AuthError::TooManyAttempts { .. })
        ));
        assert!(check(&auth, &c, &password("ann", "s3cret"), Some(writer))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn failures_past_the_limit_are_refused_without_a_check_until_the_window_ends() {
        let c = catalog_with_user(false);
        let auth = Authenticator::new(PasswordCheckLimits {
            failure_limit: 3,
            ..PasswordCheckLimits::default()
        });
        let here: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..3 {
            assert_eq!(
                check(&auth, &c, &password("ann", "wrong"), Some(here)).await,
                Err(AuthError::Failed)
            );
        }
        let refused = check(&auth, &c, &password("ann", "s3cret"), Some(here)).await;
        assert!(
            matches!(refused, Err(AuthError::TooManyAttempts { retry_after_secs }) if (1..=60).contains(&retry_after_secs)),
            "{refused:?}"
        );
        // Another client is refused too for this user, and this client for any user.
        let elsewhere: IpAddr = [10, 0, 0, 2].into();
        assert!(matches!(
            check(&auth, &c, &password("ann", "wrong"), Some(elsewhere)).await,
            Err(AuthError::TooManyAttempts { .. })
        ));
        assert!(matches!(
            check(&auth, &c, &password("nobody", "x"), Some(here)).await,
            Err(AuthError::TooManyAttempts { .. })
        ));
        let later = Instant::now() + Duration::from_secs(61);
        assert_eq!(
            auth.admit_attempt(&[FailureKey::User("ann".into())], later),
            Ok(())
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn attempts_arriving_together_are_counted_before_they_are_hashed() {
        let c = Arc::new(catalog_with_user(false));
        let auth = Arc::new(Authenticator::new(PasswordCheckLimits {
            failure_limit: 3,
            ..PasswordCheckLimits::default()
        }));
        let attempts: Vec<_> = (0..12)
            .map(|_| {
                let (auth, c) = (auth.clone(), c.clone());
                tokio::spawn(async move {
                    let here: IpAddr = [10, 0, 0, 1].into();
                    check(&auth, &c, &password("ann", "wrong"), Some(here)).await
                })
            })
            .collect();
        let mut hashed = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Err(AuthError::Failed) => hashed += 1,
                Err(AuthError::TooManyAttempts { .. }) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(hashed, 3, "only the limit's worth of attempts is hashed");
    }

    #[tokio::test]
    async fn a_matching_password_takes_back_the_failure_its_attempt_counted() {
        let c = catalog_with_user(false);
        let auth = Authenticator::new(PasswordCheckLimits {
            failure_limit: 2,
            cache_ttl: Duration::ZERO,
            ..PasswordCheckLimits::default()
        });
        for _ in 0..5 {
            assert!(check(&auth, &c, &password("ann", "s3cret"), None)
                .await
                .is_ok());
        }
        assert_eq!(
            check(&auth, &c, &password("ann", "wrong"), None).await,
            Err(AuthError::Failed)
        );
        assert!(check(&auth, &c, &password("ann", "s3cret"), None)
            .await
            .is_ok());
    }

    #[test]
    fn a_token_of_a_dropped_user_is_refused() {
        let mut c = catalog_with_user(true);
        for e in c.create_org("o".into(), "acme").unwrap() {
            c.apply(&e);
        }
        let (token, digest) = new_token();
        let created = crate::proto::TokenCreated {
            id: "t".into(),
            token_sha256: digest,
            org_id: "o".into(),
            user_id: "id-ann".into(),
            description: String::new(),
            permissions: Vec::new(),
        };
        for e in c.create_token(created).unwrap() {
            c.apply(&e);
        }
        let auth = Authenticator::default();
        let credentials = Credentials::Token(token);
        assert!(auth.claim(&c, &credentials).is_ok());
        for e in c.drop_user("ann").unwrap() {
            c.apply(&e);
        }
        assert!(c.tokens.is_empty(), "dropping a user revokes its tokens");
        assert!(matches!(
            auth.claim(&c, &credentials),
            Err(AuthError::Failed)
        ));
    }

    #[test]
    fn tokens_are_stored_as_digests_and_found_by_them() {
        let (token, digest) = new_token();
        assert_eq!(digest, token_sha256(&token));
        assert_ne!(token, digest);
        assert_eq!(new_id().len(), 16);
    }
}
