//! Server-rendered HTML. Every piece of text that comes from a request or a session goes
//! through [`escape`]: a session may be shared with other apps, so even "our own" data is
//! untrusted here.

use std::fmt::Write as _;

use crate::catalog::{format_price, Cart, PRODUCTS, USERS};

/// HTML-escapes `text` for use in element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Everything the home page shows.
#[derive(Debug)]
pub(crate) struct HomePage {
    /// The logged-in user name, as stored in the session (not necessarily a demo user).
    pub user: Option<String>,
    pub cart: Cart,
    pub panel: SessionPanel,
}

/// The facts of the "session" panel.
#[derive(Debug)]
pub(crate) struct SessionPanel {
    pub engine: &'static str,
    /// Where the data lives, in words ([`crate::store::describe`]): no credentials.
    pub location: String,
    pub client_side: bool,
    pub data_json: String,
    pub cookie_name: String,
    /// Bytes of `name=value` in the request's `Cookie` header, if the cookie was sent.
    pub cookie_bytes: Option<usize>,
    /// The first characters of the session id (server engines only).
    pub id_prefix: Option<String>,
    pub expiry_age: i64,
    pub expiry_date: String,
    pub at_browser_close: bool,
}

const STYLE: &str = r#"
:root {
  --bg: #f5f6fa; --card: #fff; --text: #1f2430; --muted: #667085; --line: #e4e7ec;
  --accent: #4f46e5; --accent-dark: #4338ca; --danger: #b42318; --code: #f2f4f7;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1117; --card: #181b24; --text: #e6e8ee; --muted: #98a2b3; --line: #2a2f3c;
    --accent: #818cf8; --accent-dark: #6366f1; --danger: #f97066; --code: #11131a;
  }
}
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  background: var(--bg); color: var(--text); }
.wrap { max-width: 1080px; margin: 0 auto; padding: 0 20px; }
header.top { background: var(--card); border-bottom: 1px solid var(--line); }
header.top .wrap { display: flex; align-items: center; gap: 16px; height: 60px; }
.brand { font-weight: 700; font-size: 1.15rem; color: var(--text); text-decoration: none; }
.brand span { color: var(--accent); }
.spacer { flex: 1; }
.pill { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: .8rem;
  background: var(--code); border: 1px solid var(--line); color: var(--muted); }
.who { color: var(--muted); font-size: .95rem; }
main.grid { display: grid; gap: 20px; padding-top: 24px; padding-bottom: 24px; align-items: start;
  grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); }
a { color: var(--accent); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px;
  padding: 20px 22px; box-shadow: 0 1px 2px rgba(16,24,40,.05); }
.card.wide { grid-column: 1 / -1; }
.card h2 { margin: 0 0 12px; font-size: 1.1rem; }
.muted { color: var(--muted); font-size: .9rem; }
form.inline { display: inline; margin: 0; }
label { display: block; font-size: .85rem; color: var(--muted); margin: 10px 0 4px; }
select, input[type=password], input[type=text] { width: 100%; padding: 8px 10px;
  border: 1px solid var(--line); border-radius: 8px; background: var(--card); color: var(--text);
  font: inherit; }
button, a.button { font: inherit; cursor: pointer; border-radius: 8px; padding: 7px 14px;
  border: 1px solid var(--accent); background: var(--accent); color: #fff; text-decoration: none; }
button:hover, a.button:hover { background: var(--accent-dark); }
button.secondary { background: transparent; color: var(--accent); }
button.danger { background: transparent; border-color: var(--danger); color: var(--danger); }
button.secondary:hover, button.danger:hover { background: var(--code); }
.actions { margin-top: 14px; display: flex; gap: 8px; flex-wrap: wrap; }
ul.products { list-style: none; margin: 0; padding: 0; }
ul.products li { display: flex; align-items: center; gap: 12px; padding: 10px 0;
  border-top: 1px solid var(--line); }
ul.products li:first-child { border-top: 0; }
ul.products .info { flex: 1; }
ul.products .price { font-variant-numeric: tabular-nums; color: var(--muted); }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 0; border-bottom: 1px solid var(--line); }
th.num, td.num { text-align: right; }
tfoot td { font-weight: 600; border-bottom: 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 18px; margin: 0 0 14px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88rem; }
pre { background: var(--code); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px;
  overflow-x: auto; margin: 0; }
