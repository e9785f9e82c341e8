//! Customer emails and phone numbers masked in a JSON body before it is
//! shown: `ada@example.com` becomes `a***@***.com`, `+1 555 0100` becomes
//! `+* *** **00`.
//!
//! Every string under a key whose name contains `email` or `phone` (in any
//! case, at any depth) is masked, so events added later are covered too.
//!
//! ```
//! let body = br#"{"chatbotId":"bot","payload":{"customerEmail":"ada@example.com","customerPhone":"+1 555 0100"}}"#;
//! let shown = chatbase_cli::mask::pretty(body, true).unwrap();
//! assert!(shown.contains(r#""customerEmail": "a***@***.com""#));
//! assert!(shown.contains(r#""customerPhone": "+* *** **00""#));
//! assert!(!shown.contains("ada@"));
//! ```

use serde_json::Value;

/// The body as pretty-printed JSON (keys sorted), with emails and phones
/// masked if `mask`; `None` if it is not JSON.
pub fn pretty(body: &[u8], mask: bool) -> Option<String> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    if mask {
        mask_value(&mut value);
    }
    serde_json::to_string_pretty(&value).ok()
}

/// Masks, in place, every value under a key naming an email or a phone.
pub fn mask_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let key = key.to_ascii_lowercase();
                if key.contains("email") {
                    mask_leaf(value, email);
                } else if key.contains("phone") {
                    mask_leaf(value, phone);
                } else {
                    mask_value(value);
                }
            }
        }
        Value::Array(values) => values.iter_mut().for_each(mask_value),
        _ => {}
    }
}

fn mask_leaf(value: &mut Value, mask: fn(&str) -> String) {
    match value {
        Value::String(text) => *text = mask(text),
        Value::Null => {}
        Value::Array(values) => values.iter_mut().for_each(|value| mask_leaf(value, mask)),
        other => *other = Value::String("***".to_owned()),
    }
}

/// `ada@example.com` → `a***@***.com`: the first character and the
/// top-level domain.
pub fn email(address: &str) -> String {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return "***".to_owned();
    };
    let first: String = local.chars().take(1).collect();
    let tld = domain
        .rsplit_once('.')
        .map(|(_, tld)| format!(".{tld}"))
        .unwrap_or_default();
    format!("{first}***@***{tld}")
}

/// `+1 555 0100` → `+* *** **00`: every digit but the last two hidden.
pub fn phone(number: &str) -> String {
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    number
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + 2 > digits { c } else { '*' }
            } else if c.is_alphabetic() {
                '*'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email("ada@example.com"), "a***@***.com");
        assert_eq!(email("x@localhost"), "x***@***");
        assert_eq!(email("not an email"), "***");
        assert_eq!(email("@b.org"), "***@***.org");
    }

    #[test]
    fn phones() {
        assert_eq!(phone("+1 555 0100"), "+* *** **00");
        assert_eq!(phone("5"), "5");
        assert_eq!(phone("call me"), "**** **");
    }

    #[test]
    fn masks_every_email_and_phone_at_any_depth() {
        let body = br#"{"payload":{"customerEmail":"ada@example.com","customerPhone":"+1 555 0100",
            "customerName":"Ada","contacts":[{"workEmail":"ada@work.org","PHONE":12345}],"note":"ada@example.com is kept"},"email":null}"#;
        let shown = pretty(body, true).unwrap();
        assert!(!shown.contains("ada@example.com\""), "{shown}");
        assert!(!shown.contains("ada@work.org"), "{shown}");
        assert!(!shown.contains("12345"), "{shown}");
        assert!(!shown.contains("555"), "{shown}");
        assert!(shown.contains("\"customerName\": \"Ada\""), "{shown}");
        assert!(shown.contains("\"email\": null"), "{shown}");
        // Only fields named for an email or a phone are masked.
        assert!(shown.contains("ada@example.com is kept"), "{shown}");

        let unmasked = pretty(body, false).unwrap();
        assert!(unmasked.contains("\"customerEmail\": \"ada@example.com\""));
        assert_eq!(pretty(b"not json", true), None);
    }
}
