//! Secrets at rest: endpoint secrets are stored encrypted in the event log
//! and in the read model, so that a database dump alone reveals none.
//!
//! Two layers (envelope encryption):
//! - A **master key** (`WEBHOOKD_ENCRYPTION_KEY`, or a file; see
//!   `src/database.rs`) seals the read model's secret columns and wraps
//!   the data keys.
//! - A **data key per config** (`config_keys`, wrapped by the master key)
//!   seals the secrets inside that config's events. Deleting a config
//!   deletes its data key (crypto-shredding): its events stay in the log,
//!   but the secrets in them can no longer be opened by anyone.
//!
//! Rotating the master key re-wraps the data keys and re-seals the read
//! model's columns; the log is not rewritten (`webhookd secrets rotate-key`,
//! [`Vault::rotate`]). A sealed value names the master key it was sealed
//! with, so nodes holding the new key and the previous ones read both
//! while a rotation runs.
//!
//! Plaintext written before encryption was configured stays readable: a
//! value without the sealed prefix is taken as it is (upcast on read).
//! Without a master key everything is stored in plaintext, as before.
//!
//! Each database handle has its vault, installed when it is opened
//! ([`install`]) and found again from any clone of the handle ([`of`]).
use crate::db::{Db, Error};
use crate::on_pool;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Prefix of a read-model column sealed with a master key:
/// `wk1:<key id>:<base64 of nonce and ciphertext>`.
const COLUMN_PREFIX: &str = "wk1:";
/// Prefix of a secret in an event, sealed with its config's data key:
/// `wd1:<base64 of nonce and ciphertext>`.
const EVENT_PREFIX: &str = "wd1:";
/// What a shredded secret opens to: a well-formed secret of zero bytes that
/// no one holds (a deleted config never signs anything).
pub const SHREDDED_SECRET: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
/// How many configs' data keys a vault keeps in memory at most.
const DATA_KEYS_CACHED: usize = 100_000;
/// The events that carry a secret, and where: `payload[event]["secret"]`.
const EVENTS_WITH_SECRETS: [&str; 2] = ["Created", "SecretRotated"];

/// A 256-bit master key and its id (the first 8 hex digits of its
/// SHA-256: enough to tell keys apart, nothing about the key).
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl MasterKey {
    /// From its base64 text (32 bytes).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "an encryption key must be base64".to_owned())?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != 32 {
            return Err(format!(
                "an encryption key must be 32 bytes (base64 of 32 random bytes), not {}",
                bytes.len()
            ));
        }
        let digest = Sha256::digest(bytes);
        Ok(Self {
            id: digest[..4].iter().map(|b| format!("{b:02x}")).collect(),
            cipher: XChaCha20Poly1305::new(Key::from_slice(bytes)),
        })
    }

    /// A new random key, as base64 text.
    pub fn generate() -> String {
        STANDARD.encode(rand::random::<[u8; 32]>())
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The master key that seals (`primary`) and the earlier ones that still
/// open what they sealed.
#[derive(Clone)]
pub struct MasterKeys {
    pub primary: MasterKey,
    pub previous: Vec<MasterKey>,
}

impl MasterKeys {
    fn find(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.primary)
            .chain(&self.previous)
            .find(|key| key.id == id)
    }
}

/// The vault of one database.
pub struct Vault {
    master: Option<MasterKeys>,
    /// Data keys by aggregate id; `None`: shredded (or never made).
    data_keys: Mutex<HashMap<String, Option<XChaCha20Poly1305>>>,
}

static VAULTS: OnceLock<Mutex<HashMap<usize, Arc<Vault>>>> = OnceLock::new();

fn identity(db: &Db) -> usize {
    // Every clone of a pool shares its options: the pointer names the pool.
    match db {
        Db::Sqlite(pool) => Arc::as_ptr(&pool.connect_options()) as *const () as usize,
        Db::Postgres(pool) => Arc::as_ptr(&pool.connect_options()) as *const () as usize,
    }
}

/// Sets the vault of a database handle (when it is opened).
pub fn install(db: &Db, master: Option<MasterKeys>) {
    let vault = Arc::new(Vault::new(master));
    VAULTS
        .get_or_init(Default::default)
        .lock()
        .expect("not poisoned")
        .insert(identity(db), vault);
}

