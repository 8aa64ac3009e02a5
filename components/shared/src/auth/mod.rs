//! Who is calling, and may they: signed, expiring bearer tokens (issued at login,
//! checked on every request, revoked all at once by a new password, a new role or a
//! deleted account: [`revocation`]) and argon2id password hashes.
//!
//! ```no_run
//! use estore_shared::auth::{self, Claims, Role};
//! use estore_shared::clock;
//! use estore_shared::problem::Problem;
//! use spin_sdk::http::{Request, Response};
//!
//! const SECRET: &[u8] = b"from a variable, at least 32 random bytes";
//!
//! // Login, once the password checked out: a token valid for an hour.
//! let claims = Claims { sub: "user-7".into(), role: Role::Customer, exp: clock::now_unix() + 3600, iat_ms: clock::now_unix_ms() };
//! let token = auth::issue(SECRET, &claims);
//!
//! // Any other endpoint:
//! fn set_stock(req: &Request) -> Result<Response, Problem> {
//!     let caller = auth::authenticate(req, SECRET)?; // 401 without a valid token
//!     caller.require_admin()?; // 403 for a customer
//!     # unimplemented!()
//! }
//! ```

mod password;
pub mod revocation;
mod token;

pub use password::{hash_password, verify_password};
pub use token::{AuthError, issue, verify};

use serde::{Deserialize, Serialize};
use spin_sdk::http::Request;

use crate::clock;
use crate::problem::Problem;

/// What a caller may do: shop, or also run the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

/// What a token says: who (`sub`, the user id), as what, until when (`exp`, Unix
/// seconds) and since when (`iat_ms`, Unix milliseconds: a revocation in the same
/// second as a login must still tell them apart). Tokens issued before `iat_ms`
/// existed read as issued at 0, so any revocation covers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: i64,
    #[serde(default)]
    pub iat_ms: i64,
}

impl Claims {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// 403 unless the caller is an admin (catalog, stock and promotion writes).
    pub fn require_admin(&self) -> Result<(), Problem> {
        if self.is_admin() { Ok(()) } else { Err(Problem::forbidden("this needs an administrator")) }
    }

    /// Whether the caller may see what belongs to user `owner`: their own, or any
    /// as an admin. Answer a `false` with a 404, as if it did not exist.
    pub fn may_access(&self, owner: &str) -> bool {
        self.is_admin() || self.sub == owner
    }
}

/// The claims of the request's `Authorization: Bearer <token>`, or a 401 (with its
/// `WWW-Authenticate` challenge) saying whether the token is missing, malformed,
/// wrongly signed or expired.
pub fn authenticate(req: &Request, secret: &[u8]) -> Result<Claims, Problem> {
    let Some(header) = req.header("authorization") else {
        return Err(Problem::unauthorized("this needs a bearer token: log in first"));
    };
    let token = header
        .as_str()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| Problem::unauthorized("the Authorization header must be `Bearer <token>`"))?;
    verify(secret, token, clock::now_unix()).map_err(|error| {
        let challenge = format!(r#"Bearer error="invalid_token", error_description="{error}""#);
        Problem::unauthorized(error.to_string()).with_header("www-authenticate", challenge)
    })
}

/// [`authenticate`] with the secret of the manifest variable `token_secret`, which
/// every component that checks tokens is given (components/README.md), and then
/// [`revocation::check`] in the key-value store `default`, which they are granted
/// too. A missing variable is the deployment's bug: logged, and an opaque 500.
pub fn caller(req: &Request) -> Result<Claims, Problem> {
    let claims = authenticate(req, token_secret()?.as_bytes())?;
    revocation::check(&claims)?;
    Ok(claims)
}

/// The manifest variable `token_secret`: the key tokens are signed with.
pub fn token_secret() -> Result<String, Problem> {
    spin_sdk::variables::get("token_secret").map_err(|e| {
        eprintln!("the variable token_secret is not available: {e}");
        Problem::internal()
    })
}

#[cfg(test)]
mod tests {
    use spin_sdk::http::{IntoResponse, Method};

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn request(authorization: Option<&str>) -> Request {
        let mut builder = Request::builder();
        builder.method(Method::Get).uri("/api/orders");
        if let Some(value) = authorization {
            builder.header("Authorization", value);
        }
        builder.build()
    }

    fn claims(role: Role, exp: i64) -> Claims {
        Claims { sub: "user-7".into(), role, exp, iat_ms: 0 }
    }

    fn challenge(problem: Problem) -> String {
        let response = problem.into_response();
        assert_eq!(*response.status(), 401);
        response.header("www-authenticate").and_then(|v| v.as_str()).unwrap_or_default().to_owned()
    }

    #[test]
    fn a_valid_bearer_token_authenticates() {
        let token = issue(SECRET, &claims(Role::Admin, clock::now_unix() + 60));
        for scheme in ["Bearer", "bearer"] {
            let caller = authenticate(&request(Some(&format!("{scheme} {token}"))), SECRET).expect("valid");
            assert_eq!(caller.sub, "user-7");
            assert!(caller.is_admin());
        }
    }

    #[test]
    fn missing_or_invalid_tokens_are_401_with_a_challenge() {
        let missing = authenticate(&request(None), SECRET).expect_err("no header");
        assert_eq!(missing.detail, "this needs a bearer token: log in first");
        assert_eq!(challenge(missing), "Bearer");

        let basic = authenticate(&request(Some("Basic dXNlcjpwdw==")), SECRET).expect_err("not bearer");
        assert_eq!(challenge(basic), "Bearer");

        let expired = issue(SECRET, &claims(Role::Customer, clock::now_unix() - 1));
        let problem = authenticate(&request(Some(&format!("Bearer {expired}"))), SECRET).expect_err("expired");
        assert_eq!(problem.detail, "the token has expired");
        assert_eq!(challenge(problem), r#"Bearer error="invalid_token", error_description="the token has expired""#);

        let forged = issue(b"another secret, just as long as it", &claims(Role::Admin, clock::now_unix() + 60));
        let problem = authenticate(&request(Some(&format!("Bearer {forged}"))), SECRET).expect_err("forged");
        assert_eq!(problem.detail, "the token's signature is not valid");
    }

    #[test]
    fn roles_and_ownership() {
        let customer = claims(Role::Customer, 0);
        let problem = customer.require_admin().expect_err("a customer");
        assert_eq!(problem.status, 403);
        assert!(claims(Role::Admin, 0).require_admin().is_ok());
        assert!(customer.may_access("user-7"));
        assert!(!customer.may_access("user-8"));
        assert!(claims(Role::Admin, 0).may_access("user-8"));
    }

    #[test]
    fn roles_serialise_lowercase() {
        assert_eq!(
            serde_json::to_string(&claims(Role::Admin, 5)).expect("serialises"),
            r#"{"sub":"user-7","role":"admin","exp":5,"iat_ms":0}"#
        );
        assert!(serde_json::from_str::<Role>(r#""Admin""#).is_err());
    }
}
