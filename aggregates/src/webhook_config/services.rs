use std::sync::Arc;

/// The catalog of event types a config may subscribe to. The service reads
/// it from the database; tests pass a fixed list.
#[async_trait::async_trait]
pub trait EventTypeCatalog: Send + Sync {
    /// Every known event type name, `webhook_config.test` included.
    async fn known_event_types(&self) -> Result<Vec<String>, String>;
}

/// What the aggregate needs from outside to decide.
#[derive(Clone)]
pub struct WebhookConfigServices {
    pub catalog: Arc<dyn EventTypeCatalog>,
}

impl WebhookConfigServices {
    pub fn new(catalog: Arc<dyn EventTypeCatalog>) -> Self {
        Self { catalog }
    }
}
