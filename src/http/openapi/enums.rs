//! Schemas of the enums the API shows as strings, built from the enums
//! themselves so that the document cannot list a value the code lacks.
use aggregates::values::DeliveryOrdering;
use aggregates::webhook_config::ConfigState;
use projections::deliveries::DeliveryStatus;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::Object;

fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}

pub fn config_state() -> Object {
    string_enum(
        ConfigState::ALL.map(ConfigState::as_str),
        "new (not yet tested), valid (its last delivery or test succeeded), \
         invalid (it failed), deactivated (receives nothing)",
    )
}

pub fn delivery_status() -> Object {
    string_enum(
        DeliveryStatus::ALL.map(DeliveryStatus::as_str),
        "pending (waiting for an attempt), succeeded, failed (retries exhausted or given up)",
    )
}

pub fn delivery_kind() -> Object {
    string_enum(
        ["event", "test"],
        "event (a published event) or test (a webhook_config.test delivery)",
    )
}

pub fn delivery_ordering() -> Object {
    string_enum(
        [DeliveryOrdering::None, DeliveryOrdering::Fifo].map(DeliveryOrdering::as_str),
        "none (as fast as they go) or fifo (publish order, one in flight)",
    )
}
