//! The server's configuration: airlock's own TOML format, so that an airlock site switches by
//! changing the binary. `[service]` (address, port, tls), `[status]` (the metrics listener),
//! `[etcd3]` (endpoints, transaction timeout, client certificates), `[lock]` (default group and
//! slots) and `[[lock.groups]]`. Unknown keys are errors naming them; TLS, which airlock does
//! not implement either, is refused with a message.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::protocol::valid_group;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    service: Listener,
    #[serde(default)]
    status: Status,
    etcd3: Option<Etcd3>,
    #[serde(default)]
    lock: Lock,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Listener {
    address: Option<String>,
    port: Option<u16>,
    tls: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Status {
    enabled: Option<bool>,
    address: Option<String>,
    port: Option<u16>,
    tls: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Etcd3 {
    endpoints: Vec<String>,
    transaction_timeout_ms: Option<u64>,
    client_cert_pub_path: Option<String>,
    client_cert_key_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Lock {
    default_group_name: Option<String>,
    default_slots: Option<u64>,
    #[serde(default)]
    groups: Vec<Group>,
    /// Ours, beyond airlock: release a holder after this many seconds without steady-state.
    max_hold_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    name: String,
    slots: Option<u64>,
}

/// The server's configuration, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the FleetLock API listens (`address:port`).
    pub service: String,
    /// Where `/metrics` listens, if enabled.
    pub status: Option<String>,
    /// etcd v3 client endpoints.
    pub endpoints: Vec<String>,
    /// The deadline of each etcd exchange.
    pub transaction_timeout: Duration,
    /// The group that exists without being listed (`[lock] default_group_name`).
    pub default_group: String,
    /// Slots of groups configured without a count.
    pub default_slots: u64,
    /// Group name -> slots.
    pub groups: BTreeMap<String, u64>,
    /// Release a holder after this long without steady-state (`max_hold_secs`), if set.
    pub max_hold: Option<Duration>,
}

fn listener(what: &str, l: &Listener, default_port: u16) -> Result<String> {
    if l.tls.unwrap_or(true) {
        bail!(
            "[{what}] tls = true is not supported (neither is it by airlock): set tls = false and terminate TLS in front of the server"
        );
    }
    Ok(format!(
        "{}:{}",
        l.address.as_deref().unwrap_or("0.0.0.0"),
        l.port.unwrap_or(default_port)
    ))
}

impl Config {
    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Self> {
        let f: File = toml::from_str(text).context("parsing the configuration")?;
        let service = listener("service", &f.service, 9090)?;
        let status = if f.status.enabled.unwrap_or(false) {
            Some(listener(
                "status",
                &Listener {
                    address: f.status.address.clone(),
                    port: f.status.port,
                    tls: f.status.tls,
                },
                9091,
            )?)
        } else {
            None
        };
        let Some(etcd) = f.etcd3 else {
            bail!("[etcd3] endpoints is required");
        };
        if etcd.endpoints.is_empty() {
            bail!("[etcd3] endpoints is empty");
        }
        if etcd.client_cert_pub_path.is_some() || etcd.client_cert_key_path.is_some() {
            bail!("[etcd3] client certificates are not supported by this build");
        }
        let default_group = f
            .lock
            .default_group_name
            .unwrap_or_else(|| crate::protocol::DEFAULT_GROUP.to_owned());
        let default_slots = f.lock.default_slots.unwrap_or(1);
        if default_slots == 0 {
            bail!("[lock] default_slots must be at least 1");
        }
        let mut groups = BTreeMap::new();
        for g in &f.lock.groups {
            let slots = g.slots.unwrap_or(default_slots);
            if !valid_group(&g.name) {
                bail!(
                    "[[lock.groups]] name {:?} is not a valid group name",
                    g.name
                );
            }
            if slots == 0 {
                bail!("[[lock.groups]] {}: slots must be at least 1", g.name);
            }
            if groups.insert(g.name.clone(), slots).is_some() {
                bail!("[[lock.groups]] {} is configured twice", g.name);
            }
        }
        if !valid_group(&default_group) {
            bail!("[lock] default_group_name {default_group:?} is not a valid group name");
        }
        groups.entry(default_group.clone()).or_insert(default_slots);
        Ok(Self {
            service,
            status,
            endpoints: etcd.endpoints,
            transaction_timeout: Duration::from_millis(etcd.transaction_timeout_ms.unwrap_or(3000)),
            default_group,
            default_slots,
            groups,
            max_hold: f.lock.max_hold_secs.map(Duration::from_secs),
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airlock_configs_parse() {
        let c = Config::parse(
            r#"
[service]
address = "127.0.0.1"
port = 3333
tls = false

[status]
enabled = true
port = 3334
tls = false

[etcd3]
endpoints = ["http://127.0.0.1:2379", "http://127.0.0.1:22379"]
transaction_timeout_ms = 1500

[lock]
default_group_name = "default"
default_slots = 2

[[lock.groups]]
name = "workers"
slots = 3

[[lock.groups]]
name = "controllers"
"#,
        )
        .unwrap();
        assert_eq!(c.service, "127.0.0.1:3333");
        assert_eq!(c.status.as_deref(), Some("0.0.0.0:3334"));
        assert_eq!(c.transaction_timeout, Duration::from_millis(1500));
        assert_eq!(c.groups.get("workers"), Some(&3));
        assert_eq!(c.groups.get("controllers"), Some(&2));
        assert_eq!(c.groups.get("default"), Some(&2));
        assert_eq!(c.max_hold, None);
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let e = |text: &str| format!("{:#}", Config::parse(text).unwrap_err());
        assert!(e("[service]\ntls = false\n").contains("[etcd3] endpoints is required"));
        assert!(
            e("[etcd3]\nendpoints = [\"http://x:1\"]\n").contains("tls = true is not supported")
        );
        let base = "[service]\ntls = false\n[etcd3]\nendpoints = [\"http://x:1\"]\n";
        assert!(e(&format!("{base}[lock]\ndefault_slots = 0\n")).contains("at least 1"));
        assert!(
            e(&format!("{base}[[lock.groups]]\nname = \"a b\"\n")).contains("not a valid group")
        );
        assert!(e(&format!("{base}[lock]\nbogus = 1\n")).contains("bogus"));
    }
}
