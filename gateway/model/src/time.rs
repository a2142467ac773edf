//! Timestamps: RFC 3339 "Date and Time on the Internet", as used by the CPIM
//! `DateTime` header (RFC 3862 §4.4).
//!
//! [`Timestamp`] counts microseconds since the Unix epoch in UTC. Parsing
//! accepts the RFC 3339 §5.6 `date-time` grammar with the liberal bits that
//! real clients need and that cannot change the instant meant:
//!
//! * `T`/`t` or a single space between date and time (RFC 3339 §5.6 NOTE),
//! * `Z`/`z` or a numeric offset `+hh:mm`/`-hh:mm`; `-00:00` (RFC 3339 §4.3,
//!   "offset unknown") is read as UTC,
//! * any number of fraction digits; digits past the microsecond are
//!   truncated, not rounded,
//! * a leap second `:60` (RFC 3339 §5.7) is read as the first instant of the
//!   next second, since the count of microseconds has no room for it.
//!
//! Formatting ([`Timestamp::to_rfc3339`]) always writes UTC with `Z` and the
//! shortest exact fraction: none for whole seconds, 3 digits for whole
//! milliseconds, else 6 digits. So `parse_rfc3339(to_rfc3339(t)) == t` for
//! every timestamp of years 0000 to 9999.
//!
//! The civil-date arithmetic is Howard Hinnant's `days_from_civil` /
//! `civil_from_days` (proleptic Gregorian calendar), which avoids a
//! dependency for a few lines of integer maths.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// An instant, in microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp {
    /// Microseconds since 1970-01-01T00:00:00Z.
    pub unix_micros: i64,
}

/// Error parsing an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// Happens when the text does not follow the RFC 3339 §5.6 grammar: a
    /// digit, separator or offset is missing or wrong at `offset`.
    #[error("invalid RFC 3339 date-time at byte {offset}: expected {expected}")]
    Syntax {
        /// Byte offset into the input.
        offset: usize,
        /// What the grammar wanted there.
        expected: &'static str,
    },
    /// Happens when a field is well-formed but out of its range (month 13,
    /// February 30, hour 24, offset minute 60).
    #[error("RFC 3339 {field} out of range at byte {offset}")]
    OutOfRange {
        /// The field: "month", "day", "hour", "minute", "second", "offset".
        field: &'static str,
        /// Byte offset of the field.
        offset: usize,
    },
}

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a count of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A cursor over the ASCII bytes of a date-time.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize, expected: &'static str) -> Result<u32, TimeError> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.s.get(self.pos) {
                Some(c @ b'0'..=b'9') => v = v * 10 + u32::from(c - b'0'),
                _ => {
                    return Err(TimeError::Syntax {
                        offset: self.pos,
                        expected,
                    });
                }
            }
            self.pos += 1;
        }
        Ok(v)
    }

    fn byte(&mut self, want: &[u8], expected: &'static str) -> Result<u8, TimeError> {
        match self.s.get(self.pos) {
            Some(c) if want.contains(c) => {
                self.pos += 1;
                Ok(*c)
            }
            _ => Err(TimeError::Syntax {
                offset: self.pos,
                expected,
            }),
        }
    }
}

