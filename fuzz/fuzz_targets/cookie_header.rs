//! `sessio::cookie::find` on arbitrary `Cookie` headers.
//!
//! Input: one or more header values separated by `\n` (a byte no header value can hold).
//! Values `http` refuses (control bytes) are dropped, as a server would refuse them.
//!
//! Invariants:
//! * `find` never panics;
//! * it agrees with Django's `parse_cookie` (written here from CPython's and Django's
//!   source, with Python's `str.strip` and `http.cookies._unquote`) over the headers
//!   joined with `"; "`, as WSGI servers join them;
//! * a `sessionid=X` appended as the last cookie is found as `X`, and `sessionid="X"` as
//!   `X` unquoted.
#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;

const NAME: &str = "sessionid";

/// Python's `str.isspace()`, which `str.strip()` uses.
fn py_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f' | ' ' | '\u{85}' | '\u{a0}'
            | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}'
            | '\u{205f}' | '\u{3000}'
    )
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// CPython's `http.cookies._unquote`:
/// `re.compile(r'\\(?:([0-3][0-7][0-7])|(.))').sub(...)` inside the quotes, where an octal
/// escape becomes `chr(int(ooo, 8))`, a code point up to U+00FF.
fn py_unquote(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 2 || chars[0] != '"' || chars[chars.len() - 1] != '"' {
        return s.to_owned();
    }
    let inner = &chars[1..chars.len() - 1];
    let mut out = String::new();
    let is_oct = |c: char, hi: char| ('0'..=hi).contains(&c);
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == '\\'
            && i + 3 < inner.len()
            && is_oct(inner[i + 1], '3')
            && is_oct(inner[i + 2], '7')
            && is_oct(inner[i + 3], '7')
        {
            let v = (inner[i + 1] as u32 - 48) * 64
                + (inner[i + 2] as u32 - 48) * 8
                + (inner[i + 3] as u32 - 48);
            out.push(char::from_u32(v).expect("at most U+00FF"));
            i += 4;
        } else if inner[i] == '\\' && i + 1 < inner.len() && inner[i + 1] != '\n' {
            // `(.)`: any character but a newline.
            out.push(inner[i + 1]);
            i += 2;
        } else {
            out.push(inner[i]);
            i += 1;
        }
    }
    out
}

/// Django's `django.http.cookie.parse_cookie(cookie)[name]`.
fn django_lookup(cookie: &str, name: &str) -> Option<String> {
    let mut found = None;
    for chunk in cookie.split(';') {
        let (k, v) = match chunk.split_once('=') {
            Some((k, v)) => (k, v),
            None => ("", chunk),
        };
        let (k, v) = (py_strip(k), py_strip(v));
        if (!k.is_empty() || !v.is_empty()) && k == name {
            found = Some(py_unquote(v));
        }
    }
    found
}

fn find(headers: &[HeaderValue]) -> Option<String> {
    sessio::cookie::find(headers.iter(), NAME)
}

fuzz_target!(|data: &[u8]| {
    let headers: Vec<HeaderValue> = data
        .split(|&b| b == b'\n')
        .take(8)
        .filter_map(|h| HeaderValue::from_bytes(h).ok())
        .collect();

    let got = find(&headers);

    // Non-ASCII bytes are read through a lossy UTF-8 view (documented in `find`); compare
    // with Django over that same text.
    let texts: Vec<String> = headers
        .iter()
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .collect();
    let want = django_lookup(&texts.join("; "), NAME);
    assert_eq!(
        got, want,
        "find disagrees with Django's parse_cookie on headers {texts:?}"
    );

    // A session cookie set last is the one found, quoted or not.
    let token: String = data
        .iter()
        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        .take(80)
        .map(|&b| b as char)
        .collect();
    let ascii: Vec<&str> = headers.iter().filter_map(|h| h.to_str().ok()).collect();
    let base = ascii.last().copied().unwrap_or("");
    for (cookie, expected) in [
        (format!("{base}; {NAME}={token}"), token.clone()),
        (format!("{base};{NAME}=\"{token}\""), token.clone()),
        (format!("{base}; {NAME} = {token} "), token.clone()),
    ] {
        let Ok(last) = HeaderValue::from_str(&cookie) else {
            continue;
        };
        let mut with_last = headers.clone();
        with_last.push(last.clone());
        assert_eq!(
            find(&with_last).as_deref(),
            Some(expected.as_str()),
            "last cookie {cookie:?} not found after {texts:?}"
        );
        assert_eq!(
            find(std::slice::from_ref(&last)).as_deref(),
            Some(expected.as_str())
        );
    }
});
