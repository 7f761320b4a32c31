//! What goes over the wire: the body shape of each profile and the target URL.
use aggregates::webhook_config::Profile;
use projections::db::micros_to_rfc3339;
use serde::Serialize;
use serde_json::value::RawValue;

pub use projections::deliveries::{event_data, event_data_of, EventData, EventRecord};

#[derive(Serialize)]
struct V1Body<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: &'a RawValue,
}

/// ricloud's event resource.
#[derive(Serialize)]
struct ConfigsBody<'a> {
    id: &'a str,
    resource: &'static str,
    #[serde(rename = "type")]
    kind: &'a str,
    action: &'a str,
    data: &'a RawValue,
    date_created: String,
}

/// The JSON body for a config of `profile`.
pub fn body(profile: Profile, event: &EventRecord) -> Vec<u8> {
    let written = match profile {
        // Svix's receivers get the message's payload alone, byte for byte.
        Profile::Svix => return event.data.get().as_bytes().to_vec(),
        Profile::V1 | Profile::Operational => serde_json::to_vec(&V1Body {
            id: &event.id,
            event_type: &event.event_type,
            timestamp: micros_to_rfc3339(event.published_at),
            data: &event.data,
        }),
        Profile::Configs => {
            // `invoice.paid` → type `invoice`, action `paid`.
            let (kind, action) = event
                .event_type
                .rsplit_once('.')
                .unwrap_or((event.event_type.as_str(), ""));
            serde_json::to_vec(&ConfigsBody {
                id: &event.id,
                resource: "event",
                kind,
                action,
                data: &event.data,
                date_created: micros_to_rfc3339(event.published_at),
            })
        }
    };
    written.expect("strings and raw JSON serialize")
}

/// The message id a receiver sees (`webhook-id`, and what is signed): the
/// event's id, or for the Svix dialect its message id (`msg_…`).
pub fn message_id(profile: Profile, event_id: &str) -> std::borrow::Cow<'_, str> {
    match profile {
        Profile::Svix => std::borrow::Cow::Owned(projections::svix::message_id(event_id)),
        _ => std::borrow::Cow::Borrowed(event_id),
    }
}

/// The `svix-*` twin of a Standard Webhooks header.
pub fn svix_header(name: &str) -> Option<&'static str> {
    match name {
        "webhook-id" => Some("svix-id"),
        "webhook-timestamp" => Some("svix-timestamp"),
        "webhook-signature" => Some("svix-signature"),
        _ => None,
    }
}

/// The URL to POST to: the config's URL (parsed once, when the config was
/// loaded), or for ricloud receivers (which route on it) the config's URL
/// with the event id as its last path segment.
pub fn target(
    profile: Profile,
    parsed: &Result<url::Url, url::ParseError>,
    event_id: &str,
) -> Result<url::Url, url::ParseError> {
    let mut url = parsed.clone()?;
    if profile == Profile::Configs {
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(event_id);
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn configs_profile_joins_the_event_id() {
        let target = |profile, url: &str| {
            target(profile, &url::Url::parse(url), "e1").map(|url| url.to_string())
        };
        for base in ["https://r.example/webhooks", "https://r.example/webhooks/"] {
            assert_eq!(
                target(Profile::Configs, base).unwrap(),
                "https://r.example/webhooks/e1"
            );
        }
        assert_eq!(
            target(Profile::Configs, "https://r.example/h?x=1").unwrap(),
            "https://r.example/h/e1?x=1"
        );
        assert_eq!(
            target(Profile::V1, "https://r.example/h").unwrap(),
            "https://r.example/h"
        );
        assert!(target(Profile::Configs, "not a url").is_err());
    }

    #[test]
    fn data_goes_out_as_it_came_in() {
        let raw = r#"{"big": 123456789012345678901234567890, "pi": 3.14159265358979323846264338327950288, "s": "\u0000"}"#;
        let event = EventRecord {
            id: "e1".into(),
            event_type: "invoice.paid".into(),
            data: event_data(raw.to_owned()),
            published_at: 0,
        };
        for profile in [Profile::V1, Profile::Configs] {
            let body = String::from_utf8(body(profile, &event)).unwrap();
            assert!(body.contains(&format!(r#""data":{raw}"#)), "{body}");
        }
    }

    #[test]
    fn configs_profile_splits_type_at_the_last_dot() {
        let event = EventRecord {
            id: "e1".into(),
            event_type: "webhook_config.test".into(),
            data: event_data("{}".to_owned()),
            published_at: 0,
        };
        let body: Value = serde_json::from_slice(&body(Profile::Configs, &event)).unwrap();
        assert_eq!(body["type"], "webhook_config");
        assert_eq!(body["action"], "test");
        assert_eq!(body["resource"], "event");
    }
}
