//! JSON written exactly as Python's `json.dumps(obj, separators=(",", ":"))` writes it.
//!
//! Django serialises sessions with that call, so byte-identical output needs Python's
//! rules: ASCII only (`\uXXXX` escapes, surrogate pairs for astral characters), lower-case
//! hex, and floats in Python's `repr` (`1e+16`, `1e-05`, `0.1`, `-0.0`).

use serde_json::{Map, Number, Value};
use std::fmt::Write;

/// Serialises a session dictionary the way Django does.
///
/// ```
/// let data: serde_json::Map<String, serde_json::Value> =
///     serde_json::from_str(r#"{"name":"Zoë","n":1e16}"#).unwrap();
/// assert_eq!(sessio_django::pyjson::to_string(&data), r#"{"name":"Zo\u00eb","n":1e+16}"#);
/// ```
pub fn to_string(map: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(64);
    write_object(map, &mut out);
    out
}

/// Serialises any JSON value the way Python's `json.dumps` does.
pub fn value_to_string(value: &Value) -> String {
    let mut out = String::with_capacity(32);
    write_value(value, &mut out);
    out
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(k, out);
        out.push(':');
        write_value(v, out);
    }
    out.push('}');
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(v, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

fn write_number(n: &Number, out: &mut String) {
    // Integers of any size keep their digits (Python ints are unbounded; serde_json's
    // `arbitrary_precision` keeps the text).
    let text = n.to_string();
    let digits = text.strip_prefix('-').unwrap_or(&text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Python reads the integer `-0` as 0 and writes it back as `0`.
        if digits.bytes().all(|b| b == b'0') {
            out.push('0');
        } else {
            out.push_str(&text);
        }
    } else if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else {
        // A float too large for f64 (`1e400`) is infinite to Python as well.
        let f = n.as_f64().unwrap_or(if text.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
        write_float(f, out);
    }
}

/// Python's `float.__repr__`: the shortest digits that round-trip, in fixed notation when
/// the decimal exponent is in `-4..16`, otherwise `d.ddde±XX`.
pub(crate) fn write_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if f.is_sign_negative() {
        out.push('-');
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like Python's repr.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(mantissa);
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn float(f: f64) -> String {
        let mut s = String::new();
        write_float(f, &mut s);
        s
    }

    #[test]
    fn floats_follow_python_repr() {
        assert_eq!(float(1.0), "1.0");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(1e16), "1e+16");
        assert_eq!(float(1e-5), "1e-05");
        assert_eq!(float(1e-7), "1e-07");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(-0.0), "-0.0");
        assert_eq!(float(123.456), "123.456");
        assert_eq!(float(1.2345678901234568e17), "1.2345678901234568e+17");
        assert_eq!(float(1e15), "1000000000000000.0");
        assert_eq!(float(1.5e300), "1.5e+300");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn strings_are_ascii_with_surrogates() {
        let v = json!({"k": "Zo\u{eb} \u{1F600}\u{7f}/\"\\\n\u{1}"});
        assert_eq!(
            value_to_string(&v),
            r#"{"k":"Zo\u00eb \ud83d\ude00\u007f/\"\\\n\u0001"}"#
        );
    }

    #[test]
    fn negative_zero_integer_is_zero() {
        let v: Value = serde_json::from_str(r#"{"z":-0,"f":-0.0}"#).unwrap();
        assert_eq!(value_to_string(&v), r#"{"z":0,"f":-0.0}"#);
    }

    #[test]
    fn floats_beyond_f64_are_infinity_as_in_python() {
        let v: Value = serde_json::from_str(r#"{"a":1e400,"b":-1e400}"#).unwrap();
        assert_eq!(value_to_string(&v), r#"{"a":Infinity,"b":-Infinity}"#);
    }

    #[test]
    fn compact_separators_and_order() {
        let v: Value = serde_json::from_str(r#"{"b":[1,2,{"a":null}],"a":true}"#).unwrap();
        assert_eq!(value_to_string(&v), r#"{"b":[1,2,{"a":null}],"a":true}"#);
    }
}
