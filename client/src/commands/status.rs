//! `rpm-ostree status`: the daemon state and the deployments, laid out like upstream's, or as
//! JSON with upstream's top-level keys. Everything shown comes from the daemon's D-Bus
//! properties (and, for the automatic-update timer, systemd's).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use rpmostree_api::dict::Dict;
use rpmostree_api::{CachedUpdate, Deployment};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use zbus::OwnedVariant;
use zbus::proxy::CacheProperties;

use super::Context;
use crate::Exit;
use crate::cli::StatusArgs;
use crate::connection::{ActiveTransaction, Daemon};
use crate::error::daemon_error;
use crate::output::{self, KEY_WIDTH, Style, kv};

/// The width of keys in the `AvailableUpdate:` block (`SecAdvisories`).
const UPDATE_KEY_WIDTH: usize = 13;
/// The systemd units of upstream's automatic updates.
const TIMER_UNIT: &str = "rpm-ostreed-automatic.timer";
const SERVICE_UNIT: &str = "rpm-ostreed-automatic.service";

/// Everything status shows, read from the daemon.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// `Sysroot.Deployments`.
    pub deployments: Vec<Deployment>,
    /// The active transaction.
    pub transaction: Option<ActiveTransaction>,
    /// `OS.CachedUpdate`, when there is one.
    pub cached_update: Option<CachedUpdate>,
    /// `Sysroot.AutomaticUpdatePolicy`.
    pub policy: String,
    /// The automatic-update timer's state line (only read when the policy is not `none`).
    pub timer: Option<String>,
    /// The registered update driver: (name, systemd unit, possibly empty).
    pub driver: Option<(String, String)>,
}

/// Where rpm-ostreed records the update driver that registered (`--register-driver`).
pub const UPDATE_DRIVER_FILE: &str = "/run/rpm-ostree/update-driver";

/// Reads the registered update driver: a key file with group `[update-driver]` and keys
/// `driver-name` and `driver-sd-unit`.
pub fn read_update_driver(text: &str) -> Option<(String, String)> {
    let mut in_group = false;
    let (mut name, mut unit) = (None, String::new());
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_group = line == "[update-driver]";
        } else if let (true, Some((k, v))) = (in_group, line.split_once('=')) {
            match k.trim() {
                "driver-name" => name = Some(v.trim().to_owned()),
                "driver-sd-unit" => unit = v.trim().to_owned(),
                _ => {}
            }
        }
    }
    name.filter(|n| !n.is_empty()).map(|n| (n, unit))
}

/// Reads the state and prints it.
pub async fn run(daemon: &Daemon, ctx: &Context, args: &StatusArgs) -> Result<Exit> {
    let deployments = daemon.deployments().await?;
    if deployments.is_empty() {
        return Err(daemon.not_ostree_error().await);
    }
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    let cached = os
        .cached_update()
        .await
        .map_err(|e| daemon_error("CachedUpdate", e))?;
    let policy = daemon
        .sysroot
        .automatic_update_policy()
        .await
        .map_err(|e| daemon_error("AutomaticUpdatePolicy", e))?;
    let timer = if args.json || policy == "none" || policy.is_empty() {
        None
    } else {
        Some(timer_state(&daemon.bus).await)
    };
    let state = State {
        deployments,
        transaction: daemon.active_transaction().await?,
        cached_update: is_present(&cached).then_some(cached),
        policy,
        timer,
        driver: std::fs::read_to_string(UPDATE_DRIVER_FILE)
            .ok()
            .and_then(|t| read_update_driver(&t)),
    };
    if args.json {
        println!("{}", json(&state, args.booted));
    } else {
        print!("{}", human(&state, args, Style::detect()));
    }
    if args.pending_exit_77 && has_pending(&state.deployments) {
        return Ok(Exit::Code77);
    }
    Ok(Exit::Success)
}

/// Whether a cached update dictionary holds anything (the daemon sends `{}` for none).
pub fn is_present(update: &CachedUpdate) -> bool {
    update.to_variants().is_ok_and(|v| !v.is_empty())
}

/// Upstream's test for `--pending-exit-77`: more than one deployment, and the first is not
/// the booted one.
pub fn has_pending(deployments: &[Deployment]) -> bool {
    deployments.len() > 1 && deployments[0].booted == Some(false)
}

