//! Package changes and security advisories the way upstream's CLI prints them: the `Diff:`
//! summary, the aligned and multi-line package lists, the `!`/`=`/`-`/`+` preview lines, and
//! the `SecAdvisories:` summary and listing. Inputs are the daemon's D-Bus shapes (the
//! `CachedUpdate` `rpm-diff` and `advisories` values, and the `a(sua{sv})` results of the
//! `Get*RpmDiff` methods); outputs are plain strings, so every layout is unit-tested.

use std::collections::HashMap;

use anyhow::{Result, anyhow};
use rpmostree_api::dict::{DictValue, decode_key};
use zbus::{OwnedVariant, Variant};

use crate::output::{Style, kv};

/// One entry of a `Get*RpmDiff` result: (package name, change type, details with
/// `PreviousPackage` and/or `NewPackage`).
pub type RpmDiffEntry = (String, u32, HashMap<String, OwnedVariant>);

/// One entry of the `CachedUpdate` `advisories` value: (id, kind, severity, NEVRAs, extra data).
pub type AdvisoryEntry = (String, u32, u32, Vec<String>, HashMap<String, OwnedVariant>);

/// `DnfAdvisoryKind` of security advisories, the only kind upstream shows.
pub const ADVISORY_KIND_SECURITY: u32 = 1;

/// The change types of a `Get*RpmDiff` entry.
const CHANGE_ADDED: u32 = 0;
const CHANGE_REMOVED: u32 = 1;
const CHANGE_UPGRADED: u32 = 2;
const CHANGE_DOWNGRADED: u32 = 3;

/// Decodes a variant held in a dictionary as `T`, naming `what` and `key` on a type mismatch.
fn decode<T: DictValue>(what: &'static str, key: &str, value: &OwnedVariant) -> Result<T> {
    let value = Variant::try_from(value).map_err(|e| anyhow!("{what}: key '{key}': {e}"))?;
    decode_key::<T>(what, key, value).map_err(|e| anyhow!("{e}"))
}

/// A package as the diffs carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Its name.
    pub name: String,
    /// `[epoch:]version-release`.
    pub evr: String,
    /// Its architecture.
    pub arch: String,
}

impl Package {
    /// A package from its parts.
    pub fn new(name: impl Into<String>, evr: impl Into<String>, arch: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            evr: evr.into(),
            arch: arch.into(),
        }
    }

    /// `name-evr.arch`, as upstream prints removed and added packages.
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr, self.arch)
    }
}

/// The package changes between two trees, by kind, each list in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageDiff {
    /// (old, new) pairs where the new package is newer.
    pub upgraded: Vec<(Package, Package)>,
    /// (old, new) pairs where the new package is older.
    pub downgraded: Vec<(Package, Package)>,
    /// Packages only in the old tree.
    pub removed: Vec<Package>,
    /// Packages only in the new tree.
    pub added: Vec<Package>,
}

impl PackageDiff {
    /// The `rpm-diff` dictionary of `CachedUpdate`: `upgraded`/`downgraded` as
    /// `a(us(ss)(ss))` and `removed`/`added` as `a(usss)`. A missing key counts as no change
    /// of that kind.
    pub fn from_rpm_diff(dict: &HashMap<String, OwnedVariant>) -> Result<Self> {
        type Modified = Vec<(u32, String, (String, String), (String, String))>;
        type Single = Vec<(u32, String, String, String)>;
        let modified = |key: &str| -> Result<Vec<(Package, Package)>> {
            let Some(value) = dict.get(key) else {
                return Ok(Vec::new());
            };
            Ok(decode::<Modified>("rpm-diff", key, value)?
                .into_iter()
                .map(|(_, name, (old_evr, old_arch), (new_evr, new_arch))| {
                    (
                        Package::new(name.clone(), old_evr, old_arch),
                        Package::new(name, new_evr, new_arch),
                    )
                })
                .collect())
        };
        let single = |key: &str| -> Result<Vec<Package>> {
            let Some(value) = dict.get(key) else {
                return Ok(Vec::new());
            };
            Ok(decode::<Single>("rpm-diff", key, value)?
                .into_iter()
                .map(|(_, name, evr, arch)| Package::new(name, evr, arch))
                .collect())
        };
        Ok(Self {
            upgraded: modified("upgraded")?,
            downgraded: modified("downgraded")?,
            removed: single("removed")?,
            added: single("added")?,
        })
    }

