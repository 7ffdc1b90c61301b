//! Reading the `Cookie` request header and writing `Set-Cookie`, as Django does.

use std::borrow::Cow;

use http::HeaderValue;
use time::OffsetDateTime;

use crate::config::Config;

/// The most a cookie's name and value may take together (RFC 6265bis); browsers drop
/// larger cookies silently.
pub const MAX_COOKIE_BYTES: usize = 4096;

/// The value of cookie `name` in the request's `Cookie` headers.
///
/// Several headers are read in order (HTTP/2 splits cookies across them); when a name
/// repeats, the last one wins, as in Django's `parse_cookie`. Values in double quotes are
/// unquoted.
pub fn find<'a>(headers: impl Iterator<Item = &'a HeaderValue>, name: &str) -> Option<String> {
    find_value(headers, name).map(Cow::into_owned)
}

/// As [`find`], borrowing the value from the header when it needs no unquoting and the
/// header is valid UTF-8 (almost always): a request whose session is never used costs no
/// allocation.
pub(crate) fn find_value<'a>(
    headers: impl Iterator<Item = &'a HeaderValue>,
    name: &str,
) -> Option<Cow<'a, str>> {
    let mut found = None;
    for header in headers {
        let Ok(text) = header.to_str() else {
            // Non-ASCII bytes: read what is ASCII-safe, as a lossy view.
            let text = String::from_utf8_lossy(header.as_bytes());
            if let Some(v) = find_in(&text, name) {
                found = Some(Cow::Owned(v.into_owned()));
            }
            continue;
        };
        if let Some(v) = find_in(text, name) {
            found = Some(v);
        }
    }
    found
}

fn find_in<'a>(header: &'a str, name: &str) -> Option<Cow<'a, str>> {
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
fn push_http_date(out: &mut String, at: OffsetDateTime) {
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

/// The session cookie. Attributes come in Django's (alphabetical) order:
/// `Domain; expires; HttpOnly; Max-Age; Path; SameSite; Secure`.
pub(crate) fn set_cookie(
    config: &Config,
    value: &str,
    lifetime: Option<(i64, OffsetDateTime)>,
) -> String {
    let mut s = String::with_capacity(value.len() + 120);
    s.push_str(config.cookie_name());
    s.push('=');
    s.push_str(value);
    if let Some(domain) = config.cookie_domain() {
        s.push_str("; Domain=");
        s.push_str(domain);
    }
    if let Some((_, expires)) = lifetime {
        s.push_str("; expires=");
        push_http_date(&mut s, expires);
    }
    if config.cookie_httponly() {
        s.push_str("; HttpOnly");
    }
    if let Some((max_age, _)) = lifetime {
        use std::fmt::Write as _;
        s.push_str("; Max-Age=");
        let _ = write!(s, "{max_age}");
    }
    s.push_str("; Path=");
    s.push_str(config.cookie_path());
    if let Some(samesite) = config.cookie_samesite() {
        s.push_str("; SameSite=");
        s.push_str(samesite.as_str());
    }
    if config.cookie_secure() {
        s.push_str("; Secure");
    }
    s
}

/// The cookie that removes the session cookie: same name, Domain, Path, SameSite and
/// Secure as the one it removes (a browser ignores a removal whose attributes differ),
/// an empty value, `Max-Age=0` and an expiry in 1970.
pub(crate) fn removal_cookie(config: &Config) -> String {
    let mut s = format!("{}=\"\"", config.cookie_name());
    if let Some(domain) = config.cookie_domain() {
        s.push_str("; Domain=");
        s.push_str(domain);
    }
    s.push_str("; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=");
    s.push_str(config.cookie_path());
    if let Some(samesite) = config.cookie_samesite() {
        s.push_str("; SameSite=");
        s.push_str(samesite.as_str());
    }
    let name = config.cookie_name();
    if config.cookie_secure()
        || name.starts_with("__Secure-")
        || name.starts_with("__Host-")
        || config.cookie_samesite() == Some(crate::config::SameSite::None)
    {
        s.push_str("; Secure");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn plain_values_are_borrowed_and_quoted_ones_unquoted() {
        let h = [hv("a=1; sessionid= abc ;b")];
        let v = find_value(h.iter(), "sessionid").unwrap();
        assert!(matches!(v, Cow::Borrowed("abc")));
        let h = [hv("sessionid=\"a\\\"b\"")];
        let v = find_value(h.iter(), "sessionid").unwrap();
        assert!(matches!(&v, Cow::Owned(s) if s == "a\"b"));
        // A chunk with no `=` is a cookie with an empty name, never `name`.
        let h = [hv("sessionid; x=1")];
        assert_eq!(find(h.iter(), "sessionid"), None);
        // `=` inside the value stays in the value; a trailing `;` adds nothing.
        let h = [hv("sessionid=a=b;")];
        assert_eq!(find(h.iter(), "sessionid").as_deref(), Some("a=b"));
        // Bytes that are not UTF-8 are read lossily and the value is still found.
        let h = [HeaderValue::from_bytes(b"x=\xff; sessionid=abcdefgh").unwrap()];
        assert_eq!(find(h.iter(), "sessionid").as_deref(), Some("abcdefgh"));
    }

    #[test]
    fn finds_cookies_like_django() {
        let h = [hv("a=1; sessionid=abc; b=2")];
        assert_eq!(find(h.iter(), "sessionid").as_deref(), Some("abc"));
        let h = [hv("sessionid=first"), hv("x=1; sessionid=second")];
        assert_eq!(find(h.iter(), "sessionid").as_deref(), Some("second"));
        let h = [hv("sessionid=\"\"")];
        assert_eq!(find(h.iter(), "sessionid").as_deref(), Some(""));
        let h = [hv("sessionid=\"a\\\"b\\054c\"")];
        assert_eq!(find(h.iter(), "sessionid").as_deref(), Some("a\"b,c"));
        let h = [hv("sessionid=\"\\377\\303\\251\"")];
        assert_eq!(
            find(h.iter(), "sessionid").as_deref(),
            Some("\u{ff}\u{c3}\u{a9}")
        );
        let h = [hv("other=1")];
        assert_eq!(find(h.iter(), "sessionid"), None);
        let h = [hv("  sessionid = spaced ;")];
        assert_eq!(find(h.iter(), "sessionid").as_deref(), Some("spaced"));
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
