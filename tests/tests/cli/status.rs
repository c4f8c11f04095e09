//! `rpm-ostree status` against the real daemon: human and JSON output compared with golden
//! files (volatile fields normalised), `-b`, `-v`, `--pending-exit-77`, and non-root use.

use rpmostree_tests::SandboxOptions;
use serde_json::Value;

use crate::common::*;

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn status_human_and_json_match_the_golden_files() {
    let Some(sb) = sandbox(
        "status_human_and_json_match_the_golden_files",
        SandboxOptions {
            fake_booted: true,
            ..Default::default()
        },
    ) else {
        return;
    };
    let dir = sb.dir().to_path_buf();
    for (golden, args) in [
        ("status.txt", &["status"][..]),
        ("status-verbose.txt", &["status", "-v"]),
        ("status-booted.txt", &["status", "-b"]),
    ] {
        let out = cli_ok(&sb, args);
        assert_golden(golden, &normalise_text(&out, &dir));
    }
    for (golden, args) in [
        ("status.json", &["status", "--json"][..]),
        ("status-booted.json", &["status", "--booted", "--json"]),
    ] {
        let out = cli_ok(&sb, args);
        assert_golden(golden, &normalise_json(&out, &dir));
    }

    // The facts the golden files encode, checked against the ground truth as well.
    let admin = booted_admin(&sb);
    let json = status_json(&sb);
    let top: Vec<&String> = json.as_object().expect("an object").keys().collect();
    assert_eq!(top.len(), 4, "{top:?}");
    for key in [
        "deployments",
        "transaction",
        "cached-update",
        "update-driver",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    let deployments = json["deployments"].as_array().expect("an array");
    assert_eq!(deployments.len(), admin.len());
    for (d, a) in deployments.iter().zip(&admin) {
        assert_eq!(d["checksum"], Value::from(a.checksum.clone()));
        assert_eq!(d["booted"], Value::from(a.booted));
        assert_eq!(d["version"].as_str(), a.version.as_deref());
        assert!(
            d["base-commit-meta"].is_object(),
            "zincati needs base-commit-meta"
        );
    }
    assert_eq!(json["transaction"], Value::Null);
    assert_eq!(json["update-driver"], Value::Null);

    let human = cli_ok(&sb, &["status"]);
    assert!(
        human.starts_with("State: idle\nDeployments:\n● origin:testos/stable\n"),
        "{human}"
    );
    let booted = cli_ok(&sb, &["status", "-b"]);
    assert!(booted.contains("BootedDeployment:\n● "), "{booted}");
    assert_eq!(booted.matches("Commit:").count(), 1, "{booted}");
    let booted_json: Value =
        serde_json::from_str(&cli_ok(&sb, &["status", "-b", "--json"])).expect("JSON");
    assert_eq!(booted_json["deployments"].as_array().map(Vec::len), Some(1));
    assert_eq!(booted_json["deployments"][0]["booted"], Value::Bool(true));

    // The booted deployment is the default one: nothing pending.
    let out = cli(&sb, &["status", "--pending-exit-77"]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn status_works_for_a_non_root_user_without_polkit_grants() {
    let Some(sb) = sandbox(
        "status_works_for_a_non_root_user_without_polkit_grants",
        SandboxOptions::default(),
    ) else {
        return;
    };
    let out = cli_as_test_user(&sb, &["status"]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(out.stdout.contains("Deployments:"), "{}", out.describe());
    assert!(out.stdout.contains("Version: 1.1 ("), "{}", out.describe());
    assert!(out.stderr.is_empty(), "{}", out.describe());
    let out = cli_as_test_user(&sb, &["status", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let json: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(json["deployments"].as_array().map(Vec::len), Some(2));
    let out = cli_as_test_user(&sb, &["status", "-b"]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    // Not booted: no deployment is the booted one.
    assert_eq!(out.stdout, "State: idle\nBootedDeployment:\n");
}
