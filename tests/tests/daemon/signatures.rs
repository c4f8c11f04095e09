//! `gpg-enabled` and `signatures` in the deployment and cached-update dictionaries come from
//! libostree's GPG verification against the origin's remote: a remote that signs with a key made
//! by `gpg` at test time, and the fixture's remote that does not sign.

use std::{path::Path, process::Command, time::Duration};

use rpmostree_api::{AutomaticUpdateTriggerOptions, UpgradeOptions};
use rpmostree_tests::{Sandbox, SandboxOptions};
use zbus::{Structure, Variant as Value};

use crate::common::*;

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes a signing key in `home`; returns its fingerprint.
fn make_key(home: &Path) -> String {
    std::fs::create_dir_all(home).unwrap();
    let mut perms = std::fs::metadata(home).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
    std::fs::set_permissions(home, perms).unwrap();
    let gpg = || {
        let mut c = Command::new("gpg");
        c.arg("--homedir").arg(home).args(["--batch", "--quiet"]);
        c
    };
    run_ok(gpg().args([
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--quick-gen-key",
        "rpm-ostree test signer <signer@example.test>",
        "ed25519",
        "sign",
        "never",
    ]));
    let listing = run_ok(gpg().args(["--with-colons", "--list-secret-keys"]));
    listing
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .map(|rest| rest.trim_matches(':').to_owned())
        .expect("a fingerprint")
}

/// The fields upstream's clients read of one signature: valid, fingerprint, user name.
fn signature_fields(v: &zbus::OwnedVariant) -> (bool, String, String) {
    let Value::Structure(s) = &**v else {
        panic!("a signature is a tuple: {v:?}")
    };
    let fields = Structure::fields(s);
    let valid = matches!(fields[0], Value::Bool(true));
    let text = |i: usize| match &fields[i] {
        Value::Str(s) => s.to_string(),
        other => panic!("field {i} is not a string: {other:?}"),
    };
    (valid, text(5), text(10))
}

fn sign_remote_head(sb: &Sandbox, home: &Path, fingerprint: &str) -> String {
    let head = sb
        .ostree_remote(&["rev-parse", rpmostree_tests::STABLE_BRANCH])
        .unwrap()
        .trim()
        .to_owned();
    let mut cmd = Command::new("ostree");
    cmd.arg(format!("--repo={}", sb.remote_repo().display()))
        .arg("gpg-sign")
        .arg(format!("--gpg-homedir={}", home.display()))
        .args([&head, fingerprint]);
    run_ok(&mut cmd);
    head
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn signatures_come_from_gpg_verification_against_the_remote() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    let home = sb.dir().join("gnupg");
    let fingerprint = make_key(&home);
    sign_remote_head(&sb, &home, &fingerprint);
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;

        // The fixture's remote does not verify: gpg-enabled is false, no signatures.
        let d = &sysroot.deployments().await.unwrap()[0];
        assert_eq!(d.gpg_enabled, Some(false));
        assert!(d.signatures.is_none());

        // Verify with the test key, then check for and deploy the signed 2.0.
        let key = sb.dir().join("signer.asc");
        let armored = run_ok(Command::new("gpg").arg("--homedir").arg(&home).args([
            "--batch",
            "--armor",
            "--export",
            &fingerprint,
        ]));
        std::fs::write(&key, armored).unwrap();
        sb.ostree(&["config", "set", "remote \"origin\".gpg-verify", "true"])
            .unwrap();
        sb.ostree(&[
            "remote",
            "gpg-import",
            "origin",
            "-k",
            key.to_str().unwrap(),
        ])
        .unwrap();
        let (_, txn) = os
            .automatic_update_trigger_transaction(
                &AutomaticUpdateTriggerOptions::new().mode("check"),
            )
            .await
            .unwrap();
        txn.unwrap().run(|_| {}).await.unwrap();
        let cached = os.cached_update().await.unwrap();
        assert_eq!(cached.gpg_enabled, Some(true));
        let sigs = cached.signatures.expect("the cached update's signatures");
        assert_eq!(sigs.len(), 1);
        let (valid, fpr, user) = signature_fields(&sigs[0]);
        assert!(valid);
        assert_eq!(fpr, fingerprint);
        assert_eq!(user, "rpm-ostree test signer");

        let mut txn = os
            .upgrade_transaction(&UpgradeOptions::new())
            .await
            .unwrap();
        txn.run(|_| {}).await.unwrap();
        let d = &sysroot.deployments().await.unwrap()[0];
        assert_eq!(d.version.as_deref(), Some("2.0"));
        assert_eq!(d.gpg_enabled, Some(true));
        let sigs = d.signatures.as_ref().expect("the deployment's signatures");
        let (valid, fpr, _) = signature_fields(&sigs[0]);
        assert!(valid);
        assert_eq!(fpr, fingerprint);
        // The older deployment, unsigned, has none.
        let old = &sysroot.deployments().await.unwrap()[1];
        assert!(old.signatures.is_none(), "{:?}", old.signatures);
    });
}
