//! A deployment's origin file as a model, with upstream's keys: where the tree comes from
//! (`[origin]` `refspec`, or `baserefspec` when packages may be layered, or
//! `container-image-reference`), the package requests (`[packages]`), the base overrides
//! (`[overrides]`) and the initramfs settings (`[rpmostree]`). Lists compare as sets, as
//! upstream compares them; writing uses upstream's layout, so a parse and a write round-trip.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, anyhow, bail};
use ostree::glib;

const ORIGIN: &str = "origin";
const PACKAGES: &str = "packages";
const OVERRIDES: &str = "overrides";
const RPMOSTREE: &str = "rpmostree";

/// The parsed origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Origin {
    /// `refspec` or `baserefspec` (which one is written follows
    /// [`Origin::may_require_local_assembly`]).
    pub(crate) refspec: Option<String>,
    /// `container-image-reference`.
    pub(crate) container_image_reference: Option<String>,
    /// `override-commit`: a pinned revision.
    pub(crate) override_commit: Option<String>,
    /// `custom-url` and `custom-description`.
    pub(crate) custom: Option<(String, Option<String>)>,
    /// `unconfigured-state`.
    pub(crate) unconfigured_state: Option<String>,
    /// `[packages] requested`: the requests as typed (names, NEVRAs, globs, provides, paths).
    pub(crate) requested: BTreeSet<String>,
    /// `[packages] requested-local`: NEVRA → sha256 of the local RPM.
    pub(crate) requested_local: BTreeMap<String, String>,
    /// `[packages] requested-local-fileoverride`: NEVRA → sha256.
    pub(crate) requested_local_fileoverride: BTreeMap<String, String>,
    /// `[overrides] remove`: base packages removed.
    pub(crate) override_remove: BTreeSet<String>,
    /// `[overrides] replace-local`: NEVRA → sha256 of the replacing local RPM.
    pub(crate) override_replace_local: BTreeMap<String, String>,
    /// `[overrides] replace`: `repo=X,pkg,…` entries, kept as written.
    pub(crate) override_replace: BTreeSet<String>,
    /// `[rpmostree] regenerate-initramfs`.
    pub(crate) regenerate_initramfs: bool,
    /// `[rpmostree] initramfs-args`.
    pub(crate) initramfs_args: Vec<String>,
    /// `[rpmostree] initramfs-etc`.
    pub(crate) initramfs_etc: BTreeSet<String>,
    /// `[rpmostree] ex-cliwrap`.
    pub(crate) cliwrap: bool,
}

/// A key's value, `None` when the group or key is missing.
fn string(kf: &glib::KeyFile, group: &str, key: &str) -> Option<String> {
    kf.string(group, key).ok().map(|s| s.to_string())
}

