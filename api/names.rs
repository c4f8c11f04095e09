//! Well-known names and paths of the service, and upstream's object-path escaping of osnames.

/// The daemon's well-known name on the system bus.
pub const BUS_NAME: &str = "org.projectatomic.rpmostree1";
/// The object path under which every object lives, and where the ObjectManager is.
pub const BASE_PATH: &str = "/org/projectatomic/rpmostree1";
/// The object path of the Sysroot object.
pub const SYSROOT_PATH: &str = "/org/projectatomic/rpmostree1/Sysroot";
/// The object path of the Transaction object on a transaction's peer-to-peer connection.
pub const TRANSACTION_PATH: &str = "/";

/// Escapes one object-path segment the way upstream does: ASCII letters, digits and `_` are
/// kept, `-` and `/` become `_`, and every other byte becomes `_` plus two uppercase hex digits.
/// Returns `None` for an empty segment.
pub fn escape_path_segment(segment: &str) -> Option<String> {
    if segment.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' => out.push(char::from(byte)),
            b'-' | b'/' => out.push('_'),
            other => out.push_str(&format!("_{other:02X}")),
        }
    }
    Some(out)
}

/// The object path of the OS object for `osname`, or `None` if the osname is empty.
pub fn os_path(osname: &str) -> Option<String> {
    escape_path_segment(osname).map(|s| format!("{BASE_PATH}/{s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_upstream() {
        assert_eq!(
            escape_path_segment("fedora-coreos").as_deref(),
            Some("fedora_coreos")
        );
        assert_eq!(escape_path_segment("first!").as_deref(), Some("first_21"));
        assert_eq!(escape_path_segment("a.b").as_deref(), Some("a_2Eb"));
        assert_eq!(escape_path_segment(""), None);
        assert_eq!(
            os_path("debian").as_deref(),
            Some("/org/projectatomic/rpmostree1/debian")
        );
    }
}
