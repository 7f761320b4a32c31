use super::ValidationError;
use serde::{Deserialize, Serialize};

/// A display name for a webhook config: at most 200 characters, no control
/// characters. Empty when the user gave none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigName(String);

impl ConfigName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(format!(
                "must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if raw.chars().any(char::is_control) {
            return Err(ValidationError::new("must not contain control characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_and_printable() {
        assert_eq!(ConfigName::parse("Billing").unwrap().as_str(), "Billing");
        assert!(ConfigName::parse(&"x".repeat(201)).is_err());
        assert!(ConfigName::parse("a\nb").is_err());
    }
}
