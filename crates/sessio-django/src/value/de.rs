//! Deserializing typed data out of a [`Value`], by reference (borrowing
//! strings) or by value (moving them), like serde_json's `Value`
//! deserializers.

use serde::de::value::{
    BorrowedStrDeserializer, MapDeserializer, SeqDeserializer, StringDeserializer,
};
use serde::de::{
    self, Deserialize, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer,
    VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

use super::{Error, Number, Value, N};

/// Deserializes a `T` out of an owned [`Value`], moving its strings.
///
/// Integers beyond 128 bits reach the visitor as `f64`, the only serde type
/// that can carry them.
///
/// ```
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Login { user: u32, next: Option<String> }
///
/// let v = sessio_django::json!({"user": 7, "next": null});
/// let l: Login = sessio_django::from_value(v).unwrap();
/// assert_eq!(l, Login { user: 7, next: None });
///
/// let bad = sessio_django::json!({"user": "x"});
/// let err = sessio_django::from_value::<Login>(bad).unwrap_err();
/// assert_eq!(err.to_string(), r#"invalid type: string "x", expected u32"#);
/// ```
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, Error> {
    T::deserialize(v)
}

fn visit_number<'de, V: Visitor<'de>>(n: &Number, visitor: V) -> Result<V::Value, Error> {
    match &n.n {
        N::PosInt(u) => visitor.visit_u64(*u),
        N::NegInt(i) => visitor.visit_i64(*i),
        N::Float(f) => visitor.visit_f64(*f),
        N::Big(d) => {
            if let Ok(u) = d.parse::<u128>() {
                visitor.visit_u128(u)
            } else if let Ok(i) = d.parse::<i128>() {
                visitor.visit_i128(i)
            } else {
                // serde has no wider integer; a float is the closest it has.
                visitor.visit_f64(d.parse().unwrap_or(f64::NAN))
            }
        }
    }
}

fn invalid_enum(v: &Value) -> Error {
    match v {
        Value::Object(_) => de::Error::invalid_value(v.unexpected(), &"map with a single key"),
        _ => de::Error::invalid_type(v.unexpected(), &"string or map"),
    }
}

/// Externally tagged enum: `variant` names it, `value` is its content.
struct EnumDe<K, D> {
    variant: K,
    value: D,
}

impl<'de, K, D> EnumAccess<'de> for EnumDe<K, D>
where
    K: IntoDeserializer<'de, Error>,
    D: de::Deserializer<'de, Error = Error>,
{
    type Error = Error;
    type Variant = VariantDe<D>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, VariantDe<D>), Error> {
        let tag = seed.deserialize(self.variant.into_deserializer())?;
        Ok((tag, VariantDe(self.value)))
    }
}

struct VariantDe<D>(D);

impl<'de, D: de::Deserializer<'de, Error = Error>> VariantAccess<'de> for VariantDe<D> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        <()>::deserialize(self.0)
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(self.0)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.0.deserialize_seq(visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_map(visitor)
    }
}

/// The methods both deserializers share; `$self` is `&Value` or `Value`.
macro_rules! common_methods {
    () => {
        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self {
                Value::Null => visitor.visit_none(),
                _ => visitor.visit_some(self),
            }
        }
        fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self {
                Value::Null => visitor.visit_unit(),
                _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
            }
        }
        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            self.deserialize_unit(visitor)
        }
        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            visitor.visit_newtype_struct(self)
        }
        fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_bytes(visitor)
        }
        fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_unit()
        }
        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            seq tuple tuple_struct map struct identifier
        }
    };
}

