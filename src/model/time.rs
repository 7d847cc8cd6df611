//! Time as the outputs write it: ISO 8601 UTC with µs, and seconds with µs. Shared by the file writer and the
//! printers, so it sits with the data types.

use std::fmt::Write;

/// A timestamp in ns as ISO 8601 UTC with µs (`2024-03-01T12:00:00.123456Z`).
pub fn iso_time(ns: i64) -> String {
    let mut s = String::with_capacity(27);
    push_iso_time(&mut s, ns);
    s
}

/// [`iso_time`], appended to `out`.
pub fn push_iso_time(out: &mut String, ns: i64) {
    let secs = ns.div_euclid(1_000_000_000);
    let us = ns.rem_euclid(1_000_000_000) / 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    if !(0..=9999).contains(&y) {
        let _ = write!(
            out,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{us:06}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        );
        return;
    }
    // The common case without the formatting machinery: a million rows format a million times.
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut b[0..4], y as u64);
    put_digits(&mut b[5..7], m as u64);
    put_digits(&mut b[8..10], d as u64);
    put_digits(&mut b[11..13], (rem / 3600) as u64);
    put_digits(&mut b[14..16], (rem % 3600 / 60) as u64);
    put_digits(&mut b[17..19], (rem % 60) as u64);
    put_digits(&mut b[20..26], us as u64);
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// `n` in decimal, zero-padded to fill `dst` (the caller makes `dst` wide enough).
pub fn put_digits(dst: &mut [u8], mut n: u64) {
    for slot in dst.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

pub fn seconds(ns: i64) -> String {
    let mut s = String::new();
    push_seconds(&mut s, ns);
    s
}

/// [`seconds`], appended to `out`.
pub fn push_seconds(out: &mut String, ns: i64) {
    if ns < 0 {
        let _ = write!(
            out,
            "{}.{:06}",
            ns / 1_000_000_000,
            (ns % 1_000_000_000) / 1000
        );
        return;
    }
    push_u64(out, (ns / 1_000_000_000) as u64);
    let mut frac = *b".000000";
    put_digits(&mut frac[1..], ((ns % 1_000_000_000) / 1000) as u64);
    out.push_str(std::str::from_utf8(&frac).unwrap_or_default());
}

pub fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}
