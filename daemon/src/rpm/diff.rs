//! Package lists and the differences between two of them, the way rpm-ostree computes them:
//! packages are matched by name (and architecture, except that a single package of a name
//! changing architecture counts as modified, as yum and dnf count it), and a modified package
//! is an upgrade or a downgrade by rpm's version comparison.

use std::cmp::Ordering;

pub(crate) use rpmostree_dnf::Package;

/// A package from an `rpmostree.rpmdb.pkglist` entry: (name, epoch, version, release, arch).
/// An epoch that is not a number counts as 0, as libdnf counts a missing one.
pub(crate) fn from_pkglist_entry(entry: (String, String, String, String, String)) -> Package {
    let (name, epoch, version, release, arch) = entry;
    Package {
        name,
        epoch: epoch.parse().unwrap_or(0),
        version,
        release,
        arch,
        summary: String::new(),
        reponame: String::new(),
    }
}

/// rpm's order of two packages' versions: epoch, then version, then release (what
/// `rpmostree_dnf::evr_cmp` does on `E:V-R` strings, without building them).
pub(crate) fn evr_order(a: &Package, b: &Package) -> Ordering {
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| rpmostree_dnf::vercmp(&a.version, &b.version))
        .then_with(|| rpmostree_dnf::vercmp(&a.release, &b.release))
}

/// rpm-ostree's package order: name, then epoch:version-release, then architecture.
pub(crate) fn package_cmp(a: &Package, b: &Package) -> Ordering {
    a.name
        .cmp(&b.name)
        .then_with(|| evr_order(a, b))
        .then_with(|| a.arch.cmp(&b.arch))
}

/// Sorts a list the way the diff expects it: by name, then architecture, then version.
pub(crate) fn sort(packages: &mut [Package]) {
    packages.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.arch.cmp(&b.arch))
            .then_with(|| evr_order(a, b))
    });
}

/// What changed between two package lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    /// Only in the old list.
    pub(crate) removed: Vec<Package>,
    /// Only in the new list.
    pub(crate) added: Vec<Package>,
    /// In both with another version (or a lone package that changed architecture): (old, new).
    pub(crate) modified: Vec<(Package, Package)>,
}

/// The kind of one change, numbered as the `a(sua{sv})` diffs of the D-Bus API number them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Change {
    /// 0: only in the new list.
    Added = 0,
    /// 1: only in the old list.
    Removed = 1,
    /// 2: a newer version.
    Upgraded = 2,
    /// 3: an older version.
    Downgraded = 3,
}

