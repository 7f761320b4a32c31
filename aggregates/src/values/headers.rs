use super::ValidationError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Header names a config may not set: hop-by-hop headers, headers the HTTP
/// client owns, and the headers webhookd signs with (a receiver must be able
/// to trust that those came from us).
const FORBIDDEN: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-webhook-timestamp",
    "x-webhook-signature",
    "ricloud-signature",
];

/// Custom request headers sent with every delivery of a config.
/// Names are HTTP tokens (stored lowercase), values are visible ASCII.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomHeaders(BTreeMap<String, String>);

impl CustomHeaders {
    pub const MAX_HEADERS: usize = 20;
    pub const MAX_NAME_LEN: usize = 256;
    pub const MAX_VALUE_LEN: usize = 4096;

    pub fn parse<I, K, V>(pairs: I) -> Result<Self, ValidationError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut headers = BTreeMap::new();
        for (name, value) in pairs {
            let (name, value) = (name.as_ref(), value.as_ref());
            let is_token = !name.is_empty()
                && name.len() <= Self::MAX_NAME_LEN
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !is_token {
                return Err(ValidationError::new(format!(
                    "'{name}' is not a valid header name"
                )));
            }
            let lower = name.to_ascii_lowercase();
            if FORBIDDEN.contains(&lower.as_str()) {
                return Err(ValidationError::new(format!(
                    "header '{name}' is set by webhookd and cannot be overridden"
                )));
            }
            let is_visible = value.len() <= Self::MAX_VALUE_LEN
                && value
                    .bytes()
                    .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
            if !is_visible {
                return Err(ValidationError::new(format!(
                    "the value of header '{name}' must be at most {} printable ASCII characters",
                    Self::MAX_VALUE_LEN
                )));
            }
            if headers.insert(lower, value.to_owned()).is_some() {
                return Err(ValidationError::new(format!(
                    "header '{name}' is given twice"
                )));
            }
        }
        if headers.len() > Self::MAX_HEADERS {
            return Err(ValidationError::new(format!(
                "at most {} custom headers are allowed",
                Self::MAX_HEADERS
            )));
        }
        Ok(Self(headers))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_headers_are_checked() {
        let ok = CustomHeaders::parse([("X-Tenant", "acme")]).unwrap();
        assert_eq!(ok.iter().collect::<Vec<_>>(), [("x-tenant", "acme")]);
        for forbidden in ["Host", "Content-Length", "webhook-signature", "Connection"] {
            assert!(
                CustomHeaders::parse([(forbidden, "x")]).is_err(),
                "{forbidden}"
            );
        }
        assert!(CustomHeaders::parse([("bad name", "x")]).is_err());
        assert!(CustomHeaders::parse([("x-a", "line\r\nbreak")]).is_err());
        assert!(CustomHeaders::parse([("x-a", "1"), ("X-A", "2")]).is_err());
    }
}
