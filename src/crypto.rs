//! Randomness and hashing for secrets and API tokens.
use aggregates::values::WebhookSecret;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh signing secret: `whsec_` + base64 of 32 bytes from the OS CSPRNG.
pub fn generate_webhook_secret() -> WebhookSecret {
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    WebhookSecret::from_key_bytes(&key)
}

/// A fresh API token: `whk_` + 48 hex characters (24 random bytes).
pub fn generate_api_token() -> String {
    let mut bytes = [0u8; 24];
    OsRng.fill_bytes(&mut bytes);
    format!("whk_{}", hex::encode(bytes))
}

/// How tokens are stored and looked up: hex SHA-256. A token is long and
/// random, so a fast hash is enough (no password stretching needed).
pub fn hash_api_token(token: &str) -> String {
    let mut hash = String::with_capacity(64);
    push_hex(&mut hash, Sha256::digest(token.as_bytes()).into());
    hash
}

/// Appends the 64 lowercase hex digits of a SHA-256 digest or HMAC to
/// `out`. Every request's token hash and every attempt's signature goes
/// through here: `hex::encode` pushes its digits a `char` at a time
/// (~2 000 instructions), this writes them into a stack buffer first.
pub fn push_hex(out: &mut String, digest: [u8; 32]) {
    let mut digits = [0u8; 64];
    hex::encode_to_slice(digest, &mut digits).expect("64 hex digits for 32 bytes");
    out.push_str(std::str::from_utf8(&digits).expect("hex digits are ASCII"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed_deterministically() {
        let (a, b) = (generate_api_token(), generate_api_token());
        assert_ne!(a, b);
        assert!(a.starts_with("whk_") && a.len() == 52);
        assert_eq!(hash_api_token(&a), hash_api_token(&a));
        assert_ne!(hash_api_token(&a), hash_api_token(&b));
        assert_ne!(generate_webhook_secret(), generate_webhook_secret());
    }

    /// The stored form: lowercase hex of SHA-256 (FIPS 180-2's "abc").
    #[test]
    fn a_token_hash_is_lowercase_hex_sha256() {
        assert_eq!(
            hash_api_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
