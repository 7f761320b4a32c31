//! Operational webhooks: an organisation may name a URL
//! (`PATCH /api/v1/organisation {"operational_webhook_url"}`) that hears
//! what happens to its own endpoints:
//!
//! | type | when |
//! |---|---|
//! | `endpoint.disabled` | webhookd switched an endpoint off (`reason`: `failing` or `gone`) |
//! | `endpoint.enabled` | an endpoint was switched on again |
//! | `endpoint.secret_rotated` | an endpoint's secret was rotated |
//! | `delivery.exhausted` | a delivery failed after all its retries (at most one per endpoint per [`EXHAUSTED_EVERY`]) |
//!
//! The operational webhook is a config of profile `operational` (hidden
//! from the webhook lists): its notices are events delivered by the same
//! engine — signed with its own secret, retried, SSRF-guarded — like any
//! other. Notices come from two places: the command side's events (a
//! [`Query`] on the config aggregate, so each is told once, by the node
//! that committed it) and the delivery policy (`delivery.exhausted`, by the
//! node that owns the endpoint). Both hand them to one task through a
//! bounded queue; it looks up the organisation's operational webhook and
//! publishes. A notice is at most once: one lost in a crash between the
//! commit and the publish is not sent later.
use super::publish::Publisher;
use aggregates::values::ConfigId;
use aggregates::webhook_config::{DeactivationReason, Profile, WebhookConfig, WebhookConfigEvent};
use cqrs_es::{EventEnvelope, Query};
use projections::db::micros_to_rfc3339;
use projections::deliveries::{DeliveryKind, EndpointConfig, PendingDelivery};
use projections::Db;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// At most one `delivery.exhausted` per endpoint this often.
pub const EXHAUSTED_EVERY: Duration = Duration::from_secs(60);

/// How many notices may wait for the publishing task.
const QUEUE: usize = 1024;

/// Something an organisation's operational webhook hears about.
#[derive(Debug)]
pub struct Notice {
    pub config_id: ConfigId,
    pub event_type: &'static str,
    pub data: Value,
}

/// Where notices are handed in (cheap to clone).
#[derive(Clone)]
pub struct OperationalWebhooks {
    notices: mpsc::Sender<Notice>,
    /// When each endpoint last had a `delivery.exhausted` notice.
    last_exhausted: Arc<Mutex<HashMap<ConfigId, Instant>>>,
}

impl OperationalWebhooks {
    pub fn new() -> (Self, mpsc::Receiver<Notice>) {
        let (notices, receiver) = mpsc::channel(QUEUE);
        let webhooks = Self {
            notices,
            last_exhausted: Arc::default(),
        };
        (webhooks, receiver)
    }

    /// Hands a notice in; when the queue is full it is dropped (with a
    /// warning) rather than slowing a command or a delivery down.
    pub fn notify(&self, notice: Notice) {
        if let Err(error) = self.notices.try_send(notice) {
            tracing::warn!(%error, "an operational webhook notice was dropped");
        }
    }

    /// A delivery failed after all its retries.
    pub fn delivery_exhausted(
        &self,
        config: &EndpointConfig,
        delivery: &PendingDelivery,
        status_code: Option<u16>,
        error: Option<&str>,
    ) {
        if config.profile == Profile::Operational || delivery.kind != DeliveryKind::Event {
            return;
        }
        if !self.may_tell_exhausted(config.id, Instant::now()) {
            return;
        }
        self.notify(Notice {
            config_id: config.id,
            event_type: "delivery.exhausted",
            data: json!({
                "delivery_id": delivery.id,
                "event_id": delivery.event.id,
                "event_type": delivery.event.event_type,
                "attempts": delivery.attempts + 1,
                "last_status_code": status_code,
                "last_error": error,
            }),
        });
    }

