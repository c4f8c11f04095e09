//! Real RPM fixtures: packages built with `rpmbuild` from generated specs, rpm-md repositories
//! made with `createrepo_c` (plus an `updateinfo.xml` through `modifyrepo_c`), and rpm
//! databases written into trees with `rpm --justdb`.
//!
//! Built packages are cached on disk, keyed by a hash of their spec, so a test binary pays
//! for `rpmbuild` once per spec and machine; the cache is filled by atomic renames, so
//! concurrent test processes never see half a package.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::{Context, HarnessError};
use crate::process;

/// How long one rpm tool run may take on a busy machine.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// A noarch test package.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RpmSpec {
    /// `Name:`.
    pub name: String,
    /// `Epoch:` (0 writes no epoch tag).
    pub epoch: u32,
    /// `Version:`.
    pub version: String,
    /// `Release:`.
    pub release: String,
    /// `Summary:`.
    pub summary: String,
    /// `Requires:` lines.
    pub requires: Vec<String>,
    /// `Provides:` lines.
    pub provides: Vec<String>,
    /// Files as (absolute path, content).
    pub files: Vec<(String, String)>,
    /// `Recommends:` lines.
    pub recommends: Vec<String>,
    /// Directories the package owns (`%dir`), absolute.
    pub dirs: Vec<String>,
    /// Scriptlets as (section header, body): `("%post", "echo hi")`,
    /// `("%post -p <lua>", "print(1)")`.
    pub scripts: Vec<(String, String)>,
    /// `%attr(mode,user,group)` of files, by path.
    pub attrs: Vec<(String, String)>,
}

impl RpmSpec {
    /// A package with a default summary and one data file under `/usr/share/<name>`.
    pub fn new(name: &str, version: &str, release: &str) -> Self {
        Self {
            name: name.to_owned(),
            epoch: 0,
            version: version.to_owned(),
            release: release.to_owned(),
            summary: format!("The {name} test package"),
            requires: Vec::new(),
            provides: Vec::new(),
            files: vec![(
                format!("/usr/share/{name}/VERSION"),
                format!("{name} {version}-{release}\n"),
            )],
            recommends: Vec::new(),
            dirs: Vec::new(),
            scripts: Vec::new(),
            attrs: Vec::new(),
        }
    }

    /// Adds a file with an owner, group and mode (`%attr(mode,user,group)`).
    pub fn file_owned(
        mut self,
        path: &str,
        content: &str,
        mode: &str,
        user: &str,
        group: &str,
    ) -> Self {
        self.files.push((path.to_owned(), content.to_owned()));
        self.attrs
            .push((path.to_owned(), format!("%attr({mode},{user},{group})")));
        self
    }

    /// Adds a `Recommends:`.
    pub fn recommends(mut self, recommend: &str) -> Self {
        self.recommends.push(recommend.to_owned());
        self
    }

    /// Adds a directory the package owns.
    pub fn dir(mut self, path: &str) -> Self {
        self.dirs.push(path.to_owned());
        self
    }

    /// Adds a scriptlet: `header` is the spec section line (`%post`, `%pre`, `%posttrans`,
    /// `%post -p <lua>`, `%triggerin -- other`), `body` its text.
    pub fn script(mut self, header: &str, body: &str) -> Self {
        self.scripts.push((header.to_owned(), body.to_owned()));
        self
    }

    /// Sets the summary.
    pub fn summary(mut self, summary: &str) -> Self {
        summary.clone_into(&mut self.summary);
        self
    }

    /// Sets the epoch.
    pub fn epoch(mut self, epoch: u32) -> Self {
        self.epoch = epoch;
        self
    }

    /// Adds a `Provides:`.
    pub fn provides(mut self, provide: &str) -> Self {
        self.provides.push(provide.to_owned());
        self
    }

    /// Adds a `Requires:`.
    pub fn requires(mut self, require: &str) -> Self {
        self.requires.push(require.to_owned());
        self
    }

    /// Adds a file.
    pub fn file(mut self, path: &str, content: &str) -> Self {
        self.files.push((path.to_owned(), content.to_owned()));
        self
    }

