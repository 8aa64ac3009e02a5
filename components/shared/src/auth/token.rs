//! Bearer tokens: `<payload>.<signature>`, the payload the base64url (unpadded)
//! JSON of the [`Claims`], the signature base64url HMAC-SHA256 of the payload's
//! text under a secret every service shares. Simpler than a JWT, and with nothing
//! to negotiate (no `alg` header to downgrade).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::Claims;

/// The token for `claims`, signed with `secret` (at least 32 random bytes, shared
/// by every service that checks tokens).
pub fn issue(secret: &[u8], claims: &Claims) -> String {
    // A string, an enum and a number: serialising cannot fail.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, &payload).finalize().into_bytes());
    format!("{payload}.{signature}")
}

/// The claims of `token` if `secret` signed it and it has not expired at
/// `now_unix`. The signature is checked in constant time, and before the payload
/// is parsed, so nothing unsigned is ever read.
pub fn verify(secret: &[u8], token: &str, now_unix: i64) -> Result<Claims, AuthError> {
    let (payload, signature) = token.split_once('.').ok_or(AuthError::Malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| AuthError::Malformed)?;
    mac(secret, payload).verify_slice(&signature).map_err(|_| AuthError::BadSignature)?;
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| AuthError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)?;
    if claims.exp <= now_unix {
        return Err(AuthError::Expired);
    }
    Ok(claims)
}

fn mac(secret: &[u8], payload: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length (longer ones are hashed first): this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(payload.as_bytes());
    mac
}

/// Why a token was refused; each is a 401, told apart so that a client knows to
/// log in again (expired) rather than report a bug (malformed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// Not `<payload>.<signature>` in base64url, or the payload is not claims.
    Malformed,
    /// Not signed with this secret: forged, altered, or from another deployment.
    BadSignature,
    /// Signed, but past its `exp`.
    Expired,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthError::Malformed => "the token is malformed",
            AuthError::BadSignature => "the token's signature is not valid",
            AuthError::Expired => "the token has expired",
        })
    }
}

impl std::error::Error for AuthError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_795_660_800;

    fn claims() -> Claims {
        Claims { sub: "user-7".into(), role: Role::Customer, exp: NOW + 3600, iat_ms: NOW * 1000 }
    }

    #[test]
    fn round_trips_until_it_expires() {
        let token = issue(SECRET, &claims());
        assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'), "{token}");
        assert_eq!(verify(SECRET, &token, NOW), Ok(claims()));
        assert_eq!(verify(SECRET, &token, NOW + 3599), Ok(claims()));
        assert_eq!(verify(SECRET, &token, NOW + 3600), Err(AuthError::Expired));
    }

    #[test]
    fn the_payload_is_readable_json() {
        let token = issue(SECRET, &claims());
        let payload = token.split('.').next().expect("a payload");
        let json = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
        assert_eq!(json, br#"{"sub":"user-7","role":"customer","exp":1795664400,"iat_ms":1795660800000}"#);
    }

    #[test]
    fn altered_or_foreign_tokens_fail_the_signature() {
        let token = issue(SECRET, &claims());
        assert_eq!(verify(b"another secret", &token, NOW), Err(AuthError::BadSignature));

        // Promote oneself to admin, keeping the old signature.
        let (_, signature) = token.split_once('.').expect("two parts");
        let admin = Claims { role: Role::Admin, ..claims() };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin).expect("serialises"));
        assert_eq!(verify(SECRET, &format!("{forged_payload}.{signature}"), NOW), Err(AuthError::BadSignature));

        // A signature cut short, or one byte off.
        let short = &token[..token.len() - 3];
        assert_eq!(verify(SECRET, short, NOW), Err(AuthError::BadSignature));
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        bytes[0] ^= 1;
        let (payload, _) = token.split_once('.').expect("two parts");
        let flipped = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(verify(SECRET, &flipped, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn garbage_is_malformed() {
        for token in ["", "no-dot", "a.b.c", "payload.!!!", "payload.sig=="] {
            assert_eq!(verify(SECRET, token, NOW), Err(AuthError::Malformed), "{token:?}");
        }
        // Correctly signed, but not claims.
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"user-7"}"#);
        let signature = URL_SAFE_NO_PAD.encode(mac(SECRET, &payload).finalize().into_bytes());
        assert_eq!(verify(SECRET, &format!("{payload}.{signature}"), NOW), Err(AuthError::Malformed));
    }
}
