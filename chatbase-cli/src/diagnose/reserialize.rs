//! The JSON body re-serialized the ways proxies, frameworks and languages
//! commonly do: to find out whether a signature was made over the same data
//! in other bytes.

use std::fmt;
use std::io;

use serde::ser::{Serialize, SerializeMap, SerializeSeq};
use serde_json::Value;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter, Serializer};

/// A way of writing the same JSON (or the same bytes) differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Form {
    /// Whitespace removed, key order kept (most JSON libraries, and
    /// Chatbase's own format).
    Compact,
    /// JavaScript's `JSON.stringify(JSON.parse(body))`: compact, key order
    /// kept, numbers as JavaScript writes them (`1.0` becomes `1`).
    JavaScript,
    /// Pretty-printed with 2 spaces (`JSON.stringify(v, null, 2)`,
    /// `serde_json::to_string_pretty`, `jq .`).
    Pretty2,
    /// Pretty-printed with 4 spaces (Python's `json.dumps(v, indent=4)`).
    Pretty4,
    /// Keys sorted, compact (Go's `encoding/json` on a map, `jq -S -c`).
    SortedKeys,
    /// Keys sorted, pretty-printed with 2 spaces (`jq -S .`).
    SortedKeysPretty2,
    /// Python's `json.dumps(v)`: `", "` and `": "` separators, non-ASCII
    /// escaped as `\uXXXX`.
    Python,
    /// The same bytes with a newline appended (an editor, `echo`, a
    /// heredoc).
    TrailingNewline,
    /// The same bytes without their trailing whitespace.
    TrailingWhitespaceRemoved,
}

impl Form {
    /// Every form, in the order they are tried.
    pub const ALL: [Self; 9] = [
        Self::Compact,
        Self::JavaScript,
        Self::Pretty2,
        Self::Pretty4,
        Self::SortedKeys,
        Self::SortedKeysPretty2,
        Self::Python,
        Self::TrailingNewline,
        Self::TrailingWhitespaceRemoved,
    ];

    /// `body` in this form, if it can be written so (the JSON forms need a
    /// JSON body).
    pub fn apply(self, body: &[u8]) -> Option<Vec<u8>> {
        match self {
            Self::Compact => transcode(body, CompactFormatter),
            Self::JavaScript => transcode(body, JavaScript),
            Self::Pretty2 => transcode(body, PrettyFormatter::with_indent(b"  ")),
            Self::Pretty4 => transcode(body, PrettyFormatter::with_indent(b"    ")),
            Self::SortedKeys => {
                let value: Value = serde_json::from_slice(body).ok()?;
                serde_json::to_vec(&Sorted(&value)).ok()
            }
            Self::SortedKeysPretty2 => {
                let value: Value = serde_json::from_slice(body).ok()?;
                serde_json::to_vec_pretty(&Sorted(&value)).ok()
            }
            Self::Python => transcode(body, Python),
            Self::TrailingNewline => {
                let mut changed = body.to_vec();
                changed.push(b'\n');
                Some(changed)
            }
            Self::TrailingWhitespaceRemoved => Some(body.trim_ascii_end().to_vec()),
        }
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Compact => "compact (whitespace removed, key order kept)",
            Self::JavaScript => "as JavaScript's JSON.stringify writes it",
            Self::Pretty2 => "pretty-printed with 2 spaces",
            Self::Pretty4 => "pretty-printed with 4 spaces",
            Self::SortedKeys => "with its keys sorted, compact",
            Self::SortedKeysPretty2 => "with its keys sorted, pretty-printed with 2 spaces",
            Self::Python => "as Python's json.dumps writes it",
            Self::TrailingNewline => "with a newline appended",
            Self::TrailingWhitespaceRemoved => "without its trailing whitespace",
        })
    }
}

/// Writes the JSON in `body` again, in order, with `formatter`.
fn transcode(body: &[u8], formatter: impl Formatter) -> Option<Vec<u8>> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut out = Vec::with_capacity(body.len());
    let mut serializer = Serializer::with_formatter(&mut out, formatter);
    serde_transcode::transcode(&mut deserializer, &mut serializer).ok()?;
    deserializer.end().ok()?;
    Some(out)
}