impl<'de> de::Deserializer<'de> for &'de Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => visit_number(n, visitor),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(a) => {
                let mut seq = SeqDeserializer::new(a.iter());
                let out = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Value::Object(m) => {
                let entries = m.iter().map(|(k, v)| (BorrowedStrDeserializer::new(k), v));
                let mut map = MapDeserializer::new(entries);
                let out = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Value::String(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            Value::Object(m) if m.len() == 1 => match m.first() {
                Some((k, v)) => visitor.visit_enum(EnumDe {
                    variant: BorrowedStrDeserializer::new(k),
                    value: v,
                }),
                None => Err(invalid_enum(self)),
            },
            _ => Err(invalid_enum(self)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::String(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            Value::Array(_) => self.deserialize_any(visitor),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        }
    }

    common_methods!();
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => visit_number(&n, visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Array(a) => {
                let mut seq = SeqDeserializer::new(a.into_iter());
                let out = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Value::Object(m) => {
                let mut map = MapDeserializer::new(m.into_iter());
                let out = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Value::String(s) => visitor.visit_enum(StringDeserializer::new(s)),
            Value::Object(m) if m.len() == 1 => match m.into_iter().next() {
                Some((k, v)) => visitor.visit_enum(EnumDe {
                    variant: StringDeserializer::new(k),
                    value: v,
                }),
                None => Err(de::Error::custom("empty map")),
            },
            other => Err(invalid_enum(&other)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::String(s) => visitor.visit_byte_buf(s.into_bytes()),
            Value::Array(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(other.unexpected(), &visitor)),
        }
    }

    common_methods!();
}

impl<'de> IntoDeserializer<'de, Error> for Value {
    type Deserializer = Value;
    fn into_deserializer(self) -> Value {
        self
    }
}

impl<'de> IntoDeserializer<'de, Error> for &'de Value {
    type Deserializer = &'de Value;
    fn into_deserializer(self) -> &'de Value {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{from_str, to_value};
    use crate::{json, Map};
    use serde::{Deserialize, Serialize};
    use std::collections::HashMap;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    enum Kind {
        Unit,
        New(u8),
        Tuple(i32, String),
        Struct { a: bool, b: Option<u8> },
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Unit;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Meters(f64);

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Inner {
        tags: Vec<String>,
        maybe: Option<Box<Inner>>,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Session {
        zeta: u128,
        alpha: i128,
        kinds: Vec<Kind>,
        counts: HashMap<String, u64>,
        initial: char,
        nothing: (),
        unit: Unit,
        dist: Meters,
        inner: Inner,
        pair: (u8, String),
        small_neg: i8,
    }

    fn sample() -> Session {
        Session {
            zeta: u128::MAX,
            alpha: i128::MIN,
            kinds: vec![
                Kind::Unit,
                Kind::New(7),
                Kind::Tuple(-3, "t".into()),
                Kind::Struct { a: true, b: None },
            ],
            counts: [("x".to_string(), 1u64)].into_iter().collect(),
            initial: 'é',
            nothing: (),
            unit: Unit,
            dist: Meters(2.5),
            inner: Inner {
                tags: vec!["a".into(), "b".into()],
                maybe: Some(Box::new(Inner {
                    tags: vec![],
                    maybe: None,
                })),
            },
            pair: (1, "p".into()),
            small_neg: -5,
        }
    }

    #[test]
    fn struct_round_trip() {
        let s = sample();
        let v = to_value(&s).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "zeta",
                "alpha",
                "kinds",
                "counts",
                "initial",
                "nothing",
                "unit",
                "dist",
                "inner",
                "pair",
                "small_neg"
            ]
        );
        assert_eq!(
            v["kinds"].to_string(),
            r#"["Unit",{"New":7},{"Tuple":[-3,"t"]},{"Struct":{"a":true,"b":null}}]"#
        );
        assert_eq!(v["zeta"].to_string(), u128::MAX.to_string());
        assert_eq!(v["alpha"].to_string(), i128::MIN.to_string());
        // Borrowed and owned paths, and through text.
        assert_eq!(Session::deserialize(&v).unwrap(), s);
        assert_eq!(from_value::<Session>(v.clone()).unwrap(), s);
        let text = v.to_string();
        assert_eq!(from_value::<Session>(from_str(&text).unwrap()).unwrap(), s);
    }

    #[test]
    fn borrowed_strings() {
        #[derive(Deserialize)]
        struct B<'a> {
            s: &'a str,
        }
        let v = json!({"s": "borrowed"});
        let b = B::deserialize(&v).unwrap();
        assert_eq!(b.s, "borrowed");
    }

    #[test]
    fn error_messages_name_expected_type() {
        let err = |r: Result<Session, Error>| r.unwrap_err().to_string();
        let mut v = to_value(&sample()).unwrap();
        v["small_neg"] = json!("x");
        assert_eq!(
            err(Session::deserialize(&v)),
            r#"invalid type: string "x", expected i8"#
        );
        v["small_neg"] = json!(1000);
        assert_eq!(
            err(from_value(v.clone())),
            "invalid value: integer `1000`, expected i8"
        );
        v["small_neg"] = json!(-1);
        v["zeta"] = json!(-1);
        assert_eq!(
            err(Session::deserialize(&v)),
            "invalid value: integer `-1`, expected u128"
        );
        assert_eq!(
            from_value::<u32>(json!([1])).unwrap_err().to_string(),
            "invalid type: sequence, expected u32"
        );
        assert_eq!(
            from_value::<Kind>(json!({"New": 1, "Unit": null}))
                .unwrap_err()
                .to_string(),
            "invalid value: map, expected map with a single key"
        );
        assert_eq!(
            Kind::deserialize(&json!(3)).unwrap_err().to_string(),
            "invalid type: integer `3`, expected string or map"
        );
        assert_eq!(
            from_value::<Kind>(json!("Nope")).unwrap_err().to_string(),
            "unknown variant `Nope`, expected one of `Unit`, `New`, `Tuple`, `Struct`"
        );
        assert_eq!(
            from_value::<u64>(from_str("18446744073709551616").unwrap())
                .unwrap_err()
                .to_string(),
            "invalid type: integer `18446744073709551616` as u128, expected u64"
        );
        assert_eq!(
            from_value::<()>(json!(false)).unwrap_err().to_string(),
            "invalid type: boolean `false`, expected unit"
        );
        assert!(from_value::<(u8,)>(json!([1, 2])).is_err());
    }

    #[test]
    fn enum_forms() {
        assert_eq!(
            from_value::<Kind>(json!({"Unit": null})).unwrap(),
            Kind::Unit
        );
        assert_eq!(Kind::deserialize(&json!("Unit")).unwrap(), Kind::Unit);
        assert_eq!(Kind::deserialize(&json!({"New": 4})).unwrap(), Kind::New(4));
        assert_eq!(
            Kind::deserialize(&json!({"Struct": [false, 1]})).unwrap(),
            Kind::Struct {
                a: false,
                b: Some(1)
            }
        );
    }

    #[test]
    fn values_and_maps_through_serde() {
        let v = from_str(r#"{"b":[1,-2,3.5,"s",null,true],"a":{"z":1,"y":2},"n":123456789012345678901234567890}"#)
            .unwrap();
        assert_eq!(Value::deserialize(&v).unwrap(), v);
        assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
        let m: Map = from_value(v.clone()).unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["b", "a", "n"]);
        // Integers wider than 128 bits can only reach serde visitors as f64.
        let big = from_str("100000000000000000000000000000000000000000").unwrap();
        assert_eq!(Value::deserialize(&big).unwrap(), Value::from(1e41));
        assert_eq!(from_value::<f64>(big).unwrap(), 1e41);
        let bytes: serde_bytes_shim::ByteBuf = from_value(json!("ab")).unwrap();
        assert_eq!(bytes.0, b"ab");
        let bytes: serde_bytes_shim::ByteBuf =
            serde_bytes_shim::ByteBuf::deserialize(&json!([1, 2])).unwrap();
        assert_eq!(bytes.0, [1, 2]);
    }

    /// Minimal stand-in for serde_bytes so deserialize_bytes is exercised.
    mod serde_bytes_shim {
        use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
        use std::fmt;

        pub struct ByteBuf(pub Vec<u8>);
        impl<'de> Deserialize<'de> for ByteBuf {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = ByteBuf;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E>(self, v: &[u8]) -> Result<ByteBuf, E> {
                        Ok(ByteBuf(v.to_vec()))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<ByteBuf, A::Error> {
                        let mut out = Vec::new();
                        while let Some(b) = s.next_element()? {
                            out.push(b);
                        }
                        Ok(ByteBuf(out))
                    }
                }
                d.deserialize_byte_buf(V)
            }
        }
    }
}