    /// A `Get*RpmDiff` result (type 0 added, 1 removed, 2 upgraded, 3 downgraded; details
    /// `PreviousPackage` and `NewPackage` as (name, evr, arch)). Entries of unknown types or
    /// without the package their type needs are skipped.
    pub fn from_changes(changes: &[RpmDiffEntry]) -> Result<Self> {
        let mut diff = Self::default();
        for (_, kind, details) in changes {
            let package = |key: &str| -> Result<Option<Package>> {
                details
                    .get(key)
                    .map(|v| {
                        decode::<(String, String, String)>("GetDeploymentsRpmDiff", key, v)
                            .map(|(n, evr, arch)| Package::new(n, evr, arch))
                    })
                    .transpose()
            };
            let (old, new) = (package("PreviousPackage")?, package("NewPackage")?);
            match (*kind, old, new) {
                (CHANGE_ADDED, _, Some(new)) => diff.added.push(new),
                (CHANGE_REMOVED, Some(old), _) => diff.removed.push(old),
                (CHANGE_UPGRADED, Some(old), Some(new)) => diff.upgraded.push((old, new)),
                (CHANGE_DOWNGRADED, Some(old), Some(new)) => diff.downgraded.push((old, new)),
                _ => {}
            }
        }
        diff.sort();
        Ok(diff)
    }

    /// Sorts every list by package name (stable).
    fn sort(&mut self) {
        self.upgraded.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        self.downgraded.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        self.removed.sort_by(|a, b| a.name.cmp(&b.name));
        self.added.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.upgraded.is_empty()
            && self.downgraded.is_empty()
            && self.removed.is_empty()
            && self.added.is_empty()
    }

    /// `1 upgraded, 2 downgraded, 3 removed, 4 added`, leaving out the kinds with no change;
    /// empty when nothing changed.
    pub fn summary(&self) -> String {
        summary(
            self.upgraded.len(),
            self.downgraded.len(),
            self.removed.len(),
            self.added.len(),
        )
    }

    /// The `Diff: <summary>` line with the key right-aligned to `width`, or nothing when
    /// nothing changed (upstream's summary format).
    pub fn summary_line(&self, width: usize) -> String {
        let summary = self.summary();
        if summary.is_empty() {
            String::new()
        } else {
            kv("Diff", width, &summary)
        }
    }

    /// The package lists with `Upgraded:`, `Downgraded:`, `Removed:` and `Added:` keys
    /// right-aligned to `width`, one package a line, continuation lines indented under the
    /// first value (upstream's aligned format, `status -v` and `--preview`):
    ///
    /// ```text
    ///         Upgraded: foo 1.0-1 -> 1.1-1
    ///                   bar 2.0-1 -> 2.1-1
    ///          Removed: baz-1.0-1.x86_64
    /// ```
    pub fn aligned(&self, width: usize) -> String {
        let mut out = String::new();
        let mut section = |key: &str, lines: Vec<String>| {
            for (i, line) in lines.iter().enumerate() {
                if i == 0 {
                    out.push_str(&kv(key, width, line));
                } else {
                    out.push_str(&format!("  {:width$}  {line}\n", ""));
                }
            }
        };
        section("Upgraded", modified_lines(&self.upgraded));
        section("Downgraded", modified_lines(&self.downgraded));
        section("Removed", self.removed.iter().map(Package::nevra).collect());
        section("Added", self.added.iter().map(Package::nevra).collect());
        out
    }

    /// The package lists under `Upgraded:`, `Downgraded:`, `Removed:` and `Added:` headers,
    /// each package on its own line indented by two spaces (upstream's multi-line format,
    /// printed after a deployment changed):
    ///
    /// ```text
    /// Upgraded:
    ///   foo 1.0-1 -> 1.1-1
    /// Added:
    ///   baz-1.0-1.x86_64
    /// ```
    pub fn multiline(&self) -> String {
        let mut out = String::new();
        let mut section = |header: &str, lines: Vec<String>| {
            if lines.is_empty() {
                return;
            }
            out.push_str(header);
            out.push_str(":\n");
            for line in lines {
                out.push_str(&format!("  {line}\n"));
            }
        };
        section("Upgraded", modified_lines(&self.upgraded));
        section("Downgraded", modified_lines(&self.downgraded));
        section("Removed", self.removed.iter().map(Package::nevra).collect());
        section("Added", self.added.iter().map(Package::nevra).collect());
        out
    }
}