/// A JSON value serialized with its object keys sorted, whatever the map
/// type serde_json was built with.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by_key(|(key, _)| *key);
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &Sorted(value))?;
                }
                out.end()
            }
            Value::Array(values) => {
                let mut out = serializer.serialize_seq(Some(values.len()))?;
                for value in values {
                    out.serialize_element(&Sorted(value))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// Compact, with numbers as JavaScript's `Number.prototype.toString` writes
/// them: every number is a double.
struct JavaScript;

impl JavaScript {
    fn number<W: ?Sized + io::Write>(writer: &mut W, value: f64) -> io::Result<()> {
        let mut buffer = ryu_js::Buffer::new();
        // JSON.stringify writes non-finite numbers as null; JSON.parse never
        // makes one, but a huge exponent overflows to infinity.
        let text = if value.is_finite() {
            buffer.format(value)
        } else {
            "null"
        };
        writer.write_all(text.as_bytes())
    }
}

impl Formatter for JavaScript {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        Self::number(writer, value)
    }

    #[allow(clippy::cast_precision_loss, reason = "JavaScript numbers are doubles")]
    fn write_u64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: u64) -> io::Result<()> {
        Self::number(writer, value as f64)
    }

    #[allow(clippy::cast_precision_loss, reason = "JavaScript numbers are doubles")]
    fn write_i64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: i64) -> io::Result<()> {
        Self::number(writer, value as f64)
    }
}

/// Python's `json.dumps` defaults: `", "` and `": "` separators, non-ASCII
/// escaped, floats as `repr` writes them.
struct Python;

impl Formatter for Python {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                writer.write_all(&[c as u8])?;
            } else {
                let mut units = [0; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(python_float(value).as_bytes())
    }
}

/// A float as Python's `repr` writes it: the shortest digits that read back
/// the same, in fixed notation from 1e-4 up to 1e16, in scientific notation
/// (`1e+16`, `1.5e-05`) beyond; always with a `.0` or an exponent.
fn python_float(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "NaN".to_owned()
        } else if value > 0.0 {
            "Infinity".to_owned()
        } else {
            "-Infinity".to_owned()
        };
    }
    // Rust's `{:e}` gives the shortest digits too: `1.5e-5`, `1e16`.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..16).contains(&exponent) {
        let fixed = format!("{value}");
        if fixed.contains('.') {
            fixed
        } else {
            format!("{fixed}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(form: Form, body: &str) -> String {
        String::from_utf8(form.apply(body.as_bytes()).unwrap()).unwrap()
    }

    const BODY: &str = "{ \"b\": 1.0, \"a\": [1, {\"z\": \"é\", \"y\": null}], \"c\": 1e21 }";

    #[test]
    fn json_forms() {
        assert_eq!(
            apply(Form::Compact, BODY),
            r#"{"b":1.0,"a":[1,{"z":"é","y":null}],"c":1e+21}"#
        );
        assert_eq!(
            apply(Form::JavaScript, BODY),
            r#"{"b":1,"a":[1,{"z":"é","y":null}],"c":1e+21}"#
        );
        assert_eq!(
            apply(Form::Pretty2, r#"{"a":[1,{}],"b":[]}"#),
            "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}"
        );
        assert_eq!(apply(Form::Pretty4, r#"{"a":1}"#), "{\n    \"a\": 1\n}");
        assert_eq!(
            apply(Form::SortedKeys, BODY),
            r#"{"a":[1,{"y":null,"z":"é"}],"b":1.0,"c":1e+21}"#
        );
        assert_eq!(
            apply(Form::SortedKeysPretty2, r#"{"b":1,"a":2}"#),
            "{\n  \"a\": 2,\n  \"b\": 1\n}"
        );
        assert_eq!(
            apply(Form::Python, BODY),
            r#"{"b": 1.0, "a": [1, {"z": "\u00e9", "y": null}], "c": 1e+21}"#
        );
        assert_eq!(apply(Form::Python, r#"["🚀"]"#), r#"["\ud83d\ude80"]"#);
    }

    #[test]
    fn javascript_numbers_are_doubles() {
        assert_eq!(
            apply(
                Form::JavaScript,
                "[12345678901234567890, -0, 0.1, 1e-7, 100]"
            ),
            "[12345678901234567000,0,0.1,1e-7,100]"
        );
    }

    #[test]
    fn python_floats() {
        for (value, text) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456.5, "123456.5"),
            (-2.5e100, "-2.5e+100"),
        ] {
            assert_eq!(python_float(value), text, "{value}");
        }
    }

    #[test]
    fn byte_forms_work_on_anything_and_json_forms_need_json() {
        assert_eq!(apply(Form::TrailingNewline, "x"), "x\n");
        assert_eq!(apply(Form::TrailingWhitespaceRemoved, "x \r\n"), "x");
        for form in Form::ALL {
            let json_only = !matches!(
                form,
                Form::TrailingNewline | Form::TrailingWhitespaceRemoved
            );
            assert_eq!(form.apply(b"not json").is_none(), json_only, "{form}");
            assert_eq!(form.apply(b"{} trailing").is_none(), json_only, "{form}");
        }
    }
}
