//! The three signature header sets of SPEC §4, all from the config's secret.
use crate::crypto::push_hex;
use aggregates::values::WebhookSecret;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of `parts` (concatenated) under `key`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The signature headers of one request, in send order, signed with
/// `secret` and also with each of `previous` (secrets replaced by a
/// rotation whose overlap has not ended, newest first): `webhook-signature`
/// carries them space-separated (`v1,<new> v1,<old>`, as the Standard
/// Webhooks specification prescribes for rotation), `x-webhook-signature`
/// comma-separated (`v1=<new>,v1=<old>`); `ricloud-signature` holds one
/// signature only in ricloud's format: the current secret's.
///
/// Every attempt calls this: each value is built in place in its own
/// string (no intermediate encodings), and the keys stay on the stack.
pub fn signature_headers(
    secret: &WebhookSecret,
    previous: &[&WebhookSecret],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 6] {
    let ts = timestamp.to_string();
    // Standard Webhooks: key = the base64-decoded part after `whsec_`.
    let standard = |secret: &WebhookSecret| {
        hmac_sha256(
            &secret.standard_webhooks_key(),
            &[message_id.as_bytes(), b".", ts.as_bytes(), b".", body],
        )
    };
    // The other two: key = the secret string's bytes, message "{ts}.{body}".
    let plain = |secret: &WebhookSecret| {
        hmac_sha256(secret.expose().as_bytes(), &[ts.as_bytes(), b".", body])
    };
    let current_plain = plain(secret);
    // "v1," + 44 base64 characters per signature; "v1=" + 64 hex digits.
    let mut standard_header = String::with_capacity(48 * (1 + previous.len()));
    let mut plain_header = String::with_capacity(68 * (1 + previous.len()));
    for (n, secret) in std::iter::once(secret)
        .chain(previous.iter().copied())
        .enumerate()
    {
        standard_header.push_str(if n == 0 { "v1," } else { " v1," });
        STANDARD.encode_string(standard(secret), &mut standard_header);
        plain_header.push_str(if n == 0 { "v1=" } else { ",v1=" });
        push_hex(
            &mut plain_header,
            if n == 0 { current_plain } else { plain(secret) },
        );
    }
    let mut ricloud = String::with_capacity(ts.len() + 48);
    ricloud.push_str("t=");
    ricloud.push_str(&ts);
    ricloud.push_str(",s=");
    STANDARD.encode_string(current_plain, &mut ricloud);
    [
        ("webhook-id", message_id.to_owned()),
        ("webhook-timestamp", ts.clone()),
        ("webhook-signature", standard_header),
        ("x-webhook-timestamp", ts),
        ("x-webhook-signature", plain_header),
        ("ricloud-signature", ricloud),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let headers = signature_headers(
            &secret,
            &[],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
        );
        assert_eq!(
            headers[2].1,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn plain_schemes_share_one_hmac() {
        let secret = WebhookSecret::from_key_bytes(&[1; 32]);
        let headers = signature_headers(&secret, &[], "id", 10, b"{}");
        let hex_sig = headers[4].1.strip_prefix("v1=").unwrap();
        let b64_sig = headers[5].1.strip_prefix("t=10,s=").unwrap();
        assert_eq!(
            hex::decode(hex_sig).unwrap(),
            STANDARD.decode(b64_sig).unwrap()
        );
    }

    /// During an overlap each scheme that can carry several signatures
    /// carries the new one first, then the old; ricloud's carries the new.
    #[test]
    fn a_rotation_overlap_signs_with_both_secrets() {
        let new = WebhookSecret::from_key_bytes(&[2; 32]);
        let old = WebhookSecret::from_key_bytes(&[1; 32]);
        let alone_new = signature_headers(&new, &[], "id", 10, b"{}");
        let alone_old = signature_headers(&old, &[], "id", 10, b"{}");
        let both = signature_headers(&new, &[&old], "id", 10, b"{}");
        assert_eq!(both[2].1, format!("{} {}", alone_new[2].1, alone_old[2].1));
        assert_eq!(both[4].1, format!("{},{}", alone_new[4].1, alone_old[4].1));
        assert_eq!(both[5].1, alone_new[5].1);
    }
}

/// How one signature scheme judged a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Valid,
    Invalid,
    /// The request did not carry this scheme's headers.
    Missing,
}

/// Checks the three signature schemes of a received request (what
/// `webhookd listen` shows). `header` looks a header up by lowercase name.
/// A timestamp more than five minutes off makes a signature invalid.
pub fn check_signatures<'a>(
    secret: &WebhookSecret,
    header: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
    now: i64,
) -> [(&'static str, Check); 3] {
    let fresh = |ts: i64| (now - ts).abs() <= 300;
    let standard = match (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) {
        (Some(id), Some(ts), Some(given)) => match ts.parse::<i64>() {
            Ok(ts) if fresh(ts) => {
                let expected = signature_headers(secret, &[], id, ts, body)[2].1.clone();
                verdict(given.split(' ').any(|candidate| candidate == expected))
            }
            _ => Check::Invalid,
        },
        _ => Check::Missing,
    };
    let plain = match (header("x-webhook-timestamp"), header("x-webhook-signature")) {
        (Some(ts), Some(given)) => match ts.parse::<i64>() {
            Ok(ts) if fresh(ts) => {
                // Any of the comma-separated signatures (a rotation overlap).
                let expected = signature_headers(secret, &[], "", ts, body)[4].1.clone();
                verdict(given.split(',').any(|candidate| candidate == expected))
            }
            _ => Check::Invalid,
        },
        _ => Check::Missing,
    };
    let ricloud = match header("ricloud-signature") {
        Some(given) => {
            let ts = given
                .split(',')
                .find_map(|part| part.strip_prefix("t="))
                .and_then(|t| t.parse::<i64>().ok());
            match ts {
                Some(ts) if fresh(ts) => {
                    verdict(signature_headers(secret, &[], "", ts, body)[5].1 == given)
                }
                _ => Check::Invalid,
            }
        }
        None => Check::Missing,
    };
    [
        ("webhook-signature", standard),
        ("x-webhook-signature", plain),
        ("ricloud-signature", ricloud),
    ]
}

fn verdict(matches: bool) -> Check {
    if matches {
        Check::Valid
    } else {
        Check::Invalid
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn our_own_signatures_check_out_and_tampering_does_not() {
        let secret = WebhookSecret::from_key_bytes(&[3; 32]);
        let signed: HashMap<&str, String> = signature_headers(&secret, &[], "evt", 1000, b"{}")
            .into_iter()
            .collect();
        let lookup = |name: &str| signed.get(name).map(String::as_str);
        let checks = check_signatures(&secret, lookup, b"{}", 1000);
        assert!(checks.iter().all(|(_, c)| *c == Check::Valid), "{checks:?}");
        let tampered = check_signatures(&secret, lookup, b"{\"x\":1}", 1000);
        assert!(tampered.iter().all(|(_, c)| *c == Check::Invalid));
        let stale = check_signatures(&secret, lookup, b"{}", 1000 + 3600);
        assert!(stale.iter().all(|(_, c)| *c == Check::Invalid));
        let none = check_signatures(&secret, |_| None, b"{}", 1000);
        assert!(none.iter().all(|(_, c)| *c == Check::Missing));
    }
}
