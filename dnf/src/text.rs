//! Pure string rules shared by the wrappers: upstream's advisory severity names, CVE ids
//! and references, and libdnf's glob test.

use std::collections::HashSet;

/// Upstream's `str2severity`: 0 none/unknown, 1 low, 2 moderate, 3 important, 4 critical
/// (ASCII case-insensitive).
pub(crate) fn severity(s: Option<&str>) -> u32 {
    match s.map(str::to_ascii_uppercase).as_deref() {
        Some("LOW") => 1,
        Some("MODERATE") => 2,
        Some("IMPORTANT") => 3,
        Some("CRITICAL") => 4,
        _ => 0,
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every match of `\bCVE-[0-9]+-[0-9]+\b` in `text`, in order (the regex upstream applies to
/// bugzilla reference titles).
pub(crate) fn cve_ids(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(off) = text.get(i..).and_then(|rest| rest.find("CVE-")) {
        let start = i + off;
        i = start + 1;
        if start > 0 && is_word(bytes[start - 1]) {
            continue;
        }
        let digits = |from: usize| {
            bytes[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let year = start + 4;
        let n1 = digits(year);
        if n1 == 0 || bytes.get(year + n1) != Some(&b'-') {
            continue;
        }
        let num = year + n1 + 1;
        let n2 = digits(num);
        let end = num + n2;
        if n2 == 0 || bytes.get(end).is_some_and(|b| is_word(*b)) {
            continue;
        }
        found.push(&text[start..end]);
        i = end;
    }
    found
}

/// One reference of an advisory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// `DNF_REFERENCE_KIND_BUGZILLA`.
    pub(crate) bugzilla: bool,
    pub(crate) url: Option<String>,
    pub(crate) title: Option<String>,
}

/// Upstream's `cve_references` rule: sort by URL (a missing one first, like `g_strcmp0`;
/// the first bug of a CVE is usually the one with the details), then keep each bugzilla
/// reference with a URL and a title that names a CVE no kept reference named before.
pub(crate) fn cve_references(mut refs: Vec<Reference>) -> Vec<(String, String)> {
    refs.sort_by(|a, b| a.url.cmp(&b.url));
    let mut seen: HashSet<String> = HashSet::new();
    let mut kept = Vec::new();
    for r in refs {
        let (true, Some(url), Some(title)) = (r.bugzilla, r.url, r.title) else {
            continue;
        };
        let cves = cve_ids(&title);
        if cves.iter().any(|c| !seen.contains(*c)) {
            seen.extend(cves.iter().map(|c| (*c).to_owned()));
            kept.push((url, title));
        }
    }
    kept
}

/// libdnf's `hy_is_glob_pattern` (a C++ symbol, so re-stated here): any of `*`, `[`, `?`.
pub(crate) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '[', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities() {
        assert_eq!(severity(Some("Important")), 3);
        assert_eq!(severity(Some("critical")), 4);
        assert_eq!(severity(Some("LOW")), 1);
        assert_eq!(severity(Some("Moderate")), 2);
        assert_eq!(severity(Some("urgent")), 0);
        assert_eq!(severity(None), 0);
    }

    #[test]
    fn cves_in_titles() {
        assert_eq!(
            cve_ids("CVE-2026-0001 libfoo: flaw; also CVE-2025-12345."),
            ["CVE-2026-0001", "CVE-2025-12345"]
        );
        assert!(cve_ids("XCVE-2026-0001 and CVE-2026-0001a and CVE-2026- and CVE-x").is_empty());
        assert_eq!(cve_ids("(CVE-1-2)"), ["CVE-1-2"]);
        assert!(cve_ids("no cve here").is_empty());
    }

    fn r(bugzilla: bool, url: &str, title: &str) -> Reference {
        Reference {
            bugzilla,
            url: Some(url.to_owned()),
            title: Some(title.to_owned()),
        }
    }

    #[test]
    fn cve_reference_rule() {
        let refs = vec![
            r(
                true,
                "https://b.example/3",
                "CVE-2026-0001 libfoo: rhel stream",
            ),
            r(true, "https://b.example/1", "CVE-2026-0001 libfoo: details"),
            r(false, "https://cve.example/CVE-2026-0002", "CVE-2026-0002"),
            r(true, "https://b.example/2", "no cve in this title"),
            r(
                true,
                "https://b.example/4",
                "CVE-2026-0001 CVE-2026-0003 two flaws",
            ),
            Reference {
                bugzilla: true,
                url: None,
                title: Some("CVE-2026-0009".into()),
            },
        ];
        assert_eq!(
            cve_references(refs),
            [
                (
                    "https://b.example/1".to_owned(),
                    "CVE-2026-0001 libfoo: details".to_owned()
                ),
                (
                    "https://b.example/4".to_owned(),
                    "CVE-2026-0001 CVE-2026-0003 two flaws".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn globs() {
        assert!(is_glob("foo*"));
        assert!(is_glob("fo?"));
        assert!(is_glob("[fb]oo"));
        assert!(!is_glob("foo-bar.baz"));
    }
}
