//! FLEET: when a node may reboot into an automatic update. With the `immediate` strategy (the
//! default) `AutomaticUpdatePolicy=apply` reboots as soon as the update is staged. With
//! `fleetlock` (`[Fleet]` in `rpm-ostreed.conf`), the update is staged locked and this module's
//! coordinator asks a FleetLock server for a reboot slot (`v1/pre-reboot`, retried with backoff
//! and jitter, only inside the maintenance windows if any), then unlocks the staged deployment
//! and asks for the reboot; after every start it reports steady state (`v1/steady-state`) until
//! the server accepts, which frees the slot. The node id is zincati's app-specific id derived
//! from `/etc/machine-id` (or `NodeId=`). What the coordinator is doing, every refusal with its
//! kind, and when it tries next are written to `/run/rpm-ostree/fleet-lock` for
//! `rpm-ostree status`, and logged.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use fleetlock::client::{Backoff, Client, Outcome};
use ostree::glib;

/// Where the coordinator's state is kept for `rpm-ostree status` (the running system's /run).
pub(crate) const STATE_FILE: &str = "/run/rpm-ostree/fleet-lock";

/// How a node decides when to reboot into a staged automatic update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// At once.
    #[default]
    Immediate,
    /// When a FleetLock server grants a slot.
    FleetLock,
}

/// A weekly maintenance window (UTC): the days it opens, when, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    /// Monday = 0 .. Sunday = 6.
    days: [bool; 7],
    /// Minutes after midnight.
    start: u32,
    /// Length in minutes.
    length: u32,
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

impl Window {
    /// Parses `DAYS HH:MM MINUTES`, DAYS a comma-separated list of Mon..Sun.
    fn parse(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [days_text, start_text, length_text] = parts[..] else {
            bail!("'{text}' is not DAYS HH:MM MINUTES (e.g. Sat,Sun 22:30 120)");
        };
        let mut days = [false; 7];
        for d in days_text.split(',') {
            let i = DAYS
                .iter()
                .position(|x| x.eq_ignore_ascii_case(d))
                .with_context(|| format!("'{d}' is not a day (Mon, Tue, … Sun)"))?;
            days[i] = true;
        }
        let (h, m) = start_text
            .split_once(':')
            .with_context(|| format!("'{start_text}' is not HH:MM"))?;
        let (h, m): (u32, u32) = (
            h.parse()
                .with_context(|| format!("'{start_text}' is not HH:MM"))?,
            m.parse()
                .with_context(|| format!("'{start_text}' is not HH:MM"))?,
        );
        if h > 23 || m > 59 {
            bail!("'{start_text}' is not a time of day");
        }
        let length: u32 = length_text
            .parse()
            .with_context(|| format!("'{length_text}' is not a number of minutes"))?;
        if length == 0 || length > 7 * 24 * 60 {
            bail!("a window lasts 1 to 10080 minutes, not {length}");
        }
        Ok(Self {
            days,
            start: h * 60 + m,
            length,
        })
    }

    /// Whether the window is open at `unix` seconds (UTC), counting a window that started the
    /// day before and is still open.
    fn contains(&self, unix: u64) -> bool {
        let minute_of_week = |u: u64| ((u / 60 + 3 * 24 * 60) % (7 * 24 * 60)) as u32; // 1970-01-01 was a Thursday
        let now = minute_of_week(unix);
        (0..7).filter(|d| self.days[*d]).any(|d| {
            let open = d as u32 * 24 * 60 + self.start;
            let since = (now + 7 * 24 * 60 - open) % (7 * 24 * 60);
            since < self.length
        })
    }
}

/// The `[Fleet]` group of `rpm-ostreed.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FleetConfig {
    /// `Strategy`: `immediate` or `fleetlock`.
    pub(crate) strategy: Strategy,
    /// `URL`: FleetLock server base URLs (replicas), `;`-separated.
    pub(crate) urls: Vec<String>,
    /// `Group`.
    pub(crate) group: String,
    /// `NodeId`: overrides the id derived from `/etc/machine-id`.
    pub(crate) node_id: Option<String>,
    /// `MaintenanceWindow`: `;`-separated windows; none means any time.
    pub(crate) windows: Vec<Window>,
    /// `MaxRetryIntervalSecs`: the longest wait between two attempts (default 300, as
    /// zincati's refresh period).
    pub(crate) max_retry: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::Immediate,
            urls: Vec::new(),
            group: fleetlock::protocol::DEFAULT_GROUP.to_owned(),
            node_id: None,
            windows: Vec::new(),
            max_retry: Duration::from_secs(300),
        }
    }
}