/// `name old-evr -> new-evr` lines.
fn modified_lines(pairs: &[(Package, Package)]) -> Vec<String> {
    pairs
        .iter()
        .map(|(old, new)| format!("{} {} -> {}", old.name, old.evr, new.evr))
        .collect()
}

/// Upstream's diff summary: the non-zero counts, comma-separated, in the order upgraded,
/// downgraded, removed, added.
pub fn summary(upgraded: usize, downgraded: usize, removed: usize, added: usize) -> String {
    join_counts(&[
        (upgraded, "upgraded"),
        (downgraded, "downgraded"),
        (removed, "removed"),
        (added, "added"),
    ])
}

/// `N what, M other` for the non-zero counts.
fn join_counts(counts: &[(usize, &str)]) -> String {
    counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `Get*RpmDiff` result as upstream's `deploy --preview` prints it: sorted by package name,
/// `!name-evr-arch` and `=name-evr-arch` for a changed package (old, then new),
/// `-name-evr-arch` for a removed one and `+name-evr-arch` for an added one.
pub fn preview_lines(changes: &[RpmDiffEntry]) -> Result<String> {
    let mut sorted: Vec<&RpmDiffEntry> = changes.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (_, _, details) in sorted {
        let package = |key: &str| -> Result<Option<String>> {
            details
                .get(key)
                .map(|v| {
                    decode::<(String, String, String)>("GetCachedDeployRpmDiff", key, v)
                        .map(|(name, evr, arch)| format!("{name}-{evr}-{arch}"))
                })
                .transpose()
        };
        match (package("PreviousPackage")?, package("NewPackage")?) {
            (Some(old), Some(new)) => out.push_str(&format!("!{old}\n={new}\n")),
            (Some(old), None) => out.push_str(&format!("-{old}\n")),
            (None, Some(new)) => out.push_str(&format!("+{new}\n")),
            (None, None) => {}
        }
    }
    Ok(out)
}

/// Advisory severities, as the daemon numbers them.
const SEVERITY_NAMES: [&str; 5] = ["Unknown", "Low", "Moderate", "Important", "Critical"];
/// The words of the advisory summary, by severity (the unknown case spelled out, as upstream).
const SEVERITY_SUMMARY: [&str; 5] = [
    "unknown severity",
    "low",
    "moderate",
    "important",
    "critical",
];

/// A security (or other) advisory fixed by an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisory {
    /// Its id (`FEDORA-2024-abcdef`).
    pub id: String,
    /// Its `DnfAdvisoryKind` (1 is security).
    pub kind: u32,
    /// 0 unknown, 1 low, 2 moderate, 3 important, 4 critical; larger values count as unknown.
    pub severity: u32,
    /// The NEVRAs of the update that it covers.
    pub nevras: Vec<String>,
    /// The (url, title) of its CVE references.
    pub cve_references: Vec<(String, String)>,
}

impl Advisory {
    /// The advisories of a `CachedUpdate`. A missing `cve_references` entry (metadata cached by
    /// older versions) means none.
    pub fn from_entries(entries: &[AdvisoryEntry]) -> Result<Vec<Self>> {
        entries
            .iter()
            .map(|(id, kind, severity, nevras, extra)| {
                let cve_references = match extra.get("cve_references") {
                    Some(v) => decode::<Vec<(String, String)>>("advisories", "cve_references", v)?,
                    None => Vec::new(),
                };
                Ok(Self {
                    id: id.clone(),
                    kind: *kind,
                    severity: *severity,
                    nevras: nevras.clone(),
                    cve_references,
                })
            })
            .collect()
    }

    /// The severity index into upstream's tables (out-of-range values are unknown).
    fn severity_index(&self) -> usize {
        usize::try_from(self.severity)
            .ok()
            .filter(|s| *s < SEVERITY_NAMES.len())
            .unwrap_or(0)
    }
}

/// `2 unknown severity, 1 low, 1 important`: the security advisories counted by severity, in
/// upstream's order (unknown, low, moderate, important, critical); non-security advisories
/// are not counted.
pub fn advisory_summary(advisories: &[Advisory]) -> String {
    let mut counts = [0usize; 5];
    for a in advisories
        .iter()
        .filter(|a| a.kind == ADVISORY_KIND_SECURITY)
    {
        counts[a.severity_index()] += 1;
    }
    let pairs: Vec<(usize, &str)> = counts
        .iter()
        .zip(SEVERITY_SUMMARY)
        .map(|(n, what)| (*n, what))
        .collect();
    join_counts(&pairs)
}

