//! The HTTP pieces FleetLock needs on top of hyper: `http://` base URLs joined with an endpoint
//! as RFC 3986 joins them (zincati's rule: `http://h/fleet/` + `v1/pre-reboot` is
//! `http://h/fleet/v1/pre-reboot`), and one `POST` with a JSON body and a deadline.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// A parsed `http://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `host:port` (port 80 when absent).
    pub authority: String,
    /// The path, starting with `/`.
    pub path: String,
}

impl BaseUrl {
    /// Parses a base URL. Only `http://` is supported (TLS is not built in); no user info,
    /// query or fragment.
    pub fn parse(url: &str) -> Result<Self> {
        let Some(rest) = url.strip_prefix("http://") else {
            if url.starts_with("https://") {
                bail!(
                    "Unsupported FleetLock URL {url:?}: https is not built in; use http:// (behind a TLS proxy if needed)"
                );
            }
            bail!("Invalid FleetLock URL {url:?}: expected http://HOST[:PORT]/PATH");
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty()
            || authority.contains('@')
            || path.contains(['?', '#'])
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            bail!("Invalid FleetLock URL {url:?}: expected http://HOST[:PORT]/PATH");
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
        }) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            authority,
            path: path.to_owned(),
        })
    }

    /// The path of `endpoint` relative to this base (RFC 3986: the last segment of the base
    /// path is replaced, so a base should end with `/`).
    pub fn join(&self, endpoint: &str) -> String {
        let dir = match self.path.rfind('/') {
            Some(i) => &self.path[..=i],
            None => "/",
        };
        format!("{dir}{endpoint}")
    }
}

/// An answer: the status and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// The largest answer body read.
const MAX_BODY: usize = 64 * 1024;

/// `POST`s `body` to `path` on `authority` with the FleetLock header, within `deadline`.
pub async fn post(
    authority: &str,
    path: &str,
    body: Vec<u8>,
    deadline: Duration,
) -> Result<Answer> {
    tokio::time::timeout(deadline, post_inner(authority, path, body))
        .await
        .map_err(|_| anyhow!("no answer from {authority} within {deadline:?}"))?
}

async fn post_inner(authority: &str, path: &str, body: Vec<u8>) -> Result<Answer> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("talking to {authority}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(crate::protocol::HEADER, "true")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .context("building the request")?;
    let answer = async {
        let response = sender
            .send_request(request)
            .await
            .with_context(|| format!("POST {path} to {authority}"))?;
        let status = response.status().as_u16();
        let limited = http_body_util::Limited::new(response.into_body(), MAX_BODY);
        let body = limited
            .collect()
            .await
            .map_err(|e| anyhow!("reading the answer of {authority}: {e}"))?
            .to_bytes()
            .to_vec();
        Ok(Answer { status, body })
    }
    .await;
    driver.abort();
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_join_as_rfc_3986() {
        let b = BaseUrl::parse("http://lock.example:8080/fleet_lock/").unwrap();
        assert_eq!(b.authority, "lock.example:8080");
        assert_eq!(b.join("v1/pre-reboot"), "/fleet_lock/v1/pre-reboot");
        let b = BaseUrl::parse("http://lock.example/fleet_lock").unwrap();
        assert_eq!(b.authority, "lock.example:80");
        assert_eq!(b.join("v1/pre-reboot"), "/v1/pre-reboot");
        let b = BaseUrl::parse("http://127.0.0.1:9090").unwrap();
        assert_eq!(b.join("v1/steady-state"), "/v1/steady-state");
        for bad in [
            "https://x/",
            "ftp://x/",
            "http:///x",
            "http://u@x/",
            "http://x/?q",
            "http://x y/",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
