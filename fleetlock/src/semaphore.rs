//! The reboot semaphore in etcd v3, in airlock's layout so the two can share a cluster: one
//! key per group, `com.coreos.airlock/groups/<group>/v1/semaphore`, holding
//! `{"total_slots": N, "holders": [ids, sorted]}`. It is created with the configured slots when
//! absent (a transaction on version 0, as airlock's init) and changed only by transactions that
//! compare the key's version with the one read, so concurrent servers never over-grant. Where
//! airlock answers a lost race with an error, this retries (a bounded number of times, with
//! jitter). With `max_hold`, a sibling key `…/v1/held-since` records when each holder took its
//! slot (written in the same transactions), and a holder older than that is released.
//!
//! Nothing is kept in memory between requests: every answer comes from etcd.

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, ConnectOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};

/// The prefix of every semaphore key (airlock's).
pub const KEY_PREFIX: &str = "com.coreos.airlock/groups/";

/// The semaphore key of `group` (group names are checked to need no escaping).
pub fn key(group: &str) -> String {
    format!("{KEY_PREFIX}{group}/v1/semaphore")
}

/// The key recording when each holder of `group` took its slot (only with `max_hold`).
pub fn since_key(group: &str) -> String {
    format!("{KEY_PREFIX}{group}/v1/held-since")
}

/// The value of a semaphore key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    /// Slots in the group.
    pub total_slots: u64,
    /// Ids of the nodes holding a slot.
    pub holders: Vec<String>,
}

/// Why a slot was not granted (or released).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Every slot is held.
    Full(u64),
    /// Other servers kept changing the key; nothing was written.
    Conflict,
    /// etcd did not answer in time, or refused (no quorum, unreachable).
    Unavailable(String),
    /// The key holds something that is not a semaphore.
    Corrupt(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(n) => write!(f, "all {n} semaphore slots currently locked"),
            Self::Conflict => f.write_str("conflict on semaphore detected, retries exhausted"),
            Self::Unavailable(e) => write!(f, "etcd unavailable: {e}"),
            Self::Corrupt(e) => write!(f, "corrupt semaphore: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// How often a lost race is retried before answering [`Error::Conflict`].
const RETRIES: u32 = 16;

/// Unix seconds now.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A short random pause after a lost race (0.5 to 1.5 times `step` times the attempt).
async fn jitter(attempt: u32) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let step = Duration::from_millis(2) * (attempt + 1);
    tokio::time::sleep(step.mul_f64(0.5 + f64::from(nanos % 1000) / 1000.0)).await;
}

/// The semaphores of one etcd cluster.
#[derive(Clone)]
pub struct Semaphore {
    client: etcd_client::Client,
    timeout: Duration,
    max_hold: Option<Duration>,
    /// Optimistic transactions lost to another writer (each one retried).
    conflicts: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("timeout", &self.timeout)
            .field("max_hold", &self.max_hold)
            .finish_non_exhaustive()
    }
}

/// What one read found: the value and key version, and the held-since map and its version.
struct State {
    value: Value,
    version: i64,
    since: BTreeMap<String, u64>,
    since_version: i64,
}

impl Semaphore {
    /// Connects to the cluster at `endpoints`; every exchange gives up after `timeout`.
    pub async fn connect(
        endpoints: &[String],
        timeout: Duration,
        max_hold: Option<Duration>,
    ) -> Result<Self, Error> {
        let options = ConnectOptions::new()
            .with_connect_timeout(timeout)
            .with_timeout(timeout);
        let client = tokio::time::timeout(
            timeout,
            etcd_client::Client::connect(endpoints, Some(options)),
        )
        .await
        .map_err(|_| Error::Unavailable(format!("connecting within {timeout:?}")))?
        .map_err(|e| Error::Unavailable(e.to_string()))?;
        Ok(Self {
            client,
            timeout,
            max_hold,
            conflicts: Default::default(),
        })
    }