/// A JSON object whose keys keep the order given.
struct Ordered<'a>(&'a [(&'a str, Value)]);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// The JSON document: exactly `deployments`, `transaction`, `cached-update` and
/// `update-driver`, in that order. Dictionary keys inside are sorted.
pub fn json(state: &State, only_booted: bool) -> String {
    let deployments: Vec<Value> = state
        .deployments
        .iter()
        .filter(|d| !only_booted || d.booted == Some(true))
        .map(output::dict_to_json)
        .collect();
    let transaction = match &state.transaction {
        Some(t) if !t.method.is_empty() => {
            Value::from(vec![t.method.clone(), t.sender.clone(), t.path.clone()])
        }
        _ => Value::Null,
    };
    let cached = state
        .cached_update
        .as_ref()
        .map_or(Value::Null, output::dict_to_json);
    let update_driver = match &state.driver {
        Some((name, unit)) => serde_json::json!({ "driver-name": name, "driver-sd-unit": unit }),
        None => Value::Null,
    };
    let root = [
        ("deployments", Value::Array(deployments)),
        ("transaction", transaction),
        ("cached-update", cached),
        ("update-driver", update_driver),
    ];
    serde_json::to_string_pretty(&Ordered(&root)).unwrap_or_else(|_| "{}".to_owned())
}

/// The human-readable status.
pub fn human(state: &State, args: &StatusArgs, style: Style) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "State: {}\n",
        if state.transaction.is_some() {
            "busy"
        } else {
            "idle"
        }
    ));
    if let Some((name, unit)) = &state.driver {
        out.push_str(&format!("AutomaticUpdatesDriver: {name}"));
        if !unit.is_empty() {
            out.push_str(&format!(" ({unit})"));
        }
        out.push('\n');
    } else if state.policy == "none" || state.policy.is_empty() {
        if args.verbose {
            out.push_str("AutomaticUpdates: disabled\n");
        }
    } else {
        out.push_str(&format!(
            "AutomaticUpdates: {}; {}\n",
            state.policy,
            state
                .timer
                .clone()
                .unwrap_or_else(|| format!("{TIMER_UNIT}: unknown state"))
        ));
    }
    if let Some(t) = &state.transaction {
        out.push_str(&format!("Transaction: {}\n", t.display_title()));
        if let Some(initiator) = t.initiator.as_deref().filter(|s| !s.is_empty()) {
            out.push_str(&format!("  Initiator: {initiator}\n"));
        }
    }
    out.push_str(if args.booted {
        "BootedDeployment:\n"
    } else {
        "Deployments:\n"
    });
    let multiple_stateroots = state
        .deployments
        .windows(2)
        .any(|w| w[0].osname != w[1].osname);
    for (index, d) in state.deployments.iter().enumerate() {
        let booted = d.booted == Some(true);
        if args.booted && !booted {
            continue;
        }
        if index > 0 && !args.booted {
            out.push('\n');
        }
        deployment_block(&mut out, d, index, args.verbose, multiple_stateroots, style);
    }
    if let Some(update) = &state.cached_update
        && state.policy != "none"
        && !state.policy.is_empty()
    {
        out.push('\n');
        out.push_str(&cached_update_block(update));
    }
    out
}

/// Whether a refspec is a bare commit checksum.
fn is_checksum(refspec: &str) -> bool {
    refspec.len() == 64 && refspec.bytes().all(|b| b.is_ascii_hexdigit())
}

