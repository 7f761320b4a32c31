use super::ValidationError;
use serde::{Deserialize, Serialize};

/// The catch-all subscription.
pub const WILDCARD: &str = "*";
/// The built-in event type sent by config tests; always in the catalog.
pub const TEST_EVENT_TYPE: &str = "webhook_config.test";

/// An event type name such as `invoice.paid`: lowercase dot-separated words
/// of `[a-z0-9_-]`, at least two of them, at most 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventTypeName(String);

impl EventTypeName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let well_formed = raw.len() <= Self::MAX_CHARS
            && raw.split('.').count() >= 2
            && raw.split('.').all(|word| {
                !word.is_empty()
                    && word.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    })
            });
        if well_formed {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(format!(
                "'{raw}' is not an event type name (lowercase words joined by dots, e.g. invoice.paid)"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a config subscribes to: a non-empty list of event type names, or
/// `["*"]` for everything. Duplicates are dropped, order is kept.
/// Whether the names exist in the catalog is checked by the aggregate, which
/// asks its services; this type only checks the shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscribedEvents(Vec<String>);

impl SubscribedEvents {
    pub const MAX_TYPES: usize = 100;

    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, ValidationError> {
        if raw.is_empty() {
            return Err(ValidationError::new(
                "must name at least one event type (or \"*\" for all)",
            ));
        }
        if raw.len() > Self::MAX_TYPES {
            return Err(ValidationError::new(format!(
                "must name at most {} event types",
                Self::MAX_TYPES
            )));
        }
        let mut names: Vec<String> = Vec::with_capacity(raw.len());
        for name in raw.iter().map(AsRef::as_ref) {
            if name != WILDCARD {
                EventTypeName::parse(name)?;
            }
            if !names.iter().any(|known| known == name) {
                names.push(name.to_owned());
            }
        }
        if names.len() > 1 && names.iter().any(|n| n == WILDCARD) {
            return Err(ValidationError::new(
                "\"*\" subscribes to every event type and cannot be combined with others",
            ));
        }
        Ok(Self(names))
    }

    /// Everything: what configs created through the configs API receive.
    pub fn all() -> Self {
        Self(vec![WILDCARD.to_owned()])
    }

    pub fn is_wildcard(&self) -> bool {
        self.0.iter().any(|n| n == WILDCARD)
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// The subscribed names that are not in `catalog` (the wildcard is always known).
    pub fn unknown_in<'a>(&'a self, catalog: &[String]) -> Vec<&'a str> {
        self.0
            .iter()
            .filter(|n| *n != WILDCARD && !catalog.contains(n))
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names() {
        assert!(EventTypeName::parse("invoice.paid").is_ok());
        assert!(EventTypeName::parse("webhook_config.test").is_ok());
        assert!(EventTypeName::parse("invoice").is_err());
        assert!(EventTypeName::parse("Invoice.Paid").is_err());
        assert!(EventTypeName::parse("invoice..paid").is_err());
    }

    #[test]
    fn subscriptions() {
        assert!(SubscribedEvents::parse::<&str>(&[]).is_err());
        assert!(SubscribedEvents::parse(&["*"]).unwrap().is_wildcard());
        assert!(SubscribedEvents::parse(&["*", "invoice.paid"]).is_err());
        let deduped = SubscribedEvents::parse(&["a.b", "a.b", "c.d"]).unwrap();
        assert_eq!(deduped.names(), ["a.b", "c.d"]);
        assert_eq!(deduped.unknown_in(&["a.b".to_owned()]), ["c.d"]);
    }
}
