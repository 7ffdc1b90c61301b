//! Session data as Python's `json` module sees it.
//!
//! [`Value`] mirrors `serde_json::Value` but keeps two properties of Python
//! data that serde_json only offers through crate-wide features
//! (`preserve_order`, `arbitrary_precision`) which would leak into every
//! application linking sessio:
//!
//! * object keys keep insertion order (Python dicts are ordered), and
//! * integers of any size are kept exactly (Python ints are unbounded).
//!
//! Text is read and written exactly like Python's `json.loads` and
//! `json.dumps(obj, separators=(",", ":"))`, so sessions written by Django
//! round-trip byte for byte.
//!
//! ```
//! use sessio_django::value::{from_str, to_string};
//!
//! let text = r#"{"b":[1,2,{"a":null}],"a":true,"n":18446744073709551616}"#;
//! let v = from_str(text).unwrap();
//! assert_eq!(to_string(&v), text);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::iter::FusedIterator;
use std::ops::{Index, IndexMut};
use std::str::FromStr;

use indexmap::IndexMap;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

mod de;
mod macros;
mod parse;
mod ser;
mod write;

pub use self::de::from_value;
pub use self::parse::{from_slice, from_str, object_from_str};
pub use self::ser::to_value;
pub use self::write::{object_to_string, to_string, write, write_object};

// ---------------------------------------------------------------------------
// Error
// ---------------------------------------------------------------------------

/// Error from parsing, serializing into or deserializing from a [`Value`].
///
/// Parse errors end with `at byte N` and expose that offset through
/// [`Error::offset`].
///
/// ```
/// let err = sessio_django::value::from_str("[1,]").unwrap_err();
/// assert_eq!(err.to_string(), "expected value at byte 3");
/// assert_eq!(err.offset(), Some(3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}{}", at_byte(.offset))]
pub struct Error {
    msg: String,
    offset: Option<usize>,
}

fn at_byte(offset: &Option<usize>) -> String {
    offset.map_or_else(String::new, |at| format!(" at byte {at}"))
}

impl Error {
    pub(crate) fn syntax(what: &str, offset: usize) -> Self {
        Error {
            msg: what.to_owned(),
            offset: Some(offset),
        }
    }

    pub(crate) fn msg(msg: impl fmt::Display) -> Self {
        Error {
            msg: msg.to_string(),
            offset: None,
        }
    }

    /// Byte offset into the input for parse errors, `None` otherwise.
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }
}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::msg(msg)
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::msg(msg)
    }
}

// ---------------------------------------------------------------------------
// Number
// ---------------------------------------------------------------------------

/// A JSON number: a 64-bit integer, an integer of any size, or a float.
///
/// Integers too large for `i64`/`u64` are kept as their exact decimal digits,
/// as Python ints are unbounded. Floats may be NaN or infinite because Python
/// writes them as `NaN`/`Infinity`.
///
/// ```
/// use sessio_django::Number;
///
/// let big = Number::from_u128(1 << 64);
/// assert_eq!(big.to_string(), "18446744073709551616");
/// assert_eq!(big.as_u64(), None);
/// assert_eq!(big.as_u128(), Some(1 << 64));
/// assert_eq!(Number::from_f64(1e16).to_string(), "1e+16");
/// ```
#[derive(Clone)]
pub struct Number {
    n: N,
}

// Invariant (keeps derived-style equality exact): PosInt holds every
// non-negative integer that fits u64, NegInt only negative ones, Big only
// integers outside [i64::MIN, u64::MAX] in canonical decimal form.
#[derive(Clone)]
enum N {
    PosInt(u64),
    NegInt(i64),
    Float(f64),
    Big(Box<str>),
}

impl Number {
    /// The bytes this number holds outside the value itself: the digits of an integer
    /// wider than 64 bits, nothing otherwise.
    pub fn heap_len(&self) -> usize {
        match &self.n {
            N::Big(digits) => digits.len(),
            _ => 0,
        }
    }

