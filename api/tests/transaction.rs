//! The transaction client: `<method>_transaction` connects to the returned peer address,
//! subscribes before `Start()`, and delivers every signal in order, ending on `Finished`.

use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::StreamExt;
use rpmostree_api::*;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A transaction that reports some progress when started, then finishes as told.
struct Scripted {
    succeed: bool,
}

impl TransactionHandler for Scripted {
    async fn start(&self, ctx: &CallContext<'_>) -> Result<bool> {
        let e = ctx.emitter();
        e.message("one").await?;
        e.task_begin("task").await?;
        e.percent_progress("half", 50).await?;
        e.download_progress(
            (1, 2),
            (3, 4),
            (5, 6, 7),
            (8, 9, 10, 11),
            (12, 13),
            (14, 15),
        )
        .await?;
        e.task_end("task").await?;
        e.progress_end().await?;
        let message = if self.succeed { "" } else { "it broke" };
        e.finished(self.succeed, message).await?;
        Ok(true)
    }

    async fn title(&self) -> Result<String> {
        Ok("scripted".into())
    }
}

impl From<zbus::Error> for TestError {
    fn from(e: zbus::Error) -> Self {
        TestError(e.to_string())
    }
}
#[derive(Debug)]
struct TestError(#[allow(dead_code)] String);

/// Listens on a fresh abstract socket and serves one `Scripted` transaction per connection.
async fn serve(succeed: bool) -> String {
    let name = format!(
        "rpmostree-api-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let listener = tokio::net::UnixListener::bind(format!("\0{name}")).unwrap();
    tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            let conn = zbus::connection::Builder::unix_stream(stream.into_std().unwrap())
                .server(zbus::Guid::generate())
                .p2p()
                .serve_at("/", TransactionInterface(Scripted { succeed }))
                .build()
                .await
                .unwrap();
            connections.push(conn);
        }
    });
    format!("unix:abstract={name}")
}

/// An OS object whose `Rollback` returns the address of a scripted transaction.
struct Os {
    address: String,
}

impl OSHandler for Os {
    async fn rollback(&self, _ctx: &CallContext<'_>, _options: RollbackOptions) -> Result<String> {
        Ok(self.address.clone())
    }

    async fn automatic_update_trigger(
        &self,
        _ctx: &CallContext<'_>,
        options: AutomaticUpdateTriggerOptions,
    ) -> Result<(bool, String)> {
        Ok(match options.mode.as_deref() {
            Some("none") => (false, String::new()),
            _ => (true, self.address.clone()),
        })
    }
}

#[tokio::test]
async fn events_arrive_in_order_and_end_with_finished() {
    let address = serve(true).await;
    let mut txn = TransactionClient::connect(&address).await.unwrap();
    assert_eq!(txn.proxy.title().await.unwrap(), "scripted");
    assert!(txn.proxy.start().await.unwrap());
    let mut seen = Vec::new();
    while let Some(event) = txn.events.next().await {
        let event = event.unwrap();
        let done = matches!(event, TransactionEvent::Finished { .. });
        seen.push(event);
        if done {
            break;
        }
    }
    assert_eq!(
        seen,
        vec![
            TransactionEvent::Message { text: "one".into() },
            TransactionEvent::TaskBegin {
                text: "task".into()
            },
            TransactionEvent::PercentProgress {
                text: "half".into(),
                percentage: 50
            },
            TransactionEvent::DownloadProgress {
                time: (1, 2),
                outstanding: (3, 4),
                metadata: (5, 6, 7),
                delta: (8, 9, 10, 11),
                content: (12, 13),
                transfer: (14, 15),
            },
            TransactionEvent::TaskEnd {
                text: "task".into()
            },
            TransactionEvent::ProgressEnd,
            TransactionEvent::Finished {
                success: true,
                error_message: String::new()
            },
        ]
    );
}

#[tokio::test]
async fn method_helper_connects_and_run_reports_failure() {
    let address = serve(false).await;
    let (_server, client) = crate::common::p2p_pair(|b| {
        b.serve_at(
            "/org/projectatomic/rpmostree1/debian",
            OSInterface(Os {
                address: address.clone(),
            }),
        )
    })
    .await;
    let os = OSProxy::new(&client, "/org/projectatomic/rpmostree1/debian")
        .await
        .unwrap();
    let mut txn = os
        .rollback_transaction(&RollbackOptions::new())
        .await
        .unwrap();
    assert_eq!(txn.address, address);
    let mut count = 0;
    let err = txn.run(|_| count += 1).await.unwrap_err();
    assert_eq!(err, Error::Failed("it broke".into()));
    assert_eq!(count, 7, "every event was passed on before Finished");

    // A method with more outputs: the address may be empty, meaning no transaction.
    let (enabled, none) = os
        .automatic_update_trigger_transaction(&AutomaticUpdateTriggerOptions::new().mode("none"))
        .await
        .unwrap();
    assert!(!enabled && none.is_none());
    let (enabled, some) = os
        .automatic_update_trigger_transaction(&AutomaticUpdateTriggerOptions::new())
        .await
        .unwrap();
    assert!(enabled);
    let outcome = some.unwrap().run(|_| {}).await;
    assert!(outcome.is_err());
    let _ = TestError::from(zbus::Error::Failure(String::new()));
}

#[test]
fn blocking_wrappers_work_without_a_runtime() {
    let address = zbus::block_on(serve(true));
    let mut txn = zbus::block_on(TransactionClient::connect(&address)).unwrap();
    let blocking = TransactionProxyBlocking(txn.proxy.clone());
    assert_eq!(blocking.title().unwrap(), "scripted");
    let outcome = txn.run_blocking(|_| {}).unwrap();
    assert!(outcome.started_here);
}
