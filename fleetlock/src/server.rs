//! The FleetLock HTTP server: `POST …/v1/pre-reboot` and `…/v1/steady-state` answered from
//! the etcd semaphore ([`crate::semaphore`]), nothing kept in memory but request counters, so
//! any number of replicas can serve one cluster (beside airlock, too). Answers follow airlock
//! where it has them (400 `invalid_client_identity` / `unknown_group`, 500 `failed_lock`);
//! without an etcd quorum the answer is 503 `etcd_unavailable`, never a grant. `/metrics` on
//! the status listener exports airlock's gauges and our request counters.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::OnceCell;

use crate::config::Config;
use crate::protocol::{ErrorBody, HEADER, Request, valid_group, valid_id};
use crate::semaphore::{self, Semaphore};

/// The largest request body accepted.
const MAX_BODY: usize = 16 * 1024;

/// What every connection shares.
#[derive(Debug)]
pub struct Service {
    config: Config,
    semaphore: OnceCell<Semaphore>,
    /// (endpoint, status) -> count.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
}

type Body = Full<Bytes>;

fn json_error(status: StatusCode, kind: &str, value: impl Into<String>) -> Response<Body> {
    let body = serde_json::to_vec(&ErrorBody {
        kind: kind.to_owned(),
        value: value.into(),
    })
    .unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

impl Service {
    /// A service for `config` (etcd is connected on first use, and again after a failure).
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(Self {
            config,
            semaphore: OnceCell::new(),
            requests: Mutex::new(BTreeMap::new()),
        })
    }

    async fn semaphore(&self) -> Result<&Semaphore, semaphore::Error> {
        self.semaphore
            .get_or_try_init(|| {
                Semaphore::connect(
                    &self.config.endpoints,
                    self.config.transaction_timeout,
                    self.config.max_hold,
                )
            })
            .await
    }

    fn count(&self, endpoint: &'static str, status: StatusCode) {
        let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *r.entry((endpoint, status.as_u16())).or_default() += 1;
    }

    /// Answers one FleetLock request.
    pub async fn handle(&self, req: hyper::Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let endpoint = if path.ends_with("/v1/pre-reboot") {
            "pre-reboot"
        } else if path.ends_with("/v1/steady-state") {
            "steady-state"
        } else {
            return json_error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no endpoint {path}"),
            );
        };
        let response = self.answer(endpoint, req).await;
        self.count(endpoint, response.status());
        response
    }

    async fn answer(
        &self,
        endpoint: &'static str,
        req: hyper::Request<Incoming>,
    ) -> Response<Body> {
        if req.method() != Method::POST {
            return json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "FleetLock requests are POST",
            );
        }
        if req.headers().get(HEADER).and_then(|v| v.to_str().ok()) != Some("true") {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_client_identity",
                format!("missing or wrong {HEADER} header"),
            );
        }
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client_identity",
                    format!("reading the body: {e}"),
                );
            }
        };
        let request: Request = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client_identity",
                    format!("malformed body: {e}"),
                );
            }
        };
        let params = request.client_params;
        if !valid_id(&params.id) {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_client_identity",
                "the id must be 1 to 256 printable characters",
            );
        }
        if !valid_group(&params.group) {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_client_identity",
                "the group must match ^[a-zA-Z0-9.-]+$",
            );
        }
        let Some(&slots) = self.config.groups.get(&params.group) else {
            return json_error(
                StatusCode::BAD_REQUEST,
                "unknown_group",
                format!("group {} is not configured", params.group),
            );
        };
        let result = match self.semaphore().await {
            Ok(sem) if endpoint == "pre-reboot" => sem.lock(&params.group, slots, &params.id).await,
            Ok(sem) => sem.unlock(&params.group, slots, &params.id).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                tracing::info!("{endpoint} {} in {}: granted", params.id, params.group);
                Response::new(Full::new(Bytes::new()))
            }
            Err(e @ semaphore::Error::Unavailable(_)) => {
                tracing::warn!("{endpoint} {}: {e}", params.id);
                json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "etcd_unavailable",
                    e.to_string(),
                )
            }
            Err(e @ (semaphore::Error::Full(_) | semaphore::Error::Conflict)) => json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed_lock",
                e.to_string(),
            ),
            Err(e @ semaphore::Error::Corrupt(_)) => {
                tracing::error!("{endpoint} {}: {e}", params.id);
                json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "corrupt_semaphore",
                    e.to_string(),
                )
            }
        }
    }

    /// The Prometheus text of `/metrics`: airlock's `airlock_database_semaphore_lock_holders`
    /// and `airlock_database_semaphore_slots` per group (read from etcd), and
    /// `fleetlock_requests_total{endpoint,code}`.
    pub async fn metrics(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP airlock_database_semaphore_lock_holders Slots held per group.\n# TYPE airlock_database_semaphore_lock_holders gauge\n");
        let mut slots = String::from(
            "# HELP airlock_database_semaphore_slots Slots per group.\n# TYPE airlock_database_semaphore_slots gauge\n",
        );
        for group in self.config.groups.keys() {
            let value = match self.semaphore().await {
                Ok(sem) => sem.get(group).await.ok().flatten(),
                Err(_) => None,
            };
            if let Some(v) = value {
                out.push_str(&format!(
                    "airlock_database_semaphore_lock_holders{{group=\"{group}\"}} {}\n",
                    v.holders.len()
                ));
                slots.push_str(&format!(
                    "airlock_database_semaphore_slots{{group=\"{group}\"}} {}\n",
                    v.total_slots
                ));
            }
        }
        out.push_str(&slots);
        if let Some(sem) = self.semaphore.get() {
            out.push_str(&format!(
                "# HELP fleetlock_semaphore_conflicts_total Optimistic etcd transactions lost to another writer (each retried).\n# TYPE fleetlock_semaphore_conflicts_total counter\nfleetlock_semaphore_conflicts_total {}\n",
                sem.conflicts()
            ));
        }
        out.push_str("# HELP fleetlock_requests_total FleetLock requests answered, by endpoint and status.\n# TYPE fleetlock_requests_total counter\n");
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((endpoint, code), n) in requests {
            out.push_str(&format!(
                "fleetlock_requests_total{{endpoint=\"{endpoint}\",code=\"{code}\"}} {n}\n"
            ));
        }
        out
    }
}

