//! The event types' JSON Schemas, compiled, for the publish path: a
//! publish of a type with a schema is refused (422) unless its `data`
//! satisfies it. The operator sets schemas from the CLI, possibly in
//! another process, so the compiled set is read again when it is older
//! than [`FRESH_FOR`] — by one publish, while the others go on with the
//! previous read; a type without a schema costs a map lookup.
use projections::{event_types, Db, Error};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a read of the schemas is used before it is read again.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// How many of a refused publish's schema errors its answer lists.
const MAX_ERRORS: usize = 10;

#[derive(Default)]
struct Compiled {
    read_at: Option<Instant>,
    by_type: HashMap<String, Arc<jsonschema::Validator>>,
}

#[derive(Clone)]
pub struct EventSchemas {
    db: Db,
    compiled: Arc<RwLock<Compiled>>,
    /// A publish is reading the schemas again.
    refreshing: Arc<AtomicBool>,
}

impl EventSchemas {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            compiled: Default::default(),
            refreshing: Default::default(),
        }
    }

    /// Why `data` does not satisfy the schema of `event_type` (at most
    /// [`MAX_ERRORS`] messages, each with the JSON pointer of the part at
    /// fault); empty when it does, or when the type has no schema.
    pub async fn violations(&self, event_type: &str, data: &str) -> Result<Vec<String>, Error> {
        let Some(validator) = self.validator(event_type).await? else {
            return Ok(Vec::new());
        };
        let data: Value = match serde_json::from_str(data) {
            Ok(data) => data,
            // Numbers beyond what a JSON value holds: nothing a schema
            // could say about them is checked here either.
            Err(error) => return Ok(vec![format!("cannot be checked: {error}")]),
        };
        Ok(validator
            .iter_errors(&data)
            .take(MAX_ERRORS)
            .map(|error| {
                let at = error.instance_path().to_string();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                format!("{at}: {error}")
            })
            .collect())
    }

    async fn validator(
        &self,
        event_type: &str,
    ) -> Result<Option<Arc<jsonschema::Validator>>, Error> {
        let (fresh, ever_read, known) = {
            let compiled = self.compiled.read().unwrap_or_else(|p| p.into_inner());
            (
                compiled.read_at.is_some_and(|at| at.elapsed() < FRESH_FOR),
                compiled.read_at.is_some(),
                compiled.by_type.get(event_type).cloned(),
            )
        };
        if fresh {
            return Ok(known);
        }
        // One publish reads again; the others use the previous read (until
        // there is one: the first publishes all wait for theirs).
        if ever_read && self.refreshing.swap(true, Ordering::AcqRel) {
            return Ok(known);
        }
        let read = self.read(event_type).await;
        if ever_read {
            // This publish claimed the refresh above.
            self.refreshing.store(false, Ordering::Release);
        }
        read
    }

    async fn read(&self, event_type: &str) -> Result<Option<Arc<jsonschema::Validator>>, Error> {
        let mut by_type = HashMap::new();
        for (name, text) in event_types::schemas(&self.db).await? {
            match compile(&text) {
                Ok(validator) => {
                    by_type.insert(name, Arc::new(validator));
                }
                // Checked when it was set; should the stored text still
                // not compile, the type is published unchecked and said so.
                Err(error) => {
                    tracing::error!(event_type = %name, %error, "an event type's schema does not compile")
                }
            }
        }
        let found = by_type.get(event_type).cloned();
        *self.compiled.write().unwrap_or_else(|p| p.into_inner()) = Compiled {
            read_at: Some(Instant::now()),
            by_type,
        };
        Ok(found)
    }
}

/// A schema text compiled, or why it is not a JSON Schema.
pub fn compile(text: &str) -> Result<jsonschema::Validator, String> {
    let schema: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    jsonschema::validator_for(&schema).map_err(|e| format!("not a valid JSON Schema: {e}"))
}
