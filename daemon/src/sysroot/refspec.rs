//! Pure helpers for requests: refspec changes, revisions and kernel-argument edits, with
//! upstream's semantics. No libostree here, so all of it is unit-tested.

use anyhow::{Result, bail};

/// A parsed `remote:ref` (the remote may be absent for a local ref).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refspec {
    /// The remote, if any.
    pub(crate) remote: Option<String>,
    /// The branch.
    pub(crate) branch: String,
}

impl Refspec {
    /// Parses `remote:ref`, `:ref` or `ref`.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        let (remote, branch) = match s.split_once(':') {
            Some((r, b)) => (if r.is_empty() { None } else { Some(r) }, b),
            None => (None, s),
        };
        if let Some(r) = remote {
            check_name("remote", r)?;
        }
        if branch.is_empty() {
            bail!("Invalid refspec '{s}': the branch is empty");
        }
        check_ref(s, branch)?;
        Ok(Self {
            remote: remote.map(str::to_owned),
            branch: branch.to_owned(),
        })
    }
}

impl std::fmt::Display for Refspec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.remote {
            Some(r) => write!(f, "{r}:{}", self.branch),
            None => f.write_str(&self.branch),
        }
    }
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        bail!("Invalid {what} name '{name}': use letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

fn check_ref(whole: &str, branch: &str) -> Result<()> {
    let ok = branch.split('/').all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    });
    if !ok {
        bail!("Invalid refspec '{whole}': '{branch}' is not a valid ref name");
    }
    Ok(())
}

/// The refspec a rebase moves to, given the current one (upstream's partial forms: `remote:`
/// switches the remote and keeps the branch, a bare `ref` keeps the remote, `:ref` is local).
pub(crate) fn rebase_target(current: Option<&str>, requested: &str) -> Result<Refspec> {
    let requested = requested.strip_prefix("ostree://").unwrap_or(requested);
    if requested.is_empty() {
        bail!("Invalid refspec: it is empty");
    }
    let current = current.map(Refspec::parse).transpose()?;
    let target = if let Some(remote) = requested.strip_suffix(':') {
        check_name("remote", remote)?;
        let Some(current) = current.as_ref() else {
            bail!("Cannot switch only the remote: the current origin has no refspec");
        };
        Refspec {
            remote: Some(remote.to_owned()),
            branch: current.branch.clone(),
        }
    } else if requested.contains(':') {
        Refspec::parse(requested)?
    } else {
        check_ref(requested, requested)?;
        Refspec {
            remote: current.as_ref().and_then(|c| c.remote.clone()),
            branch: requested.to_owned(),
        }
    };
    if current.as_ref() == Some(&target) {
        bail!("Old and new refs are equal: {target}");
    }
    Ok(target)
}

/// A revision to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Revision {
    /// A full commit checksum.
    Checksum(String),
    /// A `version` metadata value, looked up in the ref's history.
    Version(String),
}

/// Parses upstream's revision syntax: `revision=CSUM`, `version=V` (prefixes case-insensitive),
/// else a 64-hex checksum, else a version.
pub(crate) fn parse_revision(s: &str) -> Result<Revision> {
    let lower = s.to_ascii_lowercase();
    let r = if lower.starts_with("revision=") {
        let c = &s["revision=".len()..];
        if !is_checksum(c) {
            bail!("Invalid checksum '{c}': expected 64 lowercase hexadecimal digits");
        }
        Revision::Checksum(c.to_owned())
    } else if lower.starts_with("version=") {
        Revision::Version(s["version=".len()..].to_owned())
    } else if is_checksum(s) {
        Revision::Checksum(s.to_owned())
    } else {
        Revision::Version(s.to_owned())
    };
    if let Revision::Version(v) = &r
        && (v.is_empty() || v.chars().any(char::is_control))
    {
        bail!("Invalid version '{v}'");
    }
    Ok(r)
}

