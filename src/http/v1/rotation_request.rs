//! The optional body of `POST /api/v1/webhooks/{id}/rotate-secret`:
//! `{"previous_valid_for": "24h", "secret": "whsec_…"}`.
use super::error::FieldErrors;
use crate::http::body::{members, Member};
use aggregates::values::WebhookSecret;
use serde_json::{Map, Value};
use std::time::Duration;

pub use crate::app::endpoints::{Rotation, MAX_OVERLAP};

pub fn parse_rotation(body: &RotateSecretBody) -> Result<Rotation, FieldErrors> {
    let mut errors = FieldErrors::default();
    let mut rotation = Rotation::default();
    match body.previous_valid_for.get() {
        None | Some(Value::Null) => {}
        Some(value) => match overlap(value) {
            Ok(duration) => rotation.previous_valid_for = duration,
            Err(message) => errors.add("previous_valid_for", message),
        },
    }
    match body.secret.get() {
        None | Some(Value::Null) => {}
        Some(Value::String(raw)) => match WebhookSecret::parse(raw) {
            Ok(secret) => rotation.secret = Some(secret),
            Err(error) => errors.add("secret", error.0),
        },
        Some(_) => errors.add("secret", "must be a string (whsec_…)"),
    }
    if errors.is_empty() {
        Ok(rotation)
    } else {
        Err(errors)
    }
}

/// A duration such as `"24h"`, `"90m"`, `"0"`, or a number of seconds.
fn overlap(value: &Value) -> Result<Duration, String> {
    const EXPECTED: &str =
        "must be a duration such as \"24h\" or \"30m\" (0 = at once), at most 7d";
    let duration = match value {
        Value::Number(n) => n
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| EXPECTED.to_owned())?,
        Value::String(text) if text.trim() == "0" => Duration::ZERO,
        Value::String(text) => {
            humantime::parse_duration(text.trim()).map_err(|_| EXPECTED.to_owned())?
        }
        _ => return Err(EXPECTED.to_owned()),
    };
    if duration > MAX_OVERLAP {
        return Err(EXPECTED.to_owned());
    }
    Ok(duration)
}

/// The body of `POST /api/v1/webhooks/{id}/rotate-secret`, read member
/// by member ([`parse_rotation`]).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"previous_valid_for": "24h"}))]
pub struct RotateSecretBody {
    /// How long the replaced secret keeps signing beside the new one
    /// (`"24h"`, `"90m"`, a number of seconds; `0` ends it at once; at
    /// most 7 days). Default 24 hours.
    #[serde(default)]
    #[schema(schema_with = overlap_schema)]
    previous_valid_for: Member,
    /// Your own new secret; by default webhookd generates one.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: Member,
}

impl From<Map<String, Value>> for RotateSecretBody {
    fn from(object: Map<String, Value>) -> Self {
        members(object)
    }
}

/// A duration string or a number of seconds (or null: the default).
fn overlap_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .examples(["24h"]),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(MAX_OVERLAP.as_secs())),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "A duration such as \"24h\" or \"90m\", or a number of seconds; 0 ends the replaced secret at once; at most 7 days",
        ))
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::endpoints::DEFAULT_OVERLAP;
    use serde_json::json;

    fn parse(body: Value) -> Result<Rotation, FieldErrors> {
        parse_rotation(&body.as_object().unwrap().clone().into())
    }

    #[test]
    fn overlaps() {
        assert_eq!(
            parse(json!({})).unwrap().previous_valid_for,
            DEFAULT_OVERLAP
        );
        for (given, seconds) in [
            (json!("24h"), 86_400),
            (json!("90m"), 5_400),
            (json!("0"), 0),
            (json!(0), 0),
            (json!(3600), 3_600),
            (json!("7d"), 604_800),
        ] {
            let rotation = parse(json!({ "previous_valid_for": given })).unwrap();
            assert_eq!(rotation.previous_valid_for.as_secs(), seconds, "{given}");
        }
        for bad in [
            json!("8d"),
            json!("soon"),
            json!(-1),
            json!(true),
            json!(1.5),
        ] {
            assert!(
                parse(json!({ "previous_valid_for": bad })).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_chosen_secret_is_validated() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let rotation = parse(json!({ "secret": secret })).unwrap();
        assert_eq!(rotation.secret.unwrap().expose(), secret);
        assert!(parse(json!({ "secret": "hunter2" })).is_err());
        assert!(parse(json!({ "secret": 7 })).is_err());
    }
}
