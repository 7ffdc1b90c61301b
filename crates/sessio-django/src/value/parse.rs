//! A JSON parser that accepts exactly what Python's `json.loads` accepts.
//!
//! Differences from RFC 8259 follow Python: `NaN`, `Infinity` and
//! `-Infinity` are numbers, integers are unbounded, and a duplicate object
//! key keeps its first position but takes the last value (dict semantics).
//! Lone surrogate escapes are rejected because a Rust `String` cannot hold
//! them, and nesting is capped so hostile input cannot overflow the stack.

use super::{Error, Map, Number, Value, N};

/// Deepest array/object nesting accepted. Sessions are shallow; the cap keeps
/// recursion bounded on hostile input.
const MAX_DEPTH: usize = 128;

/// Parses JSON text as Python's `json.loads` would.
///
/// ```
/// use sessio_django::value::from_str;
///
/// let v = from_str(r#"{"a":1,"b":2,"a":[NaN,1e400,-0]}"#).unwrap();
/// assert_eq!(v.to_string(), r#"{"a":[NaN,Infinity,0],"b":2}"#);
/// assert!(from_str("[1,]").is_err());
/// ```
pub fn from_str(s: &str) -> Result<Value, Error> {
    let mut p = Parser::new(s);
    let v = p.value()?;
    p.end()?;
    Ok(v)
}

/// Parses UTF-8 JSON bytes as Python's `json.loads(bytes)` does for UTF-8:
/// a leading UTF-8 byte order mark is skipped (Python decodes with
/// `utf-8-sig`); invalid UTF-8 is an error. (`from_str`, like
/// `json.loads(str)`, rejects a BOM.) UTF-16/32 detection is not done.
///
/// ```
/// let v = sessio_django::value::from_slice(b"\xef\xbb\xbf[true]").unwrap();
/// assert_eq!(v[0], true);
/// ```
pub fn from_slice(b: &[u8]) -> Result<Value, Error> {
    let body = b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b);
    let skipped = b.len() - body.len();
    let s = std::str::from_utf8(body)
        .map_err(|e| Error::syntax("invalid UTF-8", skipped + e.valid_up_to()))?;
    // Report offsets into the caller's bytes, BOM included.
    from_str(s).map_err(|mut e| {
        e.offset = e.offset.map(|at| at + skipped);
        e
    })
}

/// Parses JSON text whose top level must be an object, as session data
/// always is (a Python dict).
///
/// ```
/// let m = sessio_django::value::object_from_str(r#"{"k":"v"}"#).unwrap();
/// assert_eq!(m["k"], "v");
/// assert!(sessio_django::value::object_from_str("[]").is_err());
/// ```
pub fn object_from_str(s: &str) -> Result<Map, Error> {
    let mut p = Parser::new(s);
    p.skip_ws();
    if p.peek() != Some(b'{') {
        return Err(Error::syntax("expected object", p.i));
    }
    let m = p.object()?;
    p.end()?;
    Ok(m)
}

