//! REBOOTS: whether a reboot can be asked for, and asking for it, on the system bus.
//!
//! logind comes first (`Manager.Reboot`), so its inhibitors and shutdown sequence apply. Only
//! where logind is not on the bus does the daemon ask systemd, and then for a clean reboot
//! (`StartUnit("reboot.target", "replace-irreversibly")`): never `Manager.Reboot()`, which skips
//! the shutdown step that finalizes a staged deployment. A logind that refuses is final: going
//! around it to systemd would ignore the inhibitors it enforces.

use std::time::Duration;

use zbus::{Connection, names::BusName};

const LOGIND: &str = "org.freedesktop.login1";
const SYSTEMD: &str = "org.freedesktop.systemd1";
/// How long one call to logind or systemd may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// Awaits one call to `dest`, bounded in time.
async fn bounded(
    dest: &str,
    method: &str,
    call: impl Future<Output = zbus::Result<zbus::Message>>,
) -> Result<zbus::Message, String> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "{dest} did not answer {method} within {} s",
            CALL_TIMEOUT.as_secs()
        )),
    }
}

/// Whether `name` has an owner or can be activated; `Err` when the bus cannot say (then the
/// caller refuses: guessing "absent" would go around logind).
async fn present(bus: &Connection, name: &str) -> Result<bool, String> {
    let dbus = zbus::fdo::DBusProxy::new(bus)
        .await
        .map_err(|e| format!("cannot ask the bus about {name}: {e}"))?;
    let bus_name = BusName::try_from(name).map_err(|e| e.to_string())?;
    let owned = tokio::time::timeout(CALL_TIMEOUT, dbus.name_has_owner(bus_name))
        .await
        .map_err(|_| format!("the bus did not say whether {name} runs"))?
        .map_err(|e| format!("cannot tell whether {name} runs: {e}"))?;
    if owned {
        return Ok(true);
    }
    let activatable = tokio::time::timeout(CALL_TIMEOUT, dbus.list_activatable_names())
        .await
        .map_err(|_| format!("the bus did not say whether {name} can be started"))?
        .map_err(|e| format!("cannot tell whether {name} can be started: {e}"))?;
    Ok(activatable.iter().any(|n| n.as_str() == name))
}

/// One logind inhibitor: what, who, why, mode, uid, pid.
type Inhibitor = (String, String, String, String, u32, u32);

/// Checks that a reboot can be asked for now: a reboot service is on the bus and no logind
/// inhibitor blocks shutdown. `Err` says why not, in words for the user.
pub(crate) async fn check(bus: &Connection) -> Result<(), String> {
    if present(bus, LOGIND).await? {
        let reply = bounded(
            LOGIND,
            "ListInhibitors",
            bus.call_method(
                Some(LOGIND),
                "/org/freedesktop/login1",
                Some("org.freedesktop.login1.Manager"),
                "ListInhibitors",
                &(),
            ),
        )
        .await;
        // An inhibitor list that cannot be read is a refusal: root's reboot request goes
        // through logind's block inhibitors on older systemd, so they must be honoured here.
        let inhibitors: Vec<Inhibitor> = reply
            .map_err(|e| format!("cannot read logind's inhibitors: {e}"))?
            .body()
            .deserialize()
            .map_err(|e| format!("cannot read logind's inhibitors: {e}"))?;
        return blocking(&inhibitors).map_or(Ok(()), Err);
    }
    if present(bus, SYSTEMD).await? {
        return Ok(());
    }
    Err(format!(
        "neither logind ({LOGIND}) nor systemd ({SYSTEMD}) is on the system bus to reboot"
    ))
}

/// The refusal that block-mode shutdown inhibitors mean, as upstream words it.
fn blocking(inhibitors: &[Inhibitor]) -> Option<String> {
    let blocking: Vec<&Inhibitor> = inhibitors
        .iter()
        .filter(|(what, _, _, mode, _, _)| {
            mode == "block" && what.split(':').any(|w| w == "shutdown")
        })
        .collect();
    let (_, who, why, _, _, _) = blocking.first()?;
    let mut text = format!(
        "Reboot blocked by a systemd inhibitor lock in `block` mode\nHeld by: {who}\nReason: {why}"
    );
    if blocking.len() > 1 {
        text.push_str(&format!(
            "\nand {} other blocking inhibitor lock(s)",
            blocking.len() - 1
        ));
    }
    Some(text)
}

/// Asks for a reboot: logind's `Reboot(false)`, or systemd's clean `reboot.target` where
/// logind is absent. `Err` says what refused.
pub(crate) async fn request(bus: &Connection) -> Result<(), String> {
    if present(bus, LOGIND).await? {
        return bounded(
            LOGIND,
            "Reboot",
            bus.call_method(
                Some(LOGIND),
                "/org/freedesktop/login1",
                Some("org.freedesktop.login1.Manager"),
                "Reboot",
                &(false,),
            ),
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("logind refused the reboot: {e}"));
    }
    if present(bus, SYSTEMD).await? {
        return bounded(
            SYSTEMD,
            "StartUnit",
            bus.call_method(
                Some(SYSTEMD),
                "/org/freedesktop/systemd1",
                Some("org.freedesktop.systemd1.Manager"),
                "StartUnit",
                &("reboot.target", "replace-irreversibly"),
            ),
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("systemd refused to start reboot.target: {e}"));
    }
    Err(format!(
        "neither logind ({LOGIND}) nor systemd ({SYSTEMD}) is on the system bus to reboot"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inhibitor(what: &str, mode: &str, who: &str) -> Inhibitor {
        (what.into(), who.into(), "because".into(), mode.into(), 0, 1)
    }

    #[test]
    fn only_block_mode_shutdown_inhibitors_block() {
        assert_eq!(blocking(&[]), None);
        assert_eq!(
            blocking(&[
                inhibitor("sleep", "block", "a"),
                inhibitor("shutdown", "delay", "b"),
                inhibitor("handle-power-key", "block", "c"),
            ]),
            None
        );
        let text = blocking(&[
            inhibitor("sleep:shutdown", "block", "backup"),
            inhibitor("shutdown", "block", "other"),
        ])
        .expect("blocked");
        assert!(text.starts_with("Reboot blocked by a systemd inhibitor lock in `block` mode"));
        assert!(text.contains("Held by: backup\nReason: because"), "{text}");
        assert!(
            text.contains("and 1 other blocking inhibitor lock(s)"),
            "{text}"
        );
    }
}
