//! Wire compatibility with upstream rpm-ostree: every member of upstream's D-Bus API, written
//! here as data, must exist unchanged in our interface XML (same name, argument types, order,
//! names and directions; same property type and access). Additions on our side are allowed.

#![allow(clippy::unwrap_used)]

use rpmostree_codegen::model::{self, Interface};

/// Upstream rpm-ostree's wire API (commit d5ef5f0c of src/daemon/org.projectatomic.rpmostree1.xml),
/// as data: (kind, interface, member, signature, argument names or property access).
const UPSTREAM: &[(&str, &str, &str, &str, &str)] = &[
    (
        "method",
        "Sysroot",
        "RegisterClient",
        "(a{sv}) -> ()",
        "options",
    ),
    (
        "method",
        "Sysroot",
        "UnregisterClient",
        "(a{sv}) -> ()",
        "options",
    ),
    ("method", "Sysroot", "Reload", "() -> ()", ""),
    ("method", "Sysroot", "ReloadConfig", "() -> ()", ""),
    (
        "method",
        "Sysroot",
        "GetOS",
        "(s) -> (o)",
        "name,object_path",
    ),
    ("property", "Sysroot", "Booted", "o", "read"),
    ("property", "Sysroot", "Path", "s", "read"),
    ("property", "Sysroot", "ActiveTransaction", "(sss)", "read"),
    ("property", "Sysroot", "ActiveTransactionPath", "s", "read"),
    ("property", "Sysroot", "AutomaticUpdatePolicy", "s", "read"),
    ("property", "Sysroot", "Deployments", "aa{sv}", "read"),
    (
        "method",
        "OS",
        "AutomaticUpdateTrigger",
        "(a{sv}) -> (b s)",
        "options,enabled,transaction_address",
    ),
    (
        "method",
        "OS",
        "GetDeploymentsRpmDiff",
        "(s s) -> (a(sua{sv}))",
        "deployid0,deployid1,result",
    ),
    (
        "method",
        "OS",
        "Deploy",
        "(s a{sv}) -> (s)",
        "revision,options,transaction_address",
    ),
    (
        "method",
        "OS",
        "GetCachedDeployRpmDiff",
        "(s as) -> (a(sua{sv}) a{sv})",
        "revision,packages,result,details",
    ),
    (
        "method",
        "OS",
        "DownloadDeployRpmDiff",
        "(s as) -> (s)",
        "revision,packages,transaction_address",
    ),
    (
        "method",
        "OS",
        "Upgrade",
        "(a{sv}) -> (s)",
        "options,transaction_address",
    ),
    (
        "method",
        "OS",
        "GetCachedUpdateRpmDiff",
        "(s) -> (a(sua{sv}) a{sv})",
        "deployid,result,details",
    ),
    (
        "method",
        "OS",
        "DownloadUpdateRpmDiff",
        "() -> (s)",
        "transaction_address",
    ),
    (
        "method",
        "OS",
        "Rollback",
        "(a{sv}) -> (s)",
        "options,transaction_address",
    ),
    (
        "method",
        "OS",
        "ClearRollbackTarget",
        "(a{sv}) -> (s)",
        "options,transaction_address",
    ),
    (
        "method",
        "OS",
        "Rebase",
        "(a{sv} s as) -> (s)",
        "options,refspec,packages,transaction_address",
    ),
    (
        "method",
        "OS",
        "GetCachedRebaseRpmDiff",
        "(s as) -> (a(sua{sv}) a{sv})",
        "refspec,packages,result,details",
    ),
    (
        "method",
        "OS",
        "DownloadRebaseRpmDiff",
        "(s as) -> (s)",
        "refspec,packages,transaction_address",
    ),
    (
        "method",
        "OS",
        "PkgChange",
        "(a{sv} as as) -> (s)",
        "options,packages_added,packages_removed,transaction_address",
    ),
    (
        "method",
        "OS",
        "SetInitramfsState",
        "(b as a{sv}) -> (s)",
        "regenerate,args,options,transaction_address",
    ),
    (
        "method",
        "OS",
        "InitramfsEtc",
        "(as as b b a{sv}) -> (s)",
        "track,untrack,untrack_all,force_sync,options,transaction_address",
    ),
    (
        "method",
        "OS",
        "KernelArgs",
        "(s as as as a{sv}) -> (s)",
        "existing_kernel_arg_string,kernel_args_added,kernel_args_replaced,kernel_args_removed,options,transaction_address",
    ),
    (
        "method",
        "OS",
        "GetDeploymentBootConfig",
        "(s b) -> (a{sv})",
        "deployid,is_pending,bootconfig",
    ),
    (
        "method",
        "OS",
        "Cleanup",
        "(as) -> (s)",
        "elements,transaction_address",
    ),
    (
        "method",
        "OS",
        "RefreshMd",
        "(a{sv}) -> (s)",
        "options,transaction_address",
    ),
    (
        "method",
        "OS",
        "ModifyYumRepo",
        "(s a{ss}) -> (s)",
        "repo_id,settings,transaction_address",
    ),
    ("method", "OS", "ListRepos", "() -> (aa{sv})", "repos"),
    (
        "method",
        "OS",
        "UpdateDeployment",
        "(a{sv} a{sv}) -> (s)",
        "modifiers,options,transaction_address",
    ),
    (
        "method",
        "OS",
        "FinalizeDeployment",
        "(a{sv}) -> (s)",
        "options,transaction_address",
    ),
    (
        "method",
        "OS",
        "WhatProvides",
        "(as) -> (aa{sv})",
        "provides,packages",
    ),
    (
        "method",
        "OS",
        "GetPackages",
        "(as) -> (aa{sv})",
        "names,packages",
    ),
    (
        "method",
        "OS",
        "Search",
        "(as) -> (aa{sv})",
        "names,packages",
    ),
    ("property", "OS", "BootedDeployment", "a{sv}", "read"),
    ("property", "OS", "DefaultDeployment", "a{sv}", "read"),
    ("property", "OS", "RollbackDeployment", "a{sv}", "read"),
    ("property", "OS", "CachedUpdate", "a{sv}", "read"),
    ("property", "OS", "HasCachedUpdateRpmDiff", "b", "read"),
    ("property", "OS", "Name", "s", "read"),
    (
        "method",
        "OSExperimental",
        "Moo",
        "(b) -> (s)",
        "utf8,result",
    ),
    (
        "method",
        "OSExperimental",
        "LiveFs",
        "(a{sv}) -> (s)",
        "options,transaction_address",
    ),
    (
        "method",
        "OSExperimental",
        "DownloadPackages",
        "(as s) -> ()",
        "queries,source",
    ),
    ("method", "Transaction", "Cancel", "() -> ()", ""),
    ("method", "Transaction", "Start", "() -> (b)", "started"),
    ("property", "Transaction", "Title", "s", "read"),
    (
        "property",
        "Transaction",
        "InitiatingClientDescription",
        "s",
        "read",
    ),
    (
        "signal",
        "Transaction",
        "Finished",
        "(b s)",
        "success,error_message",
    ),
    ("signal", "Transaction", "Message", "(s)", "text"),
    ("signal", "Transaction", "TaskBegin", "(s)", "text"),
    ("signal", "Transaction", "TaskEnd", "(s)", "text"),
    (
        "signal",
        "Transaction",
        "PercentProgress",
        "(s u)",
        "text,percentage",
    ),
    (
        "signal",
        "Transaction",
        "DownloadProgress",
        "((tt) (uu) (uuu) (uuut) (uu) (tt))",
        "time,outstanding,metadata,delta,content,transfer",
    ),
    (
        "signal",
        "Transaction",
        "SignatureProgress",
        "(av s)",
        "signature,commit",
    ),
    ("signal", "Transaction", "ProgressEnd", "()", ""),
];

