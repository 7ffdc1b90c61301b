//! Nothing to use: this crate's tests check that adding sessio to an application leaves
//! serde_json behaving as the application expects (no crate-wide features turned on).