/// Whether `s` is a full SHA-256 commit checksum.
pub(crate) fn is_checksum(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A kernel-argument change request (`KernelArgs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KargsChange {
    /// Replace everything with this string.
    pub(crate) final_args: Option<String>,
    /// `--append`.
    pub(crate) added: Vec<String>,
    /// `--replace`: `K=V` or `K=OLD=NEW`.
    pub(crate) replaced: Vec<String>,
    /// `--delete`: `K` or `K=V`.
    pub(crate) removed: Vec<String>,
    /// `--append-if-missing`.
    pub(crate) append_if_missing: Vec<String>,
    /// `--delete-if-present`.
    pub(crate) delete_if_present: Vec<String>,
}

fn check_karg(karg: &str) -> Result<()> {
    if karg.is_empty() || karg.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!(
            "Invalid kernel argument {karg:?}: it must be non-empty, without spaces or control characters"
        );
    }
    Ok(())
}

fn key(karg: &str) -> &str {
    karg.split_once('=').map(|(k, _)| k).unwrap_or(karg)
}

impl KargsChange {
    /// Checks every argument of the request.
    pub(crate) fn validate(&self) -> Result<()> {
        for k in self
            .added
            .iter()
            .chain(&self.replaced)
            .chain(&self.removed)
            .chain(&self.append_if_missing)
            .chain(&self.delete_if_present)
        {
            check_karg(k)?;
        }
        if let Some(f) = &self.final_args
            && f.chars().any(|c| c.is_control())
        {
            bail!("Invalid kernel arguments {f:?}: control characters are not allowed");
        }
        for r in &self.replaced {
            if !r.contains('=') {
                bail!("Invalid replacement '{r}': expected KEY=VALUE or KEY=OLD=NEW");
            }
        }
        Ok(())
    }

    /// Applies the request to `existing`, in upstream's order: delete, replace, append,
    /// append-if-missing, delete-if-present.
    pub(crate) fn apply(&self, existing: &str) -> Result<Vec<String>> {
        self.validate()?;
        if let Some(f) = &self.final_args {
            return Ok(f.split_whitespace().map(str::to_owned).collect());
        }
        let mut args: Vec<String> = existing.split_whitespace().map(str::to_owned).collect();
        for d in &self.removed {
            if d.contains('=') {
                let Some(i) = args.iter().position(|a| a == d) else {
                    bail!("No kernel argument '{d}' to delete");
                };
                args.remove(i);
            } else {
                let matching: Vec<usize> = args
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| key(a) == d)
                    .map(|(i, _)| i)
                    .collect();
                match matching.as_slice() {
                    [] => bail!("No kernel argument '{d}' to delete"),
                    [i] => {
                        args.remove(*i);
                    }
                    _ => bail!(
                        "Kernel argument '{d}' has several values; say which one to delete as {d}=VALUE"
                    ),
                }
            }
        }
        for r in &self.replaced {
            let (k, rest) = r.split_once('=').unwrap_or((r, ""));
            let matching: Vec<usize> = args
                .iter()
                .enumerate()
                .filter(|(_, a)| key(a) == k)
                .map(|(i, _)| i)
                .collect();
            // `K=OLD=NEW` replaces the value OLD of K; when no argument is `K=OLD` but K has a
            // single value, the whole `K=REST` is taken as the new value (values may contain
            // `=`, as in `root=LABEL=x`).
            let exact = rest.split_once('=').and_then(|(old, new)| {
                Some((args.iter().position(|a| *a == format!("{k}={old}"))?, new))
            });
            if let Some((i, new)) = exact {
                args[i] = format!("{k}={new}");
            } else if rest.contains('=') && matching.len() != 1 {
                bail!(
                    "No kernel argument '{k}={}' to replace",
                    rest.split('=').next().unwrap_or_default()
                );
            } else {
                match matching.as_slice() {
                    [] => bail!("No kernel argument '{k}' to replace"),
                    [i] => args[*i] = r.clone(),
                    _ => bail!(
                        "Kernel argument '{k}' has several values; replace one as {k}=OLD=NEW"
                    ),
                }
            }
        }
        args.extend(self.added.iter().cloned());
        for a in &self.append_if_missing {
            if !args.contains(a) {
                args.push(a.clone());
            }
        }
        for d in &self.delete_if_present {
            // `K=V` removes that argument; a bare `K` removes every value of K.
            args.retain(|a| a != d && (d.contains('=') || key(a) != d));
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refspecs() {
        assert_eq!(
            Refspec::parse("origin:a/b").unwrap().to_string(),
            "origin:a/b"
        );
        assert_eq!(Refspec::parse("a/b").unwrap().remote, None);
        assert!(Refspec::parse("origin:").is_err());
        assert!(Refspec::parse("ori gin:a").is_err());
        assert!(Refspec::parse("origin:a//b").is_err());
        let t = rebase_target(Some("origin:testos/stable"), "testos/devel").unwrap();
        assert_eq!(t.to_string(), "origin:testos/devel");
        let t = rebase_target(Some("origin:testos/stable"), "other:").unwrap();
        assert_eq!(t.to_string(), "other:testos/stable");
        let t = rebase_target(Some("origin:testos/stable"), "ostree://origin:x").unwrap();
        assert_eq!(t.to_string(), "origin:x");
        let e = rebase_target(Some("origin:testos/stable"), "origin:testos/stable").unwrap_err();
        assert!(e.to_string().contains("Old and new refs are equal"));
    }

    #[test]
    fn revisions() {
        let c = "a".repeat(64);
        assert_eq!(parse_revision(&c).unwrap(), Revision::Checksum(c.clone()));
        assert_eq!(
            parse_revision(&format!("REVISION={c}")).unwrap(),
            Revision::Checksum(c)
        );
        assert_eq!(
            parse_revision("version=1.0").unwrap(),
            Revision::Version("1.0".into())
        );
        assert_eq!(
            parse_revision("2.0").unwrap(),
            Revision::Version("2.0".into())
        );
        assert!(parse_revision("revision=xyz").is_err());
    }

    #[test]
    fn kargs() {
        let base = "root=LABEL=r rw quiet console=tty0 console=ttyS0";
        let change = KargsChange {
            added: vec!["a=1".into()],
            replaced: vec!["root=LABEL=r2".into(), "console=ttyS0=ttyS1".into()],
            removed: vec!["quiet".into()],
            append_if_missing: vec!["rw".into(), "b".into()],
            delete_if_present: vec!["nothere".into()],
            ..Default::default()
        };
        assert_eq!(
            change.apply(base).unwrap().join(" "),
            "root=LABEL=r2 rw console=tty0 console=ttyS1 a=1 b"
        );
        let bad = KargsChange {
            removed: vec!["console".into()],
            ..Default::default()
        };
        assert!(
            bad.apply(base)
                .unwrap_err()
                .to_string()
                .contains("several values")
        );
        let bad = KargsChange {
            added: vec!["a b".into()],
            ..Default::default()
        };
        assert!(bad.apply(base).is_err());
        let bad = KargsChange {
            removed: vec!["nope".into()],
            ..Default::default()
        };
        assert!(
            bad.apply(base)
                .unwrap_err()
                .to_string()
                .contains("No kernel argument 'nope'")
        );
        let f = KargsChange {
            final_args: Some("x y".into()),
            ..Default::default()
        };
        assert_eq!(f.apply(base).unwrap(), ["x", "y"]);
    }
}
