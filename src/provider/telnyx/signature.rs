//! Telnyx webhook signatures (Ed25519), providers.md §2.3; mirrors team-telnyx
//! telnyx-python `src/telnyx/lib/webhook_verification.py`:
//!
//! - `telnyx-signature-ed25519`: base64 of a 64-byte Ed25519 signature;
//! - `telnyx-timestamp`: Unix seconds, as a decimal string;
//! - the signed message is `"{timestamp}|{raw body}"`, the body's bytes exactly as
//!   received (before any JSON parsing);
//! - a timestamp more than [`TOLERANCE_SECONDS`] away from our clock is refused
//!   (replay protection), in either direction.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// How far (seconds) a webhook's timestamp may be from our clock.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a webhook's signature was refused (each becomes a 403 with this reason logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("telnyx-signature-ed25519 or telnyx-timestamp header missing")]
    Missing,
    #[error("telnyx-timestamp is not Unix seconds")]
    BadTimestamp,
    #[error("telnyx-timestamp is {0} s away from our clock (more than 300 s)")]
    Stale(i64),
    #[error("telnyx-signature-ed25519 is not base64 of 64 bytes")]
    BadEncoding,
    #[error("the configured public key is not a valid Ed25519 key")]
    BadKey,
    #[error("signature does not match")]
    Mismatch,
}

/// Checks one webhook. `public_key`: the account's 32-byte key; `timestamp` and
/// `signature`: the header values (None when absent); `body`: the raw request body;
/// `now_unix`: our clock, Unix seconds.
pub fn verify(
    public_key: &[u8; 32],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else { return Err(SignatureError::Missing) };
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    let skew = now_unix.saturating_sub(ts);
    if skew.abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale(skew));
    }
    let bytes = STANDARD.decode(signature.trim()).map_err(|_| SignatureError::BadEncoding)?;
    let bytes = <[u8; 64]>::try_from(bytes.as_slice()).map_err(|_| SignatureError::BadEncoding)?;
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| SignatureError::BadKey)?;
    key.verify(&message(timestamp.trim(), body), &Signature::from_bytes(&bytes)).map_err(|_| SignatureError::Mismatch)
}

/// The `telnyx-signature-ed25519` value for `body` sent at `timestamp` (Unix
/// seconds, as it goes in `telnyx-timestamp`). Used by the simulated carrier.
pub fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    STANDARD.encode(key.sign(&message(timestamp, body)).to_bytes())
}

fn message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(timestamp.len() + 1 + body.len());
    m.extend_from_slice(timestamp.as_bytes());
    m.push(b'|');
    m.extend_from_slice(body);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_760_000_000;
    const BODY: &[u8] =
        br#"{"data":{"event_type":"call.hangup","id":"e1","payload":{"hangup_cause":"normal_clearing"}}}"#;

    fn generated() -> SigningKey {
        SigningKey::from_bytes(&rand::random::<[u8; 32]>())
    }

    #[test]
    fn a_generated_key_pair_signs_and_verifies() {
        let key = generated();
        let public = key.verifying_key().to_bytes();
        let ts = NOW.to_string();
        let sig = sign(&key, &ts, BODY);
        assert_eq!(STANDARD.decode(&sig).unwrap().len(), 64);
        assert_eq!(verify(&public, Some(&ts), Some(&sig), BODY, NOW), Ok(()));
        // Within the tolerance either way.
        assert_eq!(verify(&public, Some(&ts), Some(&sig), BODY, NOW + 300), Ok(()));
        assert_eq!(verify(&public, Some(&ts), Some(&sig), BODY, NOW - 300), Ok(()));
    }

    #[test]
    fn tampering_wrong_keys_and_stale_timestamps_are_refused() {
        let key = generated();
        let public = key.verifying_key().to_bytes();
        let ts = NOW.to_string();
        let sig = sign(&key, &ts, BODY);
        let tampered = String::from_utf8(BODY.to_vec()).unwrap().replace("normal_clearing", "user_busy");
        assert_eq!(verify(&public, Some(&ts), Some(&sig), tampered.as_bytes(), NOW), Err(SignatureError::Mismatch));
        let other = generated().verifying_key().to_bytes();
        assert_eq!(verify(&other, Some(&ts), Some(&sig), BODY, NOW), Err(SignatureError::Mismatch));
        // The timestamp is part of the signed message: moving it breaks the signature.
        let later = (NOW + 1).to_string();
        assert_eq!(verify(&public, Some(&later), Some(&sig), BODY, NOW), Err(SignatureError::Mismatch));
        assert_eq!(verify(&public, Some(&ts), Some(&sig), BODY, NOW + 301), Err(SignatureError::Stale(301)));
        assert_eq!(verify(&public, Some(&ts), Some(&sig), BODY, NOW - 301), Err(SignatureError::Stale(-301)));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let key = generated();
        let public = key.verifying_key().to_bytes();
        let ts = NOW.to_string();
        let sig = sign(&key, &ts, BODY);
        assert_eq!(verify(&public, None, Some(&sig), BODY, NOW), Err(SignatureError::Missing));
        assert_eq!(verify(&public, Some(&ts), None, BODY, NOW), Err(SignatureError::Missing));
        assert_eq!(verify(&public, Some("yesterday"), Some(&sig), BODY, NOW), Err(SignatureError::BadTimestamp));
        assert_eq!(verify(&public, Some(&ts), Some("***not base64***"), BODY, NOW), Err(SignatureError::BadEncoding));
        let short = STANDARD.encode([7u8; 63]);
        assert_eq!(verify(&public, Some(&ts), Some(&short), BODY, NOW), Err(SignatureError::BadEncoding));
        assert_eq!(verify(&public, Some(&ts), Some(""), BODY, NOW), Err(SignatureError::BadEncoding));
    }
}