    /// `E:V-R` as rpm prints it (no epoch when 0).
    pub fn evr(&self) -> String {
        if self.epoch == 0 {
            format!("{}-{}", self.version, self.release)
        } else {
            format!("{}:{}-{}", self.epoch, self.version, self.release)
        }
    }

    /// `N-E:V-R.noarch`.
    pub fn nevra(&self) -> String {
        format!("{}-{}.noarch", self.name, self.evr())
    }

    /// The package file name rpmbuild writes.
    pub fn file_name(&self) -> String {
        format!("{}-{}-{}.noarch.rpm", self.name, self.version, self.release)
    }

    /// The `(name, epoch, version, release, arch)` tuple of `rpmostree.rpmdb.pkglist`.
    pub fn pkglist_entry(&self) -> (String, String, String, String, String) {
        (
            self.name.clone(),
            self.epoch.to_string(),
            self.version.clone(),
            self.release.clone(),
            "noarch".to_owned(),
        )
    }

    fn spec_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Name: {}", self.name);
        if self.epoch != 0 {
            let _ = writeln!(s, "Epoch: {}", self.epoch);
        }
        let _ = writeln!(s, "Version: {}", self.version);
        let _ = writeln!(s, "Release: {}", self.release);
        let _ = writeln!(s, "Summary: {}", self.summary);
        s.push_str("License: MIT\nBuildArch: noarch\n");
        for r in &self.requires {
            let _ = writeln!(s, "Requires: {r}");
        }
        for p in &self.provides {
            let _ = writeln!(s, "Provides: {p}");
        }
        for r in &self.recommends {
            let _ = writeln!(s, "Recommends: {r}");
        }
        let _ = writeln!(s, "%description\n{}.\n%install", self.summary);
        for (i, (path, content)) in self.files.iter().enumerate() {
            let dir = Path::new(path)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            // The content goes through a here-document with a quoted, unique delimiter.
            let _ = writeln!(
                s,
                "mkdir -p %{{buildroot}}{dir}\ncat > %{{buildroot}}{path} <<'FIXTURE_EOF_{i}'\n{content}FIXTURE_EOF_{i}"
            );
        }
        for dir in &self.dirs {
            let _ = writeln!(s, "mkdir -p %{{buildroot}}{dir}");
        }
        for (header, body) in &self.scripts {
            let _ = writeln!(s, "{header}\n{body}");
        }
        s.push_str("%files\n");
        for (path, _) in &self.files {
            match self.attrs.iter().find(|(p, _)| p == path) {
                Some((_, attr)) => {
                    let _ = writeln!(s, "{attr} {path}");
                }
                None => {
                    let _ = writeln!(s, "{path}");
                }
            }
        }
        for dir in &self.dirs {
            let _ = writeln!(s, "%dir {dir}");
        }
        s
    }

    fn cache_key(&self) -> String {
        let mut h = DefaultHasher::new();
        // Bump when spec_text changes shape.
        "rpmspec-v2".hash(&mut h);
        self.hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

/// The on-disk cache of built packages.
fn cache_dir() -> PathBuf {
    std::env::temp_dir().join("rpmostree-test-rpms")
}

/// Builds (or takes from the cache) one package per spec; returns their paths in order.
/// Packages not in the cache are built in parallel.
pub fn build_rpms(specs: &[RpmSpec]) -> Result<Vec<PathBuf>, HarnessError> {
    std::thread::scope(|scope| {
        let builds: Vec<_> = specs
            .iter()
            .map(|spec| scope.spawn(move || build_rpm(spec)))
            .collect();
        builds
            .into_iter()
            .map(|b| {
                b.join()
                    .unwrap_or_else(|_| Err(HarnessError::new("an rpmbuild thread panicked")))
            })
            .collect()
    })
}

fn build_rpm(spec: &RpmSpec) -> Result<PathBuf, HarnessError> {
    let dir = cache_dir().join(spec.cache_key());
    let rpm = dir.join(spec.file_name());
    if rpm.is_file() {
        return Ok(rpm);
    }
    static BUILDS: AtomicUsize = AtomicUsize::new(0);
    let work = cache_dir().join(format!(
        ".build-{}-{}-{}",
        spec.cache_key(),
        std::process::id(),
        BUILDS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| HarnessError::io("creating", &work, e))?;
    let spec_file = work.join(format!("{}.spec", spec.name));
    fs::write(&spec_file, spec.spec_text())
        .map_err(|e| HarnessError::io("writing", &spec_file, e))?;
    let out = work.join("out");
    process::run_ok(
        rpmbuild(&work, &out)
            .arg("--define")
            .arg("_rpmfilename %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm")
            .arg(&spec_file),
        TOOL_TIMEOUT,
    )
    .context(format!("building {}", spec.nevra()))?;
    let built = out.join(spec.file_name());
    let staged = work.join("final");
    fs::create_dir_all(&staged).map_err(|e| HarnessError::io("creating", &staged, e))?;
    fs::rename(&built, staged.join(spec.file_name()))
        .map_err(|e| HarnessError::io("moving", &built, e))?;
    // Publish the directory atomically; a concurrent builder of the same spec may win.
    if fs::rename(&staged, &dir).is_err() && !rpm.is_file() {
        return Err(HarnessError::new(format!(
            "could not publish {} into {}",
            spec.nevra(),
            dir.display()
        )));
    }
    let _ = fs::remove_dir_all(&work);
    Ok(rpm)
}

/// The on-disk cache of package sets built by [`build_rpm_set`].
fn set_cache_dir() -> PathBuf {
    std::env::temp_dir().join("rpmostree-bench-rpms")
}

/// The text of one spec whose subpackages are `specs`: the main package has no `%files`, so
/// rpmbuild writes only the subpackages, each with its own epoch, version, release, summary,
/// dependencies and files.
fn set_spec_text(specs: &[RpmSpec]) -> String {
    let mut s = String::from(
        "Name: rpmostree-test-set\nVersion: 0\nRelease: 0\nSummary: Test packages built together\n\
         License: MIT\nBuildArch: noarch\n\
         %global debug_package %{nil}\n%global __os_install_post %{nil}\n\
         %global _binary_payload w.ufdio\n\
         %description\nTest packages built together.\n",
    );
    for spec in specs {
        let _ = writeln!(s, "%package -n {}", spec.name);
        if spec.epoch != 0 {
            let _ = writeln!(s, "Epoch: {}", spec.epoch);
        }
        let _ = writeln!(s, "Version: {}", spec.version);
        let _ = writeln!(s, "Release: {}", spec.release);
        let _ = writeln!(s, "Summary: {}", spec.summary);
        for r in &spec.requires {
            let _ = writeln!(s, "Requires: {r}");
        }
        for p in &spec.provides {
            let _ = writeln!(s, "Provides: {p}");
        }
        let _ = writeln!(s, "%description -n {}\n{}.", spec.name, spec.summary);
    }
    s.push_str("%install\n");
    for (n, spec) in specs.iter().enumerate() {
        for (i, (path, content)) in spec.files.iter().enumerate() {
            let dir = Path::new(path)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "mkdir -p %{{buildroot}}{dir}\ncat > %{{buildroot}}{path} <<'FIXTURE_EOF_{n}_{i}'\n{content}FIXTURE_EOF_{n}_{i}"
            );
        }
    }
    for spec in specs {
        let _ = writeln!(s, "%files -n {}", spec.name);
        for (path, _) in &spec.files {
            let _ = writeln!(s, "{path}");
        }
    }
    s
}

fn set_cache_key(specs: &[RpmSpec]) -> String {
    let mut h = DefaultHasher::new();
    // Bump when set_spec_text changes shape.
    "rpmset-v1".hash(&mut h);
    specs.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Builds (or takes from the cache) many packages in one `rpmbuild` run: one spec whose
/// subpackages are `specs` (names must differ), uncompressed payloads. Thousands of packages
/// take well under a minute this way, where [`build_rpms`] spends ~100 ms on each. Returns
/// their paths in order. The set is cached under `$TMPDIR/rpmostree-bench-rpms/<hash>/`,
/// published by an atomic rename like [`build_rpms`]'s cache.
pub fn build_rpm_set(specs: &[RpmSpec]) -> Result<Vec<PathBuf>, HarnessError> {
    let key = set_cache_key(specs);
    let dir = set_cache_dir().join(&key);
    let paths: Vec<PathBuf> = specs.iter().map(|s| dir.join(s.file_name())).collect();
    if specs.is_empty() || paths.iter().all(|p| p.is_file()) {
        return Ok(paths);
    }
    static BUILDS: AtomicUsize = AtomicUsize::new(0);
    let work = set_cache_dir().join(format!(
        ".build-{key}-{}-{}",
        std::process::id(),
        BUILDS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| HarnessError::io("creating", &work, e))?;
    let spec_file = work.join("set.spec");
    fs::write(&spec_file, set_spec_text(specs))
        .map_err(|e| HarnessError::io("writing", &spec_file, e))?;
    let out = work.join("final");
    process::run_ok(
        rpmbuild(&work, &out)
            // Doubled `%`: the tags of each subpackage's header, not the spec's macros.
            .arg("--define")
            .arg("_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm")
            .arg(&spec_file),
        // Roughly 20 ms a package on a busy machine, and the usual margin.
        TOOL_TIMEOUT + Duration::from_millis(50 * specs.len() as u64),
    )
    .context(format!("building a set of {} packages", specs.len()))?;
    if let Some(missing) = specs.iter().find(|s| !out.join(s.file_name()).is_file()) {
        return Err(HarnessError::new(format!(
            "rpmbuild did not write {} into {}",
            missing.file_name(),
            out.display()
        )));
    }
    // Publish the directory atomically; a concurrent builder of the same set may win.
    if fs::rename(&out, &dir).is_err() && !paths.iter().all(|p| p.is_file()) {
        return Err(HarnessError::new(format!(
            "could not publish a set of {} packages into {}",
            specs.len(),
            dir.display()
        )));
    }
    let _ = fs::remove_dir_all(&work);
    Ok(paths)
}

/// `rpmbuild -bb` of a spec in the private work directory `work` (its own HOME and topdir),
/// packages into `out`; the caller adds the file-name format and the spec.
fn rpmbuild(work: &Path, out: &Path) -> Command {
    let mut cmd = Command::new("rpmbuild");
    cmd.env("HOME", work)
        .args(["-bb", "--nodeps", "--quiet", "--define"])
        .arg(format!("_topdir {}", work.join("top").display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", out.display()))
        .args(["--define", "_build_id_links none"]);
    cmd
}

/// An `updateinfo.xml` entry.
#[derive(Debug, Clone)]
pub struct UpdateAdvisory {
    /// The advisory id, e.g. `TESTOS-2026-0001`.
    pub id: String,
    /// `security`, `bugfix` or `enhancement`.
    pub kind: String,
    /// `Critical`, `Important`, `Moderate`, `Low` or empty.
    pub severity: String,
    /// The title.
    pub title: String,
    /// CVE ids; each becomes a bugzilla reference whose title names it.
    pub cves: Vec<String>,
    /// The packages the advisory ships.
    pub packages: Vec<RpmSpec>,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The `updateinfo.xml` text for `advisories`.
pub fn updateinfo_xml(advisories: &[UpdateAdvisory]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<updates>\n");
    for a in advisories {
        let _ = writeln!(
            s,
            "  <update from=\"testos@example.org\" status=\"stable\" type=\"{}\" version=\"2.0\">",
            xml_escape(&a.kind)
        );
        let _ = writeln!(s, "    <id>{}</id>", xml_escape(&a.id));
        let _ = writeln!(s, "    <title>{}</title>", xml_escape(&a.title));
        s.push_str("    <issued date=\"2026-11-30 10:00:00\"/>\n");
        if !a.severity.is_empty() {
            let _ = writeln!(s, "    <severity>{}</severity>", xml_escape(&a.severity));
        }
        s.push_str("    <references>\n");
        for (i, cve) in a.cves.iter().enumerate() {
            let _ = writeln!(
                s,
                "      <reference href=\"https://bugzilla.example.org/{}\" id=\"{}\" type=\"bugzilla\" title=\"{} {}: flaw found by tests\"/>",
                1000 + i,
                1000 + i,
                xml_escape(cve),
                xml_escape(
                    &a.packages
                        .first()
                        .map(|p| p.name.clone())
                        .unwrap_or_default()
                ),
            );
        }
        s.push_str("    </references>\n    <description>Test advisory.</description>\n");
        s.push_str(
            "    <pkglist>\n      <collection short=\"testos\">\n        <name>TestOS</name>\n",
        );
        for p in &a.packages {
            let _ = writeln!(
                s,
                "        <package name=\"{}\" version=\"{}\" release=\"{}\" epoch=\"{}\" arch=\"noarch\" src=\"{}-{}-{}.src.rpm\">\n          <filename>{}</filename>\n        </package>",
                xml_escape(&p.name),
                xml_escape(&p.version),
                xml_escape(&p.release),
                p.epoch,
                xml_escape(&p.name),
                xml_escape(&p.version),
                xml_escape(&p.release),
                xml_escape(&p.file_name()),
            );
        }
        s.push_str("      </collection>\n    </pkglist>\n  </update>\n");
    }
    s.push_str("</updates>\n");
    s
}

/// Makes `dir` an rpm-md repository holding `rpms`, with `advisories` as its updateinfo.
/// An existing repository there is replaced.
pub fn create_repo(
    dir: &Path,
    rpms: &[PathBuf],
    advisories: &[UpdateAdvisory],
) -> Result<(), HarnessError> {
    let _ = fs::remove_dir_all(dir);
    let packages = dir.join("Packages");
    fs::create_dir_all(&packages).map_err(|e| HarnessError::io("creating", &packages, e))?;
    for rpm in rpms {
        let name = rpm
            .file_name()
            .ok_or_else(|| HarnessError::new(format!("{} has no file name", rpm.display())))?;
        let dest = packages.join(name);
        fs::copy(rpm, &dest).map_err(|e| HarnessError::io("copying", rpm, e))?;
    }
    process::run_ok(
        Command::new("createrepo_c")
            .args(["-q", "--no-database"])
            .arg(dir),
        TOOL_TIMEOUT,
    )
    .context(format!("createrepo_c {}", dir.display()))?;
    if !advisories.is_empty() {
        let xml = dir.join("updateinfo.xml");
        fs::write(&xml, updateinfo_xml(advisories))
            .map_err(|e| HarnessError::io("writing", &xml, e))?;
        process::run_ok(
            Command::new("modifyrepo_c")
                .arg("--mdtype=updateinfo")
                .arg(&xml)
                .arg(dir.join("repodata")),
            TOOL_TIMEOUT,
        )
        .context(format!("modifyrepo_c {}", dir.display()))?;
        let _ = fs::remove_file(&xml);
    }
    Ok(())
}

/// Writes an rpm database holding `rpms` (headers only, no files, no scripts) at
/// `root/usr/share/rpm`, where rpm-ostree keeps it, with `usr/lib/sysimage/rpm` linking to
/// it; an existing database is replaced. Leaves no `-shm`/`-wal`/lock files behind.
pub fn install_rpmdb(root: &Path, rpms: &[PathBuf]) -> Result<(), HarnessError> {
    let db = root.join("usr/share/rpm");
    let _ = fs::remove_dir_all(&db);
    fs::create_dir_all(&db).map_err(|e| HarnessError::io("creating", &db, e))?;
    let sysimage = root.join("usr/lib/sysimage");
    fs::create_dir_all(&sysimage).map_err(|e| HarnessError::io("creating", &sysimage, e))?;
    let link = sysimage.join("rpm");
    if fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("../../share/rpm", &link)
            .map_err(|e| HarnessError::io("symlinking", &link, e))?;
    }
    if rpms.is_empty() {
        return Ok(());
    }
    process::run_ok(
        Command::new("rpm")
            .arg("--root")
            .arg(root)
            .args([
                "--dbpath",
                "/usr/share/rpm",
                "-i",
                "--justdb",
                "--nodeps",
                "--noscripts",
                "--notriggers",
                "--nosignature",
                "--nodigest",
                "--ignorearch",
            ])
            .args(rpms),
        TOOL_TIMEOUT,
    )
    .context(format!("writing the rpmdb of {}", root.display()))?;
    for leftover in ["rpmdb.sqlite-shm", "rpmdb.sqlite-wal", ".rpm.lock"] {
        let _ = fs::remove_file(db.join(leftover));
    }
    Ok(())
}

/// The GVariant text of an `a(sssss)` `rpmostree.rpmdb.pkglist` for `specs`, sorted as
/// rpm-ostree's compose sorts it (by name, then arch).
pub fn pkglist_variant_text(specs: &[RpmSpec]) -> String {
    let mut entries: Vec<_> = specs.iter().map(RpmSpec::pkglist_entry).collect();
    entries.sort_by(|a, b| (&a.0, &a.4).cmp(&(&b.0, &b.4)));
    if entries.is_empty() {
        return "@a(sssss) []".to_owned();
    }
    let items: Vec<String> = entries
        .iter()
        .map(|(n, e, v, r, a)| format!("('{n}', '{e}', '{v}', '{r}', '{a}')"))
        .collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_text_has_every_field() {
        let spec = RpmSpec::new("libfoo", "2.0", "1")
            .epoch(1)
            .provides("foo-capability = 2.0")
            .requires("base-files")
            .summary("Foo");
        let text = spec.spec_text();
        for needle in [
            "Name: libfoo",
            "Epoch: 1",
            "Version: 2.0",
            "Release: 1",
            "Summary: Foo",
            "Provides: foo-capability = 2.0",
            "Requires: base-files",
            "/usr/share/libfoo/VERSION",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert_eq!(spec.evr(), "1:2.0-1");
        assert_eq!(spec.nevra(), "libfoo-1:2.0-1.noarch");
    }

    #[test]
    fn set_spec_text_has_one_subpackage_per_spec() {
        let specs = [
            RpmSpec::new("alpha", "1.0", "1"),
            RpmSpec::new("beta", "2.0", "3").epoch(2).provides("b = 2"),
        ];
        let text = set_spec_text(&specs);
        for needle in [
            "%package -n alpha\nVersion: 1.0\nRelease: 1\n",
            "%package -n beta\nEpoch: 2\nVersion: 2.0\nRelease: 3\n",
            "Provides: b = 2",
            "%description -n beta\n",
            "%files -n alpha\n/usr/share/alpha/VERSION\n",
            "FIXTURE_EOF_1_0",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert_eq!(text.matches("%files").count(), 2, "no main package");
        assert_ne!(set_cache_key(&specs), set_cache_key(&specs[..1]));
    }

    #[test]
    fn pkglist_text_is_sorted_gvariant() {
        let specs = [
            RpmSpec::new("zeta", "1", "1"),
            RpmSpec::new("alpha", "2", "3"),
        ];
        assert_eq!(
            pkglist_variant_text(&specs),
            "[('alpha', '0', '2', '3', 'noarch'), ('zeta', '0', '1', '1', 'noarch')]"
        );
        assert_eq!(pkglist_variant_text(&[]), "@a(sssss) []");
    }

    #[test]
    fn updateinfo_names_cves_in_bugzilla_titles() {
        let xml = updateinfo_xml(&[UpdateAdvisory {
            id: "TESTOS-2026-0001".into(),
            kind: "security".into(),
            severity: "Important".into(),
            title: "libfoo <fix>".into(),
            cves: vec!["CVE-2026-0001".into()],
            packages: vec![RpmSpec::new("libfoo", "2.0", "1")],
        }]);
        assert!(xml.contains("type=\"security\""));
        assert!(xml.contains("<severity>Important</severity>"));
        assert!(xml.contains("type=\"bugzilla\" title=\"CVE-2026-0001 libfoo"));
        assert!(xml.contains("libfoo &lt;fix&gt;"));
        assert!(xml.contains("<filename>libfoo-2.0-1.noarch.rpm</filename>"));
    }
}
