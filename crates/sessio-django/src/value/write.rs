//! Writes JSON text exactly as Python's
//! `json.dumps(obj, separators=(",", ":"))` does (with the default
//! `ensure_ascii=True`), so Django reads back identical bytes.

use std::fmt::Write as _;

use super::{Map, Number, Value, N};

/// Python's `json.dumps(v, separators=(",", ":"))` text.
///
/// ```
/// use sessio_django::{json, value::to_string};
///
/// let v = json!({"é": [1.0, 1e16, null, "/"]});
/// assert_eq!(to_string(&v), r#"{"\u00e9":[1.0,1e+16,null,"/"]}"#);
/// ```
pub fn to_string(v: &Value) -> String {
    let mut out = String::with_capacity(128);
    write(v, &mut out);
    out
}

/// Appends Python's JSON text for `v` to `out`.
///
/// ```
/// let mut out = String::from("data=");
/// sessio_django::value::write(&sessio_django::json!([1]), &mut out);
/// assert_eq!(out, "data=[1]");
/// ```
pub fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_str(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => write_object(m, out),
    }
}

/// Python's JSON text for an object (a session dict).
///
/// ```
/// let m = sessio_django::value::object_from_str(r#"{"b":1, "a":2}"#).unwrap();
/// assert_eq!(sessio_django::value::object_to_string(&m), r#"{"b":1,"a":2}"#);
/// ```
pub fn object_to_string(m: &Map) -> String {
    let mut out = String::with_capacity(128);
    write_object(m, &mut out);
    out
}

/// Appends Python's JSON text for an object to `out` (as [`object_to_string`]).
pub fn write_object(m: &Map, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(k, out);
        out.push(':');
        write(v, out);
    }
    out.push('}');
}

pub(super) fn write_number(n: &Number, out: &mut String) {
    match &n.n {
        N::PosInt(v) => out.push_str(itoa::Buffer::new().format(*v)),
        N::NegInt(v) => out.push_str(itoa::Buffer::new().format(*v)),
        N::Float(f) => write_float(*f, out),
        N::Big(d) => out.push_str(d),
    }
}

/// True for bytes Python's `ensure_ascii` encoder copies unchanged: printable
/// ASCII (space..'~') except `"` and `\`. DEL (0x7f) is escaped by Python.
const fn plain_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    t
}
static PLAIN: [bool; 256] = plain_table();

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_u_escape(out: &mut String, u: u32) {
    let esc = [
        b'\\',
        b'u',
        HEX[(u >> 12) as usize & 0xf],
        HEX[(u >> 8) as usize & 0xf],
        HEX[(u >> 4) as usize & 0xf],
        HEX[u as usize & 0xf],
    ];
    // All bytes are ASCII.
    out.push_str(std::str::from_utf8(&esc).unwrap_or_default());
}

pub(super) fn write_str(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // Copy the longest run needing no escape in one go.
        let start = i;
        while i < b.len() && PLAIN[b[i] as usize] {
            i += 1;
        }
        // `start` and `i` sit on ASCII bytes or the end, so both are char
        // boundaries.
        out.push_str(&s[start..i]);
        let Some(&c) = b.get(i) else { break };
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            0..=0x7f => push_u_escape(out, u32::from(c)),
            _ => {
                let ch = s[i..].chars().next().unwrap_or_default();
                let cp = ch as u32;
                if cp >= 0x10000 {
                    // Astral characters become a UTF-16 surrogate pair.
                    let v = cp - 0x10000;
                    push_u_escape(out, 0xD800 | (v >> 10));
                    push_u_escape(out, 0xDC00 | (v & 0x3ff));
                } else {
                    push_u_escape(out, cp);
                }
                i += ch.len_utf8();
                continue;
            }
        }
        i += 1;
    }
    out.push('"');
}

/// Python's `float.__repr__`: shortest round-trip digits, fixed notation for
/// decimal exponents in -4..16, else `1e+16` style; `NaN`/`Infinity` tokens.
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
    // Rust's `{:e}` gives the shortest digits that round-trip, as repr does.
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
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(f: f64) -> String {
        to_string(&Value::from(f))
    }

    #[test]
    fn floats_match_python_repr() {
        // (value, Python 3.11 json.dumps output)
        let cases: &[(f64, &str)] = &[
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e-05, "1e-05"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (5e-324, "5e-324"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e15, "1000000000000000.0"),
            (100.0, "100.0"),
            (1.0, "1.0"),
            (1.5e300, "1.5e+300"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (9999999999999998.0, "9999999999999998.0"),
            (2.5e-5, "2.5e-05"),
            (1e22, "1e+22"),
            (12.375, "12.375"),
            (-1.5e-10, "-1.5e-10"),
            (f64::MAX, "1.7976931348623157e+308"),
        ];
        for (f, want) in cases {
            assert_eq!(float(*f), *want, "{f:?}");
        }
    }

    #[test]
    fn ints_match_python() {
        assert_eq!(to_string(&Value::from(1u128 << 64)), "18446744073709551616");
        assert_eq!(
            to_string(&Value::from(-(1i128 << 63) - 1)),
            "-9223372036854775809"
        );
        assert_eq!(to_string(&Value::from(i64::MIN)), "-9223372036854775808");
        assert_eq!(
            to_string(&Value::Number(Number::big(
                "10000000000000000000000000000000000000000"
            ))),
            "10000000000000000000000000000000000000000"
        );
    }

    #[test]
    fn strings_match_python_ensure_ascii() {
        // python3 -c 'import json; print(json.dumps("é\u2028\U0001F600\x00\x1f\x7f/\"\\\n\r\t\b\f ab"))'
        let s = "é\u{2028}\u{1F600}\u{0}\u{1f}\u{7f}/\"\\\n\r\t\u{8}\u{c} ab";
        assert_eq!(
            to_string(&Value::from(s)),
            r#""\u00e9\u2028\ud83d\ude00\u0000\u001f\u007f/\"\\\n\r\t\b\f ab""#
        );
        assert_eq!(to_string(&Value::from("")), r#""""#);
        assert_eq!(
            to_string(&Value::from("\u{ffff}\u{10ffff}")),
            r#""\uffff\udbff\udfff""#
        );
    }

    #[test]
    fn containers() {
        let m: Map = [("b", Value::from(vec![1, 2])), ("a", Value::Null)]
            .into_iter()
            .collect();
        assert_eq!(object_to_string(&m), r#"{"b":[1,2],"a":null}"#);
        assert_eq!(to_string(&Value::Array(vec![])), "[]");
        assert_eq!(to_string(&Value::Object(Map::new())), "{}");
    }
}
