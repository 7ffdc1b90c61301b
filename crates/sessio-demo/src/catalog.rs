//! The demo's fixed data (users and products) and the cart kept in the session.

use std::collections::BTreeMap;

use sessio::{value::Map, Value};

/// A demo account. The password is the user name: this is a demo, not an auth system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    /// The login name, stored in the session under [`USER_KEY`](crate::USER_KEY).
    pub username: &'static str,
    /// The name shown on the page.
    pub display_name: &'static str,
}

/// The accounts one can log in as.
pub const USERS: &[User] = &[
    User {
        username: "alice",
        display_name: "Alice",
    },
    User {
        username: "bob",
        display_name: "Bob",
    },
    User {
        username: "carol",
        display_name: "Carol",
    },
];

/// The user called `username`, if there is one.
pub fn user(username: &str) -> Option<&'static User> {
    USERS.iter().find(|u| u.username == username)
}

/// Whether `password` is the demo password of `user` (its user name).
pub fn password_matches(user: &User, password: &str) -> bool {
    user.username == password
}

/// Something to put in the cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    /// The id used in forms and in the session's cart.
    pub id: &'static str,
    /// The name shown on the page.
    pub name: &'static str,
    /// A one-line description.
    pub blurb: &'static str,
    /// The price in cents.
    pub price_cents: u64,
}

/// The shop's products.
pub const PRODUCTS: &[Product] = &[
    Product {
        id: "tea",
        name: "Green tea",
        blurb: "Fifty bags of sencha for long debugging sessions.",
        price_cents: 450,
    },
    Product {
        id: "mug",
        name: "Ceramic mug",
        blurb: "Holds the tea. Dishwasher safe.",
        price_cents: 1200,
    },
    Product {
        id: "notebook",
        name: "Notebook",
        blurb: "Dotted pages for sketching session flows.",
        price_cents: 725,
    },
    Product {
        id: "stickers",
        name: "Cookie stickers",
        blurb: "A sheet of twelve. Not signed with HMAC.",
        price_cents: 200,
    },
];

/// The product with id `id`, if there is one.
pub fn product(id: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.id == id)
}

/// At most this many of one product fit in the cart.
pub const MAX_QUANTITY: u64 = 99;

/// The cart: product id to quantity. Stored in the session as a JSON object such as
/// `{"tea": 2, "mug": 1}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cart {
    items: BTreeMap<String, u64>,
}

impl Cart {
    /// Reads the cart from its session value. Anything unexpected (another app sharing the
    /// session may store a `cart` of its own shape) reads as an empty cart or is skipped,
    /// so a strange session never breaks the page.
    pub fn from_session_value(value: Option<&Value>) -> Self {
        let items = match value {
            Some(Value::Object(map)) => map
                .iter()
                .filter(|(id, _)| product(id).is_some())
                .filter_map(|(id, qty)| Some((id.clone(), qty.as_u64()?.min(MAX_QUANTITY))))
                .filter(|(_, qty)| *qty > 0)
                .collect(),
            _ => BTreeMap::new(),
        };
        Cart { items }
    }

    /// The session value for this cart.
    pub fn to_session_value(&self) -> Value {
        let map: Map = self
            .items
            .iter()
            .map(|(id, qty)| (id.clone(), Value::from(*qty)))
            .collect();
        Value::Object(map)
    }

    /// Adds one of `product`; fails when there are already [`MAX_QUANTITY`] of it.
    pub fn add(&mut self, product: &Product) -> Result<(), String> {
        let qty = self.items.entry(product.id.to_owned()).or_insert(0);
        if *qty >= MAX_QUANTITY {
            return Err(format!(
                "The cart already holds {MAX_QUANTITY} of \u{201c}{}\u{201d}, the most it can.",
                product.name
            ));
        }
        *qty += 1;
        Ok(())
    }

    /// The lines of the cart, in catalogue order.
    pub fn lines(&self) -> Vec<(&'static Product, u64)> {
        PRODUCTS
            .iter()
            .filter_map(|p| self.items.get(p.id).map(|&qty| (p, qty)))
            .collect()
    }

    /// How many items in all.
    pub fn count(&self) -> u64 {
        self.items.values().sum()
    }

    /// The total price in cents.
    pub fn total_cents(&self) -> u64 {
        self.lines()
            .iter()
            .map(|(p, qty)| p.price_cents * qty)
            .sum()
    }

    /// Whether the cart is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// `1234` cents as `$12.34`.
pub fn format_price(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessio::json;

    #[test]
    fn odd_session_values_read_as_an_empty_or_partial_cart() {
        assert!(Cart::from_session_value(None).is_empty());
        assert!(Cart::from_session_value(Some(&json!([1, 2]))).is_empty());
        assert!(Cart::from_session_value(Some(&json!("x"))).is_empty());
        let cart = Cart::from_session_value(Some(&json!({
            "tea": 2, "unknown": 5, "mug": "three", "notebook": -1, "stickers": 1_000_000
        })));
        assert_eq!(
            cart.lines(),
            vec![
                (product("tea").unwrap(), 2),
                (product("stickers").unwrap(), 99)
            ]
        );
    }

    #[test]
    fn adding_counts_and_caps() {
        let mut cart = Cart::default();
        let tea = product("tea").unwrap();
        cart.add(tea).unwrap();
        cart.add(tea).unwrap();
        cart.add(product("mug").unwrap()).unwrap();
        assert_eq!(cart.count(), 3);
        assert_eq!(cart.total_cents(), 2 * 450 + 1200);
        assert_eq!(cart.to_session_value(), json!({"mug": 1, "tea": 2}));
        for _ in 2..MAX_QUANTITY {
            cart.add(tea).unwrap();
        }
        assert!(cart.add(tea).is_err());
        assert_eq!(format_price(2100), "$21.00");
        assert_eq!(format_price(5), "$0.05");
    }

    #[test]
    fn demo_passwords_are_the_user_names() {
        let alice = user("alice").unwrap();
        assert!(password_matches(alice, "alice"));
        assert!(!password_matches(alice, "bob"));
        assert!(user("mallory").is_none());
    }
}
