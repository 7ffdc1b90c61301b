//! Where sessio gets the time from: the system clock, or a clock that tests control.

use std::fmt;
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

/// A source of the current time (UTC).
///
/// Every time-dependent decision in sessio (signing timestamps, expiry, `Max-Age`) asks the
/// configured clock, so tests can freeze or advance time with [`ManualClock`].
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until told to move.
///
/// ```
/// use sessio::clock::{Clock, ManualClock};
/// use time::Duration;
///
/// let clock = ManualClock::at_unix(1_700_000_000);
/// clock.advance(Duration::seconds(10));
/// assert_eq!(clock.now().unix_timestamp(), 1_700_000_010);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    /// A clock frozen at `now`.
    pub fn new(now: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(now)))
    }

    /// A clock frozen at a Unix timestamp (seconds).
    ///
    /// # Panics
    /// If the timestamp is outside the range `time` can represent.
    pub fn at_unix(seconds: i64) -> Self {
        Self::new(OffsetDateTime::from_unix_timestamp(seconds).expect("timestamp in range"))
    }

    /// Sets the time.
    pub fn set(&self, now: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Moves the time forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
