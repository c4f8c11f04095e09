//! Lists the deployments rpm-ostreed reports, through the typed `Deployment` view.
//!
//! This is what a third-party program needs: the `rpmostree-api` crate and a system bus
//! (`DBUS_SYSTEM_BUS_ADDRESS` is honoured). It uses the blocking wrappers, so no async runtime
//! is set up here.
//!
//! ```sh
//! cargo run --example list-deployments
//! ```

use std::process::ExitCode;

use rpmostree_api::{
    RegisterClientOptions, SysrootProxy, SysrootProxyBlocking, UnregisterClientOptions,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("list-deployments: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> zbus::Result<()> {
    let bus = zbus::block_on(zbus::Connection::system())?;
    let sysroot = SysrootProxyBlocking(zbus::block_on(SysrootProxy::new(&bus))?);
    // Registering keeps the daemon from exiting while we talk to it.
    sysroot.register_client(&RegisterClientOptions::new().id("list-deployments"))?;
    println!("sysroot: {}", sysroot.path()?);
    for (index, deployment) in sysroot.deployments()?.iter().enumerate() {
        let mark = if deployment.booted == Some(true) {
            '●'
        } else {
            ' '
        };
        println!(
            "{mark} {index}: {} {}",
            deployment.osname.as_deref().unwrap_or("?"),
            deployment.origin.as_deref().unwrap_or("(no origin)"),
        );
        if let Some(version) = &deployment.version {
            println!("     version:  {version}");
        }
        println!(
            "     checksum: {}",
            deployment.checksum.as_deref().unwrap_or("?")
        );
        if deployment.staged == Some(true) {
            println!("     staged");
        }
    }
    sysroot.unregister_client(&UnregisterClientOptions::new())?;
    Ok(())
}
