//! Django's `SessionBase.encode` and `decode`: the `session_data` a server store keeps.

use std::fmt;
use std::sync::Arc;

use crate::data::SessionData;
use crate::signing::{Signer, SigningError};

/// Encodes and decodes the `session_data` of server stores, as Django's `SessionBase`
/// does: the session dictionary signed (salt
/// [`STORE_SALT`](crate::signing::STORE_SALT)), compressed when that saves bytes, and on
/// the way back Django's rule that data which does not verify or parse is an empty session
/// (with a warning), never an error.
///
/// Every server store uses this one codec, so Django's format lives in one place.
///
/// ```
/// use sessio_django::{codec::StoreCodec, signing::{Signer, STORE_SALT}, data::SessionData};
///
/// let codec = StoreCodec::new(Signer::new(b"secret", &[], STORE_SALT));
/// let mut data = SessionData::new();
/// data.insert("user_id".into(), 42.into());
/// let text = codec.encode(&data, 1_700_000_000);
/// assert_eq!(*codec.decode(&text).unwrap().data, data);
/// // Corrupt data is an empty session.
/// assert!(codec.decode_or_empty(Some("garbage"), &"sess").data.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct StoreCodec {
    signer: Signer,
    compress: bool,
}

/// `session_data` that passed [`StoreCodec::decode`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The session's data, shared with the signer's memory of values it verified.
    pub data: Arc<SessionData>,
    /// When it was written (Unix seconds); `None` for corrupt data read as empty.
    pub signed_at: Option<i64>,
    /// True when a fallback secret key verified it: the store should write it again under
    /// the current key.
    pub stale_key: bool,
}

impl StoreCodec {
    /// Django's codec: compressed with zlib whenever that saves at least two bytes.
    pub fn new(signer: Signer) -> Self {
        Self {
            signer,
            compress: true,
        }
    }

    /// Never compresses (values that only sessio reads; compressed ones still decode).
    /// For session-sized data zlib costs more CPU than the bytes it saves are worth.
    pub fn without_compression(mut self) -> Self {
        self.compress = false;
        self
    }

    /// The signer.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// `session_data` for `data`, written at `now` (Unix seconds).
    pub fn encode(&self, data: &SessionData, now: i64) -> String {
        self.signer.dumps(data, now, self.compress)
    }

    /// As [`encode`](Self::encode), for data already shared: the signer remembers a
    /// reference to it instead of a copy, so the next load of this value is a lookup.
    pub fn encode_shared(&self, data: &Arc<SessionData>, now: i64) -> String {
        self.signer.dumps_shared(data, now, self.compress)
    }

    /// The data in `text`, or why it is refused.
    pub fn decode(&self, text: &str) -> Result<Decoded, SigningError> {
        let unsigned = self.signer.loads_shared(text, None)?;
        Ok(Decoded {
            data: unsigned.data,
            signed_at: Some(unsigned.timestamp),
            stale_key: unsigned.key_index > 0,
        })
    }

    /// Django's `decode`: the data in `text`, or an empty session (with a warning naming
    /// `session`) when it is missing, does not verify or does not parse.
    pub fn decode_or_empty(&self, text: Option<&str>, session: &dyn fmt::Display) -> Decoded {
        let Some(text) = text else {
            tracing::warn!(%session, "Session data corrupted: session_data is not text");
            return Decoded::empty();
        };
        self.decode(text).unwrap_or_else(|error| {
            tracing::warn!(%session, %error, "Session data corrupted");
            Decoded::empty()
        })
    }
}

impl Decoded {
    fn empty() -> Self {
        Self {
            data: Arc::default(),
            signed_at: None,
            stale_key: false,
        }
    }
}