fn signature(args: &[&model::Arg]) -> String {
    args.iter()
        .map(|a| a.signature.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn find<'a>(model: &'a model::Model, short: &str) -> &'a Interface {
    model
        .interfaces
        .iter()
        .find(|i| i.name == format!("org.projectatomic.rpmostree1.{short}"))
        .unwrap_or_else(|| panic!("interface {short} is missing"))
}

#[test]
fn every_upstream_member_is_present_unchanged() {
    let xml = include_str!("../../interface/org.projectatomic.rpmostree1.xml");
    let model = model::build(xml).unwrap();
    let mut problems = Vec::new();
    for (kind, iface, name, sig, extra) in UPSTREAM {
        let i = find(&model, iface);
        let found = match *kind {
            "method" => i.methods.iter().find(|m| m.name == *name).map(|m| {
                let ins: Vec<_> = m.inputs().collect();
                let outs: Vec<_> = m.outputs().collect();
                let names: Vec<&str> = m.args.iter().map(|a| a.name.as_str()).collect();
                (
                    format!("({}) -> ({})", signature(&ins), signature(&outs)),
                    names.join(","),
                )
            }),
            "property" => i.properties.iter().find(|p| p.name == *name).map(|p| {
                let access = match (p.read, p.write) {
                    (true, true) => "readwrite",
                    (true, false) => "read",
                    _ => "write",
                };
                (p.signature.clone(), access.to_owned())
            }),
            _ => i.signals.iter().find(|s| s.name == *name).map(|s| {
                let args: Vec<_> = s.args.iter().collect();
                let names: Vec<&str> = s.args.iter().map(|a| a.name.as_str()).collect();
                (format!("({})", signature(&args)), names.join(","))
            }),
        };
        match found {
            None => problems.push(format!("{iface}.{name}: {kind} missing")),
            Some((s, e)) if s != *sig || e != *extra => problems.push(format!(
                "{iface}.{name}: upstream has {sig} [{extra}], ours is {s} [{e}]"
            )),
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "not wire-compatible with upstream:\n{}",
        problems.join("\n")
    );
    assert_eq!(UPSTREAM.iter().filter(|r| r.0 == "method").count(), 37);
}
