//! The daemon's data files (daemon/data/), embedded at build time: the sandbox installs these
//! very files, so system tests exercise the project's real bus and polkit policies.

/// `org.projectatomic.rpmostree1.conf`: the system bus policy.
pub const BUS_POLICY: &str = include_str!("../../daemon/data/org.projectatomic.rpmostree1.conf");

/// `org.projectatomic.rpmostree1.policy`: the polkit actions.
pub const POLKIT_POLICY: &str =
    include_str!("../../daemon/data/org.projectatomic.rpmostree1.policy");

/// `org.projectatomic.rpmostree1.service`: the D-Bus activation file.
pub const ACTIVATION_SERVICE: &str =
    include_str!("../../daemon/data/org.projectatomic.rpmostree1.service");

/// `rpm-ostreed.service`: the systemd unit.
pub const SYSTEMD_UNIT: &str = include_str!("../../daemon/data/rpm-ostreed.service");

/// `rpm-ostreed.conf`: the default daemon configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../../daemon/data/rpm-ostreed.conf");

/// The polkit action ids of the wire contract (upstream's), with their defaults
/// (`allow_any`, `allow_inactive`, `allow_active`).
pub const POLKIT_ACTIONS: [(&str, [&str; 3]); 15] = {
    const ADMIN: [&str; 3] = ["auth_admin", "auth_admin", "auth_admin_keep"];
    [
        (
            "org.projectatomic.rpmostree1.install-uninstall-packages",
            ADMIN,
        ),
        ("org.projectatomic.rpmostree1.install-local-packages", ADMIN),
        ("org.projectatomic.rpmostree1.override", ADMIN),
        ("org.projectatomic.rpmostree1.deploy", ADMIN),
        ("org.projectatomic.rpmostree1.upgrade", ADMIN),
        ("org.projectatomic.rpmostree1.rebase", ADMIN),
        ("org.projectatomic.rpmostree1.rollback", ADMIN),
        ("org.projectatomic.rpmostree1.bootconfig", ADMIN),
        ("org.projectatomic.rpmostree1.reload-daemon", ADMIN),
        ("org.projectatomic.rpmostree1.cancel", ADMIN),
        ("org.projectatomic.rpmostree1.cleanup", ADMIN),
        ("org.projectatomic.rpmostree1.repo-refresh", ADMIN),
        ("org.projectatomic.rpmostree1.repo-modify", ADMIN),
        (
            "org.projectatomic.rpmostree1.client-management",
            ["auth_admin_keep", "auth_admin_keep", "yes"],
        ),
        ("org.projectatomic.rpmostree1.finalize-deployment", ADMIN),
    ]
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of the first `<tag>...</tag>` element in `text`.
    fn element<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{tag}>"))? + start;
        Some(text[start..end].trim())
    }

    #[test]
    fn polkit_policy_has_the_contract_actions_and_defaults() {
        let mut found = Vec::new();
        for chunk in POLKIT_POLICY.split("<action id=\"").skip(1) {
            let id = &chunk[..chunk.find('"').unwrap()];
            let defaults = [
                element(chunk, "allow_any").unwrap(),
                element(chunk, "allow_inactive").unwrap(),
                element(chunk, "allow_active").unwrap(),
            ];
            assert!(
                element(chunk, "description").is_some_and(|d| !d.is_empty()),
                "{id}"
            );
            assert!(
                element(chunk, "message").is_some_and(|m| !m.is_empty()),
                "{id}"
            );
            found.push((id, defaults));
        }
        let mut want: Vec<_> = POLKIT_ACTIONS.to_vec();
        want.sort();
        found.sort();
        assert_eq!(found, want);
    }

    #[test]
    fn bus_policy_lets_root_own_and_others_read_only() {
        let p = BUS_POLICY;
        assert!(p.contains(r#"<policy user="root">"#));
        assert!(p.contains(r#"<allow own="org.projectatomic.rpmostree1"/>"#));
        assert!(p.contains(r#"<deny send_destination="org.projectatomic.rpmostree1"/>"#));
        for iface in [
            "org.freedesktop.DBus.Introspectable",
            "org.freedesktop.DBus.ObjectManager",
            "org.freedesktop.DBus.Peer",
            "org.projectatomic.rpmostree1.OS",
            "org.projectatomic.rpmostree1.Sysroot",
        ] {
            assert!(
                p.contains(&format!("send_interface=\"{iface}\"/>")),
                "{iface}"
            );
        }
        for member in ["Get", "GetAll"] {
            assert!(
                p.contains(&format!("send_member=\"{member}\"/>")),
                "{member}"
            );
        }
        assert!(!p.contains("send_member=\"Set\""));
    }

    #[test]
    fn activation_file_and_unit_agree() {
        let s = ACTIVATION_SERVICE;
        for line in [
            "[D-BUS Service]",
            "Name=org.projectatomic.rpmostree1",
            "Exec=/usr/libexec/rpm-ostreed",
            "User=root",
            "SystemdService=rpm-ostreed.service",
        ] {
            assert!(s.lines().any(|l| l == line), "{line}");
        }
        let u = SYSTEMD_UNIT;
        for line in [
            "Type=dbus",
            "BusName=org.projectatomic.rpmostree1",
            "ExecStart=/usr/libexec/rpm-ostreed",
            "ConditionPathExists=/ostree",
            "RequiresMountsFor=/boot",
        ] {
            assert!(u.lines().any(|l| l == line), "{line}");
        }
        assert!(!u.lines().any(|l| l.trim() == "[Install]"));
    }

    #[test]
    fn default_config_documents_the_defaults() {
        let c = DEFAULT_CONFIG;
        assert!(c.lines().any(|l| l == "[Daemon]"));
        assert!(c.lines().any(|l| l == "#AutomaticUpdatePolicy=none"));
        assert!(c.lines().any(|l| l == "#IdleExitTimeout=60"));
        assert!(c.lines().any(|l| l == "[Fleet]"));
        assert!(c.lines().any(|l| l == "#Strategy=immediate"));
        // Every setting is commented out: the file changes nothing.
        assert!(
            c.lines()
                .all(|l| l.is_empty() || l.starts_with('#') || l == "[Daemon]" || l == "[Fleet]")
        );
    }
}
