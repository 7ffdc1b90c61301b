//! Idle and absolute session lifetimes, kept inside the session data (so cookie engines
//! carry them in the signed or encrypted payload) and enforced on every load.

use crate::config::Config;
use crate::engine::SessionData;
use crate::Value;

pub(super) use sessio_django::keys::{ACTIVE as ACTIVE_KEY, CREATED as CREATED_KEY};

fn secs(data: &SessionData, key: &str) -> Option<i64> {
    data.get(key).and_then(Value::as_i64)
}

/// A limit in whole seconds; saturating, though the configuration bounds it far below.
fn limit_secs(t: std::time::Duration) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

/// Whether either limit is set (only then do sessions carry markers, or need the time).
pub(super) fn enabled(config: &Config) -> bool {
    config.absolute_timeout().is_some() || config.idle_timeout().is_some()
}

/// Whether the session is past its absolute or idle limit at `now`.
pub(super) fn timed_out(config: &Config, data: &SessionData, now: i64) -> bool {
    deadline(config, data, now).is_some_and(|d| d <= now)
}

/// The earliest of the absolute and idle deadlines, when either limit is set.
pub(super) fn deadline(config: &Config, data: &SessionData, now: i64) -> Option<i64> {
    let absolute = config.absolute_timeout().map(|t| {
        secs(data, CREATED_KEY)
            .unwrap_or(now)
            .saturating_add(limit_secs(t))
    });
    let idle = config.idle_timeout().map(|t| {
        secs(data, ACTIVE_KEY)
            .unwrap_or(now)
            .saturating_add(limit_secs(t))
    });
    match (absolute, idle) {
        (Some(a), Some(i)) => Some(a.min(i)),
        (a, i) => a.or(i),
    }
}

/// Whether to record activity now (at most every tenth of the idle limit).
pub(super) fn needs_activity_stamp(config: &Config, data: Option<&SessionData>, now: i64) -> bool {
    let (Some(idle), Some(data)) = (config.idle_timeout(), data) else {
        return false;
    };
    let step = (limit_secs(idle) / 10).max(1);
    // Stored markers are data: a far-off one must not overflow the subtraction.
    secs(data, ACTIVE_KEY).is_none_or(|active| now.saturating_sub(active) >= step)
}

/// Adds the markers a limited session needs; returns the keys it wrote.
pub(super) fn stamp(config: &Config, data: &mut SessionData, now: i64) -> Vec<&'static str> {
    let mut written = Vec::new();
    if config.absolute_timeout().is_some() && secs(data, CREATED_KEY).is_none() {
        data.insert(CREATED_KEY.into(), Value::from(now));
        written.push(CREATED_KEY);
    }
    if config.idle_timeout().is_some() && secs(data, ACTIVE_KEY).is_none() {
        data.insert(ACTIVE_KEY.into(), Value::from(now));
        written.push(ACTIVE_KEY);
    }
    written
}
