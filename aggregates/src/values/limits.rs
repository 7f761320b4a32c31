use super::ValidationError;
use serde::{Deserialize, Serialize};

/// How many times a failed delivery is retried: 0..=10, default 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RetryCount(u8);

impl RetryCount {
    pub const MAX: i64 = 10;

    pub fn parse(raw: i64) -> Result<Self, ValidationError> {
        if (0..=Self::MAX).contains(&raw) {
            Ok(Self(raw as u8))
        } else {
            Err(ValidationError::new(format!(
                "must be between 0 and {}",
                Self::MAX
            )))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for RetryCount {
    fn default() -> Self {
        Self(3)
    }
}

/// How long one delivery attempt may take: 1..=60 seconds, default 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimeoutSeconds(u8);

impl TimeoutSeconds {
    pub const MIN: i64 = 1;
    pub const MAX: i64 = 60;

    pub fn parse(raw: i64) -> Result<Self, ValidationError> {
        if (Self::MIN..=Self::MAX).contains(&raw) {
            Ok(Self(raw as u8))
        } else {
            Err(ValidationError::new(format!(
                "must be between {} and {}",
                Self::MIN,
                Self::MAX
            )))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for TimeoutSeconds {
    fn default() -> Self {
        Self(30)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_count_bounds() {
        assert_eq!(RetryCount::parse(0).unwrap().get(), 0);
        assert_eq!(RetryCount::parse(10).unwrap().get(), 10);
        assert!(RetryCount::parse(11).is_err());
        assert!(RetryCount::parse(-1).is_err());
        assert_eq!(RetryCount::default().get(), 3);
    }

    #[test]
    fn timeout_bounds() {
        assert_eq!(TimeoutSeconds::parse(1).unwrap().get(), 1);
        assert_eq!(TimeoutSeconds::parse(60).unwrap().get(), 60);
        assert!(TimeoutSeconds::parse(0).is_err());
        assert!(TimeoutSeconds::parse(61).is_err());
        assert_eq!(TimeoutSeconds::default().get(), 30);
    }
}

/// How many deliveries per second an endpoint may receive: 1..=10 000,
/// or unlimited (the default). Stored in events as a number, 0 meaning
/// unlimited, so that "unchanged" and "unlimited" stay apart in a
/// `SettingsUpdated`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RateLimit(u32);

impl RateLimit {
    pub const MAX: i64 = 10_000;
    pub const UNLIMITED: Self = Self(0);

    /// `None`: unlimited.
    pub fn parse(raw: Option<i64>) -> Result<Self, ValidationError> {
        match raw {
            None => Ok(Self::UNLIMITED),
            Some(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n as u32)),
            Some(_) => Err(ValidationError::new(format!(
                "must be between 1 and {} deliveries per second, or null for no limit",
                Self::MAX
            ))),
        }
    }

    /// Deliveries per second; `None` when unlimited.
    pub fn per_second(self) -> Option<u32> {
        (self.0 > 0).then_some(self.0)
    }
}

/// In what order an endpoint receives its events: `none` (the default: as
/// fast as they go, several at once) or `fifo` (publish order, one at a
/// time; a failing delivery holds the ones behind it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryOrdering {
    #[default]
    None,
    Fifo,
}

impl DeliveryOrdering {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "none" => Ok(Self::None),
            "fifo" => Ok(Self::Fifo),
            _ => Err(ValidationError::new("must be \"fifo\" or \"none\"")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Fifo => "fifo",
        }
    }
}

#[cfg(test)]
mod ordering_tests {
    use super::DeliveryOrdering;

    #[test]
    fn ordering_parses_its_two_names_only() {
        assert_eq!(
            DeliveryOrdering::parse("fifo").unwrap(),
            DeliveryOrdering::Fifo
        );
        assert_eq!(
            DeliveryOrdering::parse("none").unwrap(),
            DeliveryOrdering::None
        );
        assert!(DeliveryOrdering::parse("FIFO").is_err());
        assert!(DeliveryOrdering::parse("").is_err());
        assert_eq!(DeliveryOrdering::default().as_str(), "none");
    }
}

/// As the read model stores it.
impl TryFrom<String> for DeliveryOrdering {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