fn deployment_block(
    out: &mut String,
    d: &Deployment,
    index: usize,
    verbose: bool,
    multiple_stateroots: bool,
    style: Style,
) {
    let checksum = d.checksum.clone().unwrap_or_default();
    let booted = d.booted == Some(true);
    let origin = d.origin.as_deref();
    let custom = d
        .custom_origin
        .as_ref()
        .filter(|(url, _)| !url.is_empty() && origin.is_some_and(is_checksum));
    let title = match (custom, origin, &d.container_image_reference) {
        (_, _, Some(image)) => image.clone(),
        (Some((url, _)), _, _) => url.clone(),
        (None, Some(o), _) => o.to_owned(),
        (None, None, _) => checksum.clone(),
    };
    out.push_str(if booted { "● " } else { "  " });
    out.push_str(&title);
    if verbose {
        out.push_str(&format!(" (index: {index})"));
    }
    out.push('\n');
    let w = KEY_WIDTH;
    if let Some((_, description)) = custom {
        out.push_str(&kv("CustomOrigin", w, description));
    }
    if let Some(error) = &d.remote_error {
        out.push_str(&style.red_bold(&kv("OstreeRemoteStatus", w, error)));
    }
    if let Some(title) = d
        .base_commit_meta
        .as_ref()
        .and_then(|m| string_in(m, "ostree.source-title"))
    {
        out.push_str(&format!("  └─ {title}\n"));
    }
    let layered = d.base_checksum.is_some();
    let timestamp = if layered {
        d.base_timestamp
    } else {
        d.timestamp
    }
    .unwrap_or(0);
    let when = output::iso8601_utc(timestamp);
    match &d.version {
        Some(v) => out.push_str(&kv("Version", w, &format!("{v} ({when})"))),
        None => out.push_str(&kv("Timestamp", w, &when)),
    }
    let live = d.live_inprogress.is_some() || d.live_replaced.is_some();
    let ostree_or_verbose = verbose || !origin.is_some_and(is_checksum);
    if let Some(base) = d.base_checksum.as_deref().filter(|_| ostree_or_verbose) {
        out.push_str(&kv(
            if live {
                "BootedBaseCommit"
            } else {
                "BaseCommit"
            },
            w,
            base,
        ));
        if verbose || live {
            out.push_str(&kv("Commit", w, &checksum));
        }
    } else if ostree_or_verbose {
        if live {
            out.push_str(&kv("BootedCommit", w, &checksum));
        }
        if !live || verbose {
            out.push_str(&kv("Commit", w, &checksum));
        }
    }
    if let Some(c) = &d.live_inprogress {
        out.push_str(&kv("InterruptedLiveCommit", w, c));
    }
    if let Some(c) = &d.live_replaced {
        out.push_str(&kv("LiveCommit", w, c));
    }
    let staged = d.staged == Some(true);
    if verbose && (staged || index == 0) {
        out.push_str(&kv("Staged", w, if staged { "yes" } else { "no" }));
    }
    if verbose || multiple_stateroots {
        out.push_str(&kv("StateRoot", w, d.osname.as_deref().unwrap_or("")));
    }
    if d.gpg_enabled == Some(true) {
        out.push_str(&signature_lines(d.signatures.as_deref(), w));
    }
    let removals = nevras(d.base_removals.as_deref().unwrap_or(&[]));
    if !removals.is_empty() {
        out.push_str(&kv("RemovedBasePackages", w, &removals.join(", ")));
    }
    if let Some(replacements) = d.base_local_replacements.as_ref().filter(|r| !r.is_empty()) {
        let text: Vec<String> = replacements
            .iter()
            .map(|(new, old)| format!("{} -> {}", nevra(old), nevra(new)))
            .collect();
        out.push_str(&kv("ReplacedBasePackages", w, &text.join(", ")));
    }
    let packages = d.packages.clone().unwrap_or_default();
    if verbose {
        let inactive: Vec<&String> = d
            .requested_packages
            .iter()
            .flatten()
            .filter(|p| !packages.contains(p))
            .collect();
        if !inactive.is_empty() {
            let text: Vec<&str> = inactive.iter().map(|s| s.as_str()).collect();
            out.push_str(&kv("InactiveRequests", w, &text.join(" ")));
        }
    }
    if !packages.is_empty() {
        out.push_str(&kv("LayeredPackages", w, &packages.join(" ")));
    }
    if let Some(local) = d
        .requested_local_packages
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        out.push_str(&kv("LocalPackages", w, &local.join(" ")));
    }
    if d.regenerate_initramfs == Some(true) {
        let args = d.initramfs_args.clone().unwrap_or_default();
        let text = if args.is_empty() {
            "regenerate".to_owned()
        } else {
            args.join(" ")
        };
        out.push_str(&kv("Initramfs", w, &text));
    }
    if d.cliwrap == Some(true) {
        out.push_str(&kv("Cliwrap", w, "enabled"));
    }
    if let Some(files) = d.initramfs_etc.as_ref().filter(|f| !f.is_empty()) {
        out.push_str(&kv("InitramfsEtc", w, &files.join(" ")));
    }
    if d.pinned == Some(true) {
        out.push_str(&kv("Pinned", w, "yes"));
    }
    if let Some(unlocked) = d.unlocked.as_deref().filter(|u| *u != "none") {
        out.push_str(&style.red_bold(&kv("Unlocked", w, unlocked)));
    }
    if let Some(eol) = &d.endoflife {
        out.push_str(&style.red_bold(&kv("EndOfLife", w, eol)));
    }
}

