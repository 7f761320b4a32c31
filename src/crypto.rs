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
    hex::encode(Sha256::digest(token.as_bytes()))
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
}