/// The `SecAdvisories:` lines (key right-aligned to `width`; width 0 puts `SecAdvisories:`
/// alone on its line), or nothing without security advisories.
///
/// Without `verbose`: `SecAdvisories: 1 important, 1 critical` in bold red. With `verbose`:
/// the advisories by increasing severity, then id; one line per covered package with the id
/// and the severity padded to align, starting on the `SecAdvisories:` line, then each CVE
/// reference as its title and its URL on two lines indented by two more spaces:
///
/// ```text
///   SecAdvisories: FEDORA-2024-1  Important  foo-1.1-1.x86_64
///                    CVE-2024-1 foo: a flaw
///                    https://bugzilla.example.com/1
/// ```
pub fn advisories_block(
    advisories: &[Advisory],
    verbose: bool,
    width: usize,
    style: Style,
) -> String {
    let mut security: Vec<&Advisory> = advisories
        .iter()
        .filter(|a| a.kind == ADVISORY_KIND_SECURITY)
        .collect();
    if security.is_empty() {
        return String::new();
    }
    let head = if width == 0 {
        "SecAdvisories:\n".to_owned()
    } else {
        format!("  {:>width$}: ", "SecAdvisories")
    };
    if !verbose {
        let line = format!("{head}{}\n", advisory_summary(advisories));
        return style.red_bold(&line);
    }
    let mut out = style.red_bold(&head);
    // Whether the `SecAdvisories:` line still waits for its first value.
    let mut open = width > 0;
    let id_width = security.iter().map(|a| a.id.len()).max().unwrap_or(0);
    let severity_width = "Important".len();
    // By the severity as sent (so an out-of-range one, shown as unknown, comes last), then id.
    security.sort_by(|a, b| a.severity.cmp(&b.severity).then_with(|| a.id.cmp(&b.id)));
    let indent = " ".repeat(width + 2);
    for advisory in security {
        let severity = SEVERITY_NAMES[advisory.severity_index()];
        for nevra in &advisory.nevras {
            let text = format!(
                "{:<id_width$}  {severity:<severity_width$}  {nevra}\n",
                advisory.id
            );
            if open {
                open = false;
                out.push_str(&text);
            } else {
                out.push_str(&format!("  {indent}{text}"));
            }
        }
        for (url, title) in &advisory.cve_references {
            if open {
                open = false;
                out.push('\n');
            }
            out.push_str(&format!("  {indent}  {title}\n"));
            out.push_str(&format!("  {indent}  {url}\n"));
        }
    }
    if open {
        out.push('\n');
    }
    out
}

/// Upstream's `rpm-diff` and `advisories` lines of a cached update (status and
/// `upgrade --check`): nothing without a package diff; otherwise the advisories (expanded
/// with `verbose` or `verbose_advisories`), then the diff as a `Diff:` summary, or with
/// `verbose` as the aligned package lists.
pub fn diff_advisories(
    rpm_diff: Option<&HashMap<String, OwnedVariant>>,
    advisories: Option<&[AdvisoryEntry]>,
    verbose: bool,
    verbose_advisories: bool,
    width: usize,
    style: Style,
) -> Result<String> {
    let Some(rpm_diff) = rpm_diff else {
        return Ok(String::new());
    };
    let mut out = String::new();
    if let Some(entries) = advisories {
        let advisories = Advisory::from_entries(entries)?;
        out.push_str(&advisories_block(
            &advisories,
            verbose || verbose_advisories,
            width,
            style,
        ));
    }
    let diff = PackageDiff::from_rpm_diff(rpm_diff)?;
    if verbose {
        out.push_str(&diff.aligned(width));
    } else {
        out.push_str(&diff.summary_line(width));
    }
    Ok(out)
}

