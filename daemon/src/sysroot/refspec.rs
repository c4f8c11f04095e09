//! Pure helpers for requests: refspec changes and revisions, with upstream's semantics
//! (kernel-argument edits live in [`super::kargs`]). No libostree here, so all of it is
//! unit-tested.

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
    // libostree's rule: each part starts with a letter, digit or `_` (so no `.` or `..`).
    let ok = branch.split('/').all(|part| {
        part.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
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
        assert!(Refspec::parse("origin:a/../b").is_err());
        assert!(Refspec::parse("origin:.hidden").is_err());
        assert!(Refspec::parse("origin:-x").is_err());
        assert!(Refspec::parse("origin:_x/1.0").is_ok());
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
}
