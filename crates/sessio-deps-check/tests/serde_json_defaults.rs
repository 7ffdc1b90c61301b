//! serde_json's features are global: one crate turning on `preserve_order` or
//! `arbitrary_precision` changes the JSON of every crate in the application. sessio keeps
//! Django's key order and exact integers in its own `sessio::Value`, so an application that
//! depends on sessio keeps serde_json's defaults. These tests fail if that ever changes.

use serde::Deserialize;
use serde_json::{json, Map, Value};

#[test]
fn map_keys_come_out_sorted() {
    let v: Value = serde_json::from_str(r#"{"b":1,"a":2,"c":3}"#).unwrap();
    assert_eq!(v.to_string(), r#"{"a":2,"b":1,"c":3}"#);
    let keys: Vec<_> = Map::from_iter([("z".to_owned(), json!(1)), ("y".to_owned(), json!(2))])
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["y", "z"]);
}

#[test]
fn a_number_through_flatten_deserializes() {
    // With `arbitrary_precision`, numbers inside flattened or untagged data arrive as a
    // private map and fail to deserialize.
    #[derive(Deserialize, Debug, PartialEq)]
    struct Inner {
        n: u32,
        f: f64,
    }
    #[derive(Deserialize, Debug, PartialEq)]
    struct Outer {
        name: String,
        #[serde(flatten)]
        inner: Inner,
    }
    let outer: Outer = serde_json::from_str(r#"{"name":"x","n":7,"f":0.5}"#).unwrap();
    assert_eq!(
        outer,
        Outer {
            name: "x".into(),
            inner: Inner { n: 7, f: 0.5 }
        }
    );

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }
    let list: Vec<Either> = serde_json::from_str(r#"[1,"two"]"#).unwrap();
    assert_eq!(list, [Either::Number(1), Either::Text("two".into())]);
}

#[test]
fn numbers_are_plain_and_big_ones_are_floats() {
    // Without `arbitrary_precision` a number is a u64, i64 or f64, never kept as text.
    let v: Value = serde_json::from_str("123456789012345678901234567890").unwrap();
    assert!(v.is_f64());
    assert_eq!(serde_json::to_string(&json!(1.0)).unwrap(), "1.0");
}

#[test]
fn sessio_keeps_django_order_and_digits_in_its_own_values() {
    let text = r#"{"b":1,"a":123456789012345678901234567890}"#;
    let data = sessio::value::object_from_str(text).unwrap();
    assert_eq!(sessio::value::object_to_string(&data), text);
}
