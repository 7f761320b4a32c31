//! Older event shapes, brought up to the current one when read.
//!
//! `Created` 1.0 was written before configs had a profile (every config was
//! a v1 webhook); 1.1 carries `profile`. Readers of the log apply [`upcast`]
//! before decoding, so a 1.0 event stored by an older build still loads.
use serde_json::Value;

/// The current version of `Created`.
pub const CREATED_VERSION: &str = "1.1";

/// Brings a stored payload to the current shape of its event type.
pub fn upcast(event_type: &str, event_version: &str, mut payload: Value) -> Value {
    if event_type == "Created" && event_version == "1.0" {
        if let Some(created) = payload.get_mut("Created").and_then(Value::as_object_mut) {
            created
                .entry("profile")
                .or_insert_with(|| Value::String("v1".to_owned()));
        }
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook_config::WebhookConfigEvent;
    use serde_json::json;

    fn created_1_0() -> Value {
        json!({"Created": {
            "id": 7, "organisation": 1, "url": "https://example.com/h", "name": "",
            "events": ["*"], "headers": {}, "retry_count": 3, "timeout_seconds": 30,
            "secret": "whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
        }})
    }

    #[test]
    fn a_created_1_0_event_loads_as_a_v1_config() {
        assert!(serde_json::from_value::<WebhookConfigEvent>(created_1_0()).is_err());
        let upcast = upcast("Created", "1.0", created_1_0());
        let event: WebhookConfigEvent = serde_json::from_value(upcast).unwrap();
        let WebhookConfigEvent::Created { profile, .. } = event else {
            panic!("not Created");
        };
        assert_eq!(profile, crate::webhook_config::Profile::V1);
    }

    #[test]
    fn current_events_are_left_alone() {
        let current = json!({"Created": {"profile": "configs"}});
        assert_eq!(upcast("Created", "1.1", current.clone()), current);
        assert_eq!(upcast("Tested", "1.0", json!({"x": 1})), json!({"x": 1}));
    }
}
