use super::ValidationError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A signing secret: `whsec_` followed by the base64 of the key bytes
/// (32 random bytes when webhookd makes one).
///
/// `Debug` never shows the value, so a secret that ends up in a log line or a
/// panic message is still a secret. Only [`WebhookSecret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub const PREFIX: &'static str = "whsec_";

    /// Wraps freshly generated key bytes. The randomness comes from the caller
    /// (a CSPRNG in the service): the domain does no I/O.
    pub fn from_key_bytes(key: &[u8; 32]) -> Self {
        Self(format!("{}{}", Self::PREFIX, STANDARD.encode(key)))
    }

    /// Accepts a secret given by a user or read back from storage.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let encoded = raw
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| ValidationError::new("must start with whsec_"))?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| ValidationError::new("must be whsec_ followed by base64"))?;
        if !(24..=64).contains(&key.len()) {
            return Err(ValidationError::new(
                "must encode between 24 and 64 bytes of key",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The secret as the API shows it on create and show. Call sites of this
    /// method are the only places a secret may leave the process.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key of the Standard Webhooks scheme: the bytes after
    /// `whsec_` (at most 64, see [`Self::parse`]), decoded on the stack —
    /// every delivery attempt asks for it.
    pub fn standard_webhooks_key(&self) -> StandardKey {
        let mut key = StandardKey {
            bytes: [0; StandardKey::CAPACITY],
            len: 0,
        };
        match STANDARD.decode_slice(&self.0[Self::PREFIX.len()..], &mut key.bytes) {
            Ok(len) => key.len = len,
            // Not reached for a parsed secret; the string's own bytes then,
            // as far as they fit.
            Err(_) => {
                let raw = self.0.as_bytes();
                key.len = raw.len().min(StandardKey::CAPACITY);
                key.bytes[..key.len].copy_from_slice(&raw[..key.len]);
            }
        }
        key
    }
}

/// A decoded Standard Webhooks key (see
/// [`WebhookSecret::standard_webhooks_key`]).
pub struct StandardKey {
    bytes: [u8; Self::CAPACITY],
    len: usize,
}

impl StandardKey {
    /// 64 bytes of key, and room for base64's decoding estimate.
    const CAPACITY: usize = 72;
}

impl std::ops::Deref for StandardKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_[redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_round_trip_and_hide_in_debug() {
        let secret = WebhookSecret::from_key_bytes(&[7u8; 32]);
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(secret.expose()).unwrap(), secret);
        assert_eq!(&*secret.standard_webhooks_key(), &[7u8; 32][..]);
        assert!(!format!("{secret:?}").contains(&secret.expose()[6..]));
    }

    /// Every key length `parse` accepts decodes whole (the key is decoded
    /// into a fixed buffer on the stack).
    #[test]
    fn keys_of_every_accepted_length_decode_whole() {
        for len in 24..=64_u8 {
            let key: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
            let raw = format!("{}{}", WebhookSecret::PREFIX, STANDARD.encode(&key));
            let secret = WebhookSecret::parse(&raw).unwrap();
            assert_eq!(&*secret.standard_webhooks_key(), &key[..], "{len} bytes");
        }
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert!(WebhookSecret::parse("abc").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("whsec_AAAA").is_err());
    }
}