/// A string value of a commit metadata dictionary.
fn string_in(meta: &HashMap<String, OwnedVariant>, key: &str) -> Option<String> {
    match output::variant_to_json(meta.get(key)?) {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// The NEVRA (first field) of a package tuple held in a variant.
fn nevra(v: &OwnedVariant) -> String {
    match output::variant_to_json(v) {
        Value::Array(fields) => fields
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn nevras(list: &[OwnedVariant]) -> Vec<String> {
    list.iter().map(nevra).filter(|s| !s.is_empty()).collect()
}

/// `GPGSignature` lines from ostree's verification tuples (valid, sig-expired, key-expired,
/// key-revoked, key-missing, fingerprint, ...).
fn signature_lines(signatures: Option<&[OwnedVariant]>, width: usize) -> String {
    let Some(signatures) = signatures.filter(|s| !s.is_empty()) else {
        return kv("GPGSignature", width, "(unsigned)");
    };
    let mut out = String::new();
    for (i, signature) in signatures.iter().enumerate() {
        let fields = match output::variant_to_json(signature) {
            Value::Array(f) => f,
            _ => Vec::new(),
        };
        let flag = |n: usize| fields.get(n).and_then(Value::as_bool).unwrap_or(false);
        let fingerprint = fields.get(5).and_then(Value::as_str).unwrap_or("?");
        let text = if flag(4) {
            format!("Can't check signature: public key {fingerprint} not found")
        } else if flag(0) {
            format!("Valid signature by {fingerprint}")
        } else if flag(1) || flag(2) {
            format!("Expired signature by {fingerprint}")
        } else if flag(3) {
            format!("Signature by revoked key {fingerprint}")
        } else {
            format!("Invalid signature by {fingerprint}")
        };
        if i == 0 {
            out.push_str(&kv("GPGSignature", width, &text));
        } else {
            out.push_str(&format!("  {:width$}  {text}\n", ""));
        }
    }
    out
}

/// The `AvailableUpdate:` block for a cached update (also what `upgrade --check` prints).
pub fn cached_update_block(update: &CachedUpdate) -> String {
    let w = UPDATE_KEY_WIDTH;
    let mut out = String::from("AvailableUpdate:\n");
    let when = output::iso8601_utc(update.timestamp.unwrap_or(0));
    match &update.version {
        Some(v) => out.push_str(&kv("Version", w, &format!("{v} ({when})"))),
        None => out.push_str(&kv("Timestamp", w, &when)),
    }
    if let Some(c) = &update.checksum {
        out.push_str(&kv("Commit", w, c));
    }
    if update.gpg_enabled == Some(true) {
        out.push_str(&signature_lines(update.signatures.as_deref(), w));
    }
    if let Some(diff) = &update.rpm_diff {
        let count = |key: &str| match diff.get(key).map(|v| output::variant_to_json(v)) {
            Some(Value::Array(a)) => a.len(),
            _ => 0,
        };
        let parts: Vec<String> = ["upgraded", "downgraded", "removed", "added"]
            .iter()
            .filter_map(|k| match count(k) {
                0 => None,
                n => Some(format!("{n} {k}")),
            })
            .collect();
        if !parts.is_empty() {
            out.push_str(&kv("Diff", w, &parts.join(", ")));
        }
    }
    out
}

/// The state of upstream's automatic-update timer and service, from systemd over the system
/// bus: `rpm-ostreed-automatic.timer: unknown state|inactive|last run ...|no runs since boot`
/// or `rpm-ostreed-automatic.service: running|last run failed`.
async fn timer_state(bus: &zbus::Connection) -> String {
    let query = async {
        let timer = unit_properties(bus, TIMER_UNIT).await?;
        if timer.0 != "active" {
            return Some(format!("{TIMER_UNIT}: inactive"));
        }
        if let Some((state, _)) = unit_properties(bus, SERVICE_UNIT).await {
            if state == "failed" {
                return Some(format!("{SERVICE_UNIT}: last run failed"));
            }
            if state == "activating" || state == "active" {
                return Some(format!("{SERVICE_UNIT}: running"));
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Some(match timer.1 {
            Some(last) if last > 0 && now >= last => format!(
                "{TIMER_UNIT}: last run {} ago",
                relative(Duration::from_micros(now - last))
            ),
            _ => format!("{TIMER_UNIT}: no runs since boot"),
        })
    };
    match tokio::time::timeout(Duration::from_secs(3), query).await {
        Ok(Some(line)) => line,
        _ => format!("{TIMER_UNIT}: unknown state"),
    }
}

/// A unit's `ActiveState` and, for timers, `LastTriggerUSec`; `None` if systemd does not know
/// it or cannot be asked.
async fn unit_properties(bus: &zbus::Connection, unit: &str) -> Option<(String, Option<u64>)> {
    let manager = zbus::proxy::Builder::<zbus::Proxy<'_>>::new(bus)
        .destination("org.freedesktop.systemd1")
        .path("/org/freedesktop/systemd1")
        .interface("org.freedesktop.systemd1.Manager")
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .ok()?;
    let path: zbus::OwnedObjectPath = manager.call("GetUnit", &(unit,)).await.ok()?;
    let unit_proxy = |interface: &'static str| {
        zbus::proxy::Builder::<zbus::Proxy<'_>>::new(bus)
            .destination("org.freedesktop.systemd1")
            .path(path.clone())
            .interface(interface)
            .cache_properties(CacheProperties::No)
    };
    let state: String = unit_proxy("org.freedesktop.systemd1.Unit")
        .build()
        .await
        .ok()?
        .get_property("ActiveState")
        .await
        .ok()?;
    let last = if unit.ends_with(".timer") {
        match unit_proxy("org.freedesktop.systemd1.Timer").build().await {
            Ok(p) => p.get_property::<u64>("LastTriggerUSec").await.ok(),
            Err(_) => None,
        }
    } else {
        None
    };
    Some((state, last))
}

/// A duration the way systemd prints relative times (`4h 32min`, `2 days 3h`, `12s`).
fn relative(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if days > 0 {
        format!("{days} day{} {hours}h", if days == 1 { "" } else { "s" })
    } else if hours > 0 {
        format!("{hours}h {mins}min")
    } else if mins > 0 {
        format!("{mins}min {secs}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod driver_tests {
    use super::*;

    #[test]
    fn the_update_driver_file_is_read() {
        assert_eq!(
            read_update_driver(
                "[update-driver]\ndriver-name=zincati\ndriver-sd-unit=zincati.service\n"
            ),
            Some(("zincati".to_owned(), "zincati.service".to_owned()))
        );
        assert_eq!(read_update_driver("[other]\ndriver-name=x\n"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(version: &str, booted: bool) -> Deployment {
        Deployment::new()
            .id(format!("testos-{}.0", "a".repeat(64)))
            .osname("testos")
            .serial(0)
            .checksum("a".repeat(64))
            .version(version)
            .timestamp(1_700_000_000)
            .origin("origin:testos/stable")
            .booted(booted)
            .staged(false)
            .pinned(false)
            .unlocked("none")
    }

    #[test]
    fn human_layout() {
        let state = State {
            deployments: vec![
                deployment("1.1", true),
                deployment("1.0", false).pinned(true),
            ],
            policy: "none".into(),
            ..Default::default()
        };
        let text = human(&state, &StatusArgs::default(), Style { color: false });
        let pad = |key: &str| " ".repeat(2 + KEY_WIDTH - key.len());
        let expected = format!(
            "State: idle\nDeployments:\n● origin:testos/stable\n{}Version: 1.1 (2023-11-14T22:13:20Z)\n{}Commit: {c}\n\n  origin:testos/stable\n{}Version: 1.0 (2023-11-14T22:13:20Z)\n{}Commit: {c}\n{}Pinned: yes\n",
            pad("Version"),
            pad("Commit"),
            pad("Version"),
            pad("Commit"),
            pad("Pinned"),
            c = "a".repeat(64)
        );
        assert_eq!(text, expected);
        let verbose = human(
            &state,
            &StatusArgs {
                verbose: true,
                ..Default::default()
            },
            Style { color: false },
        );
        assert!(verbose.contains("AutomaticUpdates: disabled\n"));
        assert!(verbose.contains("(index: 1)"));
        assert!(verbose.contains("Staged: no"));
        assert!(verbose.contains("StateRoot: testos"));
    }

    #[test]
    fn json_has_exactly_the_four_keys_in_order() {
        let state = State {
            deployments: vec![deployment("1.1", true), deployment("1.0", false)],
            ..Default::default()
        };
        let text = json(&state, true);
        let value: Value = serde_json::from_str(&text).expect("valid JSON");
        let keys: Vec<&String> = value.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 4);
        let order: Vec<usize> = [
            "deployments",
            "transaction",
            "cached-update",
            "update-driver",
        ]
        .iter()
        .map(|k| text.find(&format!("\"{k}\"")).expect("key"))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert_eq!(value["deployments"].as_array().map(Vec::len), Some(1));
        assert_eq!(value["deployments"][0]["version"], "1.1");
        assert_eq!(value["transaction"], Value::Null);
    }

    #[test]
    fn pending() {
        assert!(!has_pending(&[deployment("1.1", true)]));
        assert!(has_pending(&[
            deployment("2", false),
            deployment("1.1", true)
        ]));
        assert!(!has_pending(&[
            deployment("1.1", true),
            deployment("1.0", false)
        ]));
    }
}