impl Diff {
    /// Nothing changed.
    pub(crate) fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty() && self.modified.is_empty()
    }

    /// Whether `(old, new)` is a downgrade.
    fn is_downgrade(old: &Package, new: &Package) -> bool {
        package_cmp(old, new) == Ordering::Greater
    }

    /// The upgraded packages: (old, new).
    pub(crate) fn upgraded(&self) -> impl Iterator<Item = &(Package, Package)> {
        self.modified
            .iter()
            .filter(|(o, n)| !Self::is_downgrade(o, n))
    }

    /// The downgraded packages: (old, new).
    pub(crate) fn downgraded(&self) -> impl Iterator<Item = &(Package, Package)> {
        self.modified
            .iter()
            .filter(|(o, n)| Self::is_downgrade(o, n))
    }

    /// Every change as (name, kind, old, new), sorted by kind, then name: the order of
    /// upstream's `a(sua{sv})` diffs.
    pub(crate) fn entries(&self) -> Vec<(String, Change, Option<&Package>, Option<&Package>)> {
        let mut out: Vec<_> = self
            .added
            .iter()
            .map(|p| (p.name.clone(), Change::Added, None, Some(p)))
            .chain(
                self.removed
                    .iter()
                    .map(|p| (p.name.clone(), Change::Removed, Some(p), None)),
            )
            .chain(self.modified.iter().map(|(o, n)| {
                let kind = if Self::is_downgrade(o, n) {
                    Change::Downgraded
                } else {
                    Change::Upgraded
                };
                (o.name.clone(), kind, Some(o), Some(n))
            }))
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

/// Whether the package after index `i` has another name (or there is none).
fn next_has_other_name(list: &[Package], i: usize) -> bool {
    list.get(i + 1).is_none_or(|p| p.name != list[i].name)
}

/// The changes from `old` to `new`; both sorted with [`sort`].
pub(crate) fn diff(old: &[Package], new: &[Package]) -> Diff {
    let mut out = Diff::default();
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        let (a, b) = (&old[i], &new[j]);
        match a.name.cmp(&b.name) {
            Ordering::Less => {
                out.removed.push(a.clone());
                i += 1;
            }
            Ordering::Greater => {
                out.added.push(b.clone());
                j += 1;
            }
            Ordering::Equal => match a.arch.cmp(&b.arch) {
                Ordering::Equal => {
                    if evr_order(a, b) != Ordering::Equal {
                        out.modified.push((a.clone(), b.clone()));
                    }
                    i += 1;
                    j += 1;
                }
                arch => {
                    if next_has_other_name(old, i) && next_has_other_name(new, j) {
                        out.modified.push((a.clone(), b.clone()));
                        i += 1;
                        j += 1;
                    } else if arch == Ordering::Less {
                        out.removed.push(a.clone());
                        i += 1;
                    } else {
                        out.added.push(b.clone());
                        j += 1;
                    }
                }
            },
        }
    }
    out.removed.extend(old[i..].iter().cloned());
    out.added.extend(new[j..].iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, evr: &str, arch: &str) -> Package {
        let (epoch, vr) = match evr.split_once(':') {
            Some((e, vr)) => (e.parse().unwrap_or(0), vr),
            None => (0, evr),
        };
        let (version, release) = vr.rsplit_once('-').unwrap_or((vr, "1"));
        Package {
            name: name.into(),
            epoch,
            version: version.into(),
            release: release.into(),
            arch: arch.into(),
            summary: String::new(),
            reponame: String::new(),
        }
    }

    fn sorted(mut v: Vec<Package>) -> Vec<Package> {
        sort(&mut v);
        v
    }

    #[test]
    fn upgrades_downgrades_additions_and_removals() {
        let old = sorted(vec![
            pkg("libfoo", "1.0-1", "noarch"),
            pkg("bar", "1.0-1", "noarch"),
            pkg("oldtool", "1.0-1", "noarch"),
            pkg("base-files", "1.0-1", "noarch"),
        ]);
        let new = sorted(vec![
            pkg("libfoo", "2.0-1", "noarch"),
            pkg("bar", "0.9-1", "noarch"),
            pkg("newtool", "1.0-1", "noarch"),
            pkg("base-files", "1.0-1", "noarch"),
        ]);
        let d = diff(&old, &new);
        assert_eq!(d.removed, vec![pkg("oldtool", "1.0-1", "noarch")]);
        assert_eq!(d.added, vec![pkg("newtool", "1.0-1", "noarch")]);
        let up: Vec<_> = d.upgraded().map(|(o, n)| (o.evr(), n.evr())).collect();
        assert_eq!(up, [("1.0-1".to_owned(), "2.0-1".to_owned())]);
        let down: Vec<_> = d.downgraded().map(|(_, n)| n.name.clone()).collect();
        assert_eq!(down, ["bar"]);
        let kinds: Vec<_> = d
            .entries()
            .iter()
            .map(|(n, k, _, _)| (n.clone(), *k))
            .collect();
        assert_eq!(
            kinds,
            [
                ("newtool".to_owned(), Change::Added),
                ("oldtool".to_owned(), Change::Removed),
                ("libfoo".to_owned(), Change::Upgraded),
                ("bar".to_owned(), Change::Downgraded),
            ]
        );
        assert!(diff(&old, &old).is_empty());
    }

    #[test]
    fn epochs_and_rpm_version_order_decide_the_direction() {
        let old = vec![pkg("a", "1.10-1", "x86_64"), pkg("b", "1:1.0-1", "x86_64")];
        let new = vec![pkg("a", "1.9-1", "x86_64"), pkg("b", "2.0-1", "x86_64")];
        let d = diff(&old, &new);
        let down: Vec<_> = d.downgraded().map(|(o, _)| o.name.clone()).collect();
        assert_eq!(down, ["a", "b"]);
        assert_eq!(d.upgraded().count(), 0);
    }

    #[test]
    fn a_lone_arch_change_is_a_modification_but_multilib_is_not() {
        let d = diff(&[pkg("a", "1.0-1", "i686")], &[pkg("a", "1.0-1", "x86_64")]);
        assert_eq!(d.modified.len(), 1);
        assert!(d.added.is_empty() && d.removed.is_empty());

        let old = sorted(vec![pkg("a", "1.0-1", "i686"), pkg("a", "1.0-1", "x86_64")]);
        let new = sorted(vec![pkg("a", "1.0-1", "x86_64")]);
        let d = diff(&old, &new);
        assert_eq!(d.removed, vec![pkg("a", "1.0-1", "i686")]);
        assert!(d.modified.is_empty() && d.added.is_empty());
    }

    #[test]
    fn evr_order_agrees_with_rpms_string_comparison() {
        let evrs = [
            "1.0-1",
            "1:0.9-1",
            "2:1.0-1",
            "1.0~rc1-1",
            "1.0-1.fc39",
            "1.0^1-1",
            "10-0",
        ];
        for a in evrs {
            for b in evrs {
                assert_eq!(
                    evr_order(&pkg("x", a, "noarch"), &pkg("x", b, "noarch")),
                    rpmostree_dnf::evr_cmp(a, b),
                    "{a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn empty_lists() {
        let one = vec![pkg("a", "1-1", "noarch")];
        assert_eq!(diff(&[], &one).added, one);
        assert_eq!(diff(&one, &[]).removed, one);
        assert!(diff(&[], &[]).is_empty());
    }

    #[test]
    fn pkglist_entries_parse() {
        let p = from_pkglist_entry((
            "libfoo".into(),
            "2".into(),
            "1.0".into(),
            "3".into(),
            "noarch".into(),
        ));
        assert_eq!(p.nevra(), "libfoo-2:1.0-3.noarch");
        let p = from_pkglist_entry((
            "x".into(),
            "".into(),
            "1".into(),
            "1".into(),
            "noarch".into(),
        ));
        assert_eq!(p.evr(), "1-1");
    }
}
