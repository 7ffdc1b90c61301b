//! The `json!` macro, building a [`Value`](crate::value::Value) whose objects
//! keep the literal's key order.
//!
//! This follows serde_json's `json!`/`json_internal!` (MIT OR Apache-2.0),
//! trimmed of its rules that only improve compile error messages.

/// Builds a [`Value`](crate::value::Value) from JSON-like syntax, exactly like
/// `serde_json::json!`, except that object keys keep their literal order.
///
/// Any `Serialize` expression can appear as a value; keys may be any
/// expression that converts `Into<String>`.
///
/// ```
/// use sessio_django::json;
///
/// let who = "ann";
/// let v = json!({"b": 1, "a": [true, null, who], "c": {"d": 2.5},});
/// assert_eq!(v.to_string(), r#"{"b":1,"a":[true,null,"ann"],"c":{"d":2.5}}"#);
/// ```
#[macro_export]
macro_rules! json {
    ($($json:tt)+) => {
        $crate::json_internal_sessio!($($json)+)
    };
}

#[macro_export]
#[doc(hidden)]
macro_rules! json_internal_sessio {
    // ----- array elements: munch into [$($elems,)*] -----
    (@array [$($elems:expr,)*]) => {
        ::std::vec![$($elems,)*]
    };
    (@array [$($elems:expr),*]) => {
        ::std::vec![$($elems),*]
    };
    (@array [$($elems:expr,)*] null $($rest:tt)*) => {
        $crate::json_internal_sessio!(@array [$($elems,)* $crate::json_internal_sessio!(null)] $($rest)*)
    };
    (@array [$($elems:expr,)*] true $($rest:tt)*) => {
        $crate::json_internal_sessio!(@array [$($elems,)* $crate::json_internal_sessio!(true)] $($rest)*)
    };
    (@array [$($elems:expr,)*] false $($rest:tt)*) => {
        $crate::json_internal_sessio!(@array [$($elems,)* $crate::json_internal_sessio!(false)] $($rest)*)
    };
    (@array [$($elems:expr,)*] [$($array:tt)*] $($rest:tt)*) => {
        $crate::json_internal_sessio!(@array [$($elems,)* $crate::json_internal_sessio!([$($array)*])] $($rest)*)
    };
    (@array [$($elems:expr,)*] {$($map:tt)*} $($rest:tt)*) => {
        $crate::json_internal_sessio!(@array [$($elems,)* $crate::json_internal_sessio!({$($map)*})] $($rest)*)
    };
    (@array [$($elems:expr,)*] $next:expr, $($rest:tt)*) => {
        $crate::json_internal_sessio!(@array [$($elems,)* $crate::json_internal_sessio!($next),] $($rest)*)
    };
    (@array [$($elems:expr,)*] $last:expr) => {
        $crate::json_internal_sessio!(@array [$($elems,)* $crate::json_internal_sessio!($last)])
    };
    (@array [$($elems:expr),*] , $($rest:tt)*) => {
        $crate::json_internal_sessio!(@array [$($elems,)*] $($rest)*)
    };

    // ----- object entries: (@object map (key tts) (rest tts) (copy)) -----
    (@object $object:ident () () ()) => {};
    (@object $object:ident [$($key:tt)+] ($value:expr) , $($rest:tt)*) => {
        let _ = $object.insert(($($key)+).into(), $value);
        $crate::json_internal_sessio!(@object $object () ($($rest)*) ($($rest)*));
    };
    (@object $object:ident [$($key:tt)+] ($value:expr)) => {
        let _ = $object.insert(($($key)+).into(), $value);
    };
    (@object $object:ident ($($key:tt)+) (: null $($rest:tt)*) $copy:tt) => {
        $crate::json_internal_sessio!(@object $object [$($key)+] ($crate::json_internal_sessio!(null)) $($rest)*);
    };
    (@object $object:ident ($($key:tt)+) (: true $($rest:tt)*) $copy:tt) => {
        $crate::json_internal_sessio!(@object $object [$($key)+] ($crate::json_internal_sessio!(true)) $($rest)*);
    };
    (@object $object:ident ($($key:tt)+) (: false $($rest:tt)*) $copy:tt) => {
        $crate::json_internal_sessio!(@object $object [$($key)+] ($crate::json_internal_sessio!(false)) $($rest)*);
    };
    (@object $object:ident ($($key:tt)+) (: [$($array:tt)*] $($rest:tt)*) $copy:tt) => {
        $crate::json_internal_sessio!(@object $object [$($key)+] ($crate::json_internal_sessio!([$($array)*])) $($rest)*);
    };
    (@object $object:ident ($($key:tt)+) (: {$($map:tt)*} $($rest:tt)*) $copy:tt) => {
        $crate::json_internal_sessio!(@object $object [$($key)+] ($crate::json_internal_sessio!({$($map)*})) $($rest)*);
    };
    (@object $object:ident ($($key:tt)+) (: $value:expr , $($rest:tt)*) $copy:tt) => {
        $crate::json_internal_sessio!(@object $object [$($key)+] ($crate::json_internal_sessio!($value)) , $($rest)*);
    };
    (@object $object:ident ($($key:tt)+) (: $value:expr) $copy:tt) => {
        $crate::json_internal_sessio!(@object $object [$($key)+] ($crate::json_internal_sessio!($value)));
    };
    // A parenthesized key avoids clippy's double_parens.
    (@object $object:ident () (($key:expr) : $($rest:tt)*) $copy:tt) => {
        $crate::json_internal_sessio!(@object $object ($key) (: $($rest)*) (: $($rest)*));
    };
    // Munch one token into the current key.
    (@object $object:ident ($($key:tt)*) ($tt:tt $($rest:tt)*) $copy:tt) => {
        $crate::json_internal_sessio!(@object $object ($($key)* $tt) ($($rest)*) ($($rest)*));
    };

    // ----- entry points -----
    (null) => { $crate::value::Value::Null };
    (true) => { $crate::value::Value::Bool(true) };
    (false) => { $crate::value::Value::Bool(false) };
    ([]) => { $crate::value::Value::Array(::std::vec![]) };
    ([ $($tt:tt)+ ]) => {
        $crate::value::Value::Array($crate::json_internal_sessio!(@array [] $($tt)+))
    };
    ({}) => { $crate::value::Value::Object($crate::value::Map::new()) };
    ({ $($tt:tt)+ }) => {
        $crate::value::Value::Object({
            let mut object = $crate::value::Map::new();
            $crate::json_internal_sessio!(@object object () ($($tt)+) ($($tt)+));
            object
        })
    };
    // Any Serialize expression; must stay the last rule.
    ($other:expr) => {
        $crate::value::to_value(&$other).unwrap()
    };
}