fn list<T: FromIterator<String>>(kf: &glib::KeyFile, group: &str, key: &str) -> T {
    kf.string_list(group, key)
        .map(|l| l.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Writes a list key in upstream's layout, `a;b;` (each item followed by the separator); an
/// empty list removes the key.
fn set_list<'a>(kf: &glib::KeyFile, group: &str, key: &str, items: impl Iterator<Item = &'a str>) {
    let value: String = items.map(|i| format!("{i};")).collect();
    if value.is_empty() {
        let _ = kf.remove_key(group, key);
    } else {
        kf.set_value(group, key, &value);
    }
}

/// Writes local packages (NEVRA -> sha256) as upstream's `<sha256>:<nevra>` list.
fn set_local(kf: &glib::KeyFile, group: &str, key: &str, pkgs: &BTreeMap<String, String>) {
    let items: Vec<String> = pkgs
        .iter()
        .map(|(nevra, sha256)| format!("{sha256}:{nevra}"))
        .collect();
    set_list(kf, group, key, items.iter().map(String::as_str));
}

/// Splits `<sha256>:<nevra>` (upstream's "sha256-nevra").
pub(crate) fn decompose_sha256_nevra(s: &str) -> Result<(String, String)> {
    let invalid = || anyhow!("Invalid sha256-nevra: {s}");
    let (sha256, nevra) = s.split_at_checked(64).ok_or_else(invalid)?;
    let nevra = nevra.strip_prefix(':').ok_or_else(invalid)?;
    if nevra.is_empty() || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    Ok((nevra.to_owned(), sha256.to_ascii_lowercase()))
}

fn local_list(kf: &glib::KeyFile, group: &str, key: &str) -> Result<BTreeMap<String, String>> {
    list::<Vec<String>>(kf, group, key)
        .iter()
        .map(|s| decompose_sha256_nevra(s))
        .collect()
}

impl Origin {
    /// Parses an origin key file.
    pub(crate) fn from_keyfile(kf: &glib::KeyFile) -> Result<Self> {
        let refspec = string(kf, ORIGIN, "refspec").or_else(|| string(kf, ORIGIN, "baserefspec"));
        let container_image_reference = string(kf, ORIGIN, "container-image-reference");
        match (&refspec, &container_image_reference) {
            (Some(_), Some(_)) => {
                bail!("Found both refspec/baserefspec and container-image-reference in origin")
            }
            (None, None) => {
                bail!("Failed to find refspec/baserefspec/container-image-reference in origin")
            }
            _ => {}
        }
        Ok(Self {
            refspec,
            container_image_reference,
            override_commit: string(kf, ORIGIN, "override-commit"),
            custom: string(kf, ORIGIN, "custom-url")
                .map(|url| (url, string(kf, ORIGIN, "custom-description"))),
            unconfigured_state: string(kf, ORIGIN, "unconfigured-state"),
            requested: list(kf, PACKAGES, "requested"),
            requested_local: local_list(kf, PACKAGES, "requested-local")?,
            requested_local_fileoverride: local_list(kf, PACKAGES, "requested-local-fileoverride")?,
            override_remove: list(kf, OVERRIDES, "remove"),
            override_replace_local: local_list(kf, OVERRIDES, "replace-local")?,
            override_replace: list(kf, OVERRIDES, "replace"),
            regenerate_initramfs: kf
                .boolean(RPMOSTREE, "regenerate-initramfs")
                .unwrap_or(false),
            initramfs_args: list(kf, RPMOSTREE, "initramfs-args"),
            initramfs_etc: list(kf, RPMOSTREE, "initramfs-etc"),
            cliwrap: kf.boolean(RPMOSTREE, "ex-cliwrap").unwrap_or(false),
        })
    }

    /// Parses origin text.
    #[cfg(test)]
    pub(crate) fn parse(text: &str) -> Result<Self> {
        Self::from_keyfile(&super::deploy::parse_keyfile(text)?)
    }

    /// Whether deploying this origin may need local assembly (packages, overrides or
    /// initramfs settings): then the refspec is written as `baserefspec`.
    pub(crate) fn may_require_local_assembly(&self) -> bool {
        !self.requested.is_empty()
            || !self.requested_local.is_empty()
            || !self.requested_local_fileoverride.is_empty()
            || !self.override_remove.is_empty()
            || !self.override_replace_local.is_empty()
            || !self.override_replace.is_empty()
            || self.regenerate_initramfs
            || !self.initramfs_etc.is_empty()
    }

    /// Whether the origin asks for packages: requests (by pattern or local) or base overrides
    /// (removals or local replacements).
    pub(crate) fn has_requests(&self) -> bool {
        !self.requested.is_empty()
            || !self.requested_local.is_empty()
            || !self.override_remove.is_empty()
            || !self.override_replace_local.is_empty()
    }

    /// Writes the package requests and base overrides (`requested`, `requested-local`,
    /// `[overrides] remove` and `replace-local`) into `kf` in upstream's layout; empty lists
    /// remove their keys.
    pub(crate) fn write_requests(&self, kf: &glib::KeyFile) {
        set_list(
            kf,
            PACKAGES,
            "requested",
            self.requested.iter().map(String::as_str),
        );
        set_local(kf, PACKAGES, "requested-local", &self.requested_local);
        set_list(
            kf,
            OVERRIDES,
            "remove",
            self.override_remove.iter().map(String::as_str),
        );
        set_local(kf, OVERRIDES, "replace-local", &self.override_replace_local);
    }

    /// The key file upstream would write for this origin (the round-trip check of the parser;
    /// deploys write only the package keys, with [`Origin::write_requests`]).
    #[cfg(test)]
    pub(crate) fn to_keyfile(&self) -> glib::KeyFile {
        let kf = glib::KeyFile::new();
        if let Some(r) = &self.refspec {
            let key = if self.may_require_local_assembly() {
                "baserefspec"
            } else {
                "refspec"
            };
            kf.set_string(ORIGIN, key, r);
        } else if let Some(c) = &self.container_image_reference {
            kf.set_string(ORIGIN, "container-image-reference", c);
        }
        self.write_requests(&kf);
        set_local(
            &kf,
            PACKAGES,
            "requested-local-fileoverride",
            &self.requested_local_fileoverride,
        );
        set_list(
            &kf,
            OVERRIDES,
            "replace",
            self.override_replace.iter().map(String::as_str),
        );
        if self.regenerate_initramfs {
            kf.set_boolean(RPMOSTREE, "regenerate-initramfs", true);
        }
        set_list(
            &kf,
            RPMOSTREE,
            "initramfs-etc",
            self.initramfs_etc.iter().map(String::as_str),
        );
        set_list(
            &kf,
            RPMOSTREE,
            "initramfs-args",
            self.initramfs_args.iter().map(String::as_str),
        );
        if let Some((url, description)) = &self.custom {
            kf.set_string(ORIGIN, "custom-url", url);
            if let Some(d) = description {
                kf.set_string(ORIGIN, "custom-description", d);
            }
        }
        if self.cliwrap {
            kf.set_boolean(RPMOSTREE, "ex-cliwrap", true);
        }
        if let Some(c) = &self.override_commit {
            kf.set_string(ORIGIN, "override-commit", c);
        }
        if let Some(s) = &self.unconfigured_state {
            kf.set_string(ORIGIN, "unconfigured-state", s);
        }
        kf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1";

    fn layered() -> String {
        format!(
            "[origin]\nbaserefspec=fedora:fedora/39/x86_64/silverblue\noverride-commit=abc\n\n\
             [packages]\nrequested=zsh;vim-enhanced;/usr/bin/tmux;\n\
             requested-local={SHA}:foo-1.0-1.x86_64;\n\n\
             [overrides]\nremove=firefox;\nreplace-local={SHA}:kernel-6.0-1.x86_64;\n\n\
             [rpmostree]\nregenerate-initramfs=true\ninitramfs-etc=/etc/crypttab;\n"
        )
    }

    #[test]
    fn a_layered_origin_parses_and_round_trips() {
        let o = Origin::parse(&layered()).unwrap_or_default();
        assert_eq!(
            o.refspec.as_deref(),
            Some("fedora:fedora/39/x86_64/silverblue")
        );
        let requested: Vec<&str> = o.requested.iter().map(String::as_str).collect();
        assert_eq!(requested, ["/usr/bin/tmux", "vim-enhanced", "zsh"]);
        assert_eq!(
            o.requested_local
                .get("foo-1.0-1.x86_64")
                .map(String::as_str),
            Some(SHA)
        );
        assert!(o.override_remove.contains("firefox"));
        assert_eq!(o.override_replace_local.len(), 1);
        assert!(o.regenerate_initramfs && o.may_require_local_assembly());
        assert_eq!(o.override_commit.as_deref(), Some("abc"));

        let written = o.to_keyfile();
        assert!(written.string(ORIGIN, "baserefspec").is_ok());
        assert!(written.string(ORIGIN, "refspec").is_err());
        let again = Origin::from_keyfile(&written).unwrap_or_default();
        assert_eq!(again, o);
    }

    #[test]
    fn without_requests_the_refspec_is_plain() {
        let mut o =
            Origin::parse("[origin]\nbaserefspec=origin:testos/stable\n").unwrap_or_default();
        assert!(!o.may_require_local_assembly());
        let kf = o.to_keyfile();
        assert_eq!(
            kf.string(ORIGIN, "refspec").ok().as_deref(),
            Some("origin:testos/stable")
        );
        o.requested.insert("hello".into());
        let kf = o.to_keyfile();
        assert!(kf.string(ORIGIN, "refspec").is_err());
        assert_eq!(
            kf.string_list(PACKAGES, "requested")
                .map(|l| l.len())
                .unwrap_or_default(),
            1
        );
    }

    #[test]
    fn bad_origins_are_errors_naming_the_problem() {
        let both = Origin::parse(
            "[origin]\nrefspec=a:b\ncontainer-image-reference=ostree-unverified-registry:x\n",
        );
        assert!(both.is_err_and(|e| e.to_string().contains("Found both")));
        let none = Origin::parse("[origin]\nunconfigured-state=x\n");
        assert!(none.is_err_and(|e| e.to_string().contains("Failed to find")));
        let bad = Origin::parse("[origin]\nrefspec=a:b\n[packages]\nrequested-local=nope;\n");
        assert!(bad.is_err_and(|e| e.to_string().contains("Invalid sha256-nevra: nope")));
        assert!(decompose_sha256_nevra(&format!("{SHA}:")).is_err());
        assert!(decompose_sha256_nevra(&format!("{}:x", "z".repeat(64))).is_err());
        assert_eq!(
            decompose_sha256_nevra(&format!("{SHA}:x-1-1.noarch")).ok(),
            Some(("x-1-1.noarch".to_owned(), SHA.to_owned()))
        );
    }
}
