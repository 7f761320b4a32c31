use serde::{Deserialize, Serialize};
use std::fmt;

/// The integer id of a webhook config. The aggregate id in the event store is
/// its decimal string, so ids and aggregate ids convert both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigId(i64);

impl ConfigId {
    /// Ids are allocated by the database and always positive.
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    /// Parses a path segment such as `"42"`. Anything that is not a positive
    /// integer that fits in an i64 names no config.
    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse::<i64>().ok().filter(|id| *id > 0).map(Self)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn aggregate_id(self) -> String {
        self.0.to_string()
    }
}

impl fmt::Display for ConfigId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The integer id of an organisation (tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrganisationId(i64);

impl OrganisationId {
    pub fn new(id: i64) -> Self {
        Self(id)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for OrganisationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_ids_are_positive_i64() {
        assert_eq!(ConfigId::parse("42").map(ConfigId::get), Some(42));
        assert_eq!(ConfigId::parse("0"), None);
        assert_eq!(ConfigId::parse("-1"), None);
        assert_eq!(ConfigId::parse("abc"), None);
        assert_eq!(ConfigId::parse("99999999999999999999"), None);
    }
}
