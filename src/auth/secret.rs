//! Random secrets: API tokens, session CSRF tokens and the setup token. 256 bits
//! from the OS generator, base64url without padding. API tokens carry a `dlr_`
//! prefix so secret scanners and people can recognise them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const TOKEN_PREFIX: &str = "dlr_";

/// 32 random bytes, base64url (43 characters).
pub fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new API token: `dlr_` + 43 characters.
pub fn api_token() -> String {
    format!("{TOKEN_PREFIX}{}", random())
}

/// What is stored for a token or session id: SHA-256, hex. The inputs are 256-bit
/// random values, so a fast hash cannot be brute-forced.
pub fn digest(secret: &str) -> String {
    let d = Sha256::digest(secret.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The part of a token shown in lists: `dlr_` and its first 6 characters.
pub fn shown_prefix(token: &str) -> String {
    token.chars().take(TOKEN_PREFIX.len() + 6).collect()
}

/// Compares two secrets in constant time (for their common length).
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let (a, b) = (api_token(), api_token());
        assert_ne!(a, b);
        assert!(a.starts_with("dlr_") && a.len() == 4 + 43, "{a}");
        assert_eq!(digest(&a).len(), 64);
        assert_ne!(digest(&a), digest(&b));
        assert_eq!(shown_prefix(&a).len(), 10);
        assert!(same(&a, &a.clone()) && !same(&a, &b) && !same(&a, "dlr_"));
    }
}
