//! Shared steps: starting a sandbox and a bridge, opening the main channel the way
//! cockpit-ostree does, following a transaction on its peer-to-peer address, and reading the
//! deployment dicts out of the bridge's property cache.

use std::path::Path;
use std::time::Duration;

use rpmostree_tests::{AdminDeployment, Sandbox, SandboxOptions, parse_admin_status};
use serde_json::{Map, Value, json};

use crate::bridge::{Bridge, Cache, NAME, STEP, SYSROOT_IFACE, SYSROOT_PATH, TRANSACTION_IFACE};

/// The bridge binary of Debian's `cockpit-bridge` package.
pub const COCKPIT_BRIDGE: &str = "/usr/bin/cockpit-bridge";

/// The hard limit on one bridge conversation.
pub const HARD_TIMEOUT: Duration = Duration::from_secs(240);

/// Starts a sandbox, or returns `None` when the test must be skipped (not root, outside CI).
/// A missing `cockpit-bridge` is a failure, not a skip: the test exists to run it.
pub fn sandbox(test: &str, options: SandboxOptions) -> Option<Sandbox> {
    if !rpmostree_tests::root_or_skip(test) {
        return None;
    }
    assert!(
        Path::new(COCKPIT_BRIDGE).is_file(),
        "{test}: {COCKPIT_BRIDGE} is missing: \
         apt-get install --no-install-recommends cockpit-bridge"
    );
    Some(Sandbox::start(options).expect("the sandbox starts"))
}

/// A bridge running as root (so it serves `superuser` channels itself, like the privileged
/// bridge that cockpit-ostree's `superuser: true` channels end up on).
pub fn root_bridge(sb: &Sandbox) -> Bridge {
    Bridge::start(sb.command(COCKPIT_BRIDGE), HARD_TIMEOUT)
}

/// Opens `channel` with cockpit-ostree's exact options (`cockpit.dbus(NAME, {superuser: true,
/// capabilities: ["address"]})`, system bus by default).
pub fn open_like_cockpit_ostree(b: &mut Bridge, channel: &str) {
    b.open(
        channel,
        json!({"bus": "system", "name": NAME, "superuser": true, "capabilities": ["address"]}),
    );
}

/// What a transaction said on its peer connection.
#[derive(Debug)]
pub struct Outcome {
    /// What `Start` returned.
    pub started: Value,
    /// `Finished` argument 0.
    pub success: bool,
    /// `Finished` argument 1.
    pub error_message: String,
    /// Every other signal seen on `/` before `Finished`, as `[member, args]`.
    pub signals: Vec<Value>,
}

/// cockpit-ostree's `run_transaction` after the method returned `address`: a second channel
/// `{bus: "none", address, superuser: true}`, `add-match {path: "/"}`, `Start` on `/`, then
/// wait for `Finished`; the channel is closed afterwards.
pub fn follow_transaction(b: &mut Bridge, channel: &str, address: &str) -> Outcome {
    b.open(
        channel,
        json!({"bus": "none", "address": address, "superuser": true}),
    );
    b.wait_ready(channel);
    b.add_match(channel, json!({"path": "/"}));
    let started = b.call_ok(channel, "/", TRANSACTION_IFACE, "Start", json!([]));
    let is_signal = |f: &crate::bridge::Frame, member: Option<&str>| {
        f.channel == channel
            && f.message["signal"][0] == "/"
            && f.message["signal"][1] == TRANSACTION_IFACE
            && member.is_none_or(|m| f.message["signal"][2] == m)
    };
    let finished = b.wait_for(
        &format!("Finished on the transaction channel {channel}"),
        Duration::from_secs(120),
        |f| is_signal(f, Some("Finished")) || f.is_control("close", channel),
    );
    if finished.message.get("signal").is_none() {
        b.fail(&format!(
            "the transaction channel closed before Finished: {}",
            finished.message
        ));
    }
    let args = &finished.message["signal"][3];
    let outcome = Outcome {
        started: started.first().cloned().unwrap_or(Value::Null),
        success: args[0].as_bool().unwrap_or(false),
        error_message: args[1].as_str().unwrap_or("").to_owned(),
        signals: b
            .unconsumed()
            .iter()
            .filter(|f| is_signal(f, None))
            .map(|f| json!([f.message["signal"][2], f.message["signal"][3]]))
            .collect(),
    };
    b.close(channel);
    outcome
}

