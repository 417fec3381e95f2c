//! Parse errors that never echo values: a gate or notification file holds
//! URLs with tokens, routing keys and passwords, and serde's messages quote
//! the value they could not use (`invalid type: string "https://…/TOKEN"`).
//! The message keeps its shape, the field names and the position; values go.

/// `e`'s message without its position and without any value it quotes:
/// double-quoted strings and back-ticked tokens are dropped, except field
/// names (`unknown field`, `missing field`, `duplicate field`) and the names
/// a message lists after `expected`.
#[must_use]
pub fn redacted_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let without_position = match full.rfind(" at line ") {
        Some(i) => &full[..i],
        None => full.as_str(),
    };
    redact(without_position)
}

/// [`redacted_message`] on any message.
#[must_use]
pub fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[i];
        let (before, after) = rest.split_at(i);
        let Some(end) = after[1..].find(quote as char) else {
            out.push_str(before);
            rest = "";
            break;
        };
        let token = &after[..end + 2];
        // Field names, and the names listed after `expected`, are the
        // schema's; anything else quoted is a value.
        let consumed = message.len() - rest.len() + i;
        let in_expected = message.find("expected").is_some_and(|e| e < consumed);
        let keep = quote == b'`' && (before.ends_with("field ") || in_expected);
        out.push_str(before);
        if keep {
            out.push_str(token);
        } else {
            while out.ends_with(' ') {
                out.pop();
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_dropped_and_field_names_kept() {
        for (message, expected) in [
            (
                r#"invalid type: string "https://hooks.slack.com/T/SECRET", expected struct Slack"#,
                "invalid type: string, expected struct Slack",
            ),
            (
                "invalid type: integer `5`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                "unknown field `chanel`, expected one of `channel`, `webhook_url`",
                "unknown field `chanel`, expected one of `channel`, `webhook_url`",
            ),
            ("missing field `to`", "missing field `to`"),
            (
                "unknown variant `SECRET`, expected `a` or `b`",
                "unknown variant, expected `a` or `b`",
            ),
            ("an unclosed \"quote", "an unclosed "),
        ] {
            assert_eq!(redact(message), expected, "{message}");
        }
    }

    #[test]
    fn a_serde_error_loses_its_value_and_position() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Config {
            url: u32,
        }
        let e = serde_json::from_str::<Config>(r#"{"url": "http://u:SECRET@h"}"#).unwrap_err();
        let m = redacted_message(&e);
        assert!(!m.contains("SECRET"), "{m}");
        assert!(!m.contains("line"), "{m}");
        assert!(m.contains("invalid type: string"), "{m}");
    }
}
