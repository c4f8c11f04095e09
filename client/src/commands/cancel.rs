//! `rpm-ostree cancel`: cancel the active transaction and wait until it is gone.

use std::time::Duration;

use anyhow::Result;

use super::Context;
use crate::Exit;
use crate::connection::{Daemon, peer_proxy};
use crate::error::{CliError, daemon_error};

/// Connects to the active transaction (a few tries: it may just be starting), prints its
/// title, calls `Cancel()` and waits for `ActiveTransactionPath` to change.
pub async fn run(daemon: &Daemon, ctx: &Context) -> Result<Exit> {
    let address = daemon
        .sysroot
        .active_transaction_path()
        .await
        .map_err(|e| daemon_error("ActiveTransactionPath", e))?;
    if address.is_empty() {
        println!("No active transaction.");
        return Ok(Exit::Success);
    }
    let mut attempt = 0;
    let proxy = loop {
        attempt += 1;
        match peer_proxy(&address).await {
            Ok(p) => break p,
            Err(e) if attempt >= 5 => {
                return Err(CliError::new(format!(
                    "cannot connect to the active transaction at {address}: {e}"
                ))
                .into());
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    };
    let title = proxy.title().await.map_err(|e| daemon_error("Title", e))?;
    if !ctx.global.quiet {
        println!("Cancelling transaction: {title}");
    }
    proxy
        .cancel()
        .await
        .map_err(|e| daemon_error("Cancel", e))?;
    daemon.wait_transaction_gone(&address).await?;
    if !ctx.global.quiet {
        println!("Cancelled.");
    }
    Ok(Exit::Success)
}
