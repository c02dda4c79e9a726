//! Who is asking: credentials checked against the catalog's users and tokens.
//!
//! Passwords are kept only as bcrypt hashes, tokens only as SHA-256; neither is ever
//! logged. bcrypt is slow by design, so a successful check is remembered for the life of
//! the process, keyed by a salted SHA-256 of the credentials (never the credentials).

use crate::catalog::Catalog;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// bcrypt cost, as InfluxDB uses.
const BCRYPT_COST: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    /// Something was sent but could not be read as credentials.
    Unparseable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub admin: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("unable to parse authentication credentials")]
    Unparseable,
    #[error("authorization failed")]
    Failed,
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

pub struct Authenticator {
    salt: [u8; 16],
    verified: Mutex<HashMap<[u8; 32], String>>,
}

impl Default for Authenticator {
    fn default() -> Self {
        let mut salt = [0u8; 16];
        // Without the OS's randomness the cache key is still unique per credentials; only
        // its resistance to precomputation is lost.
        let _ = getrandom::fill(&mut salt);
        Authenticator {
            salt,
            verified: Mutex::new(HashMap::new()),
        }
    }
}

impl Authenticator {
    /// The principal behind `credentials`, or why there is none.
    pub fn authenticate(
        &self,
        catalog: &Catalog,
        credentials: &Credentials,
    ) -> Result<Principal, AuthError> {
        match credentials {
            Credentials::None | Credentials::Unparseable => Err(AuthError::Unparseable),
            Credentials::Token(token) => {
                let digest = token_sha256(token);
                let found = catalog
                    .tokens
                    .values()
                    .find(|t| t.token_sha256 == digest)
                    .ok_or(AuthError::Failed)?;
                let user = catalog.users.values().find(|u| u.id == found.user_id);
                // A token belongs to its organization's owner; its rights are theirs.
                Ok(Principal {
                    user: user.map_or_else(|| found.id.clone(), |u| u.name.clone()),
                    admin: user.is_none_or(|u| u.admin),
                })
            }
            Credentials::UserPassword { user, password } => {
                let stored = catalog.users.get(user).ok_or(AuthError::Failed)?;
                let key = self.cache_key(user, password, &stored.password_bcrypt);
                let cached = self
                    .verified
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains_key(&key);
                if !cached {
                    if !bcrypt::verify(password, &stored.password_bcrypt).unwrap_or(false) {
                        return Err(AuthError::Failed);
                    }
                    self.verified
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key, user.clone());
                }
                Ok(Principal {
                    user: user.clone(),
                    admin: stored.admin,
                })
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

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    bcrypt::hash(password, BCRYPT_COST).map_err(|e| AuthError::Hash(e.to_string()))
}

pub fn token_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes
}

/// A new API token (shown to the client once) and the digest that is stored.
pub fn new_token() -> (String, String) {
    use base64::Engine;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<48>());
    let digest = token_sha256(&token);
    (token, digest)
}

/// A new object id in InfluxDB 2's form: 16 hex digits.
pub fn new_id() -> String {
    random_bytes::<8>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::Projection;

    fn catalog_with_user(admin: bool) -> Catalog {
        let mut c = Catalog::default();
        let hash = hash_password("s3cret").unwrap();
        for e in c.create_user(new_id(), "ann", hash, admin).unwrap() {
            c.apply(&e);
        }
        c
    }

    #[test]
    fn passwords_are_checked_and_never_stored_in_plain_text() {
        let c = catalog_with_user(true);
        assert!(!c.users["ann"].password_bcrypt.contains("s3cret"));
        let auth = Authenticator::default();
        let ok = Credentials::UserPassword {
            user: "ann".into(),
            password: "s3cret".into(),
        };
        assert_eq!(
            auth.authenticate(&c, &ok),
            Ok(Principal {
                user: "ann".into(),
                admin: true
            })
        );
        assert_eq!(
            auth.authenticate(&c, &ok),
            Ok(Principal {
                user: "ann".into(),
                admin: true
            }),
            "cached"
        );
        let bad = Credentials::UserPassword {
            user: "ann".into(),
            password: "wrong".into(),
        };
        assert_eq!(auth.authenticate(&c, &bad), Err(AuthError::Failed));
        let nobody = Credentials::UserPassword {
            user: "bob".into(),
            password: "s3cret".into(),
        };
        assert_eq!(auth.authenticate(&c, &nobody), Err(AuthError::Failed));
        assert_eq!(
            auth.authenticate(&c, &Credentials::None),
            Err(AuthError::Unparseable)
        );
    }

    #[test]
    fn tokens_are_stored_as_digests_and_found_by_them() {
        let (token, digest) = new_token();
        assert_eq!(digest, token_sha256(&token));
        assert_ne!(token, digest);
        assert_eq!(new_id().len(), 16);
    }
}
