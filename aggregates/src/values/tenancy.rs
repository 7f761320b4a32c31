use super::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An organisation's plan. Ordered: the webhook routes need `business` or above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Standard,
    Professional,
    Business,
    Enterprise,
}

impl Plan {
    pub const ALL: [Plan; 4] = [
        Plan::Standard,
        Plan::Professional,
        Plan::Business,
        Plan::Enterprise,
    ];

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == raw)
            .ok_or_else(|| {
                ValidationError::new(format!(
                    "unknown plan '{raw}'; plans are standard, professional, business, enterprise"
                ))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Standard => "standard",
            Plan::Professional => "professional",
            Plan::Business => "business",
            Plan::Enterprise => "enterprise",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Manage webhook configs.
    Webhooks,
    /// Publish events.
    Publish,
    /// Read the event log of configs.
    Audit,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Webhooks, Scope::Publish, Scope::Audit];

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| {
                ValidationError::new(format!(
                    "unknown scope '{raw}'; scopes are webhooks, publish, audit"
                ))
            })
    }

    /// Parses a comma-separated list such as `webhooks,publish`.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, ValidationError> {
        let mut scopes = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let scope = Self::parse(part)?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err(ValidationError::new("at least one scope is required"));
        }
        Ok(scopes)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Webhooks => "webhooks",
            Scope::Publish => "publish",
            Scope::Audit => "audit",
        }
    }
}

/// The feature flag the webhook routes need.
pub const WEBHOOKS_FEATURE: &str = "webhooks";

/// Parses a comma-separated list of feature flags (`[a-z0-9_-]+`).
pub fn parse_features(raw: &str) -> Result<Vec<String>, ValidationError> {
    let mut flags: Vec<String> = Vec::new();
    for flag in raw.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let ok = flag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(ValidationError::new(format!(
                "'{flag}' is not a feature flag (lowercase letters, digits, _ and -)"
            )));
        }
        if !flags.iter().any(|f| f == flag) {
            flags.push(flag.to_owned());
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_ordered() {
        assert!(Plan::Professional < Plan::Business);
        assert!(Plan::Enterprise > Plan::Business);
        assert!(Plan::parse("gold").is_err());
    }

    #[test]
    fn scope_lists() {
        assert_eq!(
            Scope::parse_list("webhooks, publish,webhooks").unwrap(),
            [Scope::Webhooks, Scope::Publish]
        );
        assert!(Scope::parse_list("").is_err());
        assert!(Scope::parse_list("admin").is_err());
    }

    #[test]
    fn feature_lists() {
        assert_eq!(
            parse_features("webhooks,beta").unwrap(),
            ["webhooks", "beta"]
        );
        assert!(parse_features("Web Hooks").is_err());
        assert!(parse_features("").unwrap().is_empty());
    }
}
