//! Wall-clock time as the store writes it: Unix seconds for arithmetic (token
//! expiry), RFC 3339 in UTC for what leaves a component (`occurred_at`,
//! `expires_at`).

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};

/// Seconds since the Unix epoch, from the host's wall clock (`wasi:clocks`).
pub fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        // A clock set before 1970: negative, rather than a made-up zero.
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Milliseconds since the Unix epoch: for ordering records made within one second
/// (newest first), where [`now_unix`] would tie.
pub fn now_unix_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// `unix_secs` as RFC 3339 in UTC with whole seconds: `2026-11-26T02:40:00Z`.
///
/// Times beyond chrono's range (about 262,000 years either side of today) saturate
/// at its ends, so no input makes this fail.
pub fn rfc3339(unix_secs: i64) -> String {
    let time = DateTime::<Utc>::from_timestamp(unix_secs, 0).unwrap_or(if unix_secs < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    });
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The current time as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    rfc3339(now_unix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_whole_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_660_800), "2026-11-26T02:40:00Z");
        assert_eq!(rfc3339(1_795_660_800 - (2 * 3600 + 40 * 60)), "2026-11-26T00:00:00Z");
        // A leap day, and a time before the epoch.
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn out_of_range_saturates_instead_of_failing() {
        assert!(rfc3339(i64::MAX).starts_with('+'));
        assert!(rfc3339(i64::MIN).starts_with('-'));
    }

    #[test]
    fn now_is_a_plausible_present() {
        assert!(now_unix() > 1_700_000_000);
        assert!(now_rfc3339().ends_with('Z'));
    }
}