/// The vault of a database handle: plaintext if none was installed.
pub fn of(db: &Db) -> Arc<Vault> {
    static PLAINTEXT: OnceLock<Arc<Vault>> = OnceLock::new();
    VAULTS
        .get_or_init(Default::default)
        .lock()
        .expect("not poisoned")
        .get(&identity(db))
        .cloned()
        .unwrap_or_else(|| PLAINTEXT.get_or_init(|| Arc::new(Vault::new(None))).clone())
}

fn seal_with(cipher: &XChaCha20Poly1305, plaintext: &[u8]) -> String {
    let nonce: [u8; 24] = rand::random();
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), plaintext)
        .expect("XChaCha20-Poly1305 encrypts any length we store");
    let mut out = nonce.to_vec();
    out.extend(sealed);
    STANDARD.encode(out)
}

fn open_with(cipher: &XChaCha20Poly1305, sealed: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(sealed).ok()?;
    if bytes.len() < 24 {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(24);
    cipher.decrypt(XNonce::from_slice(nonce), ciphertext).ok()
}

impl Vault {
    pub fn new(master: Option<MasterKeys>) -> Self {
        Self {
            master,
            data_keys: Mutex::new(HashMap::new()),
        }
    }

    /// A read-model value as stored: sealed with the primary master key.
    pub fn seal_column(&self, plaintext: &str) -> String {
        match &self.master {
            None => plaintext.to_owned(),
            Some(keys) => format!(
                "{COLUMN_PREFIX}{}:{}",
                keys.primary.id,
                seal_with(&keys.primary.cipher, plaintext.as_bytes())
            ),
        }
    }

    /// A stored read-model value opened (plaintext stays as it is).
    pub fn open_column(&self, stored: &str) -> Result<String, Error> {
        let Some(rest) = stored.strip_prefix(COLUMN_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (key_id, sealed) = rest
            .split_once(':')
            .ok_or_else(|| Error::Corrupt("a sealed secret is malformed".into()))?;
        let key = self
            .master
            .as_ref()
            .and_then(|keys| keys.find(key_id))
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "a secret is sealed with encryption key {key_id}, which this node does not have"
                ))
            })?;
        open_with(&key.cipher, sealed)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                Error::Corrupt(format!("a secret sealed with key {key_id} does not open"))
            })
    }

    /// Seals the secret inside an event about to be stored, with its
    /// config's data key (made on first use).
    pub async fn seal_event(
        &self,
        db: &Db,
        aggregate_id: &str,
        payload: &mut Value,
    ) -> Result<(), Error> {
        if self.master.is_none() {
            return Ok(());
        }
        let Some(secret) = secret_of(payload) else {
            return Ok(());
        };
        if secret.as_str().is_some_and(|s| s.starts_with(EVENT_PREFIX)) {
            return Ok(());
        }
        let Some(plaintext) = secret.as_str().map(str::to_owned) else {
            return Ok(());
        };
        let cipher = self
            .data_key(db, aggregate_id, true)
            .await?
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "config {aggregate_id} has no data key to seal with"
                ))
            })?;
        *secret = Value::String(format!(
            "{EVENT_PREFIX}{}",
            seal_with(&cipher, plaintext.as_bytes())
        ));
        Ok(())
    }

    /// Opens the secret inside a stored event: plaintext stays as it is; a
    /// shredded config's secret opens to [`SHREDDED_SECRET`].
    pub async fn open_event(
        &self,
        db: &Db,
        aggregate_id: &str,
        payload: &mut Value,
    ) -> Result<(), Error> {
        let Some(secret) = secret_of(payload) else {
            return Ok(());
        };
        let Some(sealed) = secret
            .as_str()
            .and_then(|s| s.strip_prefix(EVENT_PREFIX))
            .map(str::to_owned)
        else {
            return Ok(());
        };
        let opened = match self.data_key(db, aggregate_id, false).await? {
            None => SHREDDED_SECRET.to_owned(),
            Some(cipher) => open_with(&cipher, &sealed)
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    Error::Corrupt(format!("a secret of config {aggregate_id} does not open"))
                })?,
        };
        *secret = Value::String(opened);
        Ok(())
    }

    /// Destroys a config's data key: the secrets in its events can no
    /// longer be opened.
    pub async fn shred(&self, db: &Db, aggregate_id: &str) -> Result<(), Error> {
        let sql = "DELETE FROM config_keys WHERE aggregate_id = $1";
        on_pool!(db, |pool| sqlx::query(sql)
            .bind(aggregate_id)
            .execute(pool)
            .await?
            .rows_affected());
        self.data_keys
            .lock()
            .expect("not poisoned")
            .insert(aggregate_id.to_owned(), None);
        Ok(())
    }

    /// The data key of a config, from the cache or the database; made (and
    /// stored, wrapped) when `make` and there is none.
    async fn data_key(
        &self,
        db: &Db,
        aggregate_id: &str,
        make: bool,
    ) -> Result<Option<XChaCha20Poly1305>, Error> {
        if let Some(Some(cipher)) = self
            .data_keys
            .lock()
            .expect("not poisoned")
            .get(aggregate_id)
        {
            return Ok(Some(cipher.clone()));
        }
        let keys = self.master.as_ref().ok_or_else(|| {
            Error::Corrupt(
                "the event log holds encrypted secrets but no encryption key is configured \
                 (WEBHOOKD_ENCRYPTION_KEY)"
                    .into(),
            )
        })?;
        if make {
            // Two nodes may make one at once: the first stored wins.
            let raw: [u8; 32] = rand::random();
            let wrapped = seal_with(&keys.primary.cipher, &raw);
            let insert = "INSERT INTO config_keys (aggregate_id, key_id, wrapped) \
                          VALUES ($1, $2, $3) ON CONFLICT (aggregate_id) DO NOTHING";
            on_pool!(db, |pool| sqlx::query(insert)
                .bind(aggregate_id)
                .bind(&keys.primary.id)
                .bind(&wrapped)
                .execute(pool)
                .await?
                .rows_affected());
        }
        let select = "SELECT key_id, wrapped FROM config_keys WHERE aggregate_id = $1";
        let row: Option<(String, String)> = on_pool!(db, |pool| sqlx::query_as(select)
            .bind(aggregate_id)
            .fetch_optional(pool)
            .await?);
        let cipher = match row {
            None => None,
            Some((key_id, wrapped)) => Some(unwrap_data_key(keys, &key_id, &wrapped)?),
        };
        let mut cache = self.data_keys.lock().expect("not poisoned");
        // Bounded: a rebuild walks every config once; what is needed again
        // is read again.
        if cache.len() >= DATA_KEYS_CACHED {
            cache.clear();
        }
        cache.insert(aggregate_id.to_owned(), cipher.clone());
        Ok(cipher)
    }

    /// Re-wraps every data key and re-seals every read-model secret under
    /// the primary key (what plaintext the read model holds is sealed too).
    /// Returns (data keys, configs) changed.
    pub async fn rotate(&self, db: &Db) -> Result<(u64, u64), Error> {
        let keys = self.master.as_ref().ok_or_else(|| {
            Error::Corrupt("no encryption key is configured (WEBHOOKD_ENCRYPTION_KEY)".into())
        })?;
        let rows: Vec<(String, String, String)> = on_pool!(db, |pool| sqlx::query_as(
            "SELECT aggregate_id, key_id, wrapped FROM config_keys WHERE key_id <> $1"
        )
        .bind(&keys.primary.id)
        .fetch_all(pool)
        .await?);
        let mut rewrapped = 0;
        for (aggregate_id, key_id, wrapped) in rows {
            let raw = open_data_key(keys, &key_id, &wrapped)?;
            let update = "UPDATE config_keys SET key_id = $1, wrapped = $2 \
                          WHERE aggregate_id = $3 AND key_id = $4";
            on_pool!(db, |pool| sqlx::query(update)
                .bind(&keys.primary.id)
                .bind(seal_with(&keys.primary.cipher, &raw))
                .bind(&aggregate_id)
                .bind(&key_id)
                .execute(pool)
                .await?
                .rows_affected());
            rewrapped += 1;
        }
        let primary_prefix = format!("{COLUMN_PREFIX}{}:", keys.primary.id);
        let configs: Vec<(i64, String, String)> = on_pool!(db, |pool| sqlx::query_as(
            "SELECT id, secret, previous_secrets FROM webhook_configs"
        )
        .fetch_all(pool)
        .await?);
        let mut resealed = 0;
        for (id, secret, previous) in configs {
            if secret.starts_with(&primary_prefix) && previous.starts_with(&primary_prefix) {
                continue;
            }
            let (secret_text, previous_text) =
                (self.open_column(&secret)?, self.open_column(&previous)?);
            // Guarded by the old values: a concurrent write (sealed with
            // the primary already) wins.
            let update = "UPDATE webhook_configs SET secret = $1, previous_secrets = $2 \
                          WHERE id = $3 AND secret = $4 AND previous_secrets = $5";
            on_pool!(db, |pool| sqlx::query(update)
                .bind(self.seal_column(&secret_text))
                .bind(self.seal_column(&previous_text))
                .bind(id)
                .bind(&secret)
                .bind(&previous)
                .execute(pool)
                .await?
                .rows_affected());
            resealed += 1;
        }
        Ok((rewrapped, resealed))
    }
}