.error { border-left: 4px solid var(--danger); }
footer { color: var(--muted); font-size: .85rem; padding-bottom: 32px; }
"#;

/// An inline SVG icon, so browsers do not ask for `/favicon.ico`.
const FAVICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' \
viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='7' fill='%23d6a461'/%3E%3Ccircle cx='5' cy='6' \
r='1.3' fill='%235b3a1a'/%3E%3Ccircle cx='10' cy='5' r='1' fill='%235b3a1a'/%3E%3Ccircle cx='9' \
cy='10' r='1.4' fill='%235b3a1a'/%3E%3C/svg%3E";

/// The page frame: head, stylesheet, header bar, and `body` inside `<main>`.
fn layout(title: &str, engine: Option<&str>, who: &str, main_class: &str, body: &str) -> String {
    let engine = engine
        .map(|e| format!(r#"<span class="pill">engine: {}</span>"#, escape(e)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{FAVICON}">
<style>{STYLE}</style>
</head>
<body>
<header class="top"><div class="wrap">
<a class="brand" href="/">sessio <span>demo</span></a>
{engine}
<span class="spacer"></span>
<span class="who">{who}</span>
</div></header>
<main class="wrap {main_class}">
{body}
</main>
<footer class="wrap">A demo of sessio, Django-compatible sessions for Rust.
Everything you see lives in your session. <a href="/api/session">/api/session</a> shows it as JSON.</footer>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// The home page: account, shop, cart and session panel.
pub(crate) fn home(page: &HomePage) -> String {
    let who = match &page.user {
        Some(name) => format!("Signed in as <strong>{}</strong>", escape(name)),
        None => "Not signed in".to_owned(),
    };
    let mut body = String::new();
    body.push_str(&account_card(page.user.as_deref()));
    body.push_str(&shop_card());
    body.push_str(&cart_card(&page.cart));
    body.push_str(&session_card(&page.panel));
    layout("sessio demo", Some(page.panel.engine), &who, "grid", &body)
}

fn account_card(user: Option<&str>) -> String {
    match user {
        Some(name) => {
            let display = crate::catalog::user(name).map_or(name, |u| u.display_name);
            format!(
                r#"<section class="card" id="account">
<h2>Welcome back, {display}</h2>
<p>You are logged in as <code>{name}</code>. Logging in gave your session a new id and kept
its data, so a cart filled before logging in is still here.</p>
<form class="inline" method="post" action="/logout"><div class="actions">
<button type="submit" class="secondary">Log out</button></div></form>
<p class="muted">Logging out deletes the session (<code>session.flush()</code>): the cart goes with it.</p>
</section>
"#,
                display = escape(display),
                name = escape(name),
            )
        }
        None => {
            let mut options = String::new();
            for u in USERS {
                let _ = write!(
                    options,
                    r#"<option value="{id}">{name} ({id})</option>"#,
                    id = escape(u.username),
                    name = escape(u.display_name),
                );
            }
            format!(
                r#"<section class="card" id="account">
<h2>Log in</h2>
<form method="post" action="/login">
<label for="username">User</label>
<select id="username" name="username">{options}</select>
<label for="password">Password</label>
<input id="password" type="password" name="password" autocomplete="off" required>
<div class="actions"><button type="submit">Log in</button></div>
</form>
<p class="muted">Demo accounts: the password is the user name (<code>alice</code> / <code>alice</code>).
Add something to the cart first: it survives logging in.</p>
</section>
"#
            )
        }
    }
}

fn shop_card() -> String {
    let mut items = String::new();
    for p in PRODUCTS {
        let _ = write!(
            items,
            r#"<li><div class="info"><strong>{name}</strong> <span class="price">{price}</span>
<div class="muted">{blurb}</div></div>
<form class="inline" method="post" action="/cart/add"><input type="hidden" name="product" value="{id}">
<button type="submit">Add to cart</button></form></li>
"#,
            name = escape(p.name),
            price = format_price(p.price_cents),
            blurb = escape(p.blurb),
            id = escape(p.id),
        );
    }
    format!(
        r#"<section class="card" id="shop">
<h2>Shop</h2>
<ul class="products">
{items}</ul>
</section>
"#
    )
}

fn cart_card(cart: &Cart) -> String {
    if cart.is_empty() {
        return r#"<section class="card" id="cart">
<h2>Cart</h2>
<p class="muted">Your cart is empty. Anything you add is kept in your session.</p>
</section>
"#
        .to_owned();
    }
    let mut rows = String::new();
    for (p, qty) in cart.lines() {
        let _ = writeln!(
            rows,
            r#"<tr><td>{name}</td><td class="num">{qty}</td><td class="num">{subtotal}</td></tr>"#,
            name = escape(p.name),
            subtotal = format_price(p.price_cents * qty),
        );
    }
    format!(
        r#"<section class="card" id="cart">
<h2>Cart <span class="pill">{count} item{s}</span></h2>
<table>
<thead><tr><th>Product</th><th class="num">Qty</th><th class="num">Subtotal</th></tr></thead>
<tbody>
{rows}</tbody>
<tfoot><tr><td>Total</td><td></td><td class="num">{total}</td></tr></tfoot>
</table>
<form class="inline" method="post" action="/cart/clear"><div class="actions">
<button type="submit" class="danger">Clear cart</button></div></form>
</section>
"#,
        count = cart.count(),
        s = if cart.count() == 1 { "" } else { "s" },
        total = format_price(cart.total_cents()),
    )
}

fn session_card(panel: &SessionPanel) -> String {
    let cookie = match panel.cookie_bytes {
        Some(n) => format!("{n} bytes <span class=\"muted\">(name and value; browsers drop cookies over 4096)</span>"),
        None => "(no cookie yet)".to_owned(),
    };
    let id = match (&panel.id_prefix, panel.client_side) {
        (_, true) => "none: the data itself travels in the cookie".to_owned(),
        (Some(prefix), false) => format!("<code>{}\u{2026}</code>", escape(prefix)),
        (None, false) => "none yet: one is made when the session is first saved".to_owned(),
    };
    let lifetime = if panel.at_browser_close {
        "the cookie ends when the browser closes".to_owned()
    } else {
        "the cookie is persistent".to_owned()
    };
    format!(
        r#"<section class="card wide" id="session">
<h2>Session</h2>
<dl class="facts">
<dt>Engine</dt><dd><code>{engine}</code> {kind}</dd>
<dt>Data</dt><dd id="location">{location}</dd>
<dt>Cookie <code>{cookie_name}</code></dt><dd>{cookie}</dd>
<dt>Session id</dt><dd>{id}</dd>
<dt>Expires in</dt><dd>{age} seconds ({age_human}), {lifetime}</dd>
<dt>Expires at</dt><dd>{date} <span class="muted">if saved now</span></dd>
</dl>
<pre>{json}</pre>
</section>
"#,
        engine = escape(panel.engine),
        kind = if panel.client_side {
            "<span class=\"muted\">(data in the cookie)</span>"
        } else {
            "<span class=\"muted\">(data on the server, id in the cookie)</span>"
        },
        location = escape(&panel.location),
        cookie_name = escape(&panel.cookie_name),
        age = panel.expiry_age,
        age_human = human_duration(panel.expiry_age),
        date = escape(&panel.expiry_date),
        json = escape(&panel.data_json),
    )
}

/// A page that says what was wrong with a request, with a way back.
pub(crate) fn error_page(status: u16, title: &str, message: &str) -> String {
    let body = format!(
        r#"<section class="card error">
<h2>{status} {title}</h2>
<p>{message}</p>
<div class="actions"><a class="button" href="/">Back to the shop</a></div>
</section>
"#,
        title = escape(title),
        message = escape(message),
    );
    layout(title, None, "", "grid", &body)
}

/// `1_209_600` as `14 days`; two units at most.
fn human_duration(seconds: i64) -> String {
    if seconds <= 0 {
        return "expired".to_owned();
    }
    let units = [
        ("day", 86_400),
        ("hour", 3_600),
        ("minute", 60),
        ("second", 1),
    ];
    let mut parts = Vec::new();
    let mut rest = seconds;
    for (name, size) in units {
        let n = rest / size;
        if n > 0 {
            parts.push(format!("{n} {name}{}", if n == 1 { "" } else { "s" }));
            rest %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(1_209_600), "14 days");
        assert_eq!(human_duration(90_061), "1 day 1 hour");
        assert_eq!(human_duration(61), "1 minute 1 second");
        assert_eq!(human_duration(0), "expired");
    }
}