/// The layer statistics of a container update (`manifest-diff`), laid out as upstream does
/// (including its one-space indent of `Removed layers`); sizes in decimal units.
pub fn manifest_diff_lines(dict: &HashMap<String, OwnedVariant>, width: usize) -> Result<String> {
    let get = |key: &str| -> Result<u64> {
        match dict.get(key) {
            Some(v) => decode::<u64>("manifest-diff", key, v),
            None => Ok(0),
        }
    };
    let size = |key: &str| -> Result<String> { Ok(crate::output::format_size(get(key)?)) };
    let mut out = String::new();
    out.push_str(&format!(
        "  {:>width$}: {}\n",
        "Total layers",
        get("total")?
    ));
    out.push_str(&format!("  {:>width$}: {}\n", "Size", size("total-size")?));
    out.push_str(&format!(
        " {:>width$}: {}\n",
        "Removed layers",
        get("n-removed")?
    ));
    out.push_str(&format!(
        "  {:>width$}: {}\n",
        "Size",
        size("removed-size")?
    ));
    out.push_str(&format!(
        "  {:>width$}: {}\n",
        "Added layers",
        get("n-added")?
    ));
    out.push_str(&format!("  {:>width$}: {}\n", "Size", size("added-size")?));
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::output::KEY_WIDTH;

    /// A value as the daemon sends it inside an `a{sv}`.
    pub(crate) fn owned<T: DictValue>(value: T) -> OwnedVariant {
        let variant = value.encode().expect("encodes");
        OwnedVariant::try_from(variant).expect("owned")
    }

    /// The `rpm-diff` of the examples: one change of each kind.
    pub(crate) fn rpm_diff() -> HashMap<String, OwnedVariant> {
        let mut dict = HashMap::new();
        dict.insert(
            "upgraded".to_owned(),
            owned(vec![
                (
                    0u32,
                    "foo".to_owned(),
                    ("1.0-1".to_owned(), "x86_64".to_owned()),
                    ("1.1-1".to_owned(), "x86_64".to_owned()),
                ),
                (
                    0u32,
                    "zed".to_owned(),
                    ("2-1".to_owned(), "noarch".to_owned()),
                    ("3-1".to_owned(), "noarch".to_owned()),
                ),
            ]),
        );
        dict.insert(
            "downgraded".to_owned(),
            owned(vec![(
                0u32,
                "bar".to_owned(),
                ("2.0-1".to_owned(), "x86_64".to_owned()),
                ("1.9-1".to_owned(), "x86_64".to_owned()),
            )]),
        );
        dict.insert(
            "removed".to_owned(),
            owned(vec![(
                0u32,
                "baz".to_owned(),
                "1:0.5-2".to_owned(),
                "noarch".to_owned(),
            )]),
        );
        dict.insert(
            "added".to_owned(),
            owned(vec![(
                1u32,
                "qux".to_owned(),
                "3.0-1".to_owned(),
                "aarch64".to_owned(),
            )]),
        );
        dict
    }

    fn entry(
        name: &str,
        kind: u32,
        old: Option<(&str, &str)>,
        new: Option<(&str, &str)>,
    ) -> RpmDiffEntry {
        let mut details = HashMap::new();
        if let Some((evr, arch)) = old {
            details.insert(
                "PreviousPackage".to_owned(),
                owned((name.to_owned(), evr.to_owned(), arch.to_owned())),
            );
        }
        if let Some((evr, arch)) = new {
            details.insert(
                "NewPackage".to_owned(),
                owned((name.to_owned(), evr.to_owned(), arch.to_owned())),
            );
        }
        (name.to_owned(), kind, details)
    }

    /// A `GetDeploymentsRpmDiff` result in the daemon's order (by type, then name).
    pub(crate) fn changes() -> Vec<RpmDiffEntry> {
        vec![
            entry("qux", 0, None, Some(("3.0-1", "aarch64"))),
            entry("baz", 1, Some(("1:0.5-2", "noarch")), None),
            entry(
                "foo",
                2,
                Some(("1.0-1", "x86_64")),
                Some(("1.1-1", "x86_64")),
            ),
            entry(
                "bar",
                3,
                Some(("2.0-1", "x86_64")),
                Some(("1.9-1", "x86_64")),
            ),
        ]
    }

    pub(crate) fn advisory(
        id: &str,
        kind: u32,
        severity: u32,
        nevras: &[&str],
        cves: &[(&str, &str)],
    ) -> AdvisoryEntry {
        let mut extra = HashMap::new();
        let refs: Vec<(String, String)> = cves
            .iter()
            .map(|(u, t)| ((*u).to_owned(), (*t).to_owned()))
            .collect();
        extra.insert("cve_references".to_owned(), owned(refs));
        (
            id.to_owned(),
            kind,
            severity,
            nevras.iter().map(|s| (*s).to_owned()).collect(),
            extra,
        )
    }

    const PLAIN: Style = Style { color: false };

    #[test]
    fn the_summary_counts_each_kind_in_upstream_order() {
        let diff = PackageDiff::from_rpm_diff(&rpm_diff()).expect("decodes");
        assert_eq!(
            diff.summary(),
            "2 upgraded, 1 downgraded, 1 removed, 1 added"
        );
        assert_eq!(
            diff.summary_line(KEY_WIDTH),
            format!(
                "{}Diff: 2 upgraded, 1 downgraded, 1 removed, 1 added\n",
                " ".repeat(2 + KEY_WIDTH - 4)
            )
        );
        assert_eq!(summary(0, 0, 3, 0), "3 removed");
        assert_eq!(summary(1, 0, 0, 4), "1 upgraded, 4 added");
        assert_eq!(PackageDiff::default().summary_line(KEY_WIDTH), "");
    }

    #[test]
    fn a_missing_rpm_diff_key_is_no_change_and_a_wrong_type_an_error() {
        let mut dict = rpm_diff();
        dict.remove("added");
        let diff = PackageDiff::from_rpm_diff(&dict).expect("decodes");
        assert!(diff.added.is_empty());
        dict.insert("removed".to_owned(), owned("oops".to_owned()));
        let e = PackageDiff::from_rpm_diff(&dict).expect_err("wrong type");
        assert!(e.to_string().contains("removed"), "{e}");
    }

    #[test]
    fn the_aligned_lists() {
        let diff = PackageDiff::from_rpm_diff(&rpm_diff()).expect("decodes");
        assert_eq!(
            diff.aligned(13),
            "       Upgraded: foo 1.0-1 -> 1.1-1\n\
             \x20                zed 2-1 -> 3-1\n\
             \x20    Downgraded: bar 2.0-1 -> 1.9-1\n\
             \x20       Removed: baz-1:0.5-2.noarch\n\
             \x20         Added: qux-3.0-1.aarch64\n"
        );
    }

    #[test]
    fn the_multiline_lists() {
        let diff = PackageDiff::from_changes(&changes()).expect("decodes");
        assert_eq!(
            diff.multiline(),
            "Upgraded:\n  foo 1.0-1 -> 1.1-1\n\
             Downgraded:\n  bar 2.0-1 -> 1.9-1\n\
             Removed:\n  baz-1:0.5-2.noarch\n\
             Added:\n  qux-3.0-1.aarch64\n"
        );
        let only_added = PackageDiff::from_changes(&changes()[..1]).expect("decodes");
        assert_eq!(only_added.multiline(), "Added:\n  qux-3.0-1.aarch64\n");
        assert_eq!(PackageDiff::default().multiline(), "");
    }

    #[test]
    fn changes_and_rpm_diff_agree() {
        let mut from_dict = PackageDiff::from_rpm_diff(&rpm_diff()).expect("decodes");
        from_dict.upgraded.retain(|(o, _)| o.name != "zed");
        assert_eq!(
            PackageDiff::from_changes(&changes()).expect("decodes"),
            from_dict
        );
        // Unknown types and incomplete entries are skipped.
        let odd = vec![
            entry("x", 9, None, Some(("1-1", "noarch"))),
            entry("y", 2, None, Some(("1-1", "noarch"))),
        ];
        assert!(PackageDiff::from_changes(&odd).expect("decodes").is_empty());
    }

    #[test]
    fn preview_lines_are_sorted_by_name() {
        assert_eq!(
            preview_lines(&changes()).expect("decodes"),
            "!bar-2.0-1-x86_64\n=bar-1.9-1-x86_64\n\
             -baz-1:0.5-2-noarch\n\
             !foo-1.0-1-x86_64\n=foo-1.1-1-x86_64\n\
             +qux-3.0-1-aarch64\n"
        );
        assert_eq!(preview_lines(&[]).expect("empty"), "");
    }

    fn sample_advisories() -> Vec<Advisory> {
        Advisory::from_entries(&[
            advisory(
                "FEDORA-2024-b",
                1,
                4,
                &["foo-1.1-1.x86_64"],
                &[("https://bz.example.com/2", "CVE-2024-2 foo: overflow")],
            ),
            advisory(
                "FEDORA-2024-a",
                1,
                3,
                &["bar-1.9-1.x86_64", "baz-2-1.noarch"],
                &[],
            ),
            advisory("FEDORA-2024-c", 1, 0, &["qux-3.0-1.aarch64"], &[]),
            advisory("FEDORA-2024-d", 1, 7, &["qux-3.0-1.aarch64"], &[]),
            advisory("FEDORA-2024-e", 2, 3, &["foo-1.1-1.x86_64"], &[]),
        ])
        .expect("decodes")
    }

    #[test]
    fn the_advisory_summary_counts_security_advisories_by_severity() {
        let advisories = sample_advisories();
        assert_eq!(
            advisory_summary(&advisories),
            "2 unknown severity, 1 important, 1 critical"
        );
        assert_eq!(
            advisories_block(&advisories[1..2], false, KEY_WIDTH, PLAIN),
            format!(
                "{}SecAdvisories: 1 important\n",
                " ".repeat(2 + KEY_WIDTH - 13)
            )
        );
        // Only non-security advisories: nothing at all.
        assert_eq!(advisories_block(&advisories[4..], false, 13, PLAIN), "");
        assert_eq!(
            advisories_block(&advisories[1..2], false, 13, Style { color: true }),
            "\x1b[31m\x1b[1m  SecAdvisories: 1 important\n\x1b[22m\x1b[39m"
        );
        assert_eq!(
            advisories_block(&advisories[1..2], false, 0, PLAIN),
            "SecAdvisories:\n1 important\n"
        );
    }

    #[test]
    fn the_verbose_advisory_listing() {
        let advisories = sample_advisories();
        let pad = " ".repeat(2 + 13 + 2);
        let expected = format!(
            "  SecAdvisories: FEDORA-2024-c  Unknown    qux-3.0-1.aarch64\n\
             {pad}FEDORA-2024-a  Important  bar-1.9-1.x86_64\n\
             {pad}FEDORA-2024-a  Important  baz-2-1.noarch\n\
             {pad}FEDORA-2024-b  Critical   foo-1.1-1.x86_64\n\
             {pad}  CVE-2024-2 foo: overflow\n\
             {pad}  https://bz.example.com/2\n\
             {pad}FEDORA-2024-d  Unknown    qux-3.0-1.aarch64\n"
        );
        assert_eq!(advisories_block(&advisories, true, 13, PLAIN), expected);
        // An advisory without packages does not leave its references on the key's line.
        let bare =
            Advisory::from_entries(&[advisory("X-1", 1, 1, &[], &[("u", "t")])]).expect("decodes");
        assert_eq!(
            advisories_block(&bare, true, 3, PLAIN),
            "  SecAdvisories: \n         t\n         u\n"
        );
    }

    #[test]
    fn cached_update_lines() {
        let diff = rpm_diff();
        let advisories = vec![advisory("FEDORA-2024-a", 1, 3, &["foo-1.1-1.x86_64"], &[])];
        let text =
            diff_advisories(Some(&diff), Some(&advisories), false, false, 13, PLAIN).expect("ok");
        assert_eq!(
            text,
            "  SecAdvisories: 1 important\n           Diff: 2 upgraded, 1 downgraded, 1 removed, 1 added\n"
        );
        let text =
            diff_advisories(Some(&diff), Some(&advisories), false, true, 13, PLAIN).expect("ok");
        assert!(text.starts_with("  SecAdvisories: FEDORA-2024-a  Important  foo-1.1-1.x86_64\n"));
        assert!(text.ends_with("Diff: 2 upgraded, 1 downgraded, 1 removed, 1 added\n"));
        let text = diff_advisories(Some(&diff), None, true, false, 13, PLAIN).expect("ok");
        assert!(
            text.starts_with("       Upgraded: foo 1.0-1 -> 1.1-1\n"),
            "{text}"
        );
        // No package diff: nothing, even with advisories (as upstream).
        assert_eq!(
            diff_advisories(None, Some(&advisories), true, true, 13, PLAIN).expect("ok"),
            ""
        );
    }

    #[test]
    fn manifest_diff_layout() {
        let mut dict = HashMap::new();
        for (k, v) in [
            ("total", 5u64),
            ("total-size", 1_500_000),
            ("n-removed", 1),
            ("removed-size", 2000),
            ("n-added", 2),
            ("added-size", 999),
        ] {
            dict.insert(k.to_owned(), owned(v));
        }
        assert_eq!(
            manifest_diff_lines(&dict, 13).expect("ok"),
            "   Total layers: 5\n           Size: 1.5 MB\n Removed layers: 1\n           Size: 2.0 kB\n   Added layers: 2\n           Size: 999 bytes\n"
        );
    }
}
