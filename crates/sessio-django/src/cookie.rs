//! Django's cookie rules: reading one cookie out of a `Cookie` header as Django's
//! `parse_cookie` does, and the dates of `Set-Cookie`.
//!
//! Header values are taken as text: the HTTP types stay with the middleware.

use std::borrow::Cow;

use time::OffsetDateTime;

/// The most a cookie's name and value may take together (RFC 6265bis); browsers drop
/// larger cookies silently.
pub const MAX_COOKIE_BYTES: usize = 4096;

/// The value of cookie `name` in one `Cookie` header, or `None`.
///
/// When a name repeats, the last one wins, as in Django's `parse_cookie`; a value in
/// double quotes is unquoted (Python's `http.cookies._unquote`). The value is borrowed
/// from the header unless it needed unquoting.
///
/// ```
/// use sessio_django::cookie::value_in;
/// assert_eq!(value_in("a=1; sessionid=abc; sessionid=def", "sessionid").as_deref(), Some("def"));
/// assert_eq!(value_in(r#"sessionid="a\"b""#, "sessionid").as_deref(), Some("a\"b"));
/// assert_eq!(value_in("other=1", "sessionid"), None);
/// ```
pub fn value_in<'a>(header: &'a str, name: &str) -> Option<Cow<'a, str>> {
    // `header.split(';')` and `split_once('=')`, with memchr's vectorised search: the
    // whole header is scanned on every request that carries cookies.
    let bytes = header.as_bytes();
    let mut found = None;
    let mut start = 0;
    loop {
        let end = memchr::memchr(b';', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        // Both separators are ASCII, so these are char boundaries.
        let chunk = &header[start..end];
        let (k, v) = match memchr::memchr(b'=', chunk.as_bytes()) {
            Some(i) => (chunk[..i].trim(), &chunk[i + 1..]),
            // Django reads `name` with no `=` as a cookie with an empty name.
            None => ("", chunk),
        };
        if k == name {
            found = Some(v);
        }
        if end == bytes.len() {
            break;
        }
        start = end + 1;
    }
    // Only the value that wins is trimmed and unquoted.
    found.map(|v| unquote(v.trim()))
}

/// Python's `http.cookies._unquote`: strips surrounding double quotes and undoes `\"`,
/// `\\` and `\ooo` escapes (an octal escape is the character of that code point, as in
/// Python's `chr`).
fn unquote(v: &str) -> Cow<'_, str> {
    let Some(inner) = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .filter(|_| v.len() >= 2)
    else {
        return Cow::Borrowed(v);
    };
    let chars: Vec<char> = inner.chars().collect();
    let mut out = String::with_capacity(inner.len());
    let mut i = 0;
    let octal = |c: char, max: char| ('0'..=max).contains(&c);
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            if i + 3 < chars.len()
                && octal(chars[i + 1], '3')
                && octal(chars[i + 2], '7')
                && octal(chars[i + 3], '7')
            {
                let code = chars[i + 1..i + 4]
                    .iter()
                    .fold(0u32, |n, c| n * 8 + (*c as u32 - '0' as u32));
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                i += 4;
            } else {
                out.push(chars[i + 1]);
                i += 2;
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// `Wdy, DD Mon YYYY HH:MM:SS GMT` (Python's `formatdate(usegmt=True)`).
pub fn http_date(at: OffsetDateTime) -> String {
    let mut s = String::with_capacity(29);
    push_http_date(&mut s, at);
    s
}

/// Appends [`http_date`] of `at` to `out`. Cookies issued in the same second share an
/// expiry, so each thread keeps the last one formatted.
pub fn push_http_date(out: &mut String, at: OffsetDateTime) {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> =
            const { std::cell::RefCell::new((0, String::new())) };
    }
    let t = at.unix_timestamp();
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != t || last.1.is_empty() {
            last.1 = format_http_date(at);
            last.0 = t;
        }
        out.push_str(&last.1);
    });
}

fn format_http_date(at: OffsetDateTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[at.weekday().number_days_from_monday() as usize],
        at.day(),
        MONTHS[at.month() as usize - 1],
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_borrowed_and_quoted_ones_unquoted() {
        let v = value_in("a=1; sessionid= abc ;b", "sessionid").unwrap();
        assert!(matches!(v, Cow::Borrowed("abc")));
        let v = value_in("sessionid=\"a\\\"b\"", "sessionid").unwrap();
        assert!(matches!(&v, Cow::Owned(s) if s == "a\"b"));
        // A chunk with no `=` is a cookie with an empty name, never `name`.
        assert_eq!(value_in("sessionid; x=1", "sessionid"), None);
        // `=` inside the value stays in the value; a trailing `;` adds nothing.
        assert_eq!(
            value_in("sessionid=a=b;", "sessionid").as_deref(),
            Some("a=b")
        );
    }

    #[test]
    fn finds_cookies_like_django() {
        let find = |h: &str| value_in(h, "sessionid").map(Cow::into_owned);
        assert_eq!(find("a=1; sessionid=abc; b=2").as_deref(), Some("abc"));
        assert_eq!(find("sessionid=\"\"").as_deref(), Some(""));
        assert_eq!(
            find("sessionid=\"a\\\"b\\054c\"").as_deref(),
            Some("a\"b,c")
        );
        assert_eq!(
            find("sessionid=\"\\377\\303\\251\"").as_deref(),
            Some("\u{ff}\u{c3}\u{a9}")
        );
        assert_eq!(find("other=1"), None);
        assert_eq!(find("  sessionid = spaced ;").as_deref(), Some("spaced"));
    }

    #[test]
    fn http_dates() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000 + 1_209_600).unwrap();
        assert_eq!(http_date(t), "Tue, 28 Nov 2023 22:13:20 GMT");
        assert_eq!(
            http_date(OffsetDateTime::UNIX_EPOCH),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }
}
