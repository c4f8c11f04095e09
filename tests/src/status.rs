//! Parsing of `ostree admin status`, the ground truth of what is deployed on disk.

/// One deployment as `ostree admin status` (libostree 2022.7) shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdminDeployment {
    /// The stateroot (OS name), e.g. `testos`.
    pub osname: String,
    /// The commit checksum.
    pub checksum: String,
    /// The deployment serial (the number after the checksum).
    pub serial: u32,
    /// Marked with `*`: the booted deployment.
    pub booted: bool,
    /// The words in parentheses after the id, e.g. `rollback`, `staged`, `pending`.
    pub markers: Vec<String>,
    /// The `Version:` line, if the commit has a version.
    pub version: Option<String>,
    /// The `origin refspec:` line, e.g. `origin:testos/stable`.
    pub refspec: Option<String>,
    /// Whether the deployment is pinned (`Pinned: yes`).
    pub pinned: bool,
}

impl AdminDeployment {
    /// `<checksum>.<serial>`: the deployment's directory name under
    /// `ostree/deploy/<osname>/deploy/`.
    pub fn dir_name(&self) -> String {
        format!("{}.{}", self.checksum, self.serial)
    }

    /// Whether `marker` (e.g. `"rollback"`) is among the markers.
    pub fn has_marker(&self, marker: &str) -> bool {
        self.markers.iter().any(|m| m == marker)
    }
}

/// Parses the text of `ostree admin status` into deployments, in order (index 0 is the
/// default deployment). Lines it does not know are ignored.
pub fn parse_admin_status(text: &str) -> Vec<AdminDeployment> {
    let mut out: Vec<AdminDeployment> = Vec::new();
    for line in text.lines() {
        if let Some(detail) = line.strip_prefix("    ") {
            let Some(current) = out.last_mut() else {
                continue;
            };
            let detail = detail.trim();
            if let Some(v) = detail.strip_prefix("Version:") {
                current.version = Some(v.trim().to_owned());
            } else if let Some(r) = detail.strip_prefix("origin refspec:") {
                current.refspec = Some(r.trim().to_owned());
            } else if let Some(p) = detail.strip_prefix("Pinned:") {
                current.pinned = p.trim() == "yes";
            }
            continue;
        }
        let (booted, rest) = if let Some(rest) = line.strip_prefix("* ") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("  ") {
            (false, rest)
        } else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(osname), Some(id)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((checksum, serial)) = id.rsplit_once('.') else {
            continue;
        };
        let Ok(serial) = serial.parse::<u32>() else {
            continue;
        };
        if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let markers = words
            .map(|w| w.trim_matches(|c| c == '(' || c == ')').to_owned())
            .filter(|w| !w.is_empty())
            .collect();
        out.push(AdminDeployment {
            osname: osname.to_owned(),
            checksum: checksum.to_owned(),
            serial,
            booted,
            markers,
            ..AdminDeployment::default()
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let text = format!(
            "  testos {a}.0 (staged)\n    Version: 2.0\n    origin refspec: origin:testos/stable\n\
             * testos {b}.1\n    Version: 1.1\n    origin refspec: origin:testos/stable\n    Pinned: yes\n\
             \x20 testos {a}.2 (rollback)\n    origin refspec: origin:testos/devel\n"
        );
        let d = parse_admin_status(&text);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].checksum, a);
        assert!(d[0].has_marker("staged") && !d[0].booted);
        assert_eq!(d[0].version.as_deref(), Some("2.0"));
        assert!(d[1].booted && d[1].pinned);
        assert_eq!(d[1].dir_name(), format!("{b}.1"));
        assert_eq!(d[2].serial, 2);
        assert_eq!(d[2].version, None);
        assert_eq!(d[2].refspec.as_deref(), Some("origin:testos/devel"));
        assert!(d[2].has_marker("rollback"));
    }
}