    /// True if the number is an integer representable as `i64`.
    pub fn is_i64(&self) -> bool {
        match self.n {
            N::PosInt(v) => v <= i64::MAX as u64,
            N::NegInt(_) => true,
            _ => false,
        }
    }

    /// True if the number is an integer representable as `u64`.
    pub fn is_u64(&self) -> bool {
        matches!(self.n, N::PosInt(_))
    }

    /// True if the number is a float (Python `float`), including NaN/inf.
    pub fn is_f64(&self) -> bool {
        matches!(self.n, N::Float(_))
    }

    /// True if the number is an integer of any size.
    pub fn is_integer(&self) -> bool {
        !self.is_f64()
    }

    /// The integer as `i64`, if it is one and fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self.n {
            N::PosInt(v) => i64::try_from(v).ok(),
            N::NegInt(v) => Some(v),
            _ => None,
        }
    }

    /// The integer as `u64`, if it is one and fits.
    pub fn as_u64(&self) -> Option<u64> {
        match self.n {
            N::PosInt(v) => Some(v),
            _ => None,
        }
    }

    /// The number as `f64` (integers are converted, possibly losing
    /// precision; huge integers may become infinite).
    pub fn as_f64(&self) -> Option<f64> {
        Some(match &self.n {
            N::PosInt(v) => *v as f64,
            N::NegInt(v) => *v as f64,
            N::Float(f) => *f,
            N::Big(s) => s.parse().ok()?,
        })
    }

    /// The integer as `i128`, if it is one and fits.
    pub fn as_i128(&self) -> Option<i128> {
        match &self.n {
            N::PosInt(v) => Some(*v as i128),
            N::NegInt(v) => Some(*v as i128),
            N::Float(_) => None,
            N::Big(s) => s.parse().ok(),
        }
    }

    /// The integer as `u128`, if it is one and fits.
    pub fn as_u128(&self) -> Option<u128> {
        match &self.n {
            N::PosInt(v) => Some(*v as u128),
            N::Big(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// A float number. NaN and infinities are accepted because Python's
    /// `json` reads and writes them (`NaN`, `Infinity`, `-Infinity`).
    pub fn from_f64(f: f64) -> Number {
        Number { n: N::Float(f) }
    }

    /// An integer from `i128`, stored exactly whatever its size.
    pub fn from_i128(i: i128) -> Number {
        if let Ok(u) = u64::try_from(i) {
            N::PosInt(u).into()
        } else if let Ok(v) = i64::try_from(i) {
            N::NegInt(v).into()
        } else {
            N::Big(itoa::Buffer::new().format(i).into()).into()
        }
    }

    /// An integer from `u128`, stored exactly whatever its size.
    pub fn from_u128(u: u128) -> Number {
        match u64::try_from(u) {
            Ok(v) => N::PosInt(v).into(),
            Err(_) => N::Big(itoa::Buffer::new().format(u).into()).into(),
        }
    }

    /// Builds an integer from canonical decimal digits (optional '-', no
    /// leading zeros) that are known not to fit 64 bits.
    fn big(digits: &str) -> Number {
        N::Big(digits.into()).into()
    }
}

impl From<N> for Number {
    fn from(n: N) -> Self {
        Number { n }
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        // Representations are canonical, so equal integers share a variant.
        match (&self.n, &other.n) {
            (N::PosInt(a), N::PosInt(b)) => a == b,
            (N::NegInt(a), N::NegInt(b)) => a == b,
            (N::Float(a), N::Float(b)) => a == b,
            (N::Big(a), N::Big(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Number {
    /// Python's `json.dumps` text for the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        write::write_number(self, &mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

macro_rules! number_from_unsigned {
    ($($t:ty)*) => {$(
        impl From<$t> for Number {
            fn from(v: $t) -> Self { N::PosInt(v as u64).into() }
        }
    )*};
}
macro_rules! number_from_signed {
    ($($t:ty)*) => {$(
        impl From<$t> for Number {
            fn from(v: $t) -> Self {
                if v < 0 { N::NegInt(v as i64).into() } else { N::PosInt(v as u64).into() }
            }
        }
    )*};
}
number_from_unsigned!(u8 u16 u32 u64 usize);
number_from_signed!(i8 i16 i32 i64 isize);

impl From<u128> for Number {
    fn from(v: u128) -> Self {
        Number::from_u128(v)
    }
}
impl From<i128> for Number {
    fn from(v: i128) -> Self {
        Number::from_i128(v)
    }
}
impl From<f64> for Number {
    fn from(v: f64) -> Self {
        Number::from_f64(v)
    }
}
impl From<f32> for Number {
    fn from(v: f32) -> Self {
        Number::from_f64(v as f64)
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.n {
            N::PosInt(v) => s.serialize_u64(*v),
            N::NegInt(v) => s.serialize_i64(*v),
            N::Float(f) => s.serialize_f64(*f),
            // Formats without big integers get the nearest 128-bit or float.
            N::Big(d) => {
                if let Ok(v) = d.parse::<u128>() {
                    s.serialize_u128(v)
                } else if let Ok(v) = d.parse::<i128>() {
                    s.serialize_i128(v)
                } else {
                    s.serialize_f64(d.parse().unwrap_or(f64::NAN))
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => Ok(n),
            other => Err(serde::de::Error::invalid_type(
                other.unexpected(),
                &"a number",
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// Map
// ---------------------------------------------------------------------------

/// Maps up to this size are searched linearly: sessions usually hold fewer
/// than ten keys, and comparing a few short strings is much cheaper than
/// SipHashing the key (about 200 instructions per lookup, measured in sessio).
const SCAN_MAX: usize = 8;

#[inline]
fn key_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes() == b.as_bytes()
}

/// A JSON object that keeps insertion order, like a Python dict.
///
/// Re-inserting an existing key replaces the value in place; removing a key
/// keeps the order of the others. Equality ignores order, as in Python.
///
/// ```
/// use sessio_django::{Map, Value};
///
/// let mut m = Map::new();
/// m.insert("b".into(), Value::from(1));
/// m.insert("a".into(), Value::from(2));
/// m.insert("b".into(), Value::from(3));
/// assert_eq!(m.keys().collect::<Vec<_>>(), ["b", "a"]);
/// assert_eq!(m["b"], 3);
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Map(IndexMap<String, Value>);

impl Map {
    /// An empty map.
    pub fn new() -> Self {
        Map(IndexMap::new())
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Map(IndexMap::with_capacity(n))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes all entries.
    pub fn clear(&mut self) {
        self.0.clear()
    }

    fn index_of(&self, key: &str) -> Option<usize> {
        if self.0.len() <= SCAN_MAX {
            self.0.keys().position(|k| key_eq(k, key))
        } else {
            self.0.get_index_of(key)
        }
    }

    /// The value for `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value> {
        if self.0.len() <= SCAN_MAX {
            self.0.iter().find(|(k, _)| key_eq(k, key)).map(|(_, v)| v)
        } else {
            self.0.get(key)
        }
    }

    /// The value for `key`, mutably.
    #[inline]
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        if self.0.len() <= SCAN_MAX {
            self.0
                .iter_mut()
                .find(|(k, _)| key_eq(k, key))
                .map(|(_, v)| v)
        } else {
            self.0.get_mut(key)
        }
    }

    /// The stored key and value for `key`.
    pub fn get_key_value(&self, key: &str) -> Option<(&String, &Value)> {
        self.index_of(key).and_then(|i| self.0.get_index(i))
    }

    /// True if `key` is present.
    #[inline]
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Inserts `value` under `key`, returning the previous value. An existing
    /// key keeps its position (Python dict semantics); a new key goes last.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        // Replacing in a small map needs no hash of the key.
        if self.0.len() <= SCAN_MAX {
            if let Some(slot) = self.get_mut(&key) {
                return Some(std::mem::replace(slot, value));
            }
        }
        self.0.insert(key, value)
    }

    /// Removes `key`, keeping the order of the remaining entries.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Removes `key` and returns the stored key and value, keeping order.
    pub fn remove_entry(&mut self, key: &str) -> Option<(String, Value)> {
        if self.0.len() <= SCAN_MAX {
            let i = self.index_of(key)?;
            self.0.shift_remove_index(i)
        } else {
            self.0.shift_remove_entry(key)
        }
    }

    /// Keeps only the entries for which `f` returns true, in order.
    pub fn retain(&mut self, mut f: impl FnMut(&String, &mut Value) -> bool) {
        self.0.retain(|k, v| f(k, v))
    }

    /// The first entry in insertion order.
    pub fn first(&self) -> Option<(&String, &Value)> {
        self.0.first()
    }

    /// The last entry in insertion order.
    pub fn last(&self) -> Option<(&String, &Value)> {
        self.0.last()
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.0.iter())
    }

    /// Entries in insertion order with mutable values.
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        IterMut(self.0.iter_mut())
    }

    /// Keys in insertion order.
    pub fn keys(&self) -> Keys<'_> {
        Keys(self.0.keys())
    }

    /// Values in insertion order.
    pub fn values(&self) -> Values<'_> {
        Values(self.0.values())
    }

    /// Mutable values in insertion order.
    pub fn values_mut(&mut self) -> ValuesMut<'_> {
        ValuesMut(self.0.values_mut())
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl Index<&str> for Map {
    type Output = Value;
    /// Panics if the key is missing, like `HashMap`.
    fn index(&self, key: &str) -> &Value {
        self.get(key)
            .unwrap_or_else(|| panic!("key {key:?} not in map"))
    }
}

impl IndexMut<&str> for Map {
    fn index_mut(&mut self, key: &str) -> &mut Value {
        self.get_mut(key)
            .unwrap_or_else(|| panic!("key {key:?} not in map"))
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Map::new();
        m.extend(iter);
        m
    }
}

impl<K: Into<String>, V: Into<Value>> Extend<(K, V)> for Map {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k.into(), v.into());
        }
    }
}

macro_rules! map_iter {
    ($(#[$doc:meta] $name:ident<$($lt:lifetime)?> = $inner:ty => $item:ty;)*) => {$(
        #[$doc]
        #[derive(Debug)]
        pub struct $name<$($lt)?>($inner);
        impl<$($lt)?> Iterator for $name<$($lt)?> {
            type Item = $item;
            #[inline]
            fn next(&mut self) -> Option<Self::Item> { self.0.next() }
            fn size_hint(&self) -> (usize, Option<usize>) { self.0.size_hint() }
        }
        impl<$($lt)?> DoubleEndedIterator for $name<$($lt)?> {
            fn next_back(&mut self) -> Option<Self::Item> { self.0.next_back() }
        }
        impl<$($lt)?> ExactSizeIterator for $name<$($lt)?> {}
        impl<$($lt)?> FusedIterator for $name<$($lt)?> {}
    )*};
}

map_iter! {
    /// Iterator over a [`Map`]'s entries, in order.
    Iter<'a> = indexmap::map::Iter<'a, String, Value> => (&'a String, &'a Value);
    /// Iterator over a [`Map`]'s entries with mutable values, in order.
    IterMut<'a> = indexmap::map::IterMut<'a, String, Value> => (&'a String, &'a mut Value);
    /// Iterator over a [`Map`]'s keys, in order.
    Keys<'a> = indexmap::map::Keys<'a, String, Value> => &'a String;
    /// Iterator over a [`Map`]'s values, in order.
    Values<'a> = indexmap::map::Values<'a, String, Value> => &'a Value;
    /// Iterator over a [`Map`]'s mutable values, in order.
    ValuesMut<'a> = indexmap::map::ValuesMut<'a, String, Value> => &'a mut Value;
    /// Owning iterator over a [`Map`]'s entries, in order.
    IntoIter<> = indexmap::map::IntoIter<String, Value> => (String, Value);
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = IntoIter;
    fn into_iter(self) -> IntoIter {
        IntoIter(self.0.into_iter())
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a String, &'a Value);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Map {
    type Item = (&'a String, &'a mut Value);
    type IntoIter = IterMut<'a>;
    fn into_iter(self) -> IterMut<'a> {
        self.iter_mut()
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Map {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(m) => Ok(m),
            other => Err(serde::de::Error::invalid_type(other.unexpected(), &"a map")),
        }
    }
}

impl fmt::Display for Map {
    /// Python's `json.dumps` text for the object.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&object_to_string(self))
    }
}

// ---------------------------------------------------------------------------
// Value
// ---------------------------------------------------------------------------

/// Any value Python's `json` module reads or writes.
///
/// ```
/// use sessio_django::{json, Value};
///
/// let v = json!({"user": 42, "cart": [1, 2]});
/// assert_eq!(v["user"], 42);
/// assert_eq!(v["missing"], Value::Null);
/// assert_eq!(v.to_string(), r#"{"user":42,"cart":[1,2]}"#);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// `null` / Python `None`.
    #[default]
    Null,
    /// `true`/`false`.
    Bool(bool),
    /// Integer of any size or float.
    Number(Number),
    /// A string.
    String(String),
    /// A list.
    Array(Vec<Value>),
    /// A dict with string keys, in insertion order.
    Object(Map),
}

static NULL: Value = Value::Null;

impl Value {
    /// True for `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// True for `Bool`.
    pub fn is_boolean(&self) -> bool {
        matches!(self, Value::Bool(_))
    }
    /// True for `Number`.
    pub fn is_number(&self) -> bool {
        matches!(self, Value::Number(_))
    }
    /// True for `String`.
    pub fn is_string(&self) -> bool {
        matches!(self, Value::String(_))
    }
    /// True for `Array`.
    pub fn is_array(&self) -> bool {
        matches!(self, Value::Array(_))
    }
    /// True for `Object`.
    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }
    /// True for an integer that fits `i64`.
    pub fn is_i64(&self) -> bool {
        self.as_number().is_some_and(Number::is_i64)
    }
    /// True for an integer that fits `u64`.
    pub fn is_u64(&self) -> bool {
        self.as_number().is_some_and(Number::is_u64)
    }
    /// True for a float.
    pub fn is_f64(&self) -> bool {
        self.as_number().is_some_and(Number::is_f64)
    }

    /// `Some(())` for `Null`.
    pub fn as_null(&self) -> Option<()> {
        self.is_null().then_some(())
    }
    /// The bool, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The number, if this is one.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }
    /// The integer as `i64`, if this is one that fits.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number()?.as_i64()
    }
    /// The integer as `u64`, if this is one that fits.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_number()?.as_u64()
    }
    /// The number as `f64` (integers converted), if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        self.as_number()?.as_f64()
    }
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    /// The array, if this is one.
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    /// The array mutably, if this is one.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
    /// The object mutably, if this is one.
    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
    /// The value under `key` if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?.get(key)
    }
    /// The value under `key` mutably if this is an object that has it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.as_object_mut()?.get_mut(key)
    }
    /// Takes the value out, leaving `Null`.
    pub fn take(&mut self) -> Value {
        std::mem::take(self)
    }

    /// What serde error messages call this value (`string "x"`, `map`, ...).
    pub(crate) fn unexpected(&self) -> serde::de::Unexpected<'_> {
        use serde::de::Unexpected as U;
        match self {
            Value::Null => U::Unit,
            Value::Bool(b) => U::Bool(*b),
            Value::Number(n) => match &n.n {
                N::PosInt(v) => U::Unsigned(*v),
                N::NegInt(v) => U::Signed(*v),
                N::Float(f) => U::Float(*f),
                N::Big(_) => U::Other("big integer"),
            },
            Value::String(s) => U::Str(s),
            Value::Array(_) => U::Seq,
            Value::Object(_) => U::Map,
        }
    }
}

