//! What goes over the wire: the body shape of each profile and the target URL.
use aggregates::webhook_config::Profile;
use projections::db::micros_to_rfc3339;
use serde_json::{json, Value};
use std::sync::Arc;

/// A published event as the delivery side needs it.
#[derive(Debug, Clone)]
pub struct EventRecord {
    /// UUID; also the `webhook-id`, stable across retries for dedupe.
    pub id: String,
    pub event_type: String,
    pub data: Arc<Value>,
    pub published_at: i64,
}

/// The JSON body for a config of `profile`.
pub fn body(profile: Profile, event: &EventRecord) -> Vec<u8> {
    let value = match profile {
        Profile::V1 => json!({
            "id": event.id,
            "type": event.event_type,
            "timestamp": micros_to_rfc3339(event.published_at),
            "data": *event.data,
        }),
        Profile::Configs => {
            // ricloud's event resource: `invoice.paid` → type `invoice`, action `paid`.
            let (kind, action) = event
                .event_type
                .rsplit_once('.')
                .unwrap_or((event.event_type.as_str(), ""));
            json!({
                "id": event.id,
                "resource": "event",
                "type": kind,
                "action": action,
                "data": *event.data,
                "date_created": micros_to_rfc3339(event.published_at),
            })
        }
    };
    serde_json::to_vec(&value).expect("JSON values serialize")
}

/// The URL to POST to: the config's URL, or for ricloud receivers (which
/// route on it) the config's URL joined with `/<event id>`.
pub fn target_url(profile: Profile, config_url: &str, event_id: &str) -> String {
    match profile {
        Profile::V1 => config_url.to_owned(),
        Profile::Configs => match url::Url::parse(config_url) {
            Ok(mut url) => {
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments.pop_if_empty().push(event_id);
                }
                url.to_string()
            }
            Err(_) => format!("{}/{event_id}", config_url.trim_end_matches('/')),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_profile_joins_the_event_id() {
        for base in ["https://r.example/webhooks", "https://r.example/webhooks/"] {
            assert_eq!(
                target_url(Profile::Configs, base, "e1"),
                "https://r.example/webhooks/e1"
            );
        }
        assert_eq!(
            target_url(Profile::Configs, "https://r.example/h?x=1", "e1"),
            "https://r.example/h/e1?x=1"
        );
        assert_eq!(
            target_url(Profile::V1, "https://r.example/h", "e1"),
            "https://r.example/h"
        );
    }

    #[test]
    fn configs_profile_splits_type_at_the_last_dot() {
        let event = EventRecord {
            id: "e1".into(),
            event_type: "webhook_config.test".into(),
            data: Arc::new(json!({})),
            published_at: 0,
        };
        let body: Value = serde_json::from_slice(&body(Profile::Configs, &event)).unwrap();
        assert_eq!(body["type"], "webhook_config");
        assert_eq!(body["action"], "test");
        assert_eq!(body["resource"], "event");
    }
}
