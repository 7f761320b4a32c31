//! Reading posted forms (`application/x-www-form-urlencoded`) and turning
//! the endpoint form into the JSON object the v1 API's parser validates,
//! so that the console and the API accept and refuse exactly the same.
use serde_json::{Map, Value};

/// A posted form's fields, in order.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The field trimmed; `None` when absent or blank.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }
}

/// The endpoint form's fields, as typed (to show them again with errors).
#[derive(Debug, Clone, Default)]
pub struct EndpointFields {
    pub url: String,
    pub events: String,
    pub name: String,
    pub retry_count: String,
    pub timeout_seconds: String,
    pub rate_limit: String,
    pub ordering: String,
}

impl EndpointFields {
    pub fn from_form(form: &Form) -> Self {
        let field = |name: &str| form.get(name).unwrap_or_default().to_owned();
        Self {
            url: field("url"),
            events: field("events"),
            name: field("name"),
            retry_count: field("retry_count"),
            timeout_seconds: field("timeout_seconds"),
            rate_limit: field("rate_limit"),
            ordering: field("ordering"),
        }
    }

    /// The v1 body these fields stand for: numbers where they read as
    /// numbers (else the text, which the parser refuses with its message),
    /// events split at commas and spaces, a blank rate limit as `null`.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut body = Map::new();
        let text = |v: &str| Value::String(v.trim().to_owned());
        let number = |v: &str| {
            v.trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| text(v))
        };
        if !self.url.trim().is_empty() {
            body.insert("url".into(), text(&self.url));
        }
        let events: Vec<Value> = self
            .events
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
            .map(|e| Value::String(e.to_owned()))
            .collect();
        if !events.is_empty() {
            body.insert("events".into(), Value::Array(events));
        }
        body.insert("name".into(), text(&self.name));
        if !self.retry_count.trim().is_empty() {
            body.insert("retry_count".into(), number(&self.retry_count));
        }
        if !self.timeout_seconds.trim().is_empty() {
            body.insert("timeout_seconds".into(), number(&self.timeout_seconds));
        }
        body.insert(
            "rate_limit".into(),
            if self.rate_limit.trim().is_empty() {
                Value::Null
            } else {
                number(&self.rate_limit)
            },
        );
        if !self.ordering.trim().is_empty() {
            body.insert("ordering".into(), text(&self.ordering));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_becomes_the_api_body() {
        let form = Form::parse(
            b"url=https%3A%2F%2Fx.example%2Fh&events=a.b%2C+c.d&name=N&retry_count=2&\
              timeout_seconds=ten&rate_limit=&ordering=fifo",
        );
        let body = Value::Object(EndpointFields::from_form(&form).to_json());
        assert_eq!(
            body,
            serde_json::json!({
                "url": "https://x.example/h", "events": ["a.b", "c.d"], "name": "N",
                "retry_count": 2, "timeout_seconds": "ten", "rate_limit": null,
                "ordering": "fifo"
            })
        );
        assert_eq!(form.text("missing"), None);
    }
}
