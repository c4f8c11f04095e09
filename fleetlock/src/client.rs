//! The node side of FleetLock: `pre_reboot` and `steady_state` against one or more server
//! replicas (a replica that cannot be reached is skipped, and the one that answered is tried
//! first next time), answers sorted into "granted" and "not now" (any status but 200: airlock's
//! 500 `failed_lock`, poseidon's 423 `lock_held`, a 503 without quorum), and an exponential
//! backoff with jitter for the retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use crate::http::{self, BaseUrl};
use crate::protocol::{ErrorBody, PRE_REBOOT, Request, STEADY_STATE};

/// What a server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200: the slot is held (pre-reboot) or not held any more (steady-state).
    Granted,
    /// Any other status: not now.
    NotNow {
        /// The HTTP status.
        status: u16,
        /// The error kind (`generic_http_<status>` when the body is not FleetLock's JSON).
        kind: String,
        /// The server's message.
        value: String,
    },
}

/// A FleetLock client for one node.
#[derive(Debug)]
pub struct Client {
    bases: Vec<BaseUrl>,
    body: Vec<u8>,
    id: String,
    group: String,
    deadline: Duration,
    preferred: AtomicUsize,
}

impl Client {
    /// A client of the servers at `urls` (replicas of one service) for node `id` in `group`;
    /// each request gives up after `deadline`.
    pub fn new(urls: &[String], id: &str, group: &str, deadline: Duration) -> Result<Self> {
        if urls.is_empty() {
            bail!("No FleetLock server URL configured");
        }
        let bases = urls
            .iter()
            .map(|u| BaseUrl::parse(u))
            .collect::<Result<Vec<_>>>()?;
        let body = serde_json::to_vec(&Request::new(id, group)?)?;
        Ok(Self {
            bases,
            body,
            id: id.to_owned(),
            group: group.to_owned(),
            deadline,
            preferred: AtomicUsize::new(0),
        })
    }

    /// The node id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Asks for a reboot slot (recursive: a holder asking again keeps its one slot).
    pub async fn pre_reboot(&self) -> Result<Outcome> {
        self.call(PRE_REBOOT).await
    }

    /// Gives the slot back if this node holds one.
    pub async fn steady_state(&self) -> Result<Outcome> {
        self.call(STEADY_STATE).await
    }

    async fn call(&self, endpoint: &str) -> Result<Outcome> {
        let n = self.bases.len();
        let first = self.preferred.load(Ordering::Relaxed) % n;
        let mut errors = Vec::new();
        for k in 0..n {
            let i = (first + k) % n;
            let base = &self.bases[i];
            match http::post(
                &base.authority,
                &base.join(endpoint),
                self.body.clone(),
                self.deadline,
            )
            .await
            {
                Ok(answer) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(outcome(answer));
                }
                Err(e) => errors.push(format!("{}: {e:#}", base.authority)),
            }
        }
        Err(anyhow!(
            "no FleetLock server answered {endpoint}: {}",
            errors.join("; ")
        ))
    }
}

fn outcome(answer: http::Answer) -> Outcome {
    if answer.status == 200 {
        return Outcome::Granted;
    }
    match serde_json::from_slice::<ErrorBody>(&answer.body) {
        Ok(e) => Outcome::NotNow {
            status: answer.status,
            kind: e.kind,
            value: e.value,
        },
        Err(_) => Outcome::NotNow {
            status: answer.status,
            kind: format!("generic_http_{}", answer.status),
            value: String::from_utf8_lossy(&answer.body).trim().to_owned(),
        },
    }
}

/// Exponential backoff with jitter: the n-th delay is drawn uniformly from half to all of
/// `base * 2^n`, capped at `max`, so that nodes refused together do not come back together.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
    state: u64,
}

impl Backoff {
    /// A backoff from `base` up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        Self {
            base,
            max,
            attempt: 0,
            state: h.finish() | 1,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let full = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let fraction = 0.5 + (self.state % 1_000_000) as f64 / 2_000_000.0;
        full.mul_f64(fraction)
    }

    /// Starts over (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// How many delays were drawn since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_granted_only_on_200() {
        let a = |status, body: &str| {
            outcome(http::Answer {
                status,
                body: body.as_bytes().to_vec(),
            })
        };
        assert_eq!(a(200, ""), Outcome::Granted);
        assert_eq!(
            a(
                500,
                r#"{"kind":"failed_lock","value":"all 1 semaphore slots currently locked"}"#
            ),
            Outcome::NotNow {
                status: 500,
                kind: "failed_lock".into(),
                value: "all 1 semaphore slots currently locked".into()
            }
        );
        assert!(
            matches!(a(423, r#"{"kind":"lock_held","value":"x"}"#), Outcome::NotNow { kind, .. } if kind == "lock_held")
        );
        assert!(
            matches!(a(502, "bad gateway"), Outcome::NotNow { kind, .. } if kind == "generic_http_502")
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let full = Duration::from_millis(100 * (1 << i)).min(Duration::from_secs(2));
            assert!(*d >= full / 2 && *d <= full, "{i}: {d:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
        let mut other = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
        let spread: std::collections::BTreeSet<u128> =
            (0..20).map(|_| other.next_delay().as_micros()).collect();
        assert!(spread.len() > 10, "jitter spreads the delays: {spread:?}");
    }

    #[test]
    fn clients_need_a_url_and_valid_params() {
        let d = Duration::from_secs(1);
        assert!(Client::new(&[], "n", "default", d).is_err());
        assert!(Client::new(&["https://x/".into()], "n", "default", d).is_err());
        assert!(Client::new(&["http://x/".into()], "n", "bad group", d).is_err());
        assert!(Client::new(&["http://x/".into()], "n", "default", d).is_ok());
    }
}
