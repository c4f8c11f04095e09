//! rpm's version comparison in plain Rust (no librpm): `rpmvercmp` for version and release
//! strings, and `E:V-R` comparison as `rpmverParse` + `rpmverCmp` do it. The daemon compares
//! versions without loading librpm; the tests check these against librpm's own functions
//! ([`crate::librpm_vercmp`], [`crate::librpm_evr_cmp`]).

use std::cmp::Ordering;

/// Compares two version or release strings like librpm's `rpmvercmp`: separators other than
/// `~` and `^` only split segments; `~` sorts before anything (even the end); `^` sorts after
/// the end but before any other segment; digit runs compare numerically (leading zeros
/// ignored) and beat letter runs; letter runs compare bytewise.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    // C strings end at the first NUL, as they would for rpm itself.
    let a = a.split('\0').next().unwrap_or_default().as_bytes();
    let b = b.split('\0').next().unwrap_or_default().as_bytes();
    if a == b {
        return Ordering::Equal;
    }
    let is_sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while i < a.len() && is_sep(a[i]) {
            i += 1;
        }
        while j < b.len() && is_sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else {
            break;
        };
        let numeric = ca.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let end_a = i + a[i..].iter().take_while(|c| class(c)).count();
        let end_b = j + b[j..].iter().take_while(|c| class(c)).count();
        if end_b == j {
            // Segments of different types: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (mut sa, mut sb) = (&a[i..end_a], &b[j..end_b]);
        if numeric {
            while sa.first() == Some(&b'0') {
                sa = &sa[1..];
            }
            while sb.first() == Some(&b'0') {
                sb = &sb[1..];
            }
            match sa.len().cmp(&sb.len()) {
                Ordering::Equal => {}
                longer => return longer,
            }
        }
        match sa.cmp(sb) {
            Ordering::Equal => {}
            other => return other,
        }
        i = end_a;
        j = end_b;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// `E:V-R` split as `rpmverParse` splits it: the epoch is the leading digits before a `:`
/// (empty counts as `0`; none means none), the release what follows the last `-` after it.
fn parse(evr: &str) -> Option<(Option<&str>, &str, Option<&str>)> {
    let evr = evr.split('\0').next().unwrap_or_default();
    if evr.is_empty() {
        return None;
    }
    let digits = evr.bytes().take_while(u8::is_ascii_digit).count();
    let (epoch, rest) = match evr[digits..].strip_prefix(':') {
        Some(rest) => (Some(if digits == 0 { "0" } else { &evr[..digits] }), rest),
        None => (None, evr),
    };
    let (version, release) = match rest.rfind('-') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    Some((epoch, version, release))
}

/// Compares `E:V-R` strings like rpm 4.18 (`rpmverParse` + `rpmverCmp`): the epoch (missing
/// = 0), then the version, then the release, where a missing release sorts before any
/// (`1.0` < `1.0-1`). A string rpm cannot parse (the empty one) sorts first.
pub fn evr_cmp(a: &str, b: &str) -> Ordering {
    let (Some((ea, va, ra)), Some((eb, vb, rb))) = (parse(a), parse(b)) else {
        return match (parse(a).is_some(), parse(b).is_some()) {
            (false, false) => Ordering::Equal,
            (false, true) => Ordering::Less,
            _ => Ordering::Greater,
        };
    };
    vercmp(ea.unwrap_or("0"), eb.unwrap_or("0"))
        .then_with(|| vercmp(va, vb))
        .then_with(|| match (ra, rb) {
            (Some(ra), Some(rb)) => vercmp(ra, rb),
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn segments() {
        assert_eq!(vercmp("1.0", "1.0.1"), Less);
        assert_eq!(vercmp("1.0~rc1", "1.0"), Less);
        assert_eq!(vercmp("1.0^git1", "1.0"), Greater);
        assert_eq!(vercmp("1.0^git1", "1.0.1"), Less);
        assert_eq!(vercmp("1.10", "1.9"), Greater);
        assert_eq!(vercmp("1.010", "1.10"), Equal);
        assert_eq!(vercmp("1.0a", "1.0"), Greater);
        assert_eq!(vercmp("1a", "1.1"), Less);
        assert_eq!(vercmp("", ""), Equal);
    }

    #[test]
    fn evrs() {
        assert_eq!(evr_cmp("1:1.0-1", "9.9-9"), Greater);
        assert_eq!(evr_cmp("0:1.0-1", "1.0-1"), Equal);
        assert_eq!(evr_cmp("1.0-2", "1.0-10"), Less);
        assert_eq!(evr_cmp("", "1.0"), Less);
        assert_eq!(parse("2:1.0-3"), Some((Some("2"), "1.0", Some("3"))));
        assert_eq!(parse("1.0"), Some((None, "1.0", None)));
        assert_eq!(parse("a:1-2"), Some((None, "a:1", Some("2"))));
    }
}