impl FleetConfig {
    /// Sets one key of `[Fleet]`.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "Strategy" => {
                self.strategy = match value {
                    "immediate" => Strategy::Immediate,
                    "fleetlock" => Strategy::FleetLock,
                    _ => bail!("Strategy={value} is not one of immediate, fleetlock"),
                }
            }
            "URL" => {
                self.urls = value
                    .split(';')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned)
                    .collect();
                for u in &self.urls {
                    fleetlock::http::BaseUrl::parse(u)?;
                }
            }
            "Group" => {
                if !fleetlock::protocol::valid_group(value) {
                    bail!("Group={value} is not a valid group (letters, digits, '.' and '-')");
                }
                self.group = value.to_owned();
            }
            "NodeId" => {
                if !fleetlock::protocol::valid_id(value) {
                    bail!("NodeId={value} is not a valid node id");
                }
                self.node_id = Some(value.to_owned());
            }
            "MaintenanceWindow" => {
                self.windows = value
                    .split(';')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(Window::parse)
                    .collect::<Result<_>>()
                    .with_context(|| format!("MaintenanceWindow={value}"))?;
            }
            "MaxRetryIntervalSecs" => {
                let secs: u64 = value
                    .parse()
                    .with_context(|| format!("MaxRetryIntervalSecs={value} is not a number"))?;
                if secs == 0 {
                    bail!("MaxRetryIntervalSecs must be at least 1");
                }
                self.max_retry = Duration::from_secs(secs);
            }
            other => tracing::warn!("unknown key {other} in [Fleet] is ignored"),
        }
        Ok(())
    }

    /// Checks the group as a whole (after every key is read).
    pub(crate) fn check(&self) -> Result<()> {
        if self.strategy == Strategy::FleetLock && self.urls.is_empty() {
            bail!("[Fleet] Strategy=fleetlock needs URL=");
        }
        Ok(())
    }

    /// Whether a reboot may happen at `unix` seconds.
    fn in_window(&self, unix: u64) -> bool {
        self.windows.is_empty() || self.windows.iter().any(|w| w.contains(unix))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What the coordinator is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// `steady-state`, `idle`, `waiting-for-slot`, `waiting-for-window`, `rebooting`.
    pub(crate) phase: String,
    /// The last refusal or error: (kind, message).
    pub(crate) last_error: Option<(String, String)>,
    /// Attempts in this phase.
    pub(crate) attempts: u32,
    /// When the next attempt is due (unix seconds).
    pub(crate) next_try: Option<u64>,
}

/// The coordinator shared with the daemon.
#[derive(Debug, Default)]
pub(crate) struct Coordinator {
    state: Mutex<State>,
    /// Set by an automatic `apply` that staged its update locked for the coordinator.
    armed: std::sync::atomic::AtomicBool,
    wake: tokio::sync::Notify,
    /// The coordinator has work (steady state not yet reported, or a slot to wait for).
    busy: std::sync::atomic::AtomicBool,
}

impl Coordinator {
    /// Tells the coordinator that an automatic apply is staging an update for it.
    pub(crate) fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.busy.store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Whether the daemon must stay up for the coordinator.
    pub(crate) fn busy(&self) -> bool {
        self.busy.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn set(&self, config: &FleetConfig, id: &str, update: impl FnOnce(&mut State)) {
        let state = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            update(&mut s);
            s.clone()
        };
        if let Err(e) = write_state(Path::new(STATE_FILE), config, id, &state) {
            tracing::warn!("writing {STATE_FILE}: {e:#}");
        }
    }
}