    fn may_tell_exhausted(&self, config_id: ConfigId, now: Instant) -> bool {
        let mut last = self.last_exhausted.lock().expect("not poisoned");
        match last.get(&config_id) {
            Some(at) if now.duration_since(*at) < EXHAUSTED_EVERY => false,
            _ => {
                last.insert(config_id, now);
                // Forget endpoints quiet for longer than the window.
                if last.len() > 10_000 {
                    last.retain(|_, at| now.duration_since(*at) < EXHAUSTED_EVERY);
                }
                true
            }
        }
    }
}

/// The notice a committed config event makes, if any.
fn notice_of(config_id: ConfigId, envelope: &EventEnvelope<WebhookConfig>) -> Option<Notice> {
    let (event_type, data) = match &envelope.payload {
        WebhookConfigEvent::Deactivated { reason } => {
            let reason = match reason {
                DeactivationReason::Failing => "failing",
                DeactivationReason::Gone => "gone",
                // The owner did it: nothing to tell the owner.
                DeactivationReason::Owner => return None,
            };
            ("endpoint.disabled", json!({ "reason": reason }))
        }
        WebhookConfigEvent::Reactivated {} => ("endpoint.enabled", json!({})),
        WebhookConfigEvent::SecretRotated {
            previous_expires_at,
            ..
        } => (
            "endpoint.secret_rotated",
            json!({ "previous_secret_expires_at": previous_expires_at.map(micros_to_rfc3339) }),
        ),
        _ => return None,
    };
    Some(Notice {
        config_id,
        event_type,
        data,
    })
}

/// Hears every committed config event (see the module comment).
pub struct ConfigEventNotices(pub OperationalWebhooks);

#[async_trait::async_trait]
impl Query<WebhookConfig> for ConfigEventNotices {
    async fn dispatch(&self, aggregate_id: &str, events: &[EventEnvelope<WebhookConfig>]) {
        let Some(id) = ConfigId::parse(aggregate_id) else {
            return;
        };
        for notice in events.iter().filter_map(|e| notice_of(id, e)) {
            self.0.notify(notice);
        }
    }
}

/// Publishes the notices to their organisations' operational webhooks.
pub fn spawn(mut notices: mpsc::Receiver<Notice>, publisher: Publisher, db: Db) {
    tokio::spawn(async move {
        while let Some(notice) = notices.recv().await {
            if let Err(error) = forward(&notice, &publisher, &db).await {
                tracing::warn!(
                    config = notice.config_id.get(),
                    event_type = notice.event_type,
                    %error,
                    "cannot send an operational webhook notice"
                );
            }
        }
    });
}

async fn forward(notice: &Notice, publisher: &Publisher, db: &Db) -> anyhow::Result<()> {
    let Some(config) = projections::webhook_configs::find_any(db, notice.config_id.get()).await?
    else {
        return Ok(());
    };
    // An operational webhook's own troubles are told to nobody.
    if config.profile == Profile::Operational {
        return Ok(());
    }
    let Some(target) = projections::operational::find(db, config.organisation).await? else {
        return Ok(());
    };
    let mut data = json!({
        "endpoint_id": config.id,
        "endpoint_url": config.url,
    });
    if let (Some(data), Value::Object(details)) = (data.as_object_mut(), &notice.data) {
        data.extend(details.clone());
    }
    publisher
        .publish_operational(
            config.organisation,
            ConfigId::new(target),
            notice.event_type,
            &data,
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_exhausted_is_told_once_a_minute_per_endpoint() {
        let (webhooks, _notices) = OperationalWebhooks::new();
        let start = Instant::now();
        assert!(webhooks.may_tell_exhausted(ConfigId::new(1), start));
        assert!(!webhooks.may_tell_exhausted(ConfigId::new(1), start + Duration::from_secs(59)));
        assert!(webhooks.may_tell_exhausted(ConfigId::new(2), start + Duration::from_secs(1)));
        assert!(webhooks.may_tell_exhausted(ConfigId::new(1), start + EXHAUSTED_EVERY));
    }
}