struct Parser<'a> {
    // Kept as &str so runs between ASCII delimiters can be sliced out as
    // valid UTF-8 without re-validation or unsafe code.
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser {
            s,
            b: s.as_bytes(),
            i: 0,
            depth: 0,
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        // Python's whitespace set; \v, \f and NBSP are not in it.
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn end(&mut self) -> Result<(), Error> {
        self.skip_ws();
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(Error::syntax("extra data", self.i))
        }
    }

    fn value(&mut self) -> Result<Value, Error> {
        self.skip_ws();
        match self.peek() {
            Some(b'{') => self.object().map(Value::Object),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => {
                if self.b[self.i..].starts_with(b"-I") {
                    self.literal("-Infinity", Value::from(f64::NEG_INFINITY))
                } else {
                    self.number()
                }
            }
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'N') => self.literal("NaN", Value::from(f64::NAN)),
            Some(b'I') => self.literal("Infinity", Value::from(f64::INFINITY)),
            _ => Err(Error::syntax("expected value", self.i)),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, Error> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(Error::syntax("expected value", self.i))
        }
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::syntax("nesting too deep", self.i));
        }
        self.i += 1; // the opening bracket
        Ok(())
    }

    fn array(&mut self) -> Result<Value, Error> {
        self.enter()?;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.i += 1;
        } else {
            loop {
                items.push(self.value()?);
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(b']') => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(Error::syntax("expected ',' or ']'", self.i)),
                }
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn object(&mut self) -> Result<Map, Error> {
        self.enter()?;
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return Err(Error::syntax(
                        "expected property name in double quotes",
                        self.i,
                    ));
                }
                let key = self.string()?;
                self.skip_ws();
                if self.peek() != Some(b':') {
                    return Err(Error::syntax("expected ':'", self.i));
                }
                self.i += 1;
                let v = self.value()?;
                // IndexMap::insert keeps a duplicate key's first position and
                // replaces its value, exactly like building a Python dict.
                map.0.insert(key, v);
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        self.skip_ws();
                    }
                    Some(b'}') => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(Error::syntax("expected ',' or '}'", self.i)),
                }
            }
        }
        self.depth -= 1;
        Ok(map)
    }

    /// Parses a string starting at its opening quote.
    fn string(&mut self) -> Result<String, Error> {
        let open = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            let rest = &self.b[start..];
            let Some(off) = memchr::memchr2(b'"', b'\\', rest) else {
                return Err(match rest.iter().position(|&b| b < 0x20) {
                    Some(c) => Error::syntax("invalid control character", start + c),
                    None => Error::syntax("unterminated string", open),
                });
            };
            let run = &rest[..off];
            // Branch-free fold so the common (clean) case vectorizes.
            if run.iter().fold(false, |acc, &b| acc | (b < 0x20)) {
                let c = run.iter().position(|&b| b < 0x20).unwrap_or(0);
                return Err(Error::syntax("invalid control character", start + c));
            }
            let end = start + off;
            self.i = end + 1;
            if self.b[end] == b'"' {
                if out.is_empty() {
                    // No escapes seen: one exact-size allocation.
                    return Ok(self.s[start..end].to_owned());
                }
                out.push_str(&self.s[start..end]);
                return Ok(out);
            }
            out.push_str(&self.s[start..end]);
            self.escape(&mut out)?;
        }
    }

    /// Decodes the escape whose backslash was just consumed.
    fn escape(&mut self, out: &mut String) -> Result<(), Error> {
        let at = self.i - 1;
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let hi = self.hex4(self.i + 1)?;
                self.i += 5;
                let cp = match hi {
                    0xD800..=0xDBFF => {
                        let lo = if self.b[self.i..].starts_with(b"\\u") {
                            self.hex4(self.i + 2)?
                        } else {
                            0
                        };
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return Err(Error::syntax("lone surrogate in \\u escape", at));
                        }
                        self.i += 6;
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(Error::syntax("lone surrogate in \\u escape", at))
                    }
                    _ => hi,
                };
                // Cannot fail: surrogates were handled above.
                out.push(char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER));
                return Ok(());
            }
            None => return Err(Error::syntax("unterminated string", at)),
            Some(_) => return Err(Error::syntax("invalid \\escape", at)),
        };
        self.i += 1;
        out.push(c);
        Ok(())
    }

    fn hex4(&self, at: usize) -> Result<u32, Error> {
        let digits = self
            .b
            .get(at..at + 4)
            .ok_or_else(|| Error::syntax("invalid \\uXXXX escape", at))?;
        digits.iter().try_fold(0u32, |acc, &d| {
            let v = (d as char)
                .to_digit(16)
                .ok_or_else(|| Error::syntax("invalid \\uXXXX escape", at))?;
            Ok(acc << 4 | v)
        })
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; a fraction or
    /// exponent that is not followed by a digit is left unconsumed (and then
    /// rejected by the caller), as in Python's scanner.
    fn number(&mut self) -> Result<Value, Error> {
        let b = self.b;
        let start = self.i;
        let is_digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
        let mut i = start;
        let neg = b[i] == b'-';
        if neg {
            i += 1;
        }
        let int_start = i;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while is_digit(i) {
                    i += 1;
                }
            }
            _ => return Err(Error::syntax("expected value", start)),
        }
        let int_end = i;
        let mut float = false;
        if b.get(i) == Some(&b'.') && is_digit(i + 1) {
            i += 1;
            while is_digit(i) {
                i += 1;
            }
            float = true;
        }
        if let Some(b'e' | b'E') = b.get(i) {
            let mut j = i + 1;
            if let Some(b'+' | b'-') = b.get(j) {
                j += 1;
            }
            if is_digit(j) {
                while is_digit(j) {
                    j += 1;
                }
                i = j;
                float = true;
            }
        }
        self.i = i;
        let text = &self.s[start..i];
        if float {
            // Correctly rounded, and overflow gives ±inf like Python's float().
            let f = text
                .parse::<f64>()
                .map_err(|_| Error::syntax("invalid number", start))?;
            return Ok(Value::Number(Number::from_f64(f)));
        }
        let mut mag: u64 = 0;
        for &d in &b[int_start..int_end] {
            match mag
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(d - b'0')))
            {
                Some(m) => mag = m,
                None => return Ok(Value::Number(Number::big(text))),
            }
        }
        let n = if !neg || mag == 0 {
            N::PosInt(mag) // "-0" is the int 0 in Python
        } else if mag <= 1 << 63 {
            N::NegInt((mag as i64).wrapping_neg())
        } else {
            return Ok(Value::Number(Number::big(text)));
        };
        Ok(Value::Number(n.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::to_string;
    use proptest::prelude::*;

    /// Parse then write; expectations come from Python 3.11
    /// `json.dumps(json.loads(s), separators=(",", ":"))`.
    fn rt(s: &str) -> String {
        to_string(&from_str(s).unwrap_or_else(|e| panic!("{s:?}: {e}")))
    }

    #[test]
    fn order_kept_byte_for_byte() {
        let s = r#"{"b":[1,2,{"a":null}],"a":true}"#;
        assert_eq!(rt(s), s);
        assert_eq!(
            rt(" {\"z\" : 1 ,\n\"y\":\t[ ] , \"x\":{}}\r\n"),
            r#"{"z":1,"y":[],"x":{}}"#
        );
    }

    #[test]
    fn duplicate_keys_python_semantics() {
        assert_eq!(rt(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
        let many: String = (0..20).map(|i| format!("\"k{i}\":{i},")).collect();
        assert_eq!(
            rt(&format!("{{{many}\"k3\":\"x\"}}")),
            rt(&format!(
                "{{{}}}",
                many.replace("\"k3\":3", "\"k3\":\"x\"")
                    .trim_end_matches(',')
            ))
        );
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            rt(r#" "\ud83d\ude00\u00e9\/" "#),
            r#""\ud83d\ude00\u00e9/""#
        );
        assert_eq!(rt(r#""\u00E9\uD83D\uDE00""#), r#""\u00e9\ud83d\ude00""#);
        assert_eq!(
            from_str(r#""a\"\\\/\b\f\n\r\tz""#).unwrap(),
            "a\"\\/\u{8}\u{c}\n\r\tz"
        );
        assert_eq!(from_str("\"é😀\u{7f}\"").unwrap(), "é😀\u{7f}");
        assert_eq!(from_str(r#""""#).unwrap(), "");
    }

    #[test]
    fn numbers() {
        assert_eq!(rt("18446744073709551615"), "18446744073709551615");
        assert_eq!(rt("18446744073709551616"), "18446744073709551616");
        assert_eq!(rt("-9223372036854775808"), "-9223372036854775808");
        assert_eq!(rt("-9223372036854775809"), "-9223372036854775809");
        let big = "10000000000000000000000000000000000000000";
        assert_eq!(rt(big), big);
        assert_eq!(
            from_str("-9223372036854775808").unwrap().as_i64(),
            Some(i64::MIN)
        );
        assert_eq!(
            from_str("18446744073709551616").unwrap(),
            Value::from(1u128 << 64)
        );
        assert_eq!(rt("-0"), "0");
        assert_eq!(from_str("-0").unwrap(), Value::from(0));
        assert_eq!(rt("-0.0"), "-0.0");
        assert_eq!(rt("1E2"), "100.0");
        assert_eq!(rt("1e-400"), "0.0");
        assert_eq!(rt("-1e400"), "-Infinity");
        assert_eq!(rt("1e400"), "Infinity");
        assert_eq!(rt("[NaN,Infinity,-Infinity]"), "[NaN,Infinity,-Infinity]");
        assert_eq!(rt("0.1"), "0.1");
        assert_eq!(rt("5e-324"), "5e-324");
        assert_eq!(rt("123456789012345680.0"), "1.2345678901234568e+17");
        assert_eq!(rt("2.5E-5"), "2.5e-05");
        assert!(from_str("1.0").unwrap().is_f64());
        assert!(from_str("1").unwrap().is_u64());
    }

    #[test]
    fn python_rejects() {
        let deep_ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(from_str(&deep_ok).is_ok());
        let deep_obj = format!("{}1{}", "{\"a\":".repeat(128), "}".repeat(128));
        assert!(from_str(&deep_obj).is_ok());
        let too_deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert_eq!(
            from_str(&too_deep).unwrap_err().to_string(),
            "nesting too deep at byte 128"
        );
        let hostile = "[".repeat(1_000_000);
        assert!(from_str(&hostile).is_err());
        for bad in [
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"\\ud800x\"",
            "1 x",
            "01",
            "1.",
            ".5",
            "+1",
            "\"a\u{1}\"",
            "\"a\n\"",
            "",
            "   ",
            "{\"a\":1,}",
            "[1,]",
            "[,1]",
            "\"\\x\"",
            "nan",
            "-NaN",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "[",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{a:1}",
            "\"abc",
            "\"abc\\",
            "1e",
            "1e+",
            "-",
            "--1",
            "\u{a0}1",
            "\u{b}1",
            "\u{feff}1",
            "tru",
            "nul",
            "Infinit",
            "-Inf",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\":1 \"b\":2}",
            "'a'",
        ] {
            assert!(from_str(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn error_offsets() {
        let e = from_str("\"ab\u{1}\"").unwrap_err();
        assert_eq!(e.to_string(), "invalid control character at byte 3");
        assert_eq!(from_str("[1] x").unwrap_err().offset(), Some(4));
        assert_eq!(from_str("\"\\ud800\"").unwrap_err().offset(), Some(1));
        assert_eq!(from_slice(b"[\"\xff\"]").unwrap_err().offset(), Some(2));
        assert_eq!(
            from_slice(b"\xef\xbb\xbf[\"\xff\"]").unwrap_err().offset(),
            Some(5)
        );
        assert_eq!(
            from_slice(b"\xef\xbb\xbf[1,]").unwrap_err().to_string(),
            "expected value at byte 6"
        );
        assert_eq!(
            from_slice(b"\xef\xbb\xbf {}").unwrap(),
            Value::Object(Map::new())
        );
    }

    #[test]
    fn object_only() {
        assert_eq!(object_from_str(" {} ").unwrap().len(), 0);
        for bad in ["[]", "1", "\"{}\"", "{} 1", ""] {
            assert!(object_from_str(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_bytes(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = from_slice(&b);
        }

        #[test]
        fn never_panics_on_jsonish(s in r#"[\[\]{}":,0-9eE.+\-\\u aNIfinity\x00-\x1f\u{80}-\u{10ffff}]{0,40}"#) {
            let _ = from_str(&s);
            let _ = object_from_str(&s);
        }
    }
}
