//! Secrets never leave through audits: every `whsec_…` string and every
//! field named `secret` is replaced before output.
use serde_json::Value;

pub const REDACTED: &str = "whsec_[redacted]";

pub fn redact(value: &mut Value) {
    match value {
        Value::String(text) if text.starts_with("whsec_") => *text = REDACTED.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if name == "secret" && !field.is_null() {
                    *field = Value::String(REDACTED.to_owned());
                } else {
                    redact(field);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_wherever_they_are() {
        let mut value = json!({
            "Created": {"secret": "whsec_abc", "url": "https://x", "nested": ["whsec_def"]},
            "other": {"secret": "plain"}
        });
        redact(&mut value);
        let text = value.to_string();
        assert!(!text.contains("abc") && !text.contains("def") && !text.contains("plain"));
        assert_eq!(value["Created"]["url"], "https://x");
    }
}