/// Serves connections of `listener` with `handler` until `shutdown` resolves.
async fn accept_loop<F, Fut>(listener: TcpListener, handler: F, shutdown: impl Future<Output = ()>)
where
    F: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let accept = async {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!("connection: {e}");
                }
            });
        }
    };
    tokio::select! {
        () = accept => {}
        () = shutdown => {}
    }
}

/// Runs the server of `config` until `shutdown` resolves; `ready` gets the bound addresses
/// (service, status).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
    ready: impl FnOnce(std::net::SocketAddr, Option<std::net::SocketAddr>),
) -> Result<()> {
    let listener = TcpListener::bind(&config.service)
        .await
        .with_context(|| format!("listening on {}", config.service))?;
    let status = match &config.status {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("listening on {a}"))?,
        ),
        None => None,
    };
    ready(
        listener.local_addr()?,
        status.as_ref().and_then(|l| l.local_addr().ok()),
    );
    let service = Service::new(config);
    tracing::info!("serving FleetLock for groups {:?}", service.config.groups);
    let api = {
        let service = service.clone();
        move |req| {
            let service = service.clone();
            async move { service.handle(req).await }
        }
    };
    let metrics = {
        let service = service.clone();
        move |req: hyper::Request<Incoming>| {
            let service = service.clone();
            async move {
                if req.uri().path() == "/metrics" && req.method() == Method::GET {
                    let mut r = Response::new(Full::new(Bytes::from(service.metrics().await)));
                    r.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                    r
                } else {
                    json_error(StatusCode::NOT_FOUND, "not_found", "only GET /metrics here")
                }
            }
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let status_task = status.map(|l| {
        let mut rx = stop_rx.clone();
        tokio::spawn(accept_loop(l, metrics, async move {
            let _ = rx.changed().await;
        }))
    });
    accept_loop(listener, api, shutdown).await;
    let _ = stop_tx.send(true);
    if let Some(t) = status_task {
        let _ = t.await;
    }
    Ok(())
}
