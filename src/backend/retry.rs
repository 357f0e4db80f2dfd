//! How long to wait before asking an overloaded or flaky server again.
//!
//! Kept apart from the HTTP code so the arithmetic (exponential growth, caps, jitter,
//! `Retry-After` in both of its forms) is unit-tested without a server.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest computed backoff: past this, waiting longer only hides an outage.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Longest `Retry-After` honoured: a server asking for more is effectively down, and a test
/// run should fail rather than hang.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Backoff before retry number `retry` (1 for the first retry).
///
/// "Equal jitter": half the exponential delay is fixed and half random. The random half
/// keeps a sweep's many concurrent requests from retrying in lockstep against a server that
/// just shed them all at once; the fixed half guarantees the wait actually grows.
pub fn backoff_delay(base: Duration, retry: u32) -> Duration {
    let exponent = retry.saturating_sub(1).min(31);
    let full = base.saturating_mul(1u32 << exponent).min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(unit_random())
}

/// A number in `[0, 1)` that differs between calls. Jitter needs spread, not quality, and
/// this avoids pulling an RNG into the request path: `RandomState` is seeded from the OS
/// once per thread and its keys change on every `new()`.
fn unit_random() -> f64 {
    let x = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses a `Retry-After` value: delay seconds (fractions tolerated) or an IMF-fixdate such
/// as `Wed, 21 Oct 2015 07:28:00 GMT`. The result is capped at [`MAX_RETRY_AFTER`]; a date
/// in the past means "now". Anything else is ignored (`None`) so the normal backoff applies.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = value.parse().ok()?;
        // Only digits and dots got here, so the sole failure left is overflow.
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    } else {
        let at = UNIX_EPOCH + Duration::from_secs(parse_imf_fixdate(value)?);
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// Seconds since the Unix epoch of an IMF-fixdate (RFC 9110 section 5.6.7), the only date
/// form servers are required to send.
fn parse_imf_fixdate(s: &str) -> Option<u64> {
    let mut parts = s.split_ascii_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let day: u32 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let (h, m, sec): (u64, u64, u64) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    if parts.next()? != "GMT" || parts.next().is_some() || hms.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|&n| n == month)? as u32 + 1;
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds() {
        let base = Duration::from_millis(100);
        for retry in 1..=4u32 {
            let full = base * (1 << (retry - 1));
            for _ in 0..50 {
                let d = backoff_delay(base, retry);
                assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?}");
            }
        }
    }

    #[test]
    fn backoff_is_capped_and_never_overflows() {
        for retry in [10, 31, 32, 1000, u32::MAX] {
            let d = backoff_delay(Duration::from_secs(1), retry);
            assert!(d >= MAX_BACKOFF / 2 && d <= MAX_BACKOFF, "{d:?}");
        }
        assert_eq!(backoff_delay(Duration::ZERO, 5), Duration::ZERO);
        assert!(backoff_delay(Duration::MAX, 1) <= MAX_BACKOFF);
    }

    #[test]
    fn jitter_varies() {
        let base = Duration::from_secs(1);
        let first = backoff_delay(base, 3);
        assert!((0..20).any(|_| backoff_delay(base, 3) != first));
    }

    #[test]
    fn retry_after_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("3600", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        for bad in ["", "-1", "soon", "1s", "..", "1e3", "NaN", "inf"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_http_date() {
        // 1445412480 = Wed, 21 Oct 2015 07:28:00 GMT.
        let at = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(parse_imf_fixdate(date), Some(1_445_412_480));
        let now = at - Duration::from_secs(7);
        assert_eq!(parse_retry_after(date, now), Some(Duration::from_secs(7)));
        let later = at + Duration::from_secs(7);
        assert_eq!(parse_retry_after(date, later), Some(Duration::ZERO));
        assert_eq!(
            parse_imf_fixdate("Thu, 29 Feb 2024 23:59:59 GMT"),
            Some(1_709_251_199)
        );
        assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        for bad in [
            "Wed, 21 Oct 2015 07:28:00 UTC",
            "Wed 21 Oct 2015 07:28:00 GMT",
            "Wed, 21 Foo 2015 07:28:00 GMT",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 24:28:00 GMT",
            "Wed, 21 Oct 2015 07:28 GMT",
            "Wed, 21 Oct 2015 07:28:00:00 GMT",
            "Wed, 21 Oct 2015 07:28:00 GMT extra",
            "Wed, 21 Oct 1969 07:28:00 GMT",
        ] {
            assert_eq!(parse_imf_fixdate(bad), None, "{bad:?}");
        }
    }
}
