//! `rpm-ostreed.conf`: the `[Daemon]` group of a GLib-style key file.
//!
//! Keys and defaults are upstream's: `AutomaticUpdatePolicy` (none) and `IdleExitTimeout` (60 s);
//! `LockLayering` and `Recommends` are accepted for compatibility. Unknown keys and groups are
//! warned about; a malformed value is an error naming the key, the value and what is accepted. A
//! missing file means the defaults.

use std::{fmt, path::Path, time::Duration};

use anyhow::{Context, Result, bail};

/// What the daemon does about updates on its own (`AutomaticUpdatePolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdatePolicy {
    /// Nothing.
    None,
    /// Look for updates and cache what is found.
    Check,
    /// Download and stage updates.
    Stage,
    /// Stage updates and reboot into them.
    Apply,
}

impl UpdatePolicy {
    fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "none" | "off" => Some(Self::None),
            "check" => Some(Self::Check),
            "stage" | "ex-stage" => Some(Self::Stage),
            "apply" => Some(Self::Apply),
            _ => None,
        }
    }

    /// The canonical name, as shown in the `AutomaticUpdatePolicy` property.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Check => "check",
            Self::Stage => "stage",
            Self::Apply => "apply",
        }
    }
}

impl fmt::Display for UpdatePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The daemon's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// `AutomaticUpdatePolicy`.
    pub(crate) automatic_update_policy: UpdatePolicy,
    /// `IdleExitTimeout`; zero disables idle exit.
    pub(crate) idle_exit_timeout: Duration,
    /// `LockLayering`.
    pub(crate) lock_layering: bool,
    /// `Recommends`.
    pub(crate) recommends: bool,
    /// `[Fleet]`: when automatic updates may reboot.
    pub(crate) fleet: crate::fleet::FleetConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            automatic_update_policy: UpdatePolicy::None,
            idle_exit_timeout: Duration::from_secs(60),
            lock_layering: false,
            recommends: true,
            fleet: crate::fleet::FleetConfig::default(),
        }
    }
}

impl Config {
    /// Reads the file; a missing file gives the defaults.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).with_context(|| format!("in {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(
                    "{} not found; using the default configuration",
                    path.display()
                );
                Ok(Self::default())
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Parses the key file text.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let mut config = Self::default();
        let mut group: Option<String> = None;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let lineno = n + 1;
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                if name != "Daemon" && name != "Experimental" && name != "Fleet" {
                    tracing::warn!("line {lineno}: unknown group [{name}] is ignored");
                }
                group = Some(name.to_owned());
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                bail!("line {lineno}: expected KEY=VALUE or [Group], got '{line}'");
            };
            let (key, value) = (key.trim(), value.trim());
            match group.as_deref() {
                None => bail!(
                    "line {lineno}: key '{key}' is outside of any group; put it under [Daemon]"
                ),
                Some("Daemon") => {}
                Some("Fleet") => {
                    config
                        .fleet
                        .set(key, value)
                        .with_context(|| format!("line {lineno}: in [Fleet]"))?;
                    continue;
                }
                Some(_) => continue,
            }
            match key {
                "AutomaticUpdatePolicy" => {
                    config.automatic_update_policy = UpdatePolicy::parse(value).with_context(|| {
                        format!(
                            "line {lineno}: AutomaticUpdatePolicy={value} is not one of none, check, stage, apply"
                        )
                    })?;
                }
                "IdleExitTimeout" => {
                    let secs: u64 = value.parse().with_context(|| {
                        format!(
                            "line {lineno}: IdleExitTimeout={value} is not a number of seconds (0 disables idle exit)"
                        )
                    })?;
                    config.idle_exit_timeout = Duration::from_secs(secs);
                }
                "LockLayering" => config.lock_layering = parse_bool(lineno, key, value)?,
                "Recommends" => config.recommends = parse_bool(lineno, key, value)?,
                other => {
                    tracing::warn!("line {lineno}: unknown key {other} in [Daemon] is ignored")
                }
            }
        }
        config.fleet.check()?;
        Ok(config)
    }
}

fn parse_bool(lineno: usize, key: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => bail!("line {lineno}: {key}={value} is not a boolean (true or false)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let c = Config::parse(
            "# comment\n[Daemon]\nAutomaticUpdatePolicy=Stage\nIdleExitTimeout=0\nUnknown=1\n[Other]\nx=y\n",
        )
        .unwrap();
        assert_eq!(c.automatic_update_policy, UpdatePolicy::Stage);
        assert_eq!(c.idle_exit_timeout, Duration::ZERO);
        assert_eq!(
            Config::parse("[Daemon]\nAutomaticUpdatePolicy=off")
                .unwrap()
                .automatic_update_policy,
            UpdatePolicy::None
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::parse("[Daemon]\nAutomaticUpdatePolicy=sometimes").unwrap_err();
        assert!(
            format!("{e:#}").contains("AutomaticUpdatePolicy=sometimes"),
            "{e:#}"
        );
        let e = Config::parse("[Daemon]\nIdleExitTimeout=soon").unwrap_err();
        assert!(format!("{e:#}").contains("IdleExitTimeout=soon"), "{e:#}");
        let e = Config::parse("IdleExitTimeout=1").unwrap_err();
        assert!(format!("{e:#}").contains("outside of any group"), "{e:#}");
    }
}
