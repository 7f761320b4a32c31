use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a config stands in its life (SPEC §1):
/// `new` → `valid` | `invalid` by a test; any → `deactivated`;
/// `deactivated` → `new` by reactivation; a URL change → `new`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigState {
    #[default]
    New,
    Valid,
    Invalid,
    Deactivated,
}

impl ConfigState {
    pub const ALL: [Self; 4] = [Self::New, Self::Valid, Self::Invalid, Self::Deactivated];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::Deactivated => "deactivated",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Published events are delivered only to `new` and `valid` configs.
    pub fn may_receive(self) -> bool {
        matches!(self, Self::New | Self::Valid)
    }
}

/// A stored value that is none of an enum's: an unreadable row.
#[derive(Debug, thiserror::Error)]
#[error("'{value}' is not a {what}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

impl UnknownValue {
    /// The one of `all` whose `name` is `value` — how every enum stored
    /// as text is read back; anything else is an unreadable `what`.
    pub fn find<T: Copy>(
        all: &[T],
        name: fn(T) -> &'static str,
        what: &'static str,
        value: String,
    ) -> Result<T, Self> {
        all.iter()
            .copied()
            .find(|t| name(*t) == value)
            .ok_or(Self { what, value })
    }
}

/// For read models that store the state as text: a value that is not a
/// state is an error, never taken as some default.
impl TryFrom<String> for ConfigState {
    type Error = UnknownValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or(UnknownValue {
            what: "config state",
            value,
        })
    }
}

impl fmt::Display for ConfigState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which API dialect created the config; decides the delivery body shape.
/// `Operational`: an organisation's operational webhook (it receives
/// notices about the organisation's other configs, in the v1 shape, and is
/// shown by neither dialect's webhook lists).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    V1,
    Configs,
    Operational,
    /// Created through the Svix dialect: the body is the message's
    /// payload as sent, and `svix-*` signature headers go beside the
    /// `webhook-*` ones.
    Svix,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::Configs => "configs",
            Self::Operational => "operational",
            Self::Svix => "svix",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::V1, Self::Configs, Self::Operational, Self::Svix]
            .into_iter()
            .find(|p| p.as_str() == raw)
    }
}

impl TryFrom<String> for Profile {
    type Error = UnknownValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or(UnknownValue {
            what: "config profile",
            value,
        })
    }
}

/// Why a config was deactivated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeactivationReason {
    /// Its owner switched it off.
    Owner,
    /// It kept failing deliveries.
    Failing,
    /// The receiver answered 410 Gone.
    Gone,
}