/// The `Deployments` property of Sysroot as cached by the bridge: one dict (key -> variant
/// `{"t", "v"}`) per deployment.
pub fn deployments(cache: &Cache) -> Vec<Map<String, Value>> {
    cache
        .props(SYSROOT_PATH, SYSROOT_IFACE)
        .and_then(|p| p.get("Deployments"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|d| d.as_object().cloned()).collect())
        .unwrap_or_default()
}

/// The `version` of each cached deployment, in order.
pub fn versions(cache: &Cache) -> Vec<String> {
    deployments(cache)
        .iter()
        .map(|d| d["version"]["v"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The keys cockpit-ostree reads from a deployment dict (consumers.md 1.4) and the D-Bus type
/// of each: the first six are read without optional chaining, so a missing one throws in its
/// render; `version`, `origin` and `pinned` are shown when present.
pub const COCKPIT_OSTREE_KEYS: [(&str, &str); 9] = [
    ("osname", "s"),
    ("checksum", "s"),
    ("id", "s"),
    ("timestamp", "t"),
    ("booted", "b"),
    ("staged", "b"),
    ("version", "s"),
    ("origin", "s"),
    ("pinned", "b"),
];

/// Every problem with one deployment dict: a key cockpit-ostree needs that is missing, or
/// has another type, or a JSON value that does not fit the type.
pub fn deployment_problems(d: &Map<String, Value>) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, ty) in COCKPIT_OSTREE_KEYS {
        let Some(variant) = d.get(key) else {
            problems.push(format!("no key {key:?}"));
            continue;
        };
        if variant["t"] != ty {
            problems.push(format!("{key:?} has type {} instead of {ty}", variant["t"]));
            continue;
        }
        let v = &variant["v"];
        let fits = match ty {
            "s" => v.as_str().is_some_and(|s| !s.is_empty()),
            "t" => v.as_u64().is_some_and(|t| t > 0),
            "b" => v.is_boolean(),
            _ => false,
        };
        if !fits {
            problems.push(format!("{key:?} has the value {v} for type {ty}"));
        }
    }
    problems
}

/// The names in a `meta` section (`methods`, `properties` or `signals`) of `iface`.
pub fn meta_names(cache: &Cache, iface: &str, section: &str) -> Vec<String> {
    cache
        .meta
        .get(iface)
        .and_then(|m| m[section].as_object())
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Waits (up to [`STEP`]) until the bridge's cache of `channel` shows the deployments with
/// `versions` in this order: the daemon's PropertiesChanged reached the page.
pub fn wait_cached_versions(b: &mut Bridge, channel: &str, want: &[&str]) {
    b.wait_cache(
        channel,
        &format!("the cached Deployments to become {want:?}"),
        STEP,
        |cache| versions(cache) == want,
    );
}

/// `ostree admin status` run inside the fake-booted deployment, parsed: unlike the view from
/// outside, it shows a staged deployment (the first, marked `staged`).
pub fn booted_status(sb: &Sandbox) -> Vec<AdminDeployment> {
    parse_admin_status(
        &sb.run_fake_booted(&["ostree", "admin", "status"])
            .expect("ostree admin status in the fake-booted deployment"),
    )
}

/// What cockpit-ostree does first on its channel: watch the Sysroot object and register as a
/// client.
pub fn watch_sysroot_and_register(b: &mut Bridge, channel: &str) {
    b.add_match(
        channel,
        json!({"path": SYSROOT_PATH, "interface": SYSROOT_IFACE}),
    );
    b.watch(
        channel,
        json!({"path": SYSROOT_PATH, "interface": SYSROOT_IFACE}),
    );
    b.call_ok(
        channel,
        SYSROOT_PATH,
        SYSROOT_IFACE,
        "RegisterClient",
        json!([{"id": {"t": "s", "v": "cockpit-ostree"}}]),
    );
}