/// Where an event's secret is, if it carries one.
fn secret_of(payload: &mut Value) -> Option<&mut Value> {
    let (event, body) = payload.as_object_mut()?.iter_mut().next()?;
    if !EVENTS_WITH_SECRETS.contains(&event.as_str()) {
        return None;
    }
    body.get_mut("secret")
}

fn open_data_key(keys: &MasterKeys, key_id: &str, wrapped: &str) -> Result<Vec<u8>, Error> {
    let key = keys.find(key_id).ok_or_else(|| {
        Error::Corrupt(format!(
            "a data key is wrapped with encryption key {key_id}, which this node does not have \
             (give it in WEBHOOKD_PREVIOUS_ENCRYPTION_KEYS)"
        ))
    })?;
    open_with(&key.cipher, wrapped)
        .filter(|raw| raw.len() == 32)
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "a data key wrapped with key {key_id} does not open"
            ))
        })
}

fn unwrap_data_key(
    keys: &MasterKeys,
    key_id: &str,
    wrapped: &str,
) -> Result<XChaCha20Poly1305, Error> {
    let raw = open_data_key(keys, key_id, wrapped)?;
    Ok(XChaCha20Poly1305::new(Key::from_slice(&raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(primary: &str, previous: &[&str]) -> MasterKeys {
        MasterKeys {
            primary: MasterKey::parse(primary).unwrap(),
            previous: previous
                .iter()
                .map(|k| MasterKey::parse(k).unwrap())
                .collect(),
        }
    }

    #[test]
    fn a_sealed_column_opens_with_its_key_or_a_later_vaults_previous_key() {
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let secret = "whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let sealed = Vault::new(Some(keys(&old, &[]))).seal_column(secret);
        assert!(sealed.starts_with(COLUMN_PREFIX));
        assert!(!sealed.contains("AQEBAQEB"));
        assert_ne!(
            sealed,
            Vault::new(Some(keys(&old, &[]))).seal_column(secret)
        );
        let rotated = Vault::new(Some(keys(&new, &[&old])));
        assert_eq!(rotated.open_column(&sealed).unwrap(), secret);
        assert!(Vault::new(Some(keys(&new, &[])))
            .open_column(&sealed)
            .is_err());
        assert!(Vault::new(None).open_column(&sealed).is_err());
    }

    #[test]
    fn plaintext_stays_readable_and_without_a_key_nothing_is_sealed() {
        let plain = Vault::new(None);
        assert_eq!(plain.seal_column("whsec_x"), "whsec_x");
        let keyed = Vault::new(Some(keys(&MasterKey::generate(), &[])));
        assert_eq!(keyed.open_column("whsec_x").unwrap(), "whsec_x");
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(MasterKey::parse("not base64!").is_err());
        assert!(MasterKey::parse(&STANDARD.encode([1u8; 16])).is_err());
        let key = MasterKey::parse(&STANDARD.encode([1u8; 32])).unwrap();
        assert_eq!(key.id().len(), 8);
    }

    #[test]
    fn only_events_with_secrets_are_touched() {
        let mut created = serde_json::json!({"Created": {"secret": "whsec_x", "url": "u"}});
        assert!(secret_of(&mut created).is_some());
        let mut renamed = serde_json::json!({"SettingsUpdated": {"name": "x"}});
        assert!(secret_of(&mut renamed).is_none());
    }

    #[test]
    fn the_shredded_placeholder_is_a_well_formed_secret() {
        assert!(aggregates::values::WebhookSecret::parse(SHREDDED_SECRET).is_ok());
    }
}