impl Index<&str> for Value {
    type Output = Value;
    /// `Null` when this is not an object or the key is missing, like
    /// serde_json.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl IndexMut<&str> for Value {
    /// Like serde_json: `Null` becomes an empty object, a missing key is
    /// inserted as `Null`; panics if this is neither object nor null.
    fn index_mut(&mut self, key: &str) -> &mut Value {
        if self.is_null() {
            *self = Value::Object(Map::new());
        }
        match self {
            Value::Object(m) => {
                if !m.contains_key(key) {
                    m.insert(key.to_owned(), Value::Null);
                }
                m.get_mut(key).expect("just inserted")
            }
            _ => panic!("cannot index into a non-object value with {key:?}"),
        }
    }
}

impl Index<usize> for Value {
    type Output = Value;
    /// `Null` when this is not an array or the index is out of range.
    fn index(&self, i: usize) -> &Value {
        self.as_array().and_then(|a| a.get(i)).unwrap_or(&NULL)
    }
}

impl fmt::Display for Value {
    /// Python's `json.dumps(v, separators=(",", ":"))` text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_string(self))
    }
}

impl FromStr for Value {
    type Err = Error;
    fn from_str(s: &str) -> Result<Value, Error> {
        from_str(s)
    }
}

// ----- conversions into Value ------------------------------------------------