fn write_state(path: &Path, config: &FleetConfig, id: &str, s: &State) -> Result<()> {
    const G: &str = "fleet-lock";
    let kf = glib::KeyFile::new();
    kf.set_string(G, "urls", &config.urls.join(";"));
    kf.set_string(G, "group", &config.group);
    kf.set_string(G, "node-id", id);
    kf.set_string(G, "phase", &s.phase);
    kf.set_uint64(G, "attempts", u64::from(s.attempts));
    kf.set_uint64(G, "updated", now());
    if let Some((kind, value)) = &s.last_error {
        kf.set_string(G, "last-error-kind", kind);
        kf.set_string(G, "last-error", value);
    }
    if let Some(t) = s.next_try {
        kf.set_uint64(G, "next-try", t);
    }
    crate::sysroot::write_atomic(path, kf.to_data().as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The node id: `NodeId=`, else zincati's app-specific id of `/etc/machine-id`.
fn node_id(config: &FleetConfig) -> Result<String> {
    if let Some(id) = &config.node_id {
        return Ok(id.clone());
    }
    let machine_id =
        std::fs::read_to_string("/etc/machine-id").context("reading /etc/machine-id")?;
    fleetlock::protocol::node_id(&machine_id)
}

/// What the coordinator needs of the daemon.
pub(crate) trait Node: Send + Sync {
    /// Whether no transaction runs.
    fn idle(&self) -> bool;
    /// Whether a staged deployment exists and is locked against finalization.
    fn staged_locked(&self) -> bool;
    /// Asks for the reboot (`Err` says what refused).
    fn reboot(&self) -> futures_util::future::BoxFuture<'_, Result<(), String>>;
}

/// Calls `call` until the server grants it, recording each refusal and wait in the state.
async fn until_granted<F, Fut>(
    coordinator: &Coordinator,
    config: &FleetConfig,
    id: &str,
    phase: &str,
    mut call: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Outcome>>,
{
    let mut backoff = Backoff::new(
        Duration::from_secs(1).min(config.max_retry),
        config.max_retry,
    );
    loop {
        if phase == "waiting-for-slot" && !config.in_window(now()) {
            coordinator.set(config, id, |s| {
                s.phase = "waiting-for-window".into();
                s.next_try = Some(now() + 60);
            });
            tokio::time::sleep(Duration::from_secs(60).min(config.max_retry)).await;
            continue;
        }
        let (kind, value) = match call().await {
            Ok(Outcome::Granted) => return,
            Ok(Outcome::NotNow { kind, value, .. }) => (kind, value),
            Err(e) => ("unreachable".to_owned(), format!("{e:#}")),
        };
        let delay = backoff.next_delay();
        tracing::info!(
            "FleetLock {phase}: {kind}: {value}; next try in {} s",
            delay.as_secs()
        );
        coordinator.set(config, id, |s| {
            s.phase = phase.to_owned();
            s.attempts = backoff.attempts();
            s.last_error = Some((kind, value));
            s.next_try = Some(now() + delay.as_secs());
        });
        tokio::time::sleep(delay).await;
    }
}

/// Runs the coordinator until the daemon exits: steady state first, then, each time an
/// automatic apply staged an update, a slot, the unlock and the reboot.
pub(crate) async fn run(coordinator: Arc<Coordinator>, config: FleetConfig, node: Arc<dyn Node>) {
    use std::sync::atomic::Ordering;
    let id = match node_id(&config) {
        Ok(id) => id,
        Err(e) => {
            tracing::error!("FleetLock: no node id: {e:#}");
            coordinator.busy.store(false, Ordering::SeqCst);
            return;
        }
    };
    let client = match Client::new(&config.urls, &id, &config.group, Duration::from_secs(30)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("FleetLock: {e:#}");
            coordinator.busy.store(false, Ordering::SeqCst);
            return;
        }
    };
    coordinator.busy.store(true, Ordering::SeqCst);
    // A daemon stopped while its update waited for a slot (killed, restarted) takes up the
    // wait again once steady state is reported: the update is still staged and locked.
    let interrupted = std::fs::read_to_string(STATE_FILE).is_ok_and(|t| {
        t.lines()
            .any(|l| l == "phase=waiting-for-slot" || l == "phase=waiting-for-window")
    });
    if interrupted && node.staged_locked() {
        tracing::info!("FleetLock: resuming the wait for a reboot slot of the staged update");
        coordinator.armed.store(true, Ordering::SeqCst);
    }
    coordinator.set(&config, &id, |s| {
        *s = State {
            phase: "steady-state".into(),
            ..Default::default()
        }
    });
    until_granted(&coordinator, &config, &id, "steady-state", || {
        client.steady_state()
    })
    .await;
    tracing::info!(
        "FleetLock: reported steady state as {id} in {}",
        config.group
    );
    loop {
        coordinator.set(&config, &id, |s| {
            *s = State {
                phase: "idle".into(),
                ..Default::default()
            }
        });
        if !coordinator.armed.swap(false, Ordering::SeqCst) {
            coordinator.busy.store(false, Ordering::SeqCst);
            coordinator.wake.notified().await;
            if !coordinator.armed.swap(false, Ordering::SeqCst) {
                continue;
            }
        }
        // The automatic apply's transaction is staging: wait for its end.
        while !node.idle() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if !node.staged_locked() {
            tracing::info!("FleetLock: nothing was staged; no slot needed");
            continue;
        }
        coordinator.set(&config, &id, |s| {
            *s = State {
                phase: "waiting-for-slot".into(),
                ..Default::default()
            }
        });
        loop {
            until_granted(&coordinator, &config, &id, "waiting-for-slot", || {
                client.pre_reboot()
            })
            .await;
            if !node.staged_locked() {
                tracing::info!("FleetLock: the staged update went away; giving the slot back");
                until_granted(&coordinator, &config, &id, "steady-state", || {
                    client.steady_state()
                })
                .await;
                break;
            }
            tracing::info!(
                "FleetLock: reboot slot granted in {}; rebooting",
                config.group
            );
            coordinator.set(&config, &id, |s| {
                s.phase = "rebooting".into();
                s.next_try = None;
            });
            match node.reboot().await {
                Ok(()) => {
                    if let Err(e) = crate::sysroot::deploy::unlock_staged() {
                        tracing::error!("FleetLock: unlocking the staged deployment: {e:#}");
                    }
                    // The system goes down; the slot is freed by the next start's steady state.
                    return;
                }
                Err(e) => {
                    tracing::warn!("FleetLock: the reboot was refused: {e}");
                    coordinator.set(&config, &id, |s| {
                        s.phase = "waiting-for-slot".into();
                        s.last_error = Some(("reboot_refused".into(), e.clone()));
                    });
                    tokio::time::sleep(config.max_retry).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_keys_parse_and_bad_values_say_why() {
        let mut c = FleetConfig::default();
        c.set("Strategy", "fleetlock").unwrap();
        assert!(c.check().is_err(), "fleetlock needs a URL");
        c.set("URL", "http://a:9090/; http://b:9090/").unwrap();
        c.set("Group", "workers").unwrap();
        c.set("MaintenanceWindow", "Sat,Sun 22:30 120; Wed 03:00 60")
            .unwrap();
        c.check().unwrap();
        assert_eq!(c.urls.len(), 2);
        assert_eq!(c.windows.len(), 2);
        assert!(c.set("Strategy", "periodic").is_err());
        assert!(c.set("URL", "https://x/").is_err());
        assert!(c.set("Group", "a b").is_err());
        assert!(c.set("MaintenanceWindow", "Someday 22:30 120").is_err());
        assert!(c.set("MaintenanceWindow", "Sat 25:00 120").is_err());
        assert!(c.set("MaintenanceWindow", "Sat 22:00 0").is_err());
        assert!(c.set("MaxRetryIntervalSecs", "0").is_err());
    }

    #[test]
    fn windows_open_on_their_days_and_across_midnight() {
        // 2026-12-05 is a Saturday.
        let sat_2300 = 1_796_511_600; // 2026-12-05T23:00:00Z
        let w = Window::parse("Sat 22:30 120").unwrap();
        let at = |secs: u64| w.contains(secs);
        let sat_2200 = sat_2300 - 3600;
        assert!(!at(sat_2200));
        assert!(at(sat_2300));
        assert!(at(sat_2300 + 80 * 60), "00:20 on Sunday is still inside");
        assert!(!at(sat_2300 + 95 * 60), "00:35 on Sunday is after");
        assert!(!at(sat_2300 + 24 * 3600), "Sunday 23:00 is not a window");
        let c = FleetConfig::default();
        assert!(c.in_window(sat_2200), "no window means any time");
    }
}
