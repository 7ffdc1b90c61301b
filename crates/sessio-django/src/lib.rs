//! # sessio-django
//!
//! Django's session formats, byte for byte, with no I/O: what a Rust program needs to read
//! and write the sessions a Django application reads and writes.
//!
//! * [`signing`]: `django.core.signing` (HMAC-SHA256 `TimestampSigner`, salts, key
//!   fallbacks, zlib compression with a size limit);
//! * [`value`]: session data as Python's `json` sees it (ordered keys, exact integers),
//!   read and written exactly as `json.loads` and `json.dumps` do;
//! * [`codec`]: `SessionBase.encode`/`decode` of the `session_data` server stores keep,
//!   with Django's "corrupt data is an empty session" rule;
//! * [`expiry`]: Django's expiry rules (`set_expiry`, `get_expiry_age`, `get_expiry_date`);
//! * [`cookie`]: reading a cookie out of a `Cookie` header as Django does, and cookie dates;
//! * [`keys`]: the keys Django and sessio reserve in a session's data;
//! * [`data`]: the session dictionary.
//!
//! It is the bottom layer of sessio: no async runtime, no HTTP types. `sessio sign` and
//! `sessio inspect` and the fuzz targets use it alone.
//!
//! ```
//! use sessio_django::signing::{Signer, SIGNED_COOKIES_SALT};
//!
//! let signer = Signer::new(b"test-secret", &[], SIGNED_COOKIES_SALT);
//! let data = sessio_django::value::object_from_str(r#"{"user_id":42}"#).unwrap();
//! let cookie = signer.dumps(&data, 1_700_000_000, true);
//! assert_eq!(signer.loads(&cookie, Some((1_700_000_000, 60))).unwrap().data, data);
//! ```

#![warn(missing_docs)]

pub mod codec;
pub mod cookie;
pub mod data;
mod deflate;
pub mod expiry;
pub mod keys;
pub mod signing;
pub mod value;
pub mod verified;

pub use data::SessionData;
pub use value::{from_value, to_value, Map, Number, Value};