macro_rules! value_from_number {
    ($($t:ty)*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Number(v.into()) }
        }
    )*};
}
value_from_number!(u8 u16 u32 u64 usize u128 i8 i16 i32 i64 isize i128 f32 f64);

impl From<Number> for Value {
    fn from(n: Number) -> Self {
        Value::Number(n)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<char> for Value {
    fn from(c: char) -> Self {
        Value::String(c.to_string())
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl<'a> From<Cow<'a, str>> for Value {
    fn from(s: Cow<'a, str>) -> Self {
        Value::String(s.into_owned())
    }
}
impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Object(m)
    }
}
impl From<()> for Value {
    fn from((): ()) -> Self {
        Value::Null
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}
impl<T: Clone + Into<Value>> From<&[T]> for Value {
    fn from(v: &[T]) -> Self {
        Value::Array(v.iter().cloned().map(Into::into).collect())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
impl<T: Into<Value>> FromIterator<T> for Value {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Value::Array(iter.into_iter().map(Into::into).collect())
    }
}
impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Value {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Value::Object(iter.into_iter().collect())
    }
}

// ----- serde_json interop ------------------------------------------------

impl From<serde_json::Value> for Value {
    /// Keeps the serde_json map's iteration order (sorted unless some crate
    /// enabled `preserve_order`).
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(Number::from(&n)),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(m) => {
                Value::Object(m.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl From<&serde_json::Number> for Number {
    fn from(n: &serde_json::Number) -> Self {
        if let Some(u) = n.as_u64() {
            u.into()
        } else if let Some(i) = n.as_i64() {
            i.into()
        } else {
            // Another crate in the build may have turned on
            // `arbitrary_precision`; keep big integers exact then.
            let s = n.to_string();
            let digits = s.strip_prefix('-').unwrap_or(&s);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                Number::big(&s)
            } else {
                Number::from_f64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
    }
}

impl From<Value> for serde_json::Value {
    /// Lossy where serde_json (default features) cannot represent the value:
    /// integers beyond 64 bits become the nearest float, and non-finite
    /// floats (and integers beyond f64 range) become `null`, as
    /// `serde_json::Value::from(f64::NAN)` does. Object order is whatever
    /// `serde_json::Map` keeps (sorted by default).
    fn from(v: Value) -> Self {
        use serde_json::Value as J;
        match v {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(b),
            Value::Number(n) => match n.n {
                N::PosInt(u) => J::from(u),
                N::NegInt(i) => J::from(i),
                N::Float(f) => J::from(f),
                N::Big(d) => J::from(d.parse::<f64>().unwrap_or(f64::NAN)),
            },
            Value::String(s) => J::String(s),
            Value::Array(a) => J::Array(a.into_iter().map(J::from).collect()),
            Value::Object(m) => J::Object(m.into_iter().map(|(k, v)| (k, J::from(v))).collect()),
        }
    }
}

fn eq_json(a: &Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (Value::Null, J::Null) => true,
        (Value::Bool(x), J::Bool(y)) => x == y,
        (Value::Number(x), J::Number(y)) => *x == Number::from(y),
        (Value::String(x), J::String(y)) => x == y,
        (Value::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| eq_json(a, b))
        }
        (Value::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && y.iter()
                    .all(|(k, b)| x.get(k).is_some_and(|a| eq_json(a, b)))
        }
        _ => false,
    }
}

impl PartialEq<serde_json::Value> for Value {
    /// Structural equality: objects ignore order, numbers compare by value
    /// (an integer never equals a float, as in serde_json).
    fn eq(&self, other: &serde_json::Value) -> bool {
        eq_json(self, other)
    }
}

impl PartialEq<Value> for serde_json::Value {
    fn eq(&self, other: &Value) -> bool {
        eq_json(other, self)
    }
}

// ----- comparisons with primitives (as serde_json offers) ---------------

impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}
impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}
impl PartialEq<String> for Value {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == Some(other.as_str())
    }
}
impl PartialEq<Value> for str {
    fn eq(&self, other: &Value) -> bool {
        other == self
    }
}
impl PartialEq<Value> for &str {
    fn eq(&self, other: &Value) -> bool {
        other == *self
    }
}
impl PartialEq<Value> for String {
    fn eq(&self, other: &Value) -> bool {
        other == self
    }
}
impl PartialEq<bool> for Value {
    fn eq(&self, other: &bool) -> bool {
        self.as_bool() == Some(*other)
    }
}
impl PartialEq<Value> for bool {
    fn eq(&self, other: &Value) -> bool {
        other == self
    }
}

macro_rules! value_eq_num {
    ($($conv:ident -> $target:ty: $($t:ty)*;)*) => {$($(
        impl PartialEq<$t> for Value {
            fn eq(&self, other: &$t) -> bool {
                self.$conv().is_some_and(|v| v == *other as $target)
            }
        }
        impl PartialEq<Value> for $t {
            fn eq(&self, other: &Value) -> bool {
                other == self
            }
        }
    )*)*};
}
value_eq_num! {
    as_i64 -> i64: i8 i16 i32 i64 isize;
    as_u64 -> u64: u8 u16 u32 u64 usize;
    as_f64 -> f64: f32 f64;
}

// ----- serde ----------------------------------------------------------------

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => n.serialize(s),
            Value::String(v) => s.serialize_str(v),
            Value::Array(a) => s.collect_seq(a),
            Value::Object(m) => m.serialize(s),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i128>().prop_map(Value::from),
            any::<u128>().prop_map(Value::from),
            "-?[1-9][0-9]{0,60}".prop_map(|s| from_str(&s).unwrap()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::vec((any::<String>(), inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn write_then_parse_round_trips(v in arb_value()) {
            let text = to_string(&v);
            let back = from_str(&text).unwrap();
            prop_assert_eq!(&back, &v);
            // Same bytes again, so key order survived too.
            prop_assert_eq!(to_string(&back), text);
            // And serde's Value -> Value path accepts it.
            prop_assert!(from_value::<Value>(back).is_ok());
        }
    }

    #[test]
    fn map_small_and_large_lookup() {
        for n in [3usize, 8, 9, 40] {
            let mut m = Map::new();
            for i in 0..n {
                m.insert(format!("k{i}"), Value::from(i));
            }
            for i in 0..n {
                assert_eq!(m.get(&format!("k{i}")), Some(&Value::from(i)));
                assert!(m.contains_key(&format!("k{i}")));
            }
            assert!(m.get("nope").is_none());
            *m.get_mut("k1").unwrap() = Value::Null;
            assert_eq!(
                m.insert("k0".into(), Value::Bool(true)),
                Some(Value::from(0))
            );
            assert_eq!(m.keys().next().unwrap(), "k0");
            assert_eq!(m.remove("k1"), Some(Value::Null));
            assert_eq!(m.remove("k1"), None);
            let keys: Vec<_> = m.keys().cloned().collect();
            let want: Vec<_> = (0..n)
                .filter(|i| *i != 1)
                .map(|i| format!("k{i}"))
                .collect();
            assert_eq!(keys, want, "remove keeps order (n={n})");
        }
    }

    #[test]
    fn map_equality_ignores_order() {
        let a: Map = [("a", 1), ("b", 2)].into_iter().collect();
        let b: Map = [("b", 2), ("a", 1)].into_iter().collect();
        assert_eq!(a, b);
        assert_eq!(a.first().unwrap().0, "a");
        assert_eq!(b.last().unwrap().0, "a");
    }

    #[test]
    fn number_reprs() {
        assert_eq!(Number::from(-0i64), Number::from(0u8));
        assert!(Number::from(-1i8).is_i64());
        assert!(!Number::from(u64::MAX).is_i64());
        assert_eq!(Number::from_i128(-(1i128 << 63)).as_i64(), Some(i64::MIN));
        let b = Number::from_i128(-(1i128 << 63) - 1);
        assert_eq!(b.to_string(), "-9223372036854775809");
        assert_eq!(b.as_i128(), Some(-(1i128 << 63) - 1));
        assert_eq!(b.as_u128(), None);
        assert_eq!(b.as_f64(), Some(-9223372036854775809.0));
        assert_ne!(Number::from(1), Number::from(1.0));
        assert_eq!(format!("{:?}", Number::from(5)), "Number(5)");
    }

    #[test]
    fn value_index_and_eq() {
        let mut v = Value::Null;
        v["a"] = Value::from("x");
        v["b"]["c"] = Value::from(1);
        assert_eq!(v["a"], "x");
        assert_eq!(v["b"]["c"], 1);
        assert_eq!(v["zz"]["yy"], Value::Null);
        assert_eq!(Value::from(vec![1, 2])[1], 2u8);
        let (f, t) = (Value::from(1.5), Value::from(true));
        assert!(f == 1.5);
        assert!(1.5 == f);
        assert!(t == true);
        assert!(true == t);
        assert_eq!(v.to_string(), r#"{"a":"x","b":{"c":1}}"#);
    }

    #[test]
    fn serde_json_interop() {
        let ours = crate::json!({"z": [1, -2, 2.5, null, true, "s"], "a": {}});
        let theirs = serde_json::json!({"a": {}, "z": [1, -2, 2.5, null, true, "s"]});
        assert_eq!(ours, theirs);
        assert_eq!(theirs, ours);
        assert_ne!(
            ours,
            serde_json::json!({"a": {}, "z": [1.0, -2, 2.5, null, true, "s"]})
        );
        assert_eq!(serde_json::Value::from(ours.clone()), theirs);
        assert_eq!(Value::from(theirs), ours);
        let big = from_str("[18446744073709551616, NaN, 1e400]").unwrap();
        assert_eq!(
            serde_json::Value::from(big),
            serde_json::json!([18446744073709551616.0, null, null])
        );
    }
}