fn check(ok: bool, field: &'static str, offset: usize) -> Result<(), TimeError> {
    if ok {
        Ok(())
    } else {
        Err(TimeError::OutOfRange { field, offset })
    }
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// From a `SystemTime`.
    pub fn from_system_time(t: SystemTime) -> Self {
        let micros = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Timestamp {
            unix_micros: micros,
        }
    }

    /// This instant plus `d`.
    pub fn plus(self, d: std::time::Duration) -> Self {
        let add = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Timestamp {
            unix_micros: self.unix_micros.saturating_add(add),
        }
    }

    /// From a UTC civil date and time; `None` when a field is out of range.
    pub fn from_civil(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        micros: u32,
    ) -> Option<Self> {
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
            || micros >= 1_000_000
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let secs = days
            .checked_mul(SECS_PER_DAY)?
            .checked_add(i64::from(hour * 3600 + minute * 60 + second))?;
        let unix_micros = secs
            .checked_mul(MICROS_PER_SEC)?
            .checked_add(i64::from(micros))?;
        Some(Timestamp { unix_micros })
    }

    /// Parses an RFC 3339 §5.6 `date-time` (see the module doc for what is
    /// accepted beyond the strict grammar).
    ///
    /// ```
    /// # use cpimgate_model::time::Timestamp;
    /// let t = Timestamp::parse_rfc3339("1996-12-19T16:39:57-08:00").unwrap();
    /// assert_eq!(t.to_rfc3339(), "1996-12-20T00:39:57Z");
    /// ```
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, TimeError> {
        let mut c = Cursor {
            s: s.as_bytes(),
            pos: 0,
        };
        let year = c.digits(4, "4-digit year")?;
        c.byte(b"-", "'-' after year")?;
        let at_month = c.pos;
        let month = c.digits(2, "2-digit month")?;
        check((1..=12).contains(&month), "month", at_month)?;
        c.byte(b"-", "'-' after month")?;
        let at_day = c.pos;
        let day = c.digits(2, "2-digit day")?;
        check(
            day >= 1 && day <= days_in_month(i64::from(year), month),
            "day",
            at_day,
        )?;
        c.byte(b"Tt ", "'T' between date and time")?;
        let at_hour = c.pos;
        let hour = c.digits(2, "2-digit hour")?;
        check(hour <= 23, "hour", at_hour)?;
        c.byte(b":", "':' after hour")?;
        let at_minute = c.pos;
        let minute = c.digits(2, "2-digit minute")?;
        check(minute <= 59, "minute", at_minute)?;
        c.byte(b":", "':' after minute")?;
        let at_second = c.pos;
        let second = c.digits(2, "2-digit second")?;
        // RFC 3339 §5.7: 60 only for a leap second.
        check(second <= 60, "second", at_second)?;

        let mut micros = 0u32;
        if c.s.get(c.pos) == Some(&b'.') {
            c.pos += 1;
            let start = c.pos;
            let mut scale = 100_000u32;
            while let Some(d @ b'0'..=b'9') = c.s.get(c.pos) {
                micros += u32::from(d - b'0') * scale;
                scale /= 10;
                c.pos += 1;
            }
            if c.pos == start {
                return Err(TimeError::Syntax {
                    offset: start,
                    expected: "fraction digits after '.'",
                });
            }
        }

        let at_offset = c.pos;
        let offset_secs: i64 = match c.byte(b"Zz+-", "'Z' or a '+hh:mm'/'-hh:mm' offset")? {
            b'+' | b'-' => {
                let sign = if c.s[at_offset] == b'-' { -1 } else { 1 };
                let oh = c.digits(2, "2-digit offset hour")?;
                c.byte(b":", "':' in offset")?;
                let om = c.digits(2, "2-digit offset minute")?;
                check(oh <= 23 && om <= 59, "offset", at_offset)?;
                sign * i64::from(oh * 3600 + om * 60)
            }
            _ => 0,
        };
        if c.pos != c.s.len() {
            return Err(TimeError::Syntax {
                offset: c.pos,
                expected: "end of date-time",
            });
        }

        let (second, leap) = if second == 60 { (59, 1) } else { (second, 0) };
        let local =
            Timestamp::from_civil(i64::from(year), month, day, hour, minute, second, micros)
                .ok_or(TimeError::OutOfRange {
                    field: "date",
                    offset: 0,
                })?;
        // Four-digit years keep every value far from i64 overflow.
        Ok(Timestamp {
            unix_micros: local.unix_micros + (leap - offset_secs) * MICROS_PER_SEC,
        })
    }

    /// Formats as RFC 3339 in UTC with `Z`, with the shortest exact fraction
    /// (none, milliseconds or microseconds).
    ///
    /// Years outside 0000..=9999 cannot be written in RFC 3339; they are
    /// clamped to the first or last instant of that range.
    pub fn to_rfc3339(&self) -> String {
        let mut out = String::with_capacity(27);
        self.write_rfc3339(&mut out);
        out
    }

    fn write_rfc3339(&self, out: &mut String) {
        use std::fmt::Write as _;
        const MIN: i64 = -62_167_219_200_000_000; // 0000-01-01T00:00:00Z
        const MAX: i64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z
        let t = self.unix_micros.clamp(MIN, MAX);
        let secs = t.div_euclid(MICROS_PER_SEC);
        let micros = t.rem_euclid(MICROS_PER_SEC);
        let days = secs.div_euclid(SECS_PER_DAY);
        let sod = secs.rem_euclid(SECS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let _ = write!(
            out,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        );
        if micros == 0 {
        } else if micros % 1000 == 0 {
            let _ = write!(out, ".{:03}", micros / 1000);
        } else {
            let _ = write!(out, ".{micros:06}");
        }
        out.push('Z');
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(27);
        self.write_rfc3339(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Timestamp {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse_rfc3339(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(s: &str) -> String {
        Timestamp::parse_rfc3339(s).unwrap().to_rfc3339()
    }

    #[test]
    fn rfc3339_section_5_8_examples() {
        assert_eq!(p("1985-04-12T23:20:50.52Z"), "1985-04-12T23:20:50.520Z");
        assert_eq!(p("1996-12-19T16:39:57-08:00"), "1996-12-20T00:39:57Z");
        // Leap seconds: both denote the same instant.
        assert_eq!(p("1990-12-31T23:59:60Z"), "1991-01-01T00:00:00Z");
        assert_eq!(p("1990-12-31T15:59:60-08:00"), "1991-01-01T00:00:00Z");
        assert_eq!(
            p("1937-01-01T12:00:27.87+00:20"),
            "1937-01-01T11:40:27.870Z"
        );
    }

    #[test]
    fn rfc3862_datetime_examples() {
        // §2.2, §4.4, §5.1
        assert_eq!(p("2001-02-02T10:48:54-05:00"), "2001-02-02T15:48:54Z");
        assert_eq!(p("2001-02-01T12:16:49-05:00"), "2001-02-01T17:16:49Z");
        assert_eq!(p("2000-12-13T13:40:00-08:00"), "2000-12-13T21:40:00Z");
        // RFC 7701 §9.3
        assert_eq!(p("2009-03-02T15:02:31-03:00"), "2009-03-02T18:02:31Z");
    }

    #[test]
    fn exact_values() {
        assert_eq!(
            Timestamp::parse_rfc3339("1970-01-01T00:00:00Z").unwrap(),
            Timestamp { unix_micros: 0 }
        );
        assert_eq!(
            Timestamp::parse_rfc3339("1969-12-31t23:59:59.999999z").unwrap(),
            Timestamp { unix_micros: -1 }
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2000-02-29 12:00:00.1234567899+00:00")
                .unwrap()
                .to_rfc3339(),
            "2000-02-29T12:00:00.123456Z"
        );
        assert_eq!(p("2024-06-01T00:00:00-00:00"), "2024-06-01T00:00:00Z");
    }

    #[test]
    fn errors_name_the_place() {
        use TimeError::*;
        let e = |s: &str| Timestamp::parse_rfc3339(s).unwrap_err();
        assert!(matches!(e(""), Syntax { offset: 0, .. }));
        assert!(matches!(
            e("2001-13-01T00:00:00Z"),
            OutOfRange {
                field: "month",
                offset: 5
            }
        ));
        assert!(matches!(
            e("2001-02-29T00:00:00Z"),
            OutOfRange {
                field: "day",
                offset: 8
            }
        ));
        assert!(matches!(
            e("2000-02-30T00:00:00Z"),
            OutOfRange { field: "day", .. }
        ));
        assert!(matches!(
            e("2001-02-01T24:00:00Z"),
            OutOfRange { field: "hour", .. }
        ));
        assert!(matches!(
            e("2001-02-01T12:00:61Z"),
            OutOfRange {
                field: "second",
                ..
            }
        ));
        assert!(matches!(
            e("2001-02-01T12:00:00"),
            Syntax { offset: 19, .. }
        ));
        assert!(matches!(
            e("2001-02-01T12:00:00.Z"),
            Syntax { offset: 20, .. }
        ));
        assert!(matches!(
            e("2001-02-01T12:00:00+0500"),
            Syntax { offset: 22, .. }
        ));
        assert!(matches!(
            e("2001-02-01T12:00:00+24:00"),
            OutOfRange {
                field: "offset",
                ..
            }
        ));
        assert!(matches!(
            e("2001-02-01T12:00:00Zjunk"),
            Syntax { offset: 20, .. }
        ));
        assert!(matches!(
            e("2001-02-01T12:00:00\u{e9}"),
            Syntax { offset: 19, .. }
        ));
    }

    #[test]
    fn civil_round_trip_over_four_centuries() {
        let mut day = days_from_civil(1900, 1, 1);
        let end = days_from_civil(2300, 1, 1);
        while day < end {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
            assert!(d >= 1 && d <= days_in_month(y, m));
            day += 1;
        }
    }

    #[test]
    fn format_parse_round_trip_and_clamp() {
        for micros in [
            0,
            1,
            999,
            1000,
            1_000_000,
            -1,
            -1_000_001,
            1_700_000_000_123_456,
            -62_167_219_200_000_000,
            253_402_300_799_999_999,
        ] {
            let t = Timestamp {
                unix_micros: micros,
            };
            assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
        }
        assert_eq!(
            Timestamp {
                unix_micros: i64::MIN
            }
            .to_rfc3339(),
            "0000-01-01T00:00:00Z"
        );
        assert_eq!(
            Timestamp {
                unix_micros: i64::MAX
            }
            .to_rfc3339(),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            Timestamp { unix_micros: 1500 }.to_string(),
            "1970-01-01T00:00:00.001500Z"
        );
    }
}
