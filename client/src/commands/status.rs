//! `rpm-ostree status`: the daemon state and the deployments, laid out like upstream's, or as
//! JSON with upstream's top-level keys. Everything shown comes from the daemon's D-Bus
//! properties (and, for the automatic-update timer, systemd's), plus, for a pending
//! deployment without a matching cached update, the package diff from the booted one
//! (`GetDeploymentsRpmDiff`).

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
use crate::diff::{PackageDiff, diff_advisories, manifest_diff_lines};
use crate::error::daemon_error;
use crate::output::{self, KEY_WIDTH, Style, kv};

/// The width of keys in the `AvailableUpdate:` block (`SecAdvisories`).
const UPDATE_KEY_WIDTH: usize = 13;
/// How long status waits for the pending deployment's package diff before going without.
const PENDING_DIFF_TIMEOUT: Duration = Duration::from_secs(30);
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
    /// The package diff from the booted to the pending deployment, shown when the cached
    /// update was not computed against the pending deployment.
    pub pending_diff: Option<PackageDiff>,
    /// What the daemon's FleetLock coordinator is doing, when it runs.
    pub fleet: Option<FleetLock>,
}

/// Where rpm-ostreed's FleetLock coordinator records what it is doing (`[Fleet]`
/// `Strategy=fleetlock`).
pub const FLEET_LOCK_FILE: &str = "/run/rpm-ostree/fleet-lock";

/// The FleetLock coordinator's state, as recorded in [`FLEET_LOCK_FILE`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetLock {
    /// The server URLs.
    pub urls: String,
    /// The group.
    pub group: String,
    /// The node id.
    pub node_id: String,
    /// `steady-state`, `idle`, `waiting-for-slot`, `waiting-for-window` or `rebooting`.
    pub phase: String,
    /// Attempts in this phase.
    pub attempts: u64,
    /// The last refusal or error: (kind, message).
    pub last_error: Option<(String, String)>,
    /// When the next attempt is due (unix seconds).
    pub next_try: Option<u64>,
}

/// Parses [`FLEET_LOCK_FILE`] (group `[fleet-lock]`).
pub fn read_fleet_lock(text: &str) -> Option<FleetLock> {
    let mut f = FleetLock::default();
    let (mut kind, mut error) = (None, None);
    for (k, v) in group_entries(text, "fleet-lock") {
        match k.as_str() {
            "urls" => f.urls = v,
            "group" => f.group = v,
            "node-id" => f.node_id = v,
            "phase" => f.phase = v,
            "attempts" => f.attempts = v.parse().unwrap_or(0),
            "next-try" => f.next_try = v.parse().ok(),
            "last-error-kind" => kind = Some(v),
            "last-error" => error = Some(v),
            _ => {}
        }
    }
    if let (Some(k), Some(e)) = (kind, error) {
        f.last_error = Some((k, e));
    }
    (!f.phase.is_empty()).then_some(f)
}

/// The `FleetLock:` block: the service, then what the coordinator does and why it waits.
fn fleet_lock_lines(f: &FleetLock, now: u64) -> String {
    let node: String = f.node_id.chars().take(12).collect();
    let mut out = format!(
        "FleetLock: group {}, node {node}{} ({})
",
        f.group,
        if f.node_id.chars().count() > 12 {
            "…"
        } else {
            ""
        },
        f.urls.replace(';', ", ")
    );
    let doing = match f.phase.as_str() {
        "steady-state" => "reporting steady state",
        "idle" => "idle (steady state reported)",
        "waiting-for-slot" => "waiting for a reboot slot",
        "waiting-for-window" => "waiting for the maintenance window",
        "rebooting" => "reboot slot granted; rebooting",
        other => other,
    };
    let mut state = doing.to_owned();
    if let Some((kind, value)) = &f.last_error
        && f.phase != "idle"
    {
        state.push_str(&format!(
            "; last answer: {kind}: {value} (attempt {})",
            f.attempts
        ));
    }
    if let Some(t) = f.next_try.filter(|_| f.phase != "idle") {
        state.push_str(&format!("; next try in {} s", t.saturating_sub(now)));
    }
    out.push_str(&format!("  FleetLockState: {state}\n"));
    out
}

/// Where rpm-ostreed records the update driver that registered (`--register-driver`).
pub const UPDATE_DRIVER_FILE: &str = "/run/rpm-ostree/update-driver";

