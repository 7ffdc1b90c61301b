//! A session's data: a dictionary in insertion order, as Django's.

/// A session's data: a JSON object whose keys keep their insertion order (as a Python
/// dict's) and whose integers keep every digit (as Python's ints).
///
/// ```
/// use sessio_django::{SessionData, Value};
/// let mut data = SessionData::new();
/// data.insert("cart".into(), sessio_django::json!([1, 2]));
/// assert_eq!(data.get("cart"), Some(&sessio_django::json!([1, 2])));
/// ```
pub type SessionData = crate::value::Map;
