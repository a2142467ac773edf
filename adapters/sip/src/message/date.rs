//! The SIP `Date` header (RFC 3261 §20.17): an RFC 1123 date, always GMT.
//!
//! ```text
//! Date          =  "Date" HCOLON SIP-date
//! SIP-date      =  rfc1123-date
//! rfc1123-date  =  wkday "," SP date1 SP time SP "GMT"
//! date1         =  2DIGIT SP month SP 4DIGIT
//! ```

use cpimgate_model::time::Timestamp;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Reads an RFC 1123 date as RFC 3261 §20.17 writes it
/// (`Sat, 13 Nov 2010 23:29:00 GMT`); the week day is not checked.
///
/// ```
/// use cpimgate_sip::message::parse_sip_date;
/// let t = parse_sip_date("Sat, 13 Nov 2010 23:29:00 GMT").unwrap();
/// assert_eq!(t.to_rfc3339(), "2010-11-13T23:29:00Z");
/// assert!(parse_sip_date("13 Nov 2010").is_none());
/// ```
pub fn parse_sip_date(s: &str) -> Option<Timestamp> {
    let (_, rest) = s.trim().split_once(',')?;
    let mut parts = rest.split_ascii_whitespace();
    let day: u32 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))?;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: u32 = hms.next()?.parse().ok()?;
    let m: u32 = hms.next()?.parse().ok()?;
    let sec: u32 = hms.next()?.parse().ok()?;
    if hms.next().is_some() || !parts.next()?.eq_ignore_ascii_case("GMT") || parts.next().is_some()
    {
        return None;
    }
    let month = u32::try_from(month).ok()? + 1;
    Timestamp::from_civil(year, month, day, h, m, sec, 0)
}

/// Writes `t` as an RFC 1123 date in GMT (RFC 3261 §20.17).
///
/// ```
/// use cpimgate_model::time::Timestamp;
/// use cpimgate_sip::message::format_sip_date;
/// let t = Timestamp::parse_rfc3339("2010-11-13T23:29:00Z").unwrap();
/// assert_eq!(format_sip_date(t), "Sat, 13 Nov 2010 23:29:00 GMT");
/// ```
pub fn format_sip_date(t: Timestamp) -> String {
    // RFC 3339 gives the civil fields: YYYY-MM-DDTHH:MM:SS[.frac]Z.
    let iso = t.to_rfc3339();
    let days = t.unix_micros.div_euclid(86_400_000_000);
    let wkday = WEEKDAYS
        .get(usize::try_from(days.rem_euclid(7)).unwrap_or(0))
        .copied()
        .unwrap_or("Thu");
    let month = iso
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{wkday}, {} {month} {} {} GMT",
        iso.get(8..10).unwrap_or("01"),
        iso.get(..4).unwrap_or("1970"),
        iso.get(11..19).unwrap_or("00:00:00"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip() {
        // RFC 3261 §20.17 example.
        let t = parse_sip_date("Sat, 13 Nov 2010 23:29:00 GMT").unwrap();
        assert_eq!(format_sip_date(t), "Sat, 13 Nov 2010 23:29:00 GMT");
        let t = Timestamp::parse_rfc3339("1970-01-01T00:00:00Z").unwrap();
        assert_eq!(format_sip_date(t), "Thu, 01 Jan 1970 00:00:00 GMT");
        let t = Timestamp::parse_rfc3339("2026-12-04T16:13:29Z").unwrap();
        assert_eq!(format_sip_date(t), "Fri, 04 Dec 2026 16:13:29 GMT");
    }

    #[test]
    fn refuses_other_forms() {
        for s in [
            "",
            "Sat, 13 Nov 2010 23:29:00",
            "Sat, 13 Foo 2010 23:29:00 GMT",
            "Sat, 32 Nov 2010 23:29:00 GMT",
            "Sat, 13 Nov 2010 23:29 GMT",
            "Sat, 13 Nov 2010 23:29:00 GMT extra",
        ] {
            assert!(parse_sip_date(s).is_none(), "{s}");
        }
    }
}
