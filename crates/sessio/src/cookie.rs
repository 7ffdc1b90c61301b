//! Reading the `Cookie` request header and writing `Set-Cookie`, as Django does.
//!
//! The parsing rules and dates are Django's and live in [`sessio_django::cookie`]; this
//! module reads them out of HTTP headers and writes the session cookie.

use std::borrow::Cow;

use http::HeaderValue;
use time::OffsetDateTime;

use crate::config::Config;
pub use sessio_django::cookie::{http_date, MAX_COOKIE_BYTES};
use sessio_django::cookie::{push_http_date, value_in as find_in};

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
    fn the_last_of_several_headers_wins() {
        let h = [hv("sessionid=first"), hv("x=1; sessionid=second")];
        assert_eq!(find(h.iter(), "sessionid").as_deref(), Some("second"));
        let h = [hv("other=1")];
        assert_eq!(find(h.iter(), "sessionid"), None);
    }
}