#[cfg(test)]
mod tests {
    use crate::value::{from_str, Value};

    #[test]
    fn keeps_literal_order() {
        let some_var = vec![1u8, 2];
        let v = json!({"b":1,"a":[true,null,"x"], "c": some_var});
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["b", "a", "c"]);
        assert_eq!(
            v,
            from_str(r#"{"b":1,"a":[true,null,"x"],"c":[1,2]}"#).unwrap()
        );
    }

    #[test]
    fn syntax_forms() {
        let k = String::from("dyn");
        let v = json!({
            "nested": {"deep": [[], {}, [null, false]]},
            (k): -1,
            "expr": 1 + 2,
            "neg": -2.5,
            "big": u128::MAX,
            "opt": None::<u8>,
        });
        assert_eq!(
            v.to_string(),
            r#"{"nested":{"deep":[[],{},[null,false]]},"dyn":-1,"expr":3,"neg":-2.5,"big":340282366920938463463374607431768211455,"opt":null}"#
        );
        assert_eq!(json!([1, "a",]), from_str(r#"[1,"a"]"#).unwrap());
        assert_eq!(json!(null), Value::Null);
        assert_eq!(json!("s"), "s");
        assert_eq!(json!({}), Value::Object(Default::default()));
        assert_eq!(json!([]), Value::Array(vec![]));
    }
}