/// Reads the registered update driver: a key file with group `[update-driver]` and keys
/// `driver-name` and `driver-sd-unit`.
pub fn read_update_driver(text: &str) -> Option<(String, String)> {
    let entries = group_entries(text, "update-driver");
    let get = |k: &str| {
        entries
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    get("driver-name")
        .filter(|n| !n.is_empty())
        .map(|n| (n, get("driver-sd-unit").unwrap_or_default()))
}

/// The `key=value` entries of `[group]` in key-file text (what the daemon writes to /run).
fn group_entries(text: &str, group: &str) -> Vec<(String, String)> {
    let header = format!("[{group}]");
    let mut in_group = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_group = line == header;
        } else if let (true, Some((k, v))) = (in_group, line.split_once('=')) {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
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
    let cached_update = is_present(&cached).then_some(cached);
    let pending_diff = if args.json || args.booted {
        None
    } else {
        pending_diff(&os, &deployments, cached_update.as_ref()).await
    };
    let state = State {
        deployments,
        transaction: daemon.active_transaction().await?,
        cached_update,
        policy,
        timer,
        driver: std::fs::read_to_string(UPDATE_DRIVER_FILE)
            .ok()
            .and_then(|t| read_update_driver(&t)),
        pending_diff,
        fleet: std::fs::read_to_string(FLEET_LOCK_FILE)
            .ok()
            .and_then(|t| read_fleet_lock(&t)),
    };
    if args.json {
        println!("{}", json(&state, args.booted));
    } else {
        print!("{}", human(&state, args, Style::detect())?);
    }
    if args.pending_exit_77 && has_pending(&state.deployments) {
        return Ok(Exit::Code77);
    }
    Ok(Exit::Success)
}

/// The pending deployment, as upstream's status sees it: the first deployment, when it is not
/// the booted one and belongs to the booted stateroot.
fn pending_deployment(deployments: &[Deployment]) -> Option<&Deployment> {
    let booted = deployments.iter().find(|d| d.booted == Some(true))?;
    let first = deployments.first()?;
    (first.booted != Some(true) && booted.osname.is_some() && first.osname == booted.osname)
        .then_some(first)
}

/// The package diff from the booted to the pending deployment, when there is a pending one
/// and the cached update does not already describe it. Best effort, as the extra line it
/// feeds: any failure (no rpmdb, not authorised, an older daemon) shows nothing.
async fn pending_diff(
    os: &rpmostree_api::OSProxy<'_>,
    deployments: &[Deployment],
    cached_update: Option<&CachedUpdate>,
) -> Option<PackageDiff> {
    let pending = pending_deployment(deployments)?;
    let pending_id = pending.id.as_deref()?;
    if cached_update.and_then(|u| u.deployment.as_deref()) == Some(pending_id) {
        return None;
    }
    let booted = deployments.iter().find(|d| d.booted == Some(true))?;
    let call = os.get_deployments_rpm_diff(booted.id.as_deref()?, pending_id);
    let changes = tokio::time::timeout(PENDING_DIFF_TIMEOUT, call)
        .await
        .ok()?
        .ok()?;
    PackageDiff::from_changes(&changes).ok()
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

/// The human-readable status. Fails only when the cached update's package data has the
/// wrong shape.
pub fn human(state: &State, args: &StatusArgs, style: Style) -> Result<String> {
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
    if let Some(f) = &state.fleet {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        out.push_str(&fleet_lock_lines(f, now));
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
    let pending_id = pending_deployment(&state.deployments).and_then(|d| d.id.as_deref());
    let mut printed_cached_update = false;
    for (index, d) in state.deployments.iter().enumerate() {
        let booted = d.booted == Some(true);
        if args.booted && !booted {
            continue;
        }
        if index > 0 && !args.booted {
            out.push('\n');
        }
        // For the pending deployment: the cached update's diff and advisories when it was
        // computed against this deployment, else the diff from the booted deployment.
        let mut packages = String::new();
        if index == 0 && pending_id.is_some() && d.id.as_deref() == pending_id {
            match &state.cached_update {
                Some(update) if update.deployment.as_deref() == pending_id => {
                    packages = diff_advisories(
                        update.rpm_diff.as_ref(),
                        update.advisories.as_deref(),
                        args.verbose,
                        args.advisories,
                        KEY_WIDTH,
                        style,
                    )?;
                    printed_cached_update = true;
                }
                _ => {
                    if let Some(diff) = &state.pending_diff {
                        packages = if args.verbose {
                            diff.aligned(KEY_WIDTH)
                        } else {
                            diff.summary_line(KEY_WIDTH)
                        };
                    }
                }
            }
        }
        deployment_block(
            &mut out,
            d,
            index,
            args.verbose,
            multiple_stateroots,
            &packages,
            style,
        );
    }
    if let Some(update) = &state.cached_update
        && !printed_cached_update
        && state.policy != "none"
        && !state.policy.is_empty()
    {
        out.push('\n');
        out.push_str(&cached_update_block(
            update,
            args.verbose,
            args.advisories,
            style,
        )?);
    }
    Ok(out)
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
    packages: &str,
    style: Style,
) {
    let checksum = d.checksum.clone().unwrap_or_default();
    let booted = d.booted == Some(true);
    let origin = d.origin.as_deref();
    let custom = d
        .custom_origin
        .as_ref()
        .filter(|(url, _)| !url.is_empty() && origin.is_some_and(is_checksum));
    let image = d.container_image_reference.as_deref();
    let digest = d.container_image_reference_digest.as_deref();
    let title = match (custom, origin, image) {
        (_, _, Some(image)) if digest.is_some() => image.to_owned(),
        (_, _, Some(_)) => "(error fetching image metadata)".to_owned(),
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
    if let Some(digest) = digest.filter(|_| image.is_some()) {
        out.push_str(&kv("Digest", w, digest));
    } else if let Some((_, description)) = custom {
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
    // Commits are shown for ostree origins (an image or a pinned checksum says enough).
    let ostree_or_verbose = verbose || (image.is_none() && !origin.is_some_and(is_checksum));
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
    out.push_str(packages);
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

/// The `AvailableUpdate:` block for a cached update (also what `upgrade --check` and
/// `--preview` print), as upstream: the version, commit and signatures when the origin has a
/// new commit, then the security advisories and the package diff (a `Diff:` summary, or with
/// `verbose` the package lists; advisories expanded with `verbose` or `verbose_advisories`),
/// then a container update's layer statistics.
pub fn cached_update_block(
    update: &CachedUpdate,
    verbose: bool,
    verbose_advisories: bool,
    style: Style,
) -> Result<String> {
    let w = UPDATE_KEY_WIDTH;
    let mut out = String::from("AvailableUpdate:\n");
    if update.ref_has_new_commit.unwrap_or(true) {
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
    }
    out.push_str(&diff_advisories(
        update.rpm_diff.as_ref(),
        update.advisories.as_deref(),
        verbose,
        verbose_advisories,
        w,
        style,
    )?);
    if let Some(manifest) = &update.manifest_diff {
        out.push_str(&manifest_diff_lines(manifest, w)?);
    }
    Ok(out)
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
        let text = human(&state, &StatusArgs::default(), Style { color: false }).expect("renders");
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
        )
        .expect("renders");
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

    use crate::diff::tests::{advisory, changes, owned, rpm_diff};

    const PLAIN: Style = Style { color: false };

    fn pad(key: &str, width: usize) -> String {
        " ".repeat(2 + width - key.len())
    }

    /// A pending deployment (`testos-b…`) before the booted one (`testos-a…`).
    fn with_pending() -> Vec<Deployment> {
        let pending = Deployment::new()
            .id(format!("testos-{}.0", "b".repeat(64)))
            .osname("testos")
            .serial(0)
            .checksum("b".repeat(64))
            .version("2.0")
            .timestamp(1_700_000_000)
            .origin("origin:testos/stable")
            .booted(false)
            .staged(true)
            .pinned(false)
            .unlocked("none");
        vec![pending, deployment("1.1", true)]
    }

    fn update(against: &str) -> CachedUpdate {
        CachedUpdate::new()
            .osname("testos")
            .checksum("c".repeat(64))
            .version("2.0")
            .timestamp(1_700_000_000)
            .origin("origin:testos/stable")
            .ref_has_new_commit(true)
            .rpm_diff(rpm_diff())
            .advisories(vec![
                advisory(
                    "FEDORA-2024-a",
                    1,
                    3,
                    &["foo-1.1-1.x86_64"],
                    &[("https://bz.example.com/1", "CVE-2024-1 foo: flaw")],
                ),
                advisory("FEDORA-2024-b", 1, 4, &["zed-3-1.noarch"], &[]),
            ])
            .deployment(against)
            .update_sha256("d".repeat(64))
    }

    #[test]
    fn the_pending_deployment_shows_the_cached_update_it_was_computed_against() {
        let deployments = with_pending();
        let pending_id = deployments[0].id.clone().expect("id");
        let state = State {
            deployments,
            cached_update: Some(update(&pending_id)),
            policy: "check".into(),
            timer: Some("rpm-ostreed-automatic.timer: no runs since boot".into()),
            ..Default::default()
        };
        let text = human(&state, &StatusArgs::default(), PLAIN).expect("renders");
        let w = KEY_WIDTH;
        let expected_lines = format!(
            "{}SecAdvisories: 1 important, 1 critical\n{}Diff: 2 upgraded, 1 downgraded, 1 removed, 1 added\n",
            pad("SecAdvisories", w),
            pad("Diff", w)
        );
        assert!(text.contains(&expected_lines), "{text}");
        // In the pending deployment's block, after its Commit line and before the booted one.
        let commit = format!("{}Commit: {}\n", pad("Commit", w), "b".repeat(64));
        assert!(
            text.contains(&format!("{commit}{expected_lines}\n● ")),
            "{text}"
        );
        // Shown inline, so no AvailableUpdate block.
        assert!(!text.contains("AvailableUpdate:"), "{text}");

        // -a expands the advisories only.
        let args = StatusArgs {
            advisories: true,
            ..Default::default()
        };
        let text = human(&state, &args, PLAIN).expect("renders");
        let indent = " ".repeat(2 + w + 2);
        let expected = format!(
            "{}SecAdvisories: FEDORA-2024-a  Important  foo-1.1-1.x86_64\n\
             {indent}  CVE-2024-1 foo: flaw\n\
             {indent}  https://bz.example.com/1\n\
             {indent}FEDORA-2024-b  Critical   zed-3-1.noarch\n\
             {}Diff: 2 upgraded, 1 downgraded, 1 removed, 1 added\n",
            pad("SecAdvisories", w),
            pad("Diff", w)
        );
        assert!(text.contains(&expected), "{text}");

        // -v expands both.
        let args = StatusArgs {
            verbose: true,
            ..Default::default()
        };
        let text = human(&state, &args, PLAIN).expect("renders");
        assert!(
            text.contains("SecAdvisories: FEDORA-2024-a  Important"),
            "{text}"
        );
        let expected = format!(
            "{}Upgraded: foo 1.0-1 -> 1.1-1\n{indent}zed 2-1 -> 3-1\n{}Downgraded: bar 2.0-1 -> 1.9-1\n{}Removed: baz-1:0.5-2.noarch\n{}Added: qux-3.0-1.aarch64\n",
            pad("Upgraded", w),
            pad("Downgraded", w),
            pad("Removed", w),
            pad("Added", w)
        );
        assert!(text.contains(&expected), "{text}");
        assert!(!text.contains("Diff:"), "{text}");
    }

    #[test]
    fn an_update_not_computed_against_the_pending_deployment_is_an_available_update() {
        let state = State {
            deployments: with_pending(),
            cached_update: Some(update("testos-other.0")),
            policy: "check".into(),
            timer: Some("rpm-ostreed-automatic.timer: no runs since boot".into()),
            pending_diff: Some(
                crate::diff::PackageDiff::from_changes(&changes()).expect("decodes"),
            ),
            ..Default::default()
        };
        let text = human(&state, &StatusArgs::default(), PLAIN).expect("renders");
        // The pending deployment shows its own diff from the booted one.
        let commit = format!("{}Commit: {}\n", pad("Commit", KEY_WIDTH), "b".repeat(64));
        assert!(
            text.contains(&format!(
                "{commit}{}Diff: 1 upgraded, 1 downgraded, 1 removed, 1 added\n\n● ",
                pad("Diff", KEY_WIDTH)
            )),
            "{text}"
        );
        let w = UPDATE_KEY_WIDTH;
        let block = format!(
            "\nAvailableUpdate:\n{}Version: 2.0 (2023-11-14T22:13:20Z)\n{}Commit: {}\n{}SecAdvisories: 1 important, 1 critical\n{}Diff: 2 upgraded, 1 downgraded, 1 removed, 1 added\n",
            pad("Version", w),
            pad("Commit", w),
            "c".repeat(64),
            pad("SecAdvisories", w),
            pad("Diff", w)
        );
        assert!(text.ends_with(&block), "{text}");
        // With automatic updates disabled the block is not shown.
        let state = State {
            policy: "none".into(),
            ..state
        };
        let text = human(&state, &StatusArgs::default(), PLAIN).expect("renders");
        assert!(!text.contains("AvailableUpdate:"), "{text}");
        // -v: the pending deployment's diff as aligned lists.
        let args = StatusArgs {
            verbose: true,
            ..Default::default()
        };
        let text = human(&state, &args, PLAIN).expect("renders");
        assert!(
            text.contains(&format!(
                "{}Upgraded: foo 1.0-1 -> 1.1-1\n{}Downgraded: bar 2.0-1 -> 1.9-1\n",
                pad("Upgraded", KEY_WIDTH),
                pad("Downgraded", KEY_WIDTH)
            )),
            "{text}"
        );
    }

    #[test]
    fn the_available_update_block() {
        let u = update("x");
        assert_eq!(
            cached_update_block(&u, false, false, PLAIN).expect("renders"),
            format!(
                "AvailableUpdate:\n        Version: 2.0 (2023-11-14T22:13:20Z)\n         Commit: {}\n  SecAdvisories: 1 important, 1 critical\n           Diff: 2 upgraded, 1 downgraded, 1 removed, 1 added\n",
                "c".repeat(64)
            )
        );
        // --preview: the package lists.
        let text = cached_update_block(&u, true, false, PLAIN).expect("renders");
        assert!(
            text.ends_with(
                "       Upgraded: foo 1.0-1 -> 1.1-1\n\
                 \x20                zed 2-1 -> 3-1\n\
                 \x20    Downgraded: bar 2.0-1 -> 1.9-1\n\
                 \x20       Removed: baz-1:0.5-2.noarch\n\
                 \x20         Added: qux-3.0-1.aarch64\n"
            ),
            "{text}"
        );
        assert!(text.contains("  SecAdvisories: FEDORA-2024-a  Important  foo-1.1-1.x86_64\n"));
        // Only layered packages changed: no version and commit lines.
        let layered = CachedUpdate::new()
            .checksum("a".repeat(64))
            .ref_has_new_commit(false)
            .rpm_diff(rpm_diff());
        assert_eq!(
            cached_update_block(&layered, false, false, PLAIN).expect("renders"),
            "AvailableUpdate:\n           Diff: 2 upgraded, 1 downgraded, 1 removed, 1 added\n"
        );
        // A malformed rpm-diff is an error, not a wrong line.
        let mut bad = rpm_diff();
        bad.insert("upgraded".into(), owned(7u32));
        let bad = CachedUpdate::new().checksum("a").rpm_diff(bad);
        assert!(cached_update_block(&bad, false, false, PLAIN).is_err());
    }

    #[test]
    fn json_carries_the_cached_update_package_keys() {
        let deployments = with_pending();
        let pending_id = deployments[0].id.clone().expect("id");
        let state = State {
            deployments,
            cached_update: Some(update(&pending_id)),
            ..Default::default()
        };
        let value: Value = serde_json::from_str(&json(&state, false)).expect("JSON");
        let cached = &value["cached-update"];
        assert_eq!(cached["deployment"], Value::from(pending_id));
        assert_eq!(cached["ref-has-new-commit"], Value::Bool(true));
        assert_eq!(
            cached["rpm-diff"]["upgraded"][0],
            serde_json::json!([0, "foo", ["1.0-1", "x86_64"], ["1.1-1", "x86_64"]])
        );
        assert_eq!(
            cached["rpm-diff"]["added"][0],
            serde_json::json!([1, "qux", "3.0-1", "aarch64"])
        );
        assert_eq!(
            cached["advisories"][0],
            serde_json::json!([
                "FEDORA-2024-a",
                1,
                3,
                ["foo-1.1-1.x86_64"],
                {"cve_references": [["https://bz.example.com/1", "CVE-2024-1 foo: flaw"]]}
            ])
        );
    }

    #[test]
    fn pending_is_the_first_deployment_of_the_booted_stateroot() {
        let deployments = with_pending();
        assert_eq!(
            pending_deployment(&deployments).and_then(|d| d.version.as_deref()),
            Some("2.0")
        );
        assert!(pending_deployment(&deployments[1..]).is_none());
        // Another stateroot first: not pending.
        let mut other = with_pending();
        other[0].osname = Some("otheros".into());
        assert!(pending_deployment(&other).is_none());
        // Not booted at all: nothing is pending.
        let mut unbooted = with_pending();
        unbooted[1].booted = Some(false);
        assert!(pending_deployment(&unbooted).is_none());
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

    #[test]
    fn the_fleet_lock_block_says_what_the_node_waits_for() {
        let text = "[fleet-lock]\nurls=http://a:9090/;http://b:9090/\ngroup=workers\nnode-id=583627a932274834a8ebd99f4ed41c0d\nphase=waiting-for-slot\nattempts=3\nupdated=100\nlast-error-kind=failed_lock\nlast-error=all 3 semaphore slots currently locked\nnext-try=140\n";
        let f = read_fleet_lock(text).expect("parses");
        assert_eq!(
            fleet_lock_lines(&f, 100),
            "FleetLock: group workers, node 583627a93227… (http://a:9090/, http://b:9090/)\n  FleetLockState: waiting for a reboot slot; last answer: failed_lock: all 3 semaphore slots currently locked (attempt 3); next try in 40 s\n"
        );
        assert!(read_fleet_lock("[other]\nphase=idle\n").is_none());
    }
}