    /// How many optimistic transactions lost to another writer so far (each was retried).
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs one etcd exchange within the timeout.
    async fn call<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::Unavailable(e.to_string())),
            Err(_) => Err(Error::Unavailable(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// Creates the key of `group` with `slots` if it does not exist, then reads it.
    async fn read(&self, group: &str, slots: u64) -> Result<State, Error> {
        let key = key(group);
        let mut kv = self.client.kv_client();
        let init = serde_json::to_vec(&Value {
            total_slots: slots,
            holders: Vec::new(),
        })
        .map_err(|e| Error::Corrupt(e.to_string()))?;
        let txn = Txn::new()
            .when(vec![Compare::version(key.clone(), CompareOp::Equal, 0)])
            .and_then(vec![TxnOp::put(key.clone(), init, None)]);
        self.call(kv.txn(txn)).await?;
        let mut keys = vec![key];
        if self.max_hold.is_some() {
            keys.push(since_key(group));
        }
        let mut found = Vec::new();
        for k in keys {
            let r = self.call(kv.get(k, None)).await?;
            found.push(
                r.kvs()
                    .first()
                    .map(|kv| (kv.value().to_vec(), kv.version())),
            );
        }
        let (raw, version) = found
            .first()
            .cloned()
            .flatten()
            .ok_or_else(|| Error::Corrupt("the key vanished after its creation".into()))?;
        let value: Value = serde_json::from_slice(&raw).map_err(|e| {
            Error::Corrupt(format!(
                "{}: {e}: {}",
                self::key(group),
                String::from_utf8_lossy(&raw)
            ))
        })?;
        let (since, since_version) = match found.get(1).cloned().flatten() {
            Some((raw, v)) => (serde_json::from_slice(&raw).unwrap_or_default(), v),
            None => (BTreeMap::new(), 0),
        };
        Ok(State {
            value,
            version,
            since,
            since_version,
        })
    }

    /// Writes `state` if neither key changed since it was read; `Ok(false)` if one did.
    async fn write(&self, group: &str, state: &State) -> Result<bool, Error> {
        let key = key(group);
        let value = serde_json::to_vec(&state.value).map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut when = vec![Compare::version(
            key.clone(),
            CompareOp::Equal,
            state.version,
        )];
        let mut then = vec![TxnOp::put(key, value, None)];
        if self.max_hold.is_some() {
            let since_key = since_key(group);
            let since =
                serde_json::to_vec(&state.since).map_err(|e| Error::Corrupt(e.to_string()))?;
            when.push(Compare::version(
                since_key.clone(),
                CompareOp::Equal,
                state.since_version,
            ));
            then.push(TxnOp::put(since_key, since, None));
        }
        let mut kv = self.client.kv_client();
        let r = self
            .call(kv.txn(Txn::new().when(when).and_then(then)))
            .await?;
        if !r.succeeded() {
            self.conflicts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(r.succeeded())
    }

    /// Releases holders older than `max_hold` (recording when a holder was first seen, for
    /// holders added by another server such as airlock); returns the ids released.
    fn expire(&self, state: &mut State) -> (bool, Vec<String>) {
        let Some(max) = self.max_hold else {
            return (false, Vec::new());
        };
        let now = now();
        let mut changed = false;
        let mut expired = Vec::new();
        for h in state.value.holders.clone() {
            let since = *state.since.entry(h.clone()).or_insert_with(|| {
                changed = true;
                now
            });
            if now.saturating_sub(since) > max.as_secs() {
                state.value.holders.retain(|x| *x != h);
                state.since.remove(&h);
                expired.push(h);
                changed = true;
            }
        }
        let holders = state.value.holders.clone();
        let before = state.since.len();
        state.since.retain(|id, _| holders.contains(id));
        changed |= state.since.len() != before;
        (changed, expired)
    }

    /// Takes (or keeps) a slot of `group` (created with `slots`) for `id`.
    pub async fn lock(&self, group: &str, slots: u64, id: &str) -> Result<(), Error> {
        for attempt in 0..RETRIES {
            let mut state = self.read(group, slots).await?;
            let (changed, expired) = self.expire(&mut state);
            for e in &expired {
                tracing::warn!("group {group}: released {e}, which held its slot too long");
            }
            let holds = state.value.holders.iter().any(|h| h == id);
            if !holds {
                if state.value.holders.len() as u64 >= state.value.total_slots {
                    if changed && !self.write(group, &state).await? {
                        jitter(attempt).await;
                        continue;
                    }
                    return Err(Error::Full(state.value.total_slots));
                }
                state.value.holders.push(id.to_owned());
                state.value.holders.sort();
                if self.max_hold.is_some() {
                    state.since.insert(id.to_owned(), now());
                }
            } else if !changed {
                return Ok(());
            }
            if self.write(group, &state).await? {
                return Ok(());
            }
            jitter(attempt).await;
        }
        Err(Error::Conflict)
    }

    /// Gives back the slot `id` holds in `group`, if any.
    pub async fn unlock(&self, group: &str, slots: u64, id: &str) -> Result<(), Error> {
        for attempt in 0..RETRIES {
            let mut state = self.read(group, slots).await?;
            let (changed, _) = self.expire(&mut state);
            let before = state.value.holders.len();
            state.value.holders.retain(|h| h != id);
            state.since.remove(id);
            if state.value.holders.len() == before && !changed {
                return Ok(());
            }
            if self.write(group, &state).await? {
                return Ok(());
            }
            jitter(attempt).await;
        }
        Err(Error::Conflict)
    }

    /// The semaphore of `group` as stored, if it exists.
    pub async fn get(&self, group: &str) -> Result<Option<Value>, Error> {
        let mut kv = self.client.kv_client();
        let r = self.call(kv.get(key(group), None)).await?;
        r.kvs()
            .first()
            .map(|kv| serde_json::from_slice(kv.value()).map_err(|e| Error::Corrupt(e.to_string())))
            .transpose()
    }
}
